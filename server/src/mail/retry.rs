//! Storage reads retried after a transient failure, and inserts checked by reading back: a write
//! whose answer was lost must not become a NO that the client retries into a duplicate.

use bytes::Bytes;

use crate::storage::{CausalityToken, StorageError, Store};

/// Attempts of a storage read that checks whether a write whose answer failed was applied (and
/// of a body chunk read): a check that fails too would turn an applied write into a NO, which the
/// client retries into a duplicate.
const CHECK_ATTEMPTS: u32 = 5;
/// Pause before the second check attempt; each further one waits this much longer.
const CHECK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs an idempotent storage read, again after a transient failure, [`CHECK_ATTEMPTS`] times at most.
pub(crate) async fn read_retrying<T, F, Fut>(mut read: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let mut attempt = 1;
    loop {
        match read().await {
            Err(e) if e.is_transient() && attempt < CHECK_ATTEMPTS => {
                tokio::time::sleep(CHECK_PAUSE * attempt).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Inserts a row; when the store answers with an error, reads the row back and counts the write
/// as done if `value` (sealed, so unique) is there: the answer was lost, not the write.
pub(crate) async fn insert_checked(
    store: &Store,
    pk: &str,
    sk: &str,
    ct: Option<&CausalityToken>,
    value: Bytes,
) -> Result<(), StorageError> {
    match store.row_insert(pk, sk, ct, value.clone()).await {
        Ok(()) => Ok(()),
        Err(e) => match read_retrying(|| store.row_read(pk, sk)).await {
            Ok(Some(row)) if row.values.iter().flatten().any(|v| *v == value) => Ok(()),
            _ => Err(e),
        },
    }
}
