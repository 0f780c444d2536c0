//! The sealed records of a user's mail besides the logs: a mailbox's entry in the list, message
//! metadata, where a body is, LMTP deliveries, and how each is encoded (postcard) before sealing.

use serde::{Deserialize, Serialize};

use super::error::MailError;
use crate::crypto::STREAM_PREFIX_BYTES;

/// A mailbox in the user's list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Random id naming its log partition.
    pub id: [u8; 16],
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
    /// RFC 6154 special use (`\\Sent`, ...), if any.
    pub special_use: Option<String>,
}

/// Where a body's chunks are and how to open them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BodyRef {
    /// Id naming the body's chunk objects (copies of a message share it).
    pub id: [u8; 16],
    /// Size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last one may be shorter).
    pub chunk_bytes: u32,
    /// Nonce prefix of the body's AEAD stream.
    pub prefix: [u8; STREAM_PREFIX_BYTES],
    /// The body's own key (random per message, so that mail can be delivered without the
    /// user's secret key); only ever stored inside sealed records.
    pub key: [u8; 32],
}

impl BodyRef {
    /// Number of chunks (an empty body has one empty chunk).
    pub fn chunks(&self) -> u32 {
        (self.size.div_ceil(self.chunk_bytes as u64)).max(1) as u32
    }
}

/// Per-message record, sealed in K2V: what FETCH needs without reading the body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The body in S3.
    pub body: BodyRef,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
    /// Envelope, body structure, header block and part offsets.
    pub meta: crate::mime::MessageMeta,
}

/// A message delivered by LMTP, sealed to the recipient's public key until their next session imports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    /// Message id.
    pub message: [u8; 16],
    /// Its record (body key inside).
    pub record: MessageRecord,
}

/// Decodes a record opened from the store; `what` names it in the error.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    what: &str,
    bytes: &[u8],
) -> Result<T, MailError> {
    postcard::from_bytes(bytes).map_err(|e| MailError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// Encodes a record for sealing.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("serialising plain data to a Vec cannot fail")
}
