//! The long polls: PollItem (one item newer than a causality token) and PollRange (items of a range
//! written after a seen marker), woken by writes and bounded by tokio time.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::codec::{from_json, item_response, to_json, Format, ReadBatchItem};
use super::range::{read_range, RangeParams};
use crate::causality::CausalContext;
use crate::http::{empty, with_body, ApiError, Resp};
use crate::store::{Shared, State};

/// PollItem timeout when none is given, in seconds.
pub const POLL_TIMEOUT_DEFAULT_S: u64 = 300;
/// Largest PollItem timeout, in seconds.
pub const POLL_TIMEOUT_MAX_S: u64 = 600;

/// What a poller waits on: one item (PollItem) or a whole partition (PollRange).
#[derive(Debug, Clone, Copy)]
enum Watched<'a> {
    Item { pk: &'a str, sk: &'a str },
    Partition { pk: &'a str },
}

impl Watched<'_> {
    /// The wake-up that writes to what is watched trigger, registered in the state.
    fn register(self, state: &mut State) -> Arc<Notify> {
        match self {
            Watched::Item { pk, sk } => state.watcher(pk, sk),
            Watched::Partition { pk } => state.partition_watcher(pk),
        }
    }

    fn release(self, state: &mut State, held: &Arc<Notify>) {
        match self {
            Watched::Item { pk, sk } => state.release_watcher(pk, sk, held),
            Watched::Partition { pk } => state.release_partition_watcher(pk, held),
        }
    }
}

/// Removes this poller's wake-up from the state when it stops waiting (answer, timeout or dropped
/// connection).
struct WatchGuard<'a> {
    shared: &'a Shared,
    watched: Watched<'a>,
    notify: Arc<Notify>,
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.watched.release(&mut self.shared.lock(), &self.notify);
    }
}

/// Answers with what `ready` finds as soon as it finds something, or 304 after `timeout_s` seconds
/// of tokio time. Writes to what is `watched` wake the poller; nothing spins.
async fn wait_until_ready(
    shared: &Shared,
    watched: Watched<'_>,
    timeout_s: u64,
    ready: impl Fn(&State) -> Result<Option<Resp>, ApiError>,
) -> Result<Resp, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    loop {
        let notify = {
            let mut state = shared.lock();
            if let Some(resp) = ready(&state)? {
                return Ok(resp);
            }
            watched.register(&mut state)
        };
        let guard = WatchGuard {
            shared,
            watched,
            notify,
        };
        let notified = guard.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // A write between the check above and `enable` would otherwise be missed.
        let now_ready = ready(&shared.lock())?;
        if let Some(resp) = now_ready {
            return Ok(resp);
        }
        tokio::select! {
            biased;
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(empty(StatusCode::NOT_MODIFIED)),
        }
    }
}

/// The item's answer if it is newer than `context`.
fn poll_ready(
    state: &State,
    pk: &str,
    sk: &str,
    context: &CausalContext,
    format: Format,
) -> Option<Result<Resp, ApiError>> {
    let item = state.item(pk, sk)?;
    item.context()
        .is_newer_than(context)
        .then(|| item_response(item, format))
}

/// PollItem: answers as ReadItem as soon as the item is newer than `context`, or 304 after
/// `timeout_s` seconds of tokio time.
pub async fn poll_item(
    shared: &Shared,
    pk: &str,
    sk: &str,
    format: Format,
    context: &CausalContext,
    timeout_s: u64,
) -> Result<Resp, ApiError> {
    let watched = Watched::Item { pk, sk };
    wait_until_ready(shared, watched, timeout_s, |state| {
        poll_ready(state, pk, sk, context, format).transpose()
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollRangeQuery {
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    timeout: Option<u64>,
    seen_marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PollRangeResponse {
    items: Vec<ReadBatchItem>,
    seen_marker: String,
}

/// A seen marker is the store-wide write number it was issued at; opaque to clients, as Garage's is.
fn parse_seen_marker(marker: &str) -> Result<u64, ApiError> {
    marker
        .strip_prefix("w")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::InvalidRequest("Invalid seenMarker".to_string()))
}

/// The PollRange answer if the range has items written after `seen` (every item when there is no
/// marker), with the marker to poll with next.
fn poll_range_ready(
    state: &State,
    pk: &str,
    params: &RangeParams,
    seen: Option<u64>,
) -> Result<Option<Resp>, ApiError> {
    let items = match state.partitions.get(pk) {
        None => Vec::new(),
        Some(partition) => read_range(&partition.items, params, |_| true)?
            .0
            .into_iter()
            .filter(|(sk, _)| {
                seen.is_none_or(|seen| partition.written_at.get(*sk).is_some_and(|n| *n > seen))
            })
            .map(|(sk, item)| ReadBatchItem::new(sk, item))
            .collect(),
    };
    if seen.is_some() && items.is_empty() {
        return Ok(None);
    }
    let body = PollRangeResponse {
        items,
        seen_marker: format!("w{}", state.k2v_writes),
    };
    Ok(Some(with_body("application/json", to_json(&body)?)))
}

/// PollRange: answers at once without a seen marker (every item of the range); with one, as soon as an
/// item of the range is written after it, or 304 after the timeout (seconds of tokio time, 1 to 600).
pub async fn poll_range(shared: &Shared, pk: &str, body: &[u8]) -> Result<Resp, ApiError> {
    let query: PollRangeQuery = from_json(body)?;
    let seen = query
        .seen_marker
        .as_deref()
        .map(parse_seen_marker)
        .transpose()?;
    let params = RangeParams {
        prefix: query.prefix,
        start: query.start,
        end: query.end,
        limit: None,
        reverse: false,
    };
    let timeout_s = query
        .timeout
        .unwrap_or(POLL_TIMEOUT_DEFAULT_S)
        .clamp(1, POLL_TIMEOUT_MAX_S);
    let watched = Watched::Partition { pk };
    wait_until_ready(shared, watched, timeout_s, |state| {
        poll_range_ready(state, pk, &params, seen)
    })
    .await
}
