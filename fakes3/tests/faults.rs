//! Seeded fault injection: errors before applying, responses lost after applying, latency, op filters.

mod common;

use std::time::Duration;

use common::Client;
use fakes3::{Api, Config, ConfigError, FakeS3, Faults, Op};
use hyper::StatusCode;

/// A store of `seed` whose faults are the defaults (none) after `change`.
fn faulty(seed: u64, change: impl FnOnce(&mut Faults)) -> FakeS3 {
    let mut faults = Faults::default();
    change(&mut faults);
    FakeS3::new(Config {
        seed,
        faults,
        ..Config::default()
    })
    .expect("valid config")
}

/// An S3 and a K2V connection to `fake`.
async fn clients(fake: &FakeS3) -> (Client, Client) {
    let s3 = Client::connect(fake, Api::S3).await;
    (s3, Client::connect(fake, Api::K2v).await)
}

fn is_injected_error(status: StatusCode) -> bool {
    status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE
}

#[tokio::test]
async fn error_probability_one_applies_nothing() {
    let fake = faulty(1, |f| f.error_probability = 1.0);
    let (mut s3, mut k2v) = clients(&fake).await;
    let r = s3.call("PUT", "/imapsim/k", &[], "v").await;
    assert!(is_injected_error(r.status), "{:?}", r.status);
    assert!(r.xml("Code").is_some());
    let r = k2v.call("PUT", "/imapsim/p?sort_key=s", &[], "v").await;
    assert!(is_injected_error(r.status));
    let code = r.json()["code"].as_str().map(str::to_string);
    assert!(matches!(
        code.as_deref(),
        Some("InternalError" | "ServiceUnavailable")
    ));
    let r = k2v
        .post("/imapsim", r#"[{"pk":"p","sk":"t","ct":null,"v":"AA=="}]"#)
        .await;
    assert!(is_injected_error(r.status));
    assert!(fake.objects().is_empty());
    assert!(fake.rows().is_empty());
    let stats = fake.stats();
    assert_eq!(stats.injected_errors, 3);
    assert_eq!(stats.requests[&Op::PutObject], 1);
    assert_eq!(stats.requests[&Op::InsertBatch], 1);
}

#[tokio::test]
async fn lost_response_probability_one_applies_the_write_then_answers_500() {
    let fake = faulty(1, |f| f.lost_response_probability = 1.0);
    let (mut s3, mut k2v) = clients(&fake).await;
    let r = s3.call("PUT", "/imapsim/k", &[], "v").await;
    r.assert_s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    let r = k2v.call("PUT", "/imapsim/p?sort_key=s", &[], "v").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fake.objects().len(), 1);
    assert_eq!(fake.rows().len(), 1);
    assert_eq!(fake.stats().injected_lost_responses, 2);
}

/// Sixty PUTs under 30 % errors and 30 % lost responses: (statuses, objects stored, injected errors).
async fn run(seed: u64) -> (Vec<u16>, u64, u64) {
    let fake = faulty(seed, |f| {
        f.error_probability = 0.3;
        f.lost_response_probability = 0.3;
    });
    let mut c = Client::connect(&fake, Api::S3).await;
    let mut out = Vec::new();
    for i in 0..60 {
        out.push(
            c.call("PUT", &format!("/imapsim/k{i:02}"), &[], "v")
                .await
                .status
                .as_u16(),
        );
    }
    (
        out,
        fake.objects().len() as u64,
        fake.stats().injected_errors,
    )
}

#[tokio::test]
async fn same_seed_gives_the_same_fault_sequence() {
    let a = run(11).await;
    assert_eq!(a, run(11).await);
    assert_ne!(a.0, run(12).await.0);
    assert!(a.0.contains(&200) && a.0.contains(&500) && a.0.contains(&503));
    // Injected errors are not applied; lost responses and successes are.
    assert_eq!(a.1 + a.2, 60);
    let ok = a.0.iter().filter(|s| **s == 200).count() as u64;
    assert!(a.1 > ok, "some 500s were lost responses of applied writes");
}

#[tokio::test(start_paused = true)]
async fn latency_is_added_in_tokio_time() {
    let fake = faulty(3, |f| {
        f.latency_ms_min = 250;
        f.latency_ms_max = 250;
    });
    let mut c = Client::connect(&fake, Api::S3).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        c.call("PUT", "/imapsim/k", &[], "v").await.status,
        StatusCode::OK
    );
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    let stats = fake.stats();
    assert_eq!((stats.injected_delays, stats.injected_delay_ms), (1, 250));
}

#[tokio::test]
async fn faults_apply_only_to_the_listed_operations() {
    let fake = faulty(5, |f| {
        f.error_probability = 1.0;
        f.ops = Some(vec![Op::PutObject]);
    });
    let mut c = Client::connect(&fake, Api::S3).await;
    assert!(is_injected_error(
        c.call("PUT", "/imapsim/k", &[], "v").await.status
    ));
    assert_eq!(c.get("/imapsim/k").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.call("DELETE", "/imapsim/k", &[], "").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn set_faults_changes_them_at_run_time_and_refuses_bad_values() {
    let fake = faulty(5, |_| {});
    let mut c = Client::connect(&fake, Api::S3).await;
    assert_eq!(
        c.call("PUT", "/imapsim/a", &[], "v").await.status,
        StatusCode::OK
    );
    fake.set_faults(Faults {
        error_probability: 1.0,
        ..Faults::default()
    })
    .expect("valid faults");
    assert!(is_injected_error(
        c.call("PUT", "/imapsim/b", &[], "v").await.status
    ));
    fake.set_faults(Faults::default()).expect("valid faults");
    assert_eq!(
        c.call("PUT", "/imapsim/c", &[], "v").await.status,
        StatusCode::OK
    );
    let bad = Faults {
        latency_ms_min: 9,
        latency_ms_max: 1,
        ..Faults::default()
    };
    assert_eq!(
        fake.set_faults(bad),
        Err(ConfigError::LatencyRange { min: 9, max: 1 })
    );
    let keys: Vec<String> = fake.objects().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a", "c"]);
}

#[test]
fn invalid_configs_are_refused_at_build() {
    let bad = Config {
        faults: Faults {
            error_probability: -0.1,
            ..Faults::default()
        },
        ..Config::default()
    };
    assert!(matches!(
        FakeS3::new(bad),
        Err(ConfigError::InvalidProbability { .. })
    ));
    let bad = Config {
        max_body_bytes: 0,
        ..Config::default()
    };
    assert!(matches!(FakeS3::new(bad), Err(ConfigError::ZeroMaxBody)));
    let bad = Config {
        bucket: String::new(),
        ..Config::default()
    };
    assert!(matches!(
        FakeS3::new(bad),
        Err(ConfigError::InvalidBucket(_))
    ));
}

#[tokio::test]
async fn stats_count_requests_per_operation_and_bytes_stored() {
    let fake = faulty(0, |_| {});
    let (mut s3, mut k2v) = clients(&fake).await;
    s3.call("PUT", "/imapsim/a", &[], "12345").await;
    s3.get("/imapsim/a").await;
    s3.get("/imapsim/a").await;
    k2v.call("PUT", "/imapsim/p?sort_key=s", &[], "abc").await;
    let stats = fake.stats();
    assert_eq!(stats.requests[&Op::PutObject], 1);
    assert_eq!(stats.requests[&Op::GetObject], 2);
    assert_eq!(stats.requests[&Op::InsertItem], 1);
    assert_eq!(stats.requests_total(), 4);
    assert_eq!(stats.requests.len(), Op::ALL.len());
    assert_eq!((stats.objects, stats.object_bytes), (1, 5));
    assert_eq!((stats.items, stats.item_bytes), (1, 3));
    assert_eq!(stats.bytes_stored(), 8);
}
