//! Checkpoints: a mailbox's folded state sealed into one S3 object, so that loading a mailbox reads
//! one object and the log's tail instead of its whole history, and old log rows can be deleted.
//!
//! Several instances may append to a log at once, each with its own clock, so a checkpoint only
//! covers operations older than [`LAG`]: an operation that arrives later with an older sort key
//! would otherwise fall below a checkpoint and be missed (Aerogramme uses the same rule). The
//! clocks of instances serving one user are assumed to agree within that lag.

use std::time::Duration;

use super::error::MailError;
use super::event_log::Fold;
use super::index::{Index, Snapshot};
use super::layout;
use super::overflow::Overflow;
use super::records::{decode, encode, MailboxEntry};
use super::retry::read_retrying;
use super::user::UserStore;
use crate::storage::{RowQuery, StorageError};

/// Operations a log tail may hold before a new checkpoint is written.
pub const EVERY_OPS: u32 = 256;
/// Age an operation must have before a checkpoint covers it.
pub const LAG: Duration = Duration::from_secs(60);
/// Checkpoints kept per mailbox (the newest ones).
const KEEP: usize = 2;
/// Attempts of a load, at most, when checkpoints written meanwhile keep deleting rows under it.
const LOAD_ATTEMPTS: u32 = 8;

fn prefix(user: &str, mailbox: &MailboxEntry) -> String {
    format!("{user}/ckpt/{}/", layout::hex_id(&mailbox.id))
}

/// A checkpoint's plaintext: a [`Snapshot`], then the keyword [`Overflow`] when there is one
/// (checkpoints written before overflow keywords existed end after the snapshot).
fn decode_checkpoint(plain: &[u8]) -> Result<Index, MailError> {
    let (snapshot, rest) =
        postcard::take_from_bytes::<Snapshot>(plain).map_err(|e| MailError::Corrupt {
            what: "checkpoint".to_string(),
            detail: e.to_string(),
        })?;
    let overflow = if rest.is_empty() {
        Overflow::default()
    } else {
        decode("checkpoint overflow", rest)?
    };
    Ok(Index::from_snapshot(snapshot, overflow))
}

/// Milliseconds of a log sort key (its first 16 hex digits).
fn sort_key_ms(sk: &str) -> u64 {
    sk.get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

impl UserStore {
    /// Loads a mailbox: its newest checkpoint, then the log after it. Writes a new checkpoint
    /// when the tail was long, and deletes the log rows and checkpoints it replaces.
    ///
    /// Loads run concurrently (every session's SELECT, APPENDUID and COPYUID answers): when another
    /// load's checkpoint deletes rows this one has not read yet, it starts again from that
    /// checkpoint rather than return, or checkpoint, an index without them.
    pub async fn load_index(&self, mailbox: &MailboxEntry) -> Result<Index, MailError> {
        for _ in 0..LOAD_ATTEMPTS {
            if let Some(index) = self.try_load_index(mailbox).await? {
                return Ok(index);
            }
        }
        Err(StorageError::Conflict.into())
    }

    /// [`UserStore::load_index`] once; `None` when a concurrent checkpoint got in the way.
    async fn try_load_index(&self, mailbox: &MailboxEntry) -> Result<Option<Index>, MailError> {
        let prefix = prefix(self.user_id(), mailbox);
        let listed = self.store().blob_list(&prefix, None, 100).await?;
        let mut index = match listed.keys.last() {
            Some((key, _)) => {
                let sealed = match self.store().blob_get(key, None).await {
                    Ok(sealed) => sealed,
                    // Superseded and deleted since the listing.
                    Err(StorageError::NoSuchKey) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                decode_checkpoint(&self.open(key, "", &sealed)?)?
            }
            None => Index::new(),
        };
        // Fold the tail; remember the state just before the first operation younger than LAG.
        let now_ms = self
            .env()
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let cutoff_ms = now_ms.saturating_sub(LAG.as_millis() as u64);
        let mut covered: Option<Index> = None;
        let mut young = false;
        let fold = self
            .refresh_with(mailbox, &mut index, None, |index, sk| {
                if !young && sort_key_ms(sk) > cutoff_ms {
                    young = true;
                    if index.ops_since_checkpoint >= EVERY_OPS {
                        covered = Some(index.clone());
                    }
                }
            })
            .await?;
        if fold == Fold::Gap {
            return Ok(None);
        }
        if !young && index.ops_since_checkpoint >= EVERY_OPS {
            covered = Some(index.clone());
        }
        if let Some(state) = covered {
            // Best effort: a failed checkpoint only means the next load reads a longer tail.
            if let Err(e) = self.write_checkpoint(mailbox, state, &listed.keys).await {
                tracing::debug!(error = %e, "checkpoint failed");
            }
            index.ops_since_checkpoint = 0;
        }
        // A selected mailbox keeps its index: 48 bytes per message, not the up to 96 of a grown Vec.
        index.entries.shrink_to_fit();
        Ok(Some(index))
    }

    /// Whether a checkpoint of `mailbox` is beyond `cursor` (any checkpoint, for `None`): it may
    /// have deleted log rows after `cursor`.
    pub(crate) async fn checkpoint_beyond(
        &self,
        mailbox: &MailboxEntry,
        cursor: Option<&str>,
    ) -> Result<bool, MailError> {
        let prefix = prefix(self.user_id(), mailbox);
        let listed = read_retrying(|| self.store().blob_list(&prefix, None, 100)).await?;
        Ok(listed
            .keys
            .last()
            .is_some_and(|(key, _)| cursor.is_none_or(|c| &key[prefix.len()..] > c)))
    }

    /// The mailbox as it was at log position `cursor` (what an idling session saw), from the newest
    /// checkpoint not beyond it. `None` when checkpoints have moved past it and the rows it needs
    /// are gone.
    pub async fn load_index_at(
        &self,
        mailbox: &MailboxEntry,
        cursor: Option<&str>,
    ) -> Result<Option<Index>, MailError> {
        let prefix = prefix(self.user_id(), mailbox);
        let listed = self.store().blob_list(&prefix, None, 100).await?;
        let usable = listed
            .keys
            .iter()
            .rev()
            .find(|(k, _)| cursor.is_some_and(|c| &k[prefix.len()..] <= c));
        let mut index = match usable {
            Some((key, _)) => match self.store().blob_get(key, None).await {
                Ok(sealed) => decode_checkpoint(&self.open(key, "", &sealed)?)?,
                // Deleted since the listing: a newer checkpoint deleted the rows it needs too.
                Err(StorageError::NoSuchKey) => return Ok(None),
                Err(e) => return Err(e.into()),
            },
            // Without a checkpoint at or before the cursor, the log must still start at the beginning.
            None if !listed.keys.is_empty() => return Ok(None),
            None => Index::new(),
        };
        // Nothing to fold when the checkpoint is at the cursor itself.
        if let Some(cursor) = cursor.filter(|c| index.cursor.as_deref() != Some(*c)) {
            let fold = self
                .refresh_with(mailbox, &mut index, Some(cursor), |_, _| {})
                .await?;
            if fold == Fold::Gap {
                return Ok(None);
            }
        }
        index.entries.shrink_to_fit();
        Ok(Some(index))
    }

    async fn write_checkpoint(
        &self,
        mailbox: &MailboxEntry,
        state: Index,
        old: &[(String, u64)],
    ) -> Result<(), MailError> {
        let Some(cursor) = state.cursor.clone() else {
            return Ok(());
        };
        let key = format!("{}{cursor}", prefix(self.user_id(), mailbox));
        let snapshot = Snapshot {
            entries: state.entries,
            uidnext: state.uidnext,
            highest_modseq: state.highest_modseq,
            keywords: state.keywords,
            cursor: cursor.clone(),
        };
        let mut plain = encode(&snapshot);
        if !state.overflow.is_empty() {
            plain.extend_from_slice(&encode(&state.overflow));
        }
        let sealed = self.seal(&key, "", &plain);
        drop(snapshot);
        self.store().blob_put(&key, sealed).await?;
        // The log rows the checkpoint covers, then the checkpoints it supersedes. The cursor's own
        // row stays: a fold that finds its cursor's row knows no row after it was deleted unread.
        let pk = layout::log_partition(self.user_id(), &mailbox.id);
        let query = RowQuery {
            pk,
            end: Some(cursor.clone()),
            ..RowQuery::default()
        };
        self.store().rows_delete_batch(&[query]).await?;
        let stale = old.len().saturating_sub(KEEP - 1);
        for (old_key, _) in &old[..stale] {
            self.store().blob_delete(old_key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::index::{Entry, Index, Op, Snapshot};
    use super::super::overflow::Overflow;
    use super::{decode_checkpoint, encode, sort_key_ms};

    fn snapshot(index: &Index) -> Snapshot {
        Snapshot {
            entries: index.entries.clone(),
            uidnext: index.uidnext,
            highest_modseq: index.highest_modseq,
            keywords: index.keywords.clone(),
            cursor: "c".into(),
        }
    }

    #[test]
    fn a_checkpoint_without_an_overflow_section_still_decodes() {
        let mut index = Index::new();
        let keywords: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
        index.apply(&Op::Append {
            message: [1; 16],
            size: 1,
            internal_date: 0,
            flags: keywords,
        });
        // As written before overflow keywords existed: the snapshot alone.
        let old = decode_checkpoint(&encode(&snapshot(&index))).expect("decodes");
        assert_eq!(old.entries, index.entries);
        assert_eq!(old.overflow, Overflow::default());
        let mut new = encode(&snapshot(&index));
        new.extend_from_slice(&encode(&index.overflow));
        let loaded = decode_checkpoint(&new).expect("decodes");
        let entry: Entry = loaded.entries[0];
        assert_eq!(loaded.flag_names(&entry).count(), 60);
        assert!(decode_checkpoint(&new[..new.len() - 1]).is_err());
    }

    #[test]
    fn sort_keys_carry_their_milliseconds() {
        assert_eq!(sort_key_ms("00000000000003e8deadbeef"), 1000);
        assert_eq!(sort_key_ms("bogus"), 0);
    }
}
