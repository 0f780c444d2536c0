//! Where a user's data lives in the store. Names never carry plaintext: users are hashed, mailboxes
//! and messages are random ids, everything else is inside sealed values.

use crate::crypto::blake2b;

/// Hex of a 128-bit id.
pub fn hex_id(id: &[u8; 16]) -> String {
    hex::encode(id)
}

/// The store-side name of a user: hex of a keyed BLAKE2b-128 of the login name.
pub fn user_id(login: &str) -> String {
    hex::encode(blake2b::<16>(&[b"imapsim user v1\0", login.as_bytes()]))
}

/// K2V row holding the user's wrapped secret key.
pub fn keys_row(user: &str) -> (String, &'static str) {
    (format!("{user}:keys"), "wrapped")
}

/// K2V row holding the user's sealed mailbox list.
pub fn mailboxes_row(user: &str) -> (String, &'static str) {
    (format!("{user}:mailboxes"), "list")
}

/// K2V partition holding a mailbox's event log, one row per operation.
pub fn log_partition(user: &str, mailbox: &[u8; 16]) -> String {
    format!("{user}:log:{}", hex_id(mailbox))
}

/// K2V partition holding per-message metadata records, sort key = message id.
pub fn meta_partition(user: &str) -> String {
    format!("{user}:meta")
}

/// K2V row holding the user's public delivery key (in clear: it is public).
pub fn public_key_row(user: &str) -> (String, &'static str) {
    (format!("{user}:keys"), "public")
}

/// K2V partition of mail delivered by LMTP and not yet imported, sort key = message id.
pub fn deliveries_partition(user: &str) -> String {
    format!("{user}:deliveries")
}

/// K2V partition holding every watch row of the bucket, so that one PollRange per server instance
/// watches every mailbox its sessions idle on (a PollItem per mailbox would cost a connection each).
pub const WATCH_PARTITION: &str = "watch";

/// Sort key (in [`WATCH_PARTITION`]) of the row bumped on every delivery, watched by sessions idling
/// on INBOX.
pub fn deliveries_watch_key(user: &str) -> String {
    format!("{user}:deliveries")
}

/// Sort key (in [`WATCH_PARTITION`]) of the row bumped on every change of a mailbox.
pub fn watch_key(user: &str, mailbox: &[u8; 16]) -> String {
    format!("{user}:{}", hex_id(mailbox))
}

/// K2V row of a mailbox's sealed recent watermark: the first UID that no session has claimed as
/// \Recent. Kept in the mailbox's own metadata partition, apart from its log.
pub fn recent_row(user: &str, mailbox: &[u8; 16]) -> (String, &'static str) {
    (format!("{user}:mailbox:{}", hex_id(mailbox)), "recent")
}

/// S3 key of chunk `index` of a message body.
pub fn body_chunk_key(user: &str, message: &[u8; 16], index: u32) -> String {
    format!("{user}/body/{}/{index:06}", hex_id(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_and_hide_the_name() {
        assert_eq!(user_id("alice"), user_id("alice"));
        assert_ne!(user_id("alice"), user_id("bob"));
        assert!(!user_id("alice").contains("alice"));
        assert_eq!(user_id("alice").len(), 32);
    }
}
