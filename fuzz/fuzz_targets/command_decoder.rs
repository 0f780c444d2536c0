//! Fuzz target: the IMAP command decoder (input framing, literals, imap-codec) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imapsim_fuzz::decode_commands(data));
