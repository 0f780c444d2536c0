//! What can go wrong with a storage request, by kind.

/// What can go wrong with a storage request, by kind.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object or item does not exist (S3 `NoSuchKey`, or a bare 404).
    #[error("no such key")]
    NoSuchKey,
    /// The store answered 409 Conflict.
    #[error("conflict")]
    Conflict,
    /// The request took longer than its deadline, or the store answered 408 / 504.
    #[error("storage request timed out")]
    Timeout,
    /// Any other error answer, with the wire error's code and message.
    #[error("storage answered HTTP {status} {code}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// S3 / K2V error code (e.g. `InvalidCausalityToken`), empty if the body had none.
        code: String,
        /// Error message of the body.
        message: String,
    },
    /// Connecting, sending or receiving failed; the cause is inside.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// An answer the client cannot understand, or a request it cannot express.
    #[error("storage protocol: {0}")]
    Protocol(String),
}

impl StorageError {
    /// Whether trying the same request again later may succeed (I/O, timeouts, 5xx answers).
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Io(_) | StorageError::Timeout => true,
            StorageError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
