//! Log writes that must happen together: the copies of a COPY or MOVE are one row of the
//! destination's log, the expunges of a MOVE one row of the source's, and both go to the store in
//! one K2V InsertBatch. A COPY that answers NO then left
//! the destination as it was (RFC 3501 6.4.7) and a MOVE never leaves a message in both
//! mailboxes (RFC 6851 3.3), so a client that retries a refused command makes no duplicate.
//!
//! One row is whole or absent on every store. A request of two rows (MOVE) is whole or absent on
//! fakes3; Garage applies each item on its own nodes, so a request cut short by a node failure
//! can leave one row without the other, which the check below reports as a failure, not as done.
//!
//! Memory: the operations, their encoding, its sealed form and the request body, about 250 bytes
//! a message for a MOVE; a row per message would cost three times as much.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::error::MailError;
use super::index::Op;
use super::layout;
use super::records::{encode, MailboxEntry};
use super::retry::read_retrying;
use super::user::UserStore;
use crate::storage::{RowInsert, RowQuery, StorageError};

/// Rows read per request when checking whether a batch whose answer failed was applied.
const CHECK_PAGE: u32 = 512;

/// Operations to append to one mailbox's log.
pub struct LogWrite<'a> {
    /// The mailbox whose log gets them.
    pub mailbox: &'a MailboxEntry,
    /// The operations, in order.
    pub ops: Vec<Op>,
    /// The writer's cursor in that log: the new row sorts after it.
    pub after: Option<&'a str>,
}

impl UserStore {
    /// Appends each write's operations to its mailbox's log as one row (an [`Op::Batch`] when
    /// there are several), all rows in one request: they are all in the store when this returns
    /// `Ok`, and none when the store refused the request. When the answer is lost (the rows may
    /// or may not be there) they are read back, and the commit counts as done only if every one
    /// of them is there with its value.
    pub async fn log_commit(&self, writes: Vec<LogWrite<'_>>) -> Result<(), MailError> {
        // Each log's turn (see `LogClock::turn`), taken in key order so that two commits never
        // wait for each other, and held until the rows are stored or known to be.
        let mut logs: Vec<String> = writes
            .iter()
            .map(|w| layout::log_partition(self.user_id(), &w.mailbox.id))
            .collect();
        logs.sort();
        logs.dedup();
        let mut turns = Vec::with_capacity(logs.len());
        for pk in &logs {
            turns.push(self.clock.turn(pk).await);
        }
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let pk = layout::log_partition(self.user_id(), &write.mailbox.id);
            let sk = self.clock.next(self.env(), write.after);
            let plain = match <[Op; 1]>::try_from(write.ops) {
                Ok([op]) => encode(&op),
                Err(ops) if ops.is_empty() => continue,
                Err(ops) => encode(&Op::Batch(ops)),
            };
            let value = self.seal(&pk, &sk, &plain);
            drop(plain);
            items.push(RowInsert {
                pk,
                sk,
                ct: None,
                value: Some(value),
            });
        }
        if items.is_empty() {
            return Ok(());
        }
        let Err(e) = self.store.rows_insert_batch(&items).await else {
            return Ok(());
        };
        match self.all_present(&items).await {
            Ok(true) => Ok(()),
            _ => Err(e.into()),
        }
    }

    /// Whether every row of `items` is in the store with its value. Other writers' rows may sit
    /// between ours in one partition (the sort keys of one server interleave), so each row is
    /// looked up by key.
    async fn all_present(&self, items: &[RowInsert]) -> Result<bool, StorageError> {
        // Our rows by partition, then sort key; the values are sealed with random nonces, so
        // an equal value is ours and no one else's.
        let mut wanted: BTreeMap<&str, BTreeMap<&str, &Bytes>> = BTreeMap::new();
        for item in items {
            let Some(value) = &item.value else { continue };
            wanted.entry(&item.pk).or_default().insert(&item.sk, value);
        }
        for (pk, rows) in &wanted {
            let (Some(first), Some(last)) = (rows.keys().next(), rows.keys().next_back()) else {
                continue;
            };
            let mut found = 0;
            let mut start = Some(first.to_string());
            while let Some(from) = start.take() {
                let query = RowQuery {
                    pk: pk.to_string(),
                    start: Some(from),
                    end: Some(format!("{last}\0")),
                    limit: Some(CHECK_PAGE),
                    ..RowQuery::default()
                };
                let page = read_retrying(|| self.store.rows_read(&query)).await?;
                for item in &page.items {
                    let ours = rows.get(item.sk.as_str());
                    if ours.is_some_and(|v| item.values.iter().flatten().any(|x| x == *v)) {
                        found += 1;
                    }
                }
                start = page.next_start;
            }
            if found != rows.len() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
