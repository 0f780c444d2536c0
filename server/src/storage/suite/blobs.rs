//! Blobs: PutObject, GetObject, HeadObject, CopyObject, DeleteObject, ListObjectsV2, and missing keys.

use bytes::Bytes;

use super::fixtures::{b, get, prefix, query, read};
use crate::storage::{StorageError, Store};

/// Blobs: put, get whole and by range, head, copy, delete; odd keys and a multi-megabyte body.
pub async fn blob_round_trip(store: &Store) {
    let base = prefix(store, "blobs");
    let key = format!("{base}chunk 1+é");
    store
        .blob_put(&key, b("hello world"))
        .await
        .expect("blob_put");
    assert_eq!(get(store, &key, None, "blob_get").await, b("hello world"));
    assert_eq!(get(store, &key, Some(6..11), "range").await, b("world"));
    assert_eq!(get(store, &key, Some(0..1), "first byte").await, b("h"));
    assert_eq!(
        get(store, &key, Some(6..100), "range past the end").await,
        b("world"),
        "clipped"
    );
    assert_eq!(
        get(store, &key, Some(3..3), "empty range").await,
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
        get(store, &key, None, "blob_get").await,
        b("replaced"),
        "a put overwrites"
    );

    let copy = format!("{base}copy/of it");
    store.blob_copy(&key, &copy).await.expect("blob_copy");
    assert_eq!(get(store, &copy, None, "get copy").await, b("replaced"));

    store.blob_delete(&key).await.expect("blob_delete");
    assert_eq!(store.blob_head(&key).await.expect("head deleted"), None);
    assert_eq!(
        get(store, &copy, None, "copy survives").await,
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
    assert_eq!(get(store, &empty, None, "get empty").await, Bytes::new());

    let big: Bytes = (0..(3 << 20) + 7)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    let big_key = format!("{base}big");
    store
        .blob_put(&big_key, big.clone())
        .await
        .expect("put 3 MiB");
    assert_eq!(get(store, &big_key, None, "get 3 MiB").await, big);
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
