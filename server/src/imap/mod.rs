//! The IMAP side of the server: one task per connection, reading commands with bounded memory and
//! answering them one message at a time.

mod append;
mod fetch;
mod idle;
pub mod input;
mod keywords;
mod list_extended;
mod login;
mod mailboxes;
mod messages;
pub mod output;
mod search;
mod select;
mod session;
mod state;

pub use session::{serve, CAPABILITIES};
