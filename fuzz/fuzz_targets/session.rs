//! Fuzz target: a whole IMAP session (before login, logged in, or with a mailbox selected) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drop(imapsim_fuzz::run_session(data)));
