//! What every case of the shared storage suite builds on: a fresh key prefix per case, and reads
//! and writes that panic with the operation's error.

use std::ops::Range;

use bytes::Bytes;

use crate::storage::{CausalityToken, Row, RowItem, RowPage, RowQuery, Store};

/// A fresh prefix for one case: `suite-<random>/<case>/`.
pub(super) fn prefix(store: &Store, case: &str) -> String {
    let run: [u8; 8] = store.env().random();
    format!("suite-{}/{case}/", hex::encode(run))
}

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn query(pk: &str) -> RowQuery {
    RowQuery {
        pk: pk.to_string(),
        ..RowQuery::default()
    }
}

pub(super) fn keys(page: &RowPage) -> Vec<&str> {
    page.items.iter().map(|i| i.sk.as_str()).collect()
}

pub(super) fn sorted_values(row: &Row) -> Vec<Option<Bytes>> {
    let mut values = row.values.clone();
    values.sort();
    values
}

pub(super) async fn read(store: &Store, pk: &str, sk: &str) -> Option<Row> {
    store
        .row_read(pk, sk)
        .await
        .unwrap_or_else(|e| panic!("row_read {pk} {sk}: {e}"))
}

pub(super) async fn insert(
    store: &Store,
    pk: &str,
    sk: &str,
    ct: Option<&CausalityToken>,
    value: &str,
) {
    store
        .row_insert(pk, sk, ct, b(value))
        .await
        .unwrap_or_else(|e| panic!("row_insert {pk} {sk}: {e}"));
}

/// Whether a read after a delete shows the item as gone: absent, or only tombstones.
pub(super) fn is_deleted(row: &Option<Row>) -> bool {
    row.as_ref()
        .is_none_or(|r| r.values.iter().all(Option::is_none))
}

pub(super) fn keys_of(items: &[RowItem]) -> Vec<&str> {
    items.iter().map(|i| i.sk.as_str()).collect()
}

/// Asserts that row `pk`/`sk` holds `value` alone (`why` says what that shows).
pub(super) async fn assert_only_value(store: &Store, pk: &str, sk: &str, value: &str, why: &str) {
    let row = read(store, pk, sk)
        .await
        .unwrap_or_else(|| panic!("row {pk} {sk} is present"));
    assert_eq!(row.values, vec![Some(b(value))], "{why}");
}

/// GetObject of `key` (a `range` of it), panicking with `what` when it fails.
pub(super) async fn get(store: &Store, key: &str, range: Option<Range<u64>>, what: &str) -> Bytes {
    store
        .blob_get(key, range)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}
