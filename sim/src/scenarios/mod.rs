//! The scenarios, one module each; registered in [`crate::scenario::all`].

pub mod append_fetch;
pub mod common;
pub mod faults;
pub mod fetch;
pub mod mailbox_ops;
pub mod scaling;
pub mod trace_replay;
pub mod users;
