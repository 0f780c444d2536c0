//! The IMAP side of the server: one task per connection, reading commands with bounded memory and
//! answering them one message at a time.

mod fetch;
mod idle;
pub mod input;
mod keywords;
mod list_extended;
mod mailboxes;
mod messages;
pub mod output;
mod search;
mod session;

pub use session::serve;

/// Capabilities advertised: only what is implemented.
pub const CAPABILITIES: &str = "IMAP4rev1 AUTH=PLAIN LITERAL+ UIDPLUS UNSELECT IDLE MOVE NAMESPACE ID ENABLE CONDSTORE LIST-EXTENDED LIST-STATUS SPECIAL-USE UTF8=ACCEPT";
