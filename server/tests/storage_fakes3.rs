//! The shared storage suite against fakes3 on loopback TCP, through the production environment.

use server::env::Env;
use server::storage::{suite, StorageConfig, StorageError, Store};

/// Starts fakes3 on two free loopback ports and returns a store configuration pointed at it,
/// with fakes3's credentials and the client's default bounds.
async fn fakes3_config() -> StorageConfig {
    let config = fakes3::Config::default();
    let fake = fakes3::FakeS3::new(config.clone()).expect("default fakes3 config is valid");
    let (s3, k2v) = fake
        .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("bind loopback");
    StorageConfig {
        s3_endpoint: s3.to_string(),
        k2v_endpoint: k2v.to_string(),
        region: config.region,
        bucket: config.bucket,
        key_id: config.key_id,
        secret: config.secret,
        ..StorageConfig::default()
    }
}

/// A store on a fresh fakes3 with the given bounds.
async fn fakes3_store(max_in_flight: usize, max_idle_connections: usize) -> Store {
    let storage = StorageConfig {
        max_in_flight,
        max_idle_connections,
        ..fakes3_config().await
    };
    Store::new(storage, Env::production())
}

/// Asserts that `result` is the store's 404 NoSuchBucket answer.
fn assert_no_such_bucket<T: std::fmt::Debug>(result: Result<T, StorageError>) {
    match result {
        Err(StorageError::Http {
            status: 404, code, ..
        }) => assert_eq!(code, "NoSuchBucket"),
        other => panic!("expected 404 NoSuchBucket, got {other:?}"),
    }
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
    let storage = StorageConfig {
        bucket: "no-such-bucket".into(),
        ..fakes3_config().await
    };
    let store = Store::new(storage, Env::production());
    assert_no_such_bucket(store.blob_get("k", None).await);
    assert_no_such_bucket(store.row_read("pk", "sk").await);
}
