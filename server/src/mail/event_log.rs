//! A mailbox's event log: appending operations under this instance's turn, and folding the rows
//! after an index's cursor into it.

use std::collections::BTreeMap;

use super::error::MailError;
use super::index::{Change, Index, Op};
use super::layout;
use super::records::{decode, encode, MailboxEntry};
use super::retry::read_retrying;
use super::transaction::LogWrite;
use super::user::UserStore;
use crate::storage::RowQuery;

/// Rows read per request when folding a log.
pub(super) const LOG_PAGE: u32 = 256;

/// How folding a log into an index ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Every row after the cursor was folded.
    Done,
    /// A checkpoint deleted rows after the cursor before they were read: the index misses them
    /// and must be loaded again from the newest checkpoint. Nothing was folded past the gap.
    Gap,
}

impl UserStore {
    /// Writes several operations to a mailbox's log as one row, in order, after `after`.
    pub async fn log_append_batch(
        &self,
        mailbox: &MailboxEntry,
        ops: Vec<Op>,
        after: Option<&str>,
    ) -> Result<(), MailError> {
        self.log_commit(vec![LogWrite {
            mailbox,
            ops,
            after,
        }])
        .await
    }

    /// Appends an operation to a mailbox's log, after `after` (the caller's cursor); returns its sort key.
    pub async fn log_append(
        &self,
        mailbox: &MailboxEntry,
        op: &Op,
        after: Option<&str>,
    ) -> Result<String, MailError> {
        let pk = layout::log_partition(&self.user, &mailbox.id);
        let _turn = self.clock.turn(&pk).await;
        let sk = self.clock.next(self.env(), after);
        let sealed = self.seal(&pk, &sk, &encode(op));
        self.insert_verified(&pk, &sk, None, sealed).await?;
        Ok(sk)
    }

    /// Folds the log rows after the index's cursor into a session's view, reporting each visible
    /// change; expunged messages stay marked until the session announces them
    /// ([`Index::announce_expunges`]). When a checkpoint has deleted rows past the cursor before
    /// they were folded, the mailbox is loaded again and the difference reported instead.
    pub async fn refresh(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        mut on_change: impl FnMut(&Index, Change),
    ) -> Result<(), MailError> {
        match self
            .refresh_inner(mailbox, index, None, true, |_, _| {}, &mut on_change)
            .await?
        {
            Fold::Done => Ok(()),
            Fold::Gap => {
                let fresh = Box::pin(self.load_index(mailbox)).await?;
                index.resync(fresh, &mut on_change);
                Ok(())
            }
        }
    }

    /// [`UserStore::refresh`] that also shows `before` the state ahead of each row, with its sort
    /// key, and leaves it to the caller to recover from a [`Fold::Gap`].
    pub(crate) async fn refresh_with(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        until: Option<&str>,
        before: impl FnMut(&Index, &str),
    ) -> Result<Fold, MailError> {
        self.refresh_inner(mailbox, index, until, false, before, &mut |_, _| {})
            .await
    }

    async fn refresh_inner(
        &self,
        mailbox: &MailboxEntry,
        index: &mut Index,
        until: Option<&str>,
        view: bool,
        mut before: impl FnMut(&Index, &str),
        on_change: &mut impl FnMut(&Index, Change),
    ) -> Result<Fold, MailError> {
        let pk = layout::log_partition(&self.user, &mailbox.id);
        loop {
            // Each page starts at the cursor's own row, not after it: a checkpoint deletes the
            // rows before its cursor, so while that row is there no row after it was deleted.
            let anchor = index.cursor.clone();
            let query = RowQuery {
                pk: pk.clone(),
                prefix: None,
                start: anchor.clone(),
                end: until.map(|u| format!("{u}\0")),
                limit: Some(LOG_PAGE),
                reverse: false,
                single_item: false,
                tombstones: false,
            };
            // Retried: a refresh that fails after a command's writes succeeded turns the
            // command into a NO, which the client retries into duplicates (COPY, MOVE).
            let page = read_retrying(|| self.store.rows_read(&query)).await?;
            let mut items = page.items.as_slice();
            match (&anchor, items.first()) {
                (Some(cursor), Some(first)) if first.sk == *cursor => items = &items[1..],
                (None, None) => {}
                // The row is gone (or the fold starts from the log's beginning): rows may have
                // been deleted unread if a checkpoint beyond it exists, listed after the read
                // since a checkpoint's object is written before the rows it covers are deleted.
                _ => {
                    if self.checkpoint_beyond(mailbox, anchor.as_deref()).await? {
                        return Ok(Fold::Gap);
                    }
                }
            }
            for item in items {
                before(index, &item.sk);
                for value in item.values.iter().flatten() {
                    let op: Op = decode("log op", &self.open(&pk, &item.sk, value)?)?;
                    for op in op.flatten() {
                        let change = if view {
                            index.apply_in_view(op)
                        } else {
                            index.apply(op)
                        };
                        index.ops_since_checkpoint += 1;
                        on_change(index, change);
                    }
                }
                index.cursor = Some(item.sk.clone());
            }
            if page.next_start.is_none() || items.is_empty() {
                return Ok(Fold::Done);
            }
        }
    }

    /// The UIDs that `messages` got in `mailbox` (0 for one not found), folding its log into a
    /// throw-away index: for UIDPLUS answers about a mailbox that is not selected.
    pub async fn uids_of(
        &self,
        mailbox: &MailboxEntry,
        messages: &[[u8; 16]],
    ) -> Result<Vec<u32>, MailError> {
        let index = self.load_index(mailbox).await?;
        let by_id: BTreeMap<[u8; 16], u32> =
            index.entries.iter().map(|e| (e.message, e.uid)).collect();
        Ok(messages
            .iter()
            .map(|m| by_id.get(m).copied().unwrap_or(0))
            .collect())
    }
}
