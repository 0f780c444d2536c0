//! The recorded IMAP trace and its counts, the trace parser, the seeded mailbox dataset generator,
//! and the seeded session-structured workload built from them.

pub mod dataset;
pub mod log;
mod mime_gen;
mod notation;
pub mod workload;

pub use dataset::{Email, Shape};
pub use log::{CommandName, Redacted, SeededRedacted, TraceCommand, TraceLine};
pub use workload::{Workload, WorkloadConfig};
