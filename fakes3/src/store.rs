//! The in-memory state behind both APIs: objects, K2V partitions, long-poll watchers, the RNG and counters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;

use crate::causality::{CausalContext, Counts, Item};
use crate::config::{Faults, Op};

/// One S3 object: its bytes and their MD5 (the ETag).
#[derive(Debug, Clone)]
pub struct Object {
    /// The content.
    pub data: Bytes,
    /// MD5 of the content.
    pub md5: [u8; 16],
}

impl Object {
    /// The ETag header value, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }
}

/// One K2V partition: its items by sort key and their summed counters.
#[derive(Debug, Default)]
pub struct Partition {
    /// Items by sort key, tombstones included.
    pub items: BTreeMap<String, Item>,
    /// Sum of the items' counters, for ReadIndex.
    pub counts: Counts,
    /// The store-wide write number of each item's last write, for PollRange's seen markers.
    pub written_at: BTreeMap<String, u64>,
}

/// Request and fault counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests routed to each operation, indexed by `Op as usize`.
    pub requests: [u64; Op::ALL.len()],
    /// Requests answered with an error that was not injected.
    pub rejected: u64,
    /// Injected 500/503 errors (request not applied).
    pub injected_errors: u64,
    /// Injected lost responses (request applied, 500 answered).
    pub injected_lost_responses: u64,
    /// Requests delayed by injected latency.
    pub injected_delays: u64,
    /// Total injected latency, in milliseconds.
    pub injected_delay_ms: u64,
}

/// What every connection of one store shares: fixed settings and the state behind its mutex.
pub struct Shared {
    /// The one bucket.
    pub bucket: String,
    /// The accepted access key id.
    pub key_id: String,
    /// The region of credential scopes and error bodies.
    pub region: String,
    /// Request body cap, in bytes.
    pub max_body_bytes: usize,
    /// Whether responses carry a `Date` header.
    pub date_header: bool,
    /// The mutable state.
    pub state: Mutex<State>,
}

impl Shared {
    /// Locks the state. Handlers never panic while holding it, so a poisoned lock still holds good state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything behind the store's mutex. Never held across an `.await`.
pub struct State {
    /// S3 objects by key.
    pub objects: BTreeMap<String, Object>,
    /// K2V partitions by partition key.
    pub partitions: BTreeMap<String, Partition>,
    /// Long-poll wake-ups by partition key then sort key; present only while someone polls.
    pub watchers: BTreeMap<String, BTreeMap<String, Arc<Notify>>>,
    /// PollRange wake-ups by partition key; present only while someone polls the partition.
    pub partition_watchers: BTreeMap<String, Arc<Notify>>,
    /// K2V writes so far: each write's number orders it for PollRange.
    pub k2v_writes: u64,
    /// Current faults.
    pub faults: Faults,
    /// The one RNG of the store.
    pub rng: ChaCha8Rng,
    /// Counters for [`crate::Stats`].
    pub counters: Counters,
}

impl State {
    /// The item at `pk`/`sk`, if it was ever written.
    pub fn item(&self, pk: &str, sk: &str) -> Option<&Item> {
        self.partitions.get(pk)?.items.get(sk)
    }

    /// Writes one K2V value (`None` deletes) having seen `context`, keeps the partition counters right and
    /// wakes the item's pollers.
    pub fn k2v_write(
        &mut self,
        pk: &str,
        sk: &str,
        context: Option<&CausalContext>,
        value: Option<Bytes>,
    ) {
        let partition = self.partitions.entry(pk.to_string()).or_default();
        let item = partition.items.entry(sk.to_string()).or_default();
        let before = item.counts();
        item.update(context, value);
        let after = item.counts();
        partition.counts.sub(before);
        partition.counts.add(after);
        self.k2v_writes += 1;
        partition.written_at.insert(sk.to_string(), self.k2v_writes);
        if let Some(notify) = self.watchers.get(pk).and_then(|m| m.get(sk)) {
            notify.notify_waiters();
        }
        if let Some(notify) = self.partition_watchers.get(pk) {
            notify.notify_waiters();
        }
    }

    /// The PollRange wake-up of partition `pk`, created if nobody polls it yet.
    pub fn partition_watcher(&mut self, pk: &str) -> Arc<Notify> {
        Arc::clone(
            self.partition_watchers
                .entry(pk.to_string())
                .or_insert_with(|| Arc::new(Notify::new())),
        )
    }

    /// Drops the PollRange wake-up of `pk` if `held` is its last user besides the map.
    pub fn release_partition_watcher(&mut self, pk: &str, held: &Arc<Notify>) {
        if Arc::strong_count(held) > 2 {
            return;
        }
        if self
            .partition_watchers
            .get(pk)
            .is_some_and(|n| Arc::ptr_eq(n, held))
        {
            self.partition_watchers.remove(pk);
        }
    }

    /// The wake-up of `pk`/`sk`, created if nobody polls it yet.
    pub fn watcher(&mut self, pk: &str, sk: &str) -> Arc<Notify> {
        let by_sk = self.watchers.entry(pk.to_string()).or_default();
        match by_sk.get(sk) {
            Some(n) => Arc::clone(n),
            None => {
                let n = Arc::new(Notify::new());
                by_sk.insert(sk.to_string(), Arc::clone(&n));
                n
            }
        }
    }

    /// Drops the wake-up of `pk`/`sk` if `held` is its last user besides the map.
    pub fn release_watcher(&mut self, pk: &str, sk: &str, held: &Arc<Notify>) {
        if Arc::strong_count(held) > 2 {
            return;
        }
        if let Some(by_sk) = self.watchers.get_mut(pk) {
            if by_sk.get(sk).is_some_and(|n| Arc::ptr_eq(n, held)) {
                by_sk.remove(sk);
            }
            if by_sk.is_empty() {
                self.watchers.remove(pk);
            }
        }
    }
}
