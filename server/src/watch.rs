//! New-mail notification (DESIGN.md memory principle 3). Every mailbox has a watch row, bumped on each
//! change; all watch rows live in one K2V partition ([`layout::WATCH_PARTITION`]). One poller task per
//! server instance long-polls that partition with PollRange and wakes the mailboxes' subscribers, so an
//! idle session costs a small map entry, not a task and a storage connection of its own.
//!
//! A subscriber subscribes first and then takes a last look at its mailbox: a change landing after the
//! subscription is after the poller's seen marker, so the poller reports it. The poller is the one
//! fixed cost of notification on a server (a task and a storage connection), whatever the number of
//! idle sessions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::env::Env;
use crate::mail::layout::WATCH_PARTITION;
use crate::storage::{RangePoll, StorageError, Store};

/// Seconds a PollRange waits before the store answers "not modified".
const POLL_TIMEOUT_S: u32 = 300;
/// Pause after a failed poll, so a store outage does not become a busy loop.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long the poller outlives its last subscriber: a session that leaves IDLE for a command
/// usually comes back at once, and should not cost a new poll connection each time.
const LINGER: Duration = Duration::from_secs(60);

/// Bumps the watch row `key` (read, then write with its token, so the row keeps one value) so that
/// every server's poller wakes the row's subscribers.
pub async fn bump(store: &Store, env: &Env, key: &str) -> Result<(), StorageError> {
    let stamp: [u8; 8] = env.random();
    let token = store.row_read(WATCH_PARTITION, key).await?.map(|r| r.ct);
    store
        .row_insert(
            WATCH_PARTITION,
            key,
            token.as_ref(),
            Bytes::copy_from_slice(&stamp),
        )
        .await
}

/// What the subscribers of one mailbox share: a change counter and its wake-up, and the watch rows
/// that bump it (INBOX has two: its own and the LMTP deliveries row).
struct Slot {
    changes: AtomicU64,
    notify: Notify,
    keys: Box<[Arc<str>]>,
    registry: Weak<Watchers>,
}

impl Slot {
    fn bump(&self) {
        self.changes.fetch_add(1, Ordering::Release);
        self.notify.notify_waiters();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The last subscriber of the mailbox left: forget its rows.
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut state = registry.lock();
        for key in self.keys.iter() {
            if state.slots.get(key).is_some_and(|w| w.strong_count() == 0) {
                state.slots.remove(key);
            }
        }
    }
}

/// A session's subscription to a mailbox's watch rows.
pub struct Subscription {
    slot: Arc<Slot>,
    seen: u64,
}

impl Subscription {
    /// Waits until a row changes after the last call (or after subscribing).
    pub async fn changed(&mut self) {
        loop {
            let notified = self.slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.slot.changes.load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

#[derive(Default)]
struct State {
    /// Watched rows by sort key; the entry goes with its last subscriber.
    slots: BTreeMap<Arc<str>, Weak<Slot>>,
    /// PollRange's marker of what the poller has seen; kept across poller restarts.
    seen_marker: Option<String>,
    /// Whether the poller task runs.
    polling: bool,
}

/// The watched rows of one server instance and their poller.
#[derive(Default)]
pub struct Watchers {
    state: Mutex<State>,
    /// Tells a lingering poller that rows are watched again.
    resume: Notify,
}

impl Watchers {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Never poisoned in practice: the critical sections cannot panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to a mailbox's watch rows `keys` (the first names the mailbox), starting the poller
    /// if it does not run.
    pub fn subscribe(self: &Arc<Self>, store: &Store, keys: &[String]) -> Subscription {
        let mut state = self.lock();
        let was_empty = state.slots.is_empty();
        let existing = keys
            .first()
            .and_then(|k| state.slots.get(k.as_str()))
            .and_then(Weak::upgrade);
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let keys: Box<[Arc<str>]> = keys.iter().map(|k| Arc::from(k.as_str())).collect();
                let slot = Arc::new(Slot {
                    changes: AtomicU64::new(0),
                    notify: Notify::new(),
                    keys,
                    registry: Arc::downgrade(self),
                });
                for key in slot.keys.iter() {
                    state.slots.insert(Arc::clone(key), Arc::downgrade(&slot));
                }
                slot
            }
        };
        if !state.polling {
            state.polling = true;
            tokio::spawn(poll(Arc::downgrade(self), store.clone()));
        } else if was_empty {
            self.resume.notify_one();
        }
        let seen = slot.changes.load(Ordering::Acquire);
        Subscription { slot, seen }
    }

    /// Watch rows with subscribers right now.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether no row is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes the subscribers of the rows that changed; every subscriber after a poll without a marker,
    /// whose answer cannot tell what changed since they subscribed.
    fn deliver(&self, keys: impl Iterator<Item = String>, seen_marker: String) {
        let mut state = self.lock();
        let woken: Vec<Arc<Slot>> = if state.seen_marker.is_none() {
            state.slots.values().filter_map(Weak::upgrade).collect()
        } else {
            keys.filter_map(|k| state.slots.get(k.as_str()).and_then(Weak::upgrade))
                .collect()
        };
        state.seen_marker = Some(seen_marker);
        drop(state);
        // Slots are dropped outside the lock: a Slot's Drop takes it.
        for slot in woken {
            slot.bump();
        }
    }
}

/// The poller: long-polls the watch partition while any row is watched, and for [`LINGER`] after.
async fn poll(registry: Weak<Watchers>, store: Store) {
    let range = RangePoll {
        pk: WATCH_PARTITION.to_string(),
        ..RangePoll::default()
    };
    loop {
        let Some(watchers) = registry.upgrade() else {
            return;
        };
        let (seen, watched) = {
            let state = watchers.lock();
            (state.seen_marker.clone(), !state.slots.is_empty())
        };
        if !watched {
            tokio::select! {
                biased;
                _ = watchers.resume.notified() => {}
                _ = tokio::time::sleep(LINGER) => {
                    let mut state = watchers.lock();
                    if state.slots.is_empty() {
                        state.polling = false;
                        return;
                    }
                }
            }
            continue;
        }
        match store
            .range_poll(&range, seen.as_deref(), POLL_TIMEOUT_S)
            .await
        {
            Ok(Some(changes)) => watchers.deliver(
                changes.items.into_iter().map(|item| item.sk),
                changes.seen_marker,
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "watch poll failed");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}
