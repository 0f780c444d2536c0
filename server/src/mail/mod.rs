//! A user's mail in the store: the mailbox list, each mailbox's event log, per-message metadata
//! records and encrypted body chunks. Everything written is sealed under the user's secret key.

pub mod body;
pub mod checkpoint;
mod deliveries;
mod error;
mod event_log;
pub mod index;
pub mod layout;
mod log_clock;
mod mailbox_list;
pub mod overflow;
mod recent;
mod records;
mod retry;
pub mod transaction;
mod user;

pub use error::MailError;
pub use log_clock::{LogClock, LogTurn};
pub use mailbox_list::{canonical, MailboxList, SEPARATOR, SPECIAL_MAILBOXES};
pub use records::{BodyRef, Delivery, MailboxEntry, MessageRecord};
pub(crate) use retry::insert_checked;
pub use user::UserStore;
