//! The recorded IMAP trace and its counts, the trace parser, and the seeded mailbox dataset generator.

pub mod dataset;
pub mod log;
mod mime_gen;
mod notation;

pub use dataset::{Email, Shape};
pub use log::{CommandName, Redacted, SeededRedacted, TraceCommand, TraceLine};
