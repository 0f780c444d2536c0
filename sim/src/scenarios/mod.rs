//! The scenarios, one module each; registered in [`crate::scenario::all`].

pub mod append_fetch;
