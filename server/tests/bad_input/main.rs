//! Bad input (issue #6): garbled commands, random bytes, invalid UTF-8, unbalanced and 10,000-deep
//! parentheses, 1 MB lines, literals announced at 4 GB or never sent, pipelining without reading,
//! commands in the wrong state and IDLE without DONE. Whatever arrives, the server does not panic,
//! every answer parses with imap-proto, and the session either stays usable (a NOOP gets OK) or
//! is closed after a BYE. Also the login rate limits per user and per source address, and a replay
//! of the committed fuzz corpus (`fuzz/corpus`) through the fuzz harnesses themselves.
//! Memory bounds under bad input are measured in `tests/tests/bad_input_heap.rs` (it needs the
//! counting allocator).

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

mod cases;
mod fuzz_findings;
mod login;
mod properties;
mod raw;
