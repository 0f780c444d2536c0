//! One authenticated user's view of the store: sealing under the user's key, message records and
//! body chunks. Mailbox lists, logs, deliveries and \Recent extend it from their own modules.

use std::sync::Arc;

use bytes::Bytes;

use super::body::BodyWriter;
use super::error::MailError;
use super::layout;
use super::log_clock::LogClock;
use super::records::{decode, encode, BodyRef, MailboxEntry, MessageRecord};
use super::retry::{insert_checked, read_retrying};
use crate::crypto::SecretKey;
use crate::env::Env;
use crate::storage::{CausalityToken, RowInsert, StorageError, Store};

/// One authenticated user's view of the store.
#[derive(Clone)]
pub struct UserStore {
    pub(super) store: Store,
    pub(super) user: Arc<str>,
    pub(super) key: SecretKey,
    pub(super) clock: Arc<LogClock>,
}

fn context(pk: &str, sk: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(pk.len() + sk.len() + 1);
    c.extend_from_slice(pk.as_bytes());
    c.push(0);
    c.extend_from_slice(sk.as_bytes());
    c
}

impl UserStore {
    /// The store of user `user` (its hashed id), with its unwrapped secret key.
    pub fn new(store: Store, user: &str, key: SecretKey, clock: Arc<LogClock>) -> Self {
        UserStore {
            store,
            user: user.into(),
            key,
            clock,
        }
    }

    /// The user's store-side id.
    pub fn user_id(&self) -> &str {
        &self.user
    }

    /// The storage client.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The environment (the store's: one per server, not a copy per session).
    pub fn env(&self) -> &Env {
        self.store.env()
    }

    pub(crate) fn seal(&self, pk: &str, sk: &str, plain: &[u8]) -> Bytes {
        Bytes::from(self.key.seal(self.env(), &context(pk, sk), plain))
    }

    pub(crate) fn open(&self, pk: &str, sk: &str, sealed: &[u8]) -> Result<Vec<u8>, MailError> {
        Ok(self.key.open(&context(pk, sk), sealed)?)
    }

    /// Inserts a row; when the store answers with an error, reads the row back and counts the write
    /// as done if our exact (sealed, so unique) value is there: the answer was lost, not the write,
    /// and saying NO would make the client retry into a duplicate.
    pub(super) async fn insert_verified(
        &self,
        pk: &str,
        sk: &str,
        ct: Option<&CausalityToken>,
        value: Bytes,
    ) -> Result<(), MailError> {
        Ok(insert_checked(&self.store, pk, sk, ct, value).await?)
    }

    /// Writes a message's metadata record.
    pub async fn put_record(
        &self,
        message: &[u8; 16],
        record: &MessageRecord,
    ) -> Result<(), MailError> {
        let pk = layout::meta_partition(&self.user);
        let sk = layout::hex_id(message);
        let sealed = self.seal(&pk, &sk, &encode(record));
        self.insert_verified(&pk, &sk, None, sealed).await
    }

    /// Reads a message's metadata record.
    pub async fn record(&self, message: &[u8; 16]) -> Result<MessageRecord, MailError> {
        let pk = layout::meta_partition(&self.user);
        let sk = layout::hex_id(message);
        let row = read_retrying(|| self.store.row_read(&pk, &sk))
            .await?
            .ok_or(MailError::Storage(StorageError::NoSuchKey))?;
        let value = row
            .values
            .iter()
            .flatten()
            .next()
            .ok_or(MailError::Storage(StorageError::NoSuchKey))?;
        decode("message record", &self.open(&pk, &sk, value)?)
    }

    /// Starts writing a new message body.
    pub fn body_writer(&self, message: [u8; 16], chunk_bytes: usize) -> BodyWriter {
        BodyWriter::new(
            self.store.clone(),
            self.env().clone(),
            self.user.to_string(),
            message,
            chunk_bytes,
        )
    }

    /// Reads and decrypts chunk `index` of a body.
    pub async fn body_chunk(
        &self,
        message: &[u8; 16],
        body: &BodyRef,
        index: u32,
    ) -> Result<Vec<u8>, MailError> {
        let _ = message;
        let key = layout::body_chunk_key(&self.user, &body.id, index);
        let mut buf = read_retrying(|| self.store.blob_get(&key, None))
            .await?
            .to_vec();
        let last = index + 1 == body.chunks();
        SecretKey::from_bytes(body.key)
            .body_stream(&body.prefix)
            .open_chunk(index, last, &mut buf)?;
        Ok(buf)
    }

    /// Bumps the mailbox's watch row so that watchers wake up.
    pub async fn notify(&self, mailbox: &MailboxEntry) -> Result<(), MailError> {
        let key = layout::watch_key(&self.user, &mailbox.id);
        Ok(crate::watch::bump(&self.store, self.env(), &key).await?)
    }

    /// Inserts rows in one batch (used to write several log operations at once).
    pub async fn insert_batch(&self, items: &[RowInsert]) -> Result<(), MailError> {
        Ok(self.store.rows_insert_batch(items).await?)
    }
}
