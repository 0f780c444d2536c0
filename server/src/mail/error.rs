//! Why a mail operation failed, by kind, each keeping its cause.

use thiserror::Error;

use crate::crypto::CryptoError;
use crate::storage::StorageError;

/// Why a mail operation failed.
#[derive(Debug, Error)]
pub enum MailError {
    /// The store failed or could not be reached.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A sealed value could not be opened.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// A value opened but did not decode: the store holds something this version cannot read.
    #[error("corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Decoder message.
        detail: String,
    },
    /// No mailbox of that name.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// A mailbox of that name exists already.
    #[error("mailbox already exists")]
    MailboxExists,
}
