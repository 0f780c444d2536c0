//! Waiting for changes: PollItem and PollRange.

use std::time::Duration;

use super::fixtures::{b, insert, keys_of, prefix, read};
use crate::storage::{RangePoll, Store};

/// PollItem returns the value written after the token, and `None` when nothing comes in time.
pub async fn poll_sees_a_new_value_then_times_out(store: &Store) {
    let pk = prefix(store, "poll");
    insert(store, &pk, "watch", None, "before").await;
    let seen = read(store, &pk, "watch").await.expect("row is present");

    let poller = {
        let (store, pk, ct) = (store.clone(), pk.clone(), seen.ct.clone());
        tokio::spawn(async move { store.row_poll(&pk, "watch", &ct, 20).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    insert(store, &pk, "watch", Some(&seen.ct), "after").await;
    let polled = poller
        .await
        .expect("poll task does not panic")
        .expect("row_poll")
        .expect("a new value arrives before the timeout");
    assert_eq!(polled.values, vec![Some(b("after"))]);
    assert_ne!(polled.ct, seen.ct);

    let quiet = store
        .row_poll(&pk, "watch", &polled.ct, 1)
        .await
        .expect("row_poll");
    assert_eq!(quiet, None, "nothing new within the timeout is None (304)");
}

/// PollRange: without a marker the whole range at once; with one, only writes in the range made after
/// it, including deletions; `None` when nothing comes in time.
pub async fn range_poll_sees_writes_in_its_range(store: &Store) {
    let pk = prefix(store, "range-poll");
    insert(store, &pk, "a:1", None, "one").await;
    insert(store, &pk, "b:1", None, "other").await;
    let range = RangePoll {
        pk: pk.clone(),
        prefix: Some("a:".into()),
        ..RangePoll::default()
    };
    let all = store
        .range_poll(&range, None, 10)
        .await
        .expect("range_poll")
        .expect("without a marker the range comes at once");
    assert_eq!(keys_of(&all.items), ["a:1"]);
    assert_eq!(all.items[0].values, vec![Some(b("one"))]);

    let poller = {
        let (store, range, seen) = (store.clone(), range.clone(), all.seen_marker.clone());
        tokio::spawn(async move { store.range_poll(&range, Some(&seen), 20).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    insert(store, &pk, "b:2", None, "outside the range").await;
    insert(store, &pk, "a:2", None, "two").await;
    let changes = poller
        .await
        .expect("poll task does not panic")
        .expect("range_poll")
        .expect("a write in the range arrives before the timeout");
    assert_eq!(keys_of(&changes.items), ["a:2"]);

    let row = read(store, &pk, "a:1").await.expect("a:1 is present");
    store
        .row_delete(&pk, "a:1", &row.ct)
        .await
        .expect("row_delete");
    let deleted = store
        .range_poll(&range, Some(&changes.seen_marker), 20)
        .await
        .expect("range_poll")
        .expect("the deletion is a change");
    assert_eq!(keys_of(&deleted.items), ["a:1"]);
    assert!(deleted.items[0].values.iter().all(Option::is_none));

    let quiet = store
        .range_poll(&range, Some(&deleted.seen_marker), 1)
        .await
        .expect("range_poll");
    assert_eq!(quiet, None, "nothing new within the timeout is None (304)");
}
