//! imapsim's IMAP + LMTP server: mailboxes are encrypted event logs over S3 + K2V (Garage's APIs).
//! It knows nothing of simulation: I/O, clock and entropy come in through [`env::Env`].

pub mod env;
pub mod storage;
