//! Writes a message body to S3 as it streams in: fixed-size plaintext chunks, each sealed with the
//! body's own key and AEAD stream and stored as its own object. At most one chunk is held in memory.
//! The writer needs no user secret (the body key is fresh), so LMTP delivery uses it too.

use bytes::Bytes;

use super::error::MailError;
use super::layout;
use super::records::BodyRef;
use super::retry::read_retrying;
use crate::crypto::{SecretKey, STREAM_PREFIX_BYTES, TAG_BYTES};
use crate::env::Env;
use crate::storage::Store;

/// A body being written.
pub struct BodyWriter {
    store: Store,
    user: String,
    message: [u8; 16],
    key: [u8; 32],
    prefix: [u8; STREAM_PREFIX_BYTES],
    chunk_bytes: usize,
    buf: Vec<u8>,
    position: u32,
    size: u64,
}

impl BodyWriter {
    /// A writer for message `message` of store-side user `user`.
    pub fn new(
        store: Store,
        env: Env,
        user: String,
        message: [u8; 16],
        chunk_bytes: usize,
    ) -> Self {
        assert!(chunk_bytes > 0, "chunk size must be positive");
        BodyWriter {
            store,
            user,
            message,
            key: env.random(),
            prefix: env.random(),
            chunk_bytes,
            buf: Vec::new(),
            position: 0,
            size: 0,
        }
    }

    /// Adds bytes; full chunks are sealed and uploaded. A chunk is only sent once a byte beyond it
    /// arrived, so the last chunk is always known when sealed.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), MailError> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.buf.len() == self.chunk_bytes {
                self.flush(false).await?;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(self.chunk_bytes + TAG_BYTES);
            }
            let take = (self.chunk_bytes - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    async fn flush(&mut self, last: bool) -> Result<(), MailError> {
        let stream = SecretKey::from_bytes(self.key).body_stream(&self.prefix);
        let mut chunk = std::mem::take(&mut self.buf);
        stream.seal_chunk(self.position, last, &mut chunk);
        let key = layout::body_chunk_key(&self.user, &self.message, self.position);
        let len = chunk.len() as u64;
        if let Err(e) = self.store.blob_put(&key, Bytes::from(chunk)).await {
            // Only this writer writes this key: an object of the right size there means the
            // answer was lost, not the write.
            let head = read_retrying(|| self.store.blob_head(&key)).await;
            if head.ok().flatten() != Some(len) {
                return Err(e.into());
            }
        }
        self.position += 1;
        Ok(())
    }

    /// Seals and uploads the last chunk; returns where the body is.
    pub async fn finish(mut self) -> Result<BodyRef, MailError> {
        self.flush(true).await?;
        Ok(BodyRef {
            id: self.message,
            size: self.size,
            chunk_bytes: self.chunk_bytes as u32,
            prefix: self.prefix,
            key: self.key,
        })
    }

    /// The message id this body belongs to.
    pub fn message(&self) -> &[u8; 16] {
        &self.message
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}
