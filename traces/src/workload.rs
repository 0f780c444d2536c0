//! The seeded, session-structured workload: from one seed, the setup of several users' mailboxes
//! (dataset emails delivered before the trace) and sessions of IMAP commands arranged as real
//! clients send them, drawn from the recorded trace's distinct variants, whose per-command counts
//! equal the recorded summary (4,619 commands by default) and whose sequence numbers, UIDs and
//! CHANGEDSINCE values are valid for the mailbox state at that point (see [`model`]).
//!
//! A workload holds no email bytes: deliveries and APPENDs name a dataset email by
//! [`EmailRef`] (seed, index, size), generated when sent. [`Workload::write_to`] and
//! [`Workload::read_from`] keep one in a line-oriented text file, which a user can also write by
//! hand from their own capture.

mod check;
mod config;
mod generate;
pub mod model;
mod plan;
mod quoting;
mod remap;
mod rewrite;
mod steps;
#[cfg(feature = "proptest")]
mod strategy;
pub mod text;
mod variants;

pub use check::CheckError;
pub use config::{recorded_counts, WorkloadConfig, WorkloadError};
pub use model::{Model, ModelError, SessionState};
pub use steps::{
    AppendStep, EmailRef, Expect, Session, SetupStep, Step, StepCommand, User, Workload,
};
#[cfg(feature = "proptest")]
pub use strategy::session_strategy;
pub use text::{ReadError, ReadErrorKind};
