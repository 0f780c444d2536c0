//! The shared storage test suite: every [`Store`] operation and its edge cases, run unchanged against
//! fakes3 (loopback or simulated) and a real Garage. Each case panics on the first broken expectation
//! and works under its own fresh key prefix, so cases do not interfere with each other or with
//! earlier runs on a persistent store.

use std::time::Duration;

use bytes::Bytes;

use super::{CausalityToken, RangePoll, Row, RowInsert, RowQuery, StorageError, Store};

/// Runs every case, one after the other.
pub async fn run_all(store: &Store) {
    row_round_trip(store).await;
    concurrent_values_resolve_with_token(store).await;
    delete_with_token_leaves_a_tombstone(store).await;
    tombstones_show_only_when_asked(store).await;
    range_queries_and_paging(store).await;
    batch_insert_read_delete(store).await;
    partitions_are_listed_with_counts(store).await;
    poll_sees_a_new_value_then_times_out(store).await;
    range_poll_sees_writes_in_its_range(store).await;
    blob_round_trip(store).await;
    blob_list_pages_with_continuation(store).await;
    missing_keys_are_none_or_no_such_key(store).await;
}

/// A fresh prefix for one case: `suite-<random>/<case>/`.
fn prefix(store: &Store, case: &str) -> String {
    let run: [u8; 8] = store.env().random();
    format!("suite-{}/{case}/", hex::encode(run))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn query(pk: &str) -> RowQuery {
    RowQuery {
        pk: pk.to_string(),
        ..RowQuery::default()
    }
}

fn keys(page: &super::RowPage) -> Vec<&str> {
    page.items.iter().map(|i| i.sk.as_str()).collect()
}

fn sorted_values(row: &Row) -> Vec<Option<Bytes>> {
    let mut values = row.values.clone();
    values.sort();
    values
}

async fn read(store: &Store, pk: &str, sk: &str) -> Option<Row> {
    store
        .row_read(pk, sk)
        .await
        .unwrap_or_else(|e| panic!("row_read {pk} {sk}: {e}"))
}

async fn insert(store: &Store, pk: &str, sk: &str, ct: Option<&CausalityToken>, value: &str) {
    store
        .row_insert(pk, sk, ct, b(value))
        .await
        .unwrap_or_else(|e| panic!("row_insert {pk} {sk}: {e}"));
}

/// Whether a read after a delete shows the item as gone: absent, or only tombstones.
fn is_deleted(row: &Option<Row>) -> bool {
    row.as_ref()
        .is_none_or(|r| r.values.iter().all(Option::is_none))
}

/// Rows: absent, first write, overwrite with the token, binary and empty values, odd keys.
pub async fn row_round_trip(store: &Store) {
    let pk = prefix(store, "row-round-trip");
    assert_eq!(
        read(store, &pk, "a").await,
        None,
        "a row never written is absent"
    );

    insert(store, &pk, "a", None, "v1").await;
    let first = read(store, &pk, "a").await.expect("written row is present");
    assert_eq!(first.values, vec![Some(b("v1"))]);
    assert!(
        !first.ct.0.is_empty(),
        "a present row has a causality token"
    );

    insert(store, &pk, "a", Some(&first.ct), "v2").await;
    let second = read(store, &pk, "a")
        .await
        .expect("overwritten row is present");
    assert_eq!(
        second.values,
        vec![Some(b("v2"))],
        "a write with the token supersedes"
    );
    assert_ne!(second.ct, first.ct, "a new write gives a new token");

    let binary: Vec<u8> = (0..=255u8).collect();
    store
        .row_insert(&pk, "binary", None, Bytes::from(binary.clone()))
        .await
        .expect("insert binary");
    let row = read(store, &pk, "binary")
        .await
        .expect("binary row is present");
    assert_eq!(
        row.values,
        vec![Some(Bytes::from(binary))],
        "every byte value survives"
    );

    store
        .row_insert(&pk, "empty", None, Bytes::new())
        .await
        .expect("insert empty value");
    let row = read(store, &pk, "empty")
        .await
        .expect("empty value row is present");
    assert_eq!(
        row.values,
        vec![Some(Bytes::new())],
        "an empty value is not a tombstone"
    );

    let odd_sk = "sort key/with +&=?%# é";
    insert(store, &pk, odd_sk, None, "odd").await;
    let row = read(store, &pk, odd_sk)
        .await
        .expect("odd sort key row is present");
    assert_eq!(row.values, vec![Some(b("odd"))]);
    let page = store
        .rows_read(&RowQuery {
            prefix: Some("sort".into()),
            ..query(&pk)
        })
        .await
        .expect("rows_read");
    assert_eq!(
        keys(&page),
        vec![odd_sk],
        "odd sort keys come back unchanged"
    );
}

/// Two writes without tokens are concurrent values; a write with the token resolves them.
pub async fn concurrent_values_resolve_with_token(store: &Store) {
    let pk = prefix(store, "concurrent");
    insert(store, &pk, "k", None, "from-a").await;
    insert(store, &pk, "k", None, "from-b").await;
    let row = read(store, &pk, "k").await.expect("row is present");
    assert_eq!(
        sorted_values(&row),
        vec![Some(b("from-a")), Some(b("from-b"))],
        "both writers' values are kept"
    );

    let page = store.rows_read(&query(&pk)).await.expect("rows_read");
    assert_eq!(page.items.len(), 1);
    let mut values = page.items[0].values.clone();
    values.sort();
    assert_eq!(
        values,
        vec![Some(b("from-a")), Some(b("from-b"))],
        "ReadBatch shows both values too"
    );

    insert(store, &pk, "k", Some(&row.ct), "resolved").await;
    let row = read(store, &pk, "k").await.expect("row is present");
    assert_eq!(
        row.values,
        vec![Some(b("resolved"))],
        "the token supersedes every value it saw"
    );
}

/// DeleteItem with the token deletes; a later write with the tombstone's token is not concurrent.
pub async fn delete_with_token_leaves_a_tombstone(store: &Store) {
    let pk = prefix(store, "delete");
    insert(store, &pk, "k", None, "doomed").await;
    let row = read(store, &pk, "k").await.expect("row is present");
    store
        .row_delete(&pk, "k", &row.ct)
        .await
        .expect("row_delete");
    let after = read(store, &pk, "k").await;
    assert!(
        is_deleted(&after),
        "deleted row reads as absent or tombstone, got {after:?}"
    );
    let page = store.rows_read(&query(&pk)).await.expect("rows_read");
    assert!(
        page.items.is_empty(),
        "a deleted row is not listed without tombstones"
    );

    let ct = after.map(|r| r.ct);
    insert(store, &pk, "k", ct.as_ref(), "reborn").await;
    let row = read(store, &pk, "k").await.expect("row is present again");
    assert_eq!(
        row.values,
        vec![Some(b("reborn"))],
        "writing after the tombstone is not concurrent with it"
    );
}

/// Tombstones are listed only with `tombstones: true`, as items whose values are all `None`.
pub async fn tombstones_show_only_when_asked(store: &Store) {
    let pk = prefix(store, "tombstones");
    insert(store, &pk, "a", None, "kept").await;
    insert(store, &pk, "b", None, "deleted").await;
    let row = read(store, &pk, "b").await.expect("row is present");
    store
        .rows_insert_batch(&[RowInsert {
            pk: pk.clone(),
            sk: "b".into(),
            ct: Some(row.ct),
            value: None,
        }])
        .await
        .expect("delete through InsertBatch");

    let live = store.rows_read(&query(&pk)).await.expect("rows_read");
    assert_eq!(keys(&live), vec!["a"]);
    let all = store
        .rows_read(&RowQuery {
            tombstones: true,
            ..query(&pk)
        })
        .await
        .expect("rows_read tombstones");
    assert_eq!(keys(&all), vec!["a", "b"]);
    assert_eq!(
        all.items[1].values,
        vec![None],
        "a tombstone has only null values"
    );
}

/// ReadBatch ranges: prefix, start, end, limit, reverse, single item, and paging by `next_start`.
pub async fn range_queries_and_paging(store: &Store) {
    let pk = prefix(store, "ranges");
    let sks = ["a1", "a2", "a3", "a4", "a5", "b1", "b2"];
    let items: Vec<RowInsert> = sks
        .iter()
        .map(|sk| RowInsert {
            pk: pk.clone(),
            sk: sk.to_string(),
            ct: None,
            value: Some(b(sk)),
        })
        .collect();
    store
        .rows_insert_batch(&items)
        .await
        .expect("rows_insert_batch");

    let read = |q: RowQuery| async move { store.rows_read(&q).await.expect("rows_read") };
    let all = read(query(&pk)).await;
    assert_eq!(keys(&all), sks.to_vec(), "items come in sort-key order");
    assert_eq!(all.next_start, None, "an unlimited read has no next page");
    assert_eq!(all.items[2].values, vec![Some(b("a3"))]);

    let prefixed = read(RowQuery {
        prefix: Some("a".into()),
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&prefixed), vec!["a1", "a2", "a3", "a4", "a5"]);
    let from = read(RowQuery {
        start: Some("a4".into()),
        ..query(&pk)
    })
    .await;
    assert_eq!(
        keys(&from),
        vec!["a4", "a5", "b1", "b2"],
        "start is included"
    );
    let until = read(RowQuery {
        end: Some("a3".into()),
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&until), vec!["a1", "a2"], "end is excluded");
    let window = read(RowQuery {
        start: Some("a2".into()),
        end: Some("b1".into()),
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&window), vec!["a2", "a3", "a4", "a5"]);

    let limited = read(RowQuery {
        limit: Some(2),
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&limited), vec!["a1", "a2"]);
    assert_eq!(
        limited.next_start.as_deref(),
        Some("a3"),
        "next_start is the first key not listed"
    );

    let reversed = read(RowQuery {
        reverse: true,
        ..query(&pk)
    })
    .await;
    assert_eq!(
        keys(&reversed),
        vec!["b2", "b1", "a5", "a4", "a3", "a2", "a1"]
    );
    let reversed_limited = read(RowQuery {
        reverse: true,
        limit: Some(2),
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&reversed_limited), vec!["b2", "b1"]);
    assert_eq!(reversed_limited.next_start.as_deref(), Some("a5"));
    let reversed_from = read(RowQuery {
        reverse: true,
        start: Some("a3".into()),
        ..query(&pk)
    })
    .await;
    assert_eq!(
        keys(&reversed_from),
        vec!["a3", "a2", "a1"],
        "in reverse, start is the highest key"
    );

    let single = read(RowQuery {
        start: Some("a4".into()),
        single_item: true,
        ..query(&pk)
    })
    .await;
    assert_eq!(keys(&single), vec!["a4"]);
    let missing = read(RowQuery {
        start: Some("a0".into()),
        single_item: true,
        ..query(&pk)
    })
    .await;
    assert!(
        missing.items.is_empty(),
        "single_item on an absent key finds nothing"
    );

    let mut paged = Vec::new();
    let mut start = None;
    for _ in 0..sks.len() {
        let page = read(RowQuery {
            start: start.clone(),
            limit: Some(3),
            ..query(&pk)
        })
        .await;
        paged.extend(page.items.iter().map(|i| i.sk.clone()));
        start = page.next_start;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(
        paged,
        sks.to_vec(),
        "paging by next_start lists every item once"
    );
    assert_eq!(start, None, "paging ends");
}

/// InsertBatch over two partitions, ReadBatch of several searches, DeleteBatch counts.
pub async fn batch_insert_read_delete(store: &Store) {
    let base = prefix(store, "batch");
    let (p1, p2) = (format!("{base}one"), format!("{base}two"));
    let write = |pk: &str, sk: &str| RowInsert {
        pk: pk.to_string(),
        sk: sk.to_string(),
        ct: None,
        value: Some(b(sk)),
    };
    store
        .rows_insert_batch(&[
            write(&p1, "x"),
            write(&p1, "y"),
            write(&p2, "x"),
            write(&p2, "z"),
        ])
        .await
        .expect("rows_insert_batch");

    let searches = [
        query(&p1),
        RowQuery {
            start: Some("z".into()),
            single_item: true,
            ..query(&p2)
        },
        query(&base),
    ];
    let pages = store
        .rows_read_batch(&searches)
        .await
        .expect("rows_read_batch");
    assert_eq!(pages.len(), 3, "one page per search");
    assert_eq!(keys(&pages[0]), vec!["x", "y"]);
    assert_eq!(keys(&pages[1]), vec!["z"]);
    assert_eq!(pages[1].items[0].values, vec![Some(b("z"))]);
    assert!(
        pages[2].items.is_empty(),
        "a partition with no items is an empty page"
    );

    let deletes = [
        query(&p1),
        RowQuery {
            start: Some("x".into()),
            single_item: true,
            ..query(&p2)
        },
    ];
    let counts = store
        .rows_delete_batch(&deletes)
        .await
        .expect("rows_delete_batch");
    assert_eq!(
        counts,
        vec![2, 1],
        "DeleteBatch counts the items each search deleted"
    );
    let pages = store
        .rows_read_batch(&[query(&p1), query(&p2)])
        .await
        .expect("rows_read_batch");
    assert!(pages[0].items.is_empty());
    assert_eq!(
        keys(&pages[1]),
        vec!["z"],
        "DeleteBatch leaves what it did not match"
    );
    assert!(store
        .rows_read_batch(&[])
        .await
        .expect("empty ReadBatch")
        .is_empty());
}

/// ReadIndex lists partitions under a prefix with their item counts, with limit and start.
/// Garage updates its index asynchronously, so the first check waits for it (up to 10 s).
pub async fn partitions_are_listed_with_counts(store: &Store) {
    let base = prefix(store, "partitions");
    let pks = [
        format!("{base}p1"),
        format!("{base}p2"),
        format!("{base}p3"),
    ];
    let mut items = vec![RowInsert {
        pk: pks[0].clone(),
        sk: "extra".into(),
        ct: None,
        value: Some(b("e")),
    }];
    items.extend(pks.iter().map(|pk| RowInsert {
        pk: pk.clone(),
        sk: "k".into(),
        ct: None,
        value: Some(b("v")),
    }));
    store
        .rows_insert_batch(&items)
        .await
        .expect("rows_insert_batch");

    let expected = vec![
        (pks[0].clone(), 2),
        (pks[1].clone(), 1),
        (pks[2].clone(), 1),
    ];
    let mut all = store
        .partitions(&base, None, None)
        .await
        .expect("partitions");
    for _ in 0..100 {
        if all.partitions == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        all = store
            .partitions(&base, None, None)
            .await
            .expect("partitions");
    }
    assert_eq!(
        all.partitions, expected,
        "every partition under the prefix, with its item count"
    );
    assert_eq!(all.next_start, None);

    let first = store
        .partitions(&base, None, Some(2))
        .await
        .expect("partitions with limit");
    assert_eq!(first.partitions, expected[..2].to_vec());
    assert_eq!(first.next_start.as_deref(), Some(pks[2].as_str()));
    let rest = store
        .partitions(&base, first.next_start.as_deref(), None)
        .await
        .expect("partitions from start");
    assert_eq!(rest.partitions, expected[2..].to_vec());
    assert_eq!(rest.next_start, None);
}

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

fn keys_of(items: &[super::RowItem]) -> Vec<&str> {
    items.iter().map(|i| i.sk.as_str()).collect()
}

/// Blobs: put, get whole and by range, head, copy, delete; odd keys and a multi-megabyte body.
pub async fn blob_round_trip(store: &Store) {
    let base = prefix(store, "blobs");
    let key = format!("{base}chunk 1+é");
    store
        .blob_put(&key, b("hello world"))
        .await
        .expect("blob_put");
    assert_eq!(
        store.blob_get(&key, None).await.expect("blob_get"),
        b("hello world")
    );
    assert_eq!(
        store.blob_get(&key, Some(6..11)).await.expect("range"),
        b("world")
    );
    assert_eq!(
        store.blob_get(&key, Some(0..1)).await.expect("first byte"),
        b("h")
    );
    assert_eq!(
        store
            .blob_get(&key, Some(6..100))
            .await
            .expect("range past the end"),
        b("world"),
        "clipped"
    );
    assert_eq!(
        store.blob_get(&key, Some(3..3)).await.expect("empty range"),
        Bytes::new()
    );
    match store.blob_get(&key, Some(50..60)).await {
        Err(StorageError::Http { status: 416, .. }) => {}
        other => panic!("a range starting past the end is 416, got {other:?}"),
    }
    assert_eq!(store.blob_head(&key).await.expect("blob_head"), Some(11));

    store
        .blob_put(&key, b("replaced"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.blob_get(&key, None).await.expect("blob_get"),
        b("replaced"),
        "a put overwrites"
    );

    let copy = format!("{base}copy/of it");
    store.blob_copy(&key, &copy).await.expect("blob_copy");
    assert_eq!(
        store.blob_get(&copy, None).await.expect("get copy"),
        b("replaced")
    );

    store.blob_delete(&key).await.expect("blob_delete");
    assert_eq!(store.blob_head(&key).await.expect("head deleted"), None);
    assert_eq!(
        store.blob_get(&copy, None).await.expect("copy survives"),
        b("replaced")
    );
    store
        .blob_delete(&key)
        .await
        .expect("deleting a missing blob succeeds");

    let empty = format!("{base}empty");
    store
        .blob_put(&empty, Bytes::new())
        .await
        .expect("put empty");
    assert_eq!(store.blob_head(&empty).await.expect("head empty"), Some(0));
    assert_eq!(
        store.blob_get(&empty, None).await.expect("get empty"),
        Bytes::new()
    );

    let big: Bytes = (0..(3 << 20) + 7)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    let big_key = format!("{base}big");
    store
        .blob_put(&big_key, big.clone())
        .await
        .expect("put 3 MiB");
    assert_eq!(
        store.blob_get(&big_key, None).await.expect("get 3 MiB"),
        big
    );
    let tail = store
        .blob_get(&big_key, Some(big.len() as u64 - 10..big.len() as u64))
        .await
        .expect("tail");
    assert_eq!(tail, big.slice(big.len() - 10..));
}

/// ListObjectsV2 under a prefix, paged by continuation tokens, in key order with sizes.
pub async fn blob_list_pages_with_continuation(store: &Store) {
    let base = prefix(store, "list");
    let names = ["a", "b b", "c/d", "e+f", "z"];
    for (i, name) in names.iter().enumerate() {
        store
            .blob_put(&format!("{base}{name}"), Bytes::from(vec![b'x'; i]))
            .await
            .expect("blob_put");
    }
    store
        .blob_put(&base, b("outside"))
        .await
        .expect("the prefix itself as a key");
    let expected: Vec<(String, u64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("{base}{n}"), i as u64))
        .collect();

    let one = store.blob_list(&base, None, 1000).await.expect("blob_list");
    let mut listed: Vec<(String, u64)> = one.keys.into_iter().filter(|(k, _)| k != &base).collect();
    assert_eq!(
        listed, expected,
        "one page lists every key with its size, in order"
    );
    assert_eq!(one.next_continuation, None);

    listed.clear();
    let mut continuation: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .blob_list(&base, continuation.as_deref(), 2)
            .await
            .expect("blob_list page");
        assert!(page.keys.len() <= 2, "max_keys bounds a page");
        listed.extend(page.keys);
        pages += 1;
        continuation = page.next_continuation;
        if continuation.is_none() || pages > 10 {
            break;
        }
    }
    listed.retain(|(k, _)| k != &base);
    assert_eq!(
        listed, expected,
        "paging by continuation lists every key once"
    );
    assert!(
        pages >= 3,
        "six keys at two per page take at least three pages, took {pages}"
    );

    let none = store
        .blob_list(&format!("{base}nothing-here/"), None, 10)
        .await
        .expect("empty listing");
    assert!(none.keys.is_empty() && none.next_continuation.is_none());
}

/// Missing things: GetObject and CopyObject fail with NoSuchKey, HeadObject and ReadItem give None.
pub async fn missing_keys_are_none_or_no_such_key(store: &Store) {
    let base = prefix(store, "missing");
    let key = format!("{base}never");
    assert!(
        matches!(
            store.blob_get(&key, None).await,
            Err(StorageError::NoSuchKey)
        ),
        "GetObject of a missing key"
    );
    assert!(
        matches!(
            store.blob_get(&key, Some(0..4)).await,
            Err(StorageError::NoSuchKey)
        ),
        "ranged GetObject"
    );
    assert_eq!(
        store
            .blob_head(&key)
            .await
            .expect("HeadObject of a missing key"),
        None
    );
    assert!(
        matches!(
            store.blob_copy(&key, &format!("{base}dest")).await,
            Err(StorageError::NoSuchKey)
        ),
        "CopyObject from a missing key"
    );
    assert_eq!(read(store, &base, "never").await, None);
    let page = store
        .rows_read(&query(&base))
        .await
        .expect("rows_read of an empty partition");
    assert!(page.items.is_empty() && page.next_start.is_none());
}
