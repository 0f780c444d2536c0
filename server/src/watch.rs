//! New-mail notification: one watcher task per mailbox, shared by every session idling on it
//! (DESIGN.md memory principle 3). The task long-polls the mailbox's K2V watch row (PollItem) and
//! bumps a counter that sessions wait on; it stops when the last session lets go.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::storage::{CausalityToken, Store};

/// Seconds a PollItem waits before the store answers "not modified".
const POLL_TIMEOUT_S: u32 = 300;
/// Pause after a failed poll, so a store outage does not become a busy loop.
const RETRY_DELAY: Duration = Duration::from_secs(1);

struct Shared {
    tx: watch::Sender<u64>,
    stop: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// A session's subscription to a mailbox's changes.
pub struct Subscription {
    rx: watch::Receiver<u64>,
    _shared: Arc<Shared>,
}

impl Subscription {
    /// Waits until the mailbox changes (or its watcher stopped).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The watcher is gone; never wake again rather than spin.
            std::future::pending::<()>().await;
        }
    }
}

/// The registry of watcher tasks, keyed by watch row.
#[derive(Default)]
pub struct Watchers {
    map: Mutex<BTreeMap<(String, String), Weak<Shared>>>,
}

impl Watchers {
    /// Subscribes to the row (pk, sk), starting its watcher task if none runs.
    pub fn subscribe(self: &Arc<Self>, store: &Store, pk: String, sk: String) -> Subscription {
        // Never poisoned in practice: the critical sections below cannot panic.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = map.get(&(pk.clone(), sk.clone())).and_then(Weak::upgrade) {
            return Subscription {
                rx: shared.tx.subscribe(),
                _shared: shared,
            };
        }
        let (tx, rx) = watch::channel(0u64);
        let stop = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            tx,
            stop: stop.clone(),
        });
        map.insert((pk.clone(), sk.clone()), Arc::downgrade(&shared));
        drop(map);
        let weak = Arc::downgrade(&shared);
        let registry = Arc::downgrade(self);
        let store = store.clone();
        tokio::spawn(async move {
            run(store, &pk, &sk, weak, stop).await;
            if let Some(registry) = registry.upgrade() {
                let mut map = registry.map.lock().unwrap_or_else(|e| e.into_inner());
                let key = (pk, sk);
                if map.get(&key).is_some_and(|w| w.upgrade().is_none()) {
                    map.remove(&key);
                }
            }
        });
        Subscription {
            rx,
            _shared: shared,
        }
    }

    /// Mailboxes watched right now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no mailbox is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn run(store: Store, pk: &str, sk: &str, shared: Weak<Shared>, stop: Arc<Notify>) {
    let mut token: Option<CausalityToken> = None;
    // The task holds only a weak reference while it waits, so the last session leaving drops the
    // shared state, whose Drop wakes `stop`.
    while shared.strong_count() > 0 {
        let poll = async {
            match &token {
                None => store
                    .row_read(pk, sk)
                    .await
                    .map(|row| row.map(|r| (r.ct, false))),
                Some(ct) => store
                    .row_poll(pk, sk, ct, POLL_TIMEOUT_S)
                    .await
                    .map(|row| row.map(|r| (r.ct, true))),
            }
        };
        let outcome = tokio::select! {
            biased;
            _ = stop.notified() => return,
            r = poll => r,
        };
        match outcome {
            Ok(Some((ct, changed))) => {
                // The first read also wakes the subscribers: a change that landed between their
                // last look at the mailbox and this read is inside the token, and would wake nobody.
                let first = token.is_none();
                token = Some(ct);
                if changed || first {
                    let Some(strong) = shared.upgrade() else {
                        return;
                    };
                    strong.tx.send_modify(|n| *n += 1);
                }
            }
            Ok(None) if token.is_none() => {
                // No row yet: create it, so that there is a token to poll with.
                if let Err(e) = store
                    .row_insert(pk, sk, None, Bytes::from_static(b"\0"))
                    .await
                {
                    tracing::debug!(error = %e, "watch row creation failed");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "watch poll failed");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}
