//! Many rows at once: ReadBatch ranges and paging, InsertBatch and DeleteBatch, ReadIndex.

use std::time::Duration;

use super::fixtures::{b, keys, prefix, query};
use crate::storage::{RowInsert, RowQuery, Store};

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
