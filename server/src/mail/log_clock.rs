//! Log sort keys of one server instance and the per-log turns that keep its writes in key order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::env::Env;

/// Hands out log sort keys that increase within this server instance: `{ms:016x}{node:08x}`.
pub struct LogClock {
    node: u32,
    last_ms: Mutex<u64>,
    /// Per log partition being written, the lock of [`LogClock::turn`].
    turns: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A writer's turn at one log (see [`LogClock::turn`]); the next writer's turn starts when it drops.
pub struct LogTurn<'a> {
    clock: &'a LogClock,
    pk: String,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for LogTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        drop(self.lock.take());
        // Never poisoned in practice: the critical sections cannot panic.
        let mut turns = self.clock.turns.lock().unwrap_or_else(|e| e.into_inner());
        // The map's own reference is the last one: no writer holds or awaits this log's turn.
        if turns
            .get(&self.pk)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.pk);
        }
    }
}

impl LogClock {
    /// A clock for a server instance with a random node id.
    pub fn new(env: &Env) -> Self {
        LogClock {
            node: u32::from_be_bytes(env.random()),
            last_ms: Mutex::new(0),
            turns: Mutex::new(BTreeMap::new()),
        }
    }

    /// Waits for this instance's turn to write to log partition `pk`. A writer takes its sort
    /// keys after its turn starts and keeps the turn until its rows are stored, so that the rows
    /// this instance writes to one log land in sort-key order. Otherwise a reader could fold a
    /// row while one with a smaller key was still on its way: it would never see that one (its
    /// cursor is past it), and a later fold would give different UIDs to every message after it.
    pub async fn turn(&self, pk: &str) -> LogTurn<'_> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(pk.to_string()).or_default().clone()
        };
        // Built before waiting, so that a writer dropped while waiting still tidies the map.
        let mut turn = LogTurn {
            clock: self,
            pk: pk.to_string(),
            lock: Some(lock.clone()),
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    /// A sort key later than both the wall clock's and `after`'s.
    pub fn next(&self, env: &Env, after: Option<&str>) -> String {
        let now_ms = env
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let after_ms = after
            .and_then(|sk| sk.get(..16))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        // Never poisoned in practice: the critical section cannot panic.
        let mut last = self.last_ms.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last + 1).max(now_ms).max(after_ms + 1);
        format!("{:016x}{:08x}", *last, self.node)
    }
}
