//! The recorded IMAP trace and its counts, the trace parser, the seeded mailbox dataset generator,
//! and the seeded session-structured workload built from them.

pub mod dataset;
mod mime_gen;
mod notation;
pub mod trace;
pub mod workload;

pub use dataset::{Email, Shape};
pub use trace::{CommandName, Redacted, SeededRedacted, TraceCommand, TraceLine};
pub use workload::{Workload, WorkloadConfig};
