//! Single rows: round trips, concurrent values and their resolution, deletes and tombstones.

use bytes::Bytes;

use super::fixtures::{
    assert_only_value, b, insert, is_deleted, keys, prefix, query, read, sorted_values,
};
use crate::storage::{RowInsert, RowQuery, Store};

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
    assert_only_value(
        store,
        &pk,
        "k",
        "resolved",
        "the token supersedes every value it saw",
    )
    .await;
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
    assert_only_value(
        store,
        &pk,
        "k",
        "reborn",
        "writing after the tombstone is not concurrent with it",
    )
    .await;
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
