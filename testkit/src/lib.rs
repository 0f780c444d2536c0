//! What imapsim's test crates share: fakes3 and the server on loopback ports, listening through
//! the serving binary's own listener ([`server::listener`]) with cheap key derivation
//! ([`loopback`]), and a line-oriented IMAP test client ([`client`]).

pub mod client;
pub mod loopback;

pub use client::{read_until_text, send_in_background, tagged, to_crlf, transcript, Client};
pub use loopback::{cheap_kdf, checkpoints, Setup, Started, TestClock};
