//! The shared storage suite against fakes3 on loopback TCP, through the production environment.

use server::env::Env;
use server::storage::{suite, StorageConfig, Store};

/// Starts fakes3 on two free loopback ports and returns a store pointed at it.
async fn fakes3_store(max_in_flight: usize, max_idle_connections: usize) -> Store {
    let config = fakes3::Config::default();
    let fake = fakes3::FakeS3::new(config.clone()).expect("default fakes3 config is valid");
    let (s3, k2v) = fake
        .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("bind loopback");
    let storage = StorageConfig {
        s3_endpoint: s3.to_string(),
        k2v_endpoint: k2v.to_string(),
        region: config.region,
        bucket: config.bucket,
        key_id: config.key_id,
        secret: config.secret,
        max_in_flight,
        max_idle_connections,
    };
    Store::new(storage, Env::production())
}

#[tokio::test]
async fn shared_suite_passes_against_fakes3() {
    let store = fakes3_store(32, 8).await;
    suite::run_all(&store).await;
    let (s3_idle, k2v_idle) = store.idle_connections();
    assert!(
        s3_idle <= 8 && k2v_idle <= 8,
        "idle pools stay within their bound"
    );
    assert!(
        s3_idle >= 1 && k2v_idle >= 1,
        "connections are kept for reuse"
    );
}

#[tokio::test]
async fn shared_suite_passes_with_one_request_in_flight_and_no_pool() {
    let store = fakes3_store(1, 0).await;
    suite::run_all(&store).await;
    assert_eq!(
        store.idle_connections(),
        (0, 0),
        "no connection is kept without a pool"
    );
}

#[tokio::test]
async fn wrong_bucket_is_an_http_error_not_a_missing_key() {
    let good = fakes3::Config::default();
    let fake = fakes3::FakeS3::new(good.clone()).expect("default fakes3 config is valid");
    let (s3, k2v) = fake
        .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("bind loopback");
    let storage = StorageConfig {
        s3_endpoint: s3.to_string(),
        k2v_endpoint: k2v.to_string(),
        bucket: "no-such-bucket".into(),
        key_id: good.key_id,
        secret: good.secret,
        ..StorageConfig::default()
    };
    let store = Store::new(storage, Env::production());
    match store.blob_get("k", None).await {
        Err(server::storage::StorageError::Http {
            status: 404, code, ..
        }) => assert_eq!(code, "NoSuchBucket"),
        other => panic!("expected 404 NoSuchBucket, got {other:?}"),
    }
    match store.row_read("pk", "sk").await {
        Err(server::storage::StorageError::Http {
            status: 404, code, ..
        }) => assert_eq!(code, "NoSuchBucket"),
        other => panic!("expected 404 NoSuchBucket, got {other:?}"),
    }
}
