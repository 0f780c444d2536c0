//! imapsim's clients and workloads, written once over a small [`Driver`]: the simulation runs
//! them on turmoil (and measures the server host's heap at each phase boundary), the benchmark on
//! real TCP against any IMAP server (and reads its RSS there).
//!
//! - the clients: [`client`] (IMAP, every response parsed by imap-proto), [`lmtp`], the
//!   [`responses`] parsers, [`session`] (connect, log in, prepare a mailbox), [`tolerant`] (a
//!   session that retries NO) and [`raw`] (stops mid-literal on purpose);
//! - what the clients bring back ([`outcome`]) and what they check across sessions ([`ledger`]);
//! - the workloads: [`one_user`], [`users`], [`idle`], [`trace_replay`], [`append_fetch`].

pub mod append_fetch;
pub mod client;
pub mod dataset;
pub mod driver;
pub mod idle;
pub mod ledger;
pub mod lmtp;
pub mod one_user;
pub mod outcome;
pub mod raw;
pub mod responses;
pub mod session;
pub mod tolerant;
pub mod trace_replay;
pub mod users;

pub use driver::{Driver, PhaseCursor, Phases, StoreRequests};
pub use outcome::{ClientOutcome, Outcomes, WorkloadRun};

/// A kibibyte, in bytes.
pub const KIB: u64 = 1024;
/// A mebibyte, in bytes.
pub const MIB: u64 = 1024 * 1024;
