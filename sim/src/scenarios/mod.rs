//! The scenarios, one module each; registered in [`crate::scenario::all`].

pub mod append_fetch;
pub mod common;
pub mod fetch;
pub mod mailbox_ops;
pub mod trace_replay;
pub mod users;
