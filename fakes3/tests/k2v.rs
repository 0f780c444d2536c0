//! K2V API over HTTP, following Garage's `doc/drafts/k2v-spec.md`.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{fake, request, Client};
use fakes3::causality::{CausalContext, NODE_ID};
use fakes3::{Api, FakeS3, Op};
use hyper::StatusCode;
use serde_json::{json, Value};

async fn k2v() -> (FakeS3, Client) {
    let fake = fake();
    let client = Client::connect(&fake, Api::K2v).await;
    (fake, client)
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

async fn insert(c: &mut Client, pk: &str, sk: &str, token: Option<&str>, value: &str) {
    let headers: Vec<(&str, &str)> = token
        .map(|t| ("x-garage-causality-token", t))
        .into_iter()
        .collect();
    let r = c
        .call(
            "PUT",
            &format!("/imapsim/{pk}?sort_key={sk}"),
            &headers,
            value.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

/// ReadItem in JSON: (token, values).
async fn read(c: &mut Client, pk: &str, sk: &str) -> (String, Value) {
    let r = c.get(&format!("/imapsim/{pk}?sort_key={sk}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let token = r
        .header("x-garage-causality-token")
        .expect("ReadItem sends a token")
        .to_string();
    (token, r.json())
}

async fn post_json(c: &mut Client, path: &str, body: Value) -> Value {
    let r = c.post(path, body.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn insert_then_read_item_in_json_and_binary() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "mailboxes", "INBOX", None, "hello").await;
    let (token, values) = read(&mut c, "mailboxes", "INBOX").await;
    assert_eq!(values, json!([b64("hello")]));
    let ctx = CausalContext::decode(&token).expect("token decodes");
    assert_eq!(ctx.clock.get(&NODE_ID), Some(&1));
    for accept in [
        "application/octet-stream",
        "application/json, application/octet-stream",
    ] {
        let r = c
            .get_accepting("/imapsim/mailboxes?sort_key=INBOX", accept)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(&r.body[..], b"hello");
        assert_eq!(r.header("x-garage-causality-token"), Some(token.as_str()));
    }
    let r = c
        .get_accepting("/imapsim/mailboxes?sort_key=INBOX", "application/json")
        .await;
    assert_eq!(r.json(), json!([b64("hello")]));
}

#[tokio::test]
async fn missing_item_is_404_no_such_key_in_garage_json() {
    let (_fake, mut c) = k2v().await;
    let r = c.get("/imapsim/p?sort_key=none").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let body = r.json();
    assert_eq!(body["code"], "NoSuchKey");
    assert_eq!(body["region"], "garage");
    assert_eq!(body["path"], "/imapsim/p");
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn accept_without_json_or_octet_stream_is_406() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "v").await;
    let r = c.get_accepting("/imapsim/p?sort_key=s", "text/html").await;
    r.assert_k2v_error(StatusCode::NOT_ACCEPTABLE, "NotAcceptable");
}

#[tokio::test]
async fn writes_without_token_are_concurrent_until_a_write_with_the_token() {
    let (fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "one").await;
    insert(&mut c, "p", "s", None, "two").await;
    let (token, values) = read(&mut c, "p", "s").await;
    assert_eq!(values, json!([b64("one"), b64("two")]));
    let r = c
        .get_accepting("/imapsim/p?sort_key=s", "application/octet-stream")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.header("x-garage-causality-token"), Some(token.as_str()));
    let r = c
        .get_accepting(
            "/imapsim/p?sort_key=s",
            "application/octet-stream,application/json",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!([b64("one"), b64("two")]));
    insert(&mut c, "p", "s", Some(&token), "merged").await;
    let (_, values) = read(&mut c, "p", "s").await;
    assert_eq!(values, json!([b64("merged")]));
    assert_eq!(
        fake.rows(),
        vec![(
            "p".into(),
            "s".into(),
            vec![Some(bytes::Bytes::from_static(b"merged"))]
        )]
    );
}

#[tokio::test]
async fn identical_concurrent_values_are_read_once() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "same").await;
    insert(&mut c, "p", "s", None, "same").await;
    let (_, values) = read(&mut c, "p", "s").await;
    assert_eq!(values, json!([b64("same")]));
}

#[tokio::test]
async fn delete_item_requires_a_token_and_leaves_a_tombstone() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "v").await;
    let r = c.call("DELETE", "/imapsim/p?sort_key=s", &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (token, _) = read(&mut c, "p", "s").await;
    let r = c
        .with_token("DELETE", "/imapsim/p?sort_key=s", &token, "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (_, values) = read(&mut c, "p", "s").await;
    assert_eq!(values, json!([null]));
    let r = c
        .get_accepting("/imapsim/p?sort_key=s", "application/octet-stream")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let hidden = post_json(&mut c, "/imapsim?search", json!([{"partitionKey": "p"}])).await;
    assert_eq!(hidden[0]["items"], json!([]));
    let shown = post_json(
        &mut c,
        "/imapsim?search",
        json!([{"partitionKey": "p", "tombstones": true}]),
    )
    .await;
    assert_eq!(shown[0]["items"][0]["sk"], "s");
    assert_eq!(shown[0]["items"][0]["v"], json!([null]));
}

#[tokio::test]
async fn invalid_causality_token_is_400() {
    let (fake, mut c) = k2v().await;
    let r = c
        .with_token("PUT", "/imapsim/p?sort_key=s", "bogus!", "v")
        .await;
    r.assert_k2v_error(StatusCode::BAD_REQUEST, "InvalidCausalityToken");
    assert!(fake.rows().is_empty());
}

async fn fill(c: &mut Client) {
    let items: Vec<Value> = ["a", "b1", "b2", "b3", "b4", "c"]
        .iter()
        .map(|sk| json!({"pk": "p", "sk": sk, "ct": null, "v": b64(sk)}))
        .collect();
    let r = c.post("/imapsim", Value::Array(items).to_string()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

fn sks(result: &Value) -> Vec<String> {
    result["items"]
        .as_array()
        .expect("items is a list")
        .iter()
        .map(|i| i["sk"].as_str().expect("sk is a string").to_string())
        .collect()
}

#[tokio::test]
async fn read_batch_honours_prefix_start_end_limit_reverse_and_single_item() {
    let (_fake, mut c) = k2v().await;
    fill(&mut c).await;
    let r = post_json(
        &mut c,
        "/imapsim?search",
        json!([
            {"partitionKey": "p"},
            {"partitionKey": "p", "prefix": "b"},
            {"partitionKey": "p", "start": "b2", "end": "c"},
            {"partitionKey": "p", "prefix": "b", "reverse": true},
            {"partitionKey": "p", "start": "b1", "singleItem": true},
            {"partitionKey": "p", "start": "zz", "singleItem": true},
            {"partitionKey": "none"},
        ]),
    )
    .await;
    assert_eq!(sks(&r[0]), ["a", "b1", "b2", "b3", "b4", "c"]);
    assert_eq!(sks(&r[1]), ["b1", "b2", "b3", "b4"]);
    assert_eq!(sks(&r[2]), ["b2", "b3", "b4"]);
    assert_eq!(sks(&r[3]), ["b4", "b3", "b2", "b1"]);
    assert_eq!(sks(&r[4]), ["b1"]);
    assert_eq!(r[4]["items"][0]["v"], json!([b64("b1")]));
    assert!(r[4]["items"][0]["ct"].is_string());
    assert_eq!(sks(&r[5]), Vec::<String>::new());
    assert_eq!(sks(&r[6]), Vec::<String>::new());
    assert_eq!(r[1]["partitionKey"], "p");
    assert_eq!(r[1]["prefix"], "b");
    assert_eq!(r[1]["more"], false);
    assert_eq!(r[1]["nextStart"], Value::Null);
    assert_eq!(r[4]["singleItem"], true);
}

#[tokio::test]
async fn read_batch_pages_with_limit_and_next_start() {
    let (_fake, mut c) = k2v().await;
    fill(&mut c).await;
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let r = post_json(
            &mut c,
            "/imapsim?search",
            json!([{"partitionKey": "p", "prefix": "b", "start": start, "limit": 3}]),
        )
        .await;
        seen.extend(sks(&r[0]));
        if r[0]["more"] == true {
            start = Some(
                r[0]["nextStart"]
                    .as_str()
                    .expect("nextStart when more")
                    .to_string(),
            );
        } else {
            assert_eq!(r[0]["nextStart"], Value::Null);
            break;
        }
    }
    assert_eq!(seen, ["b1", "b2", "b3", "b4"]);
    let r = post_json(
        &mut c,
        "/imapsim?search",
        json!([{"partitionKey": "p", "reverse": true, "limit": 2}]),
    )
    .await;
    assert_eq!(sks(&r[0]), ["c", "b4"]);
    assert_eq!(r[0]["nextStart"], "b3");
}

#[tokio::test]
async fn read_batch_conflicts_only_returns_items_with_concurrent_values() {
    let (_fake, mut c) = k2v().await;
    fill(&mut c).await;
    insert(&mut c, "p", "b2", None, "other").await;
    let r = post_json(
        &mut c,
        "/imapsim?search",
        json!([{"partitionKey": "p", "conflictsOnly": true}]),
    )
    .await;
    assert_eq!(sks(&r[0]), ["b2"]);
    assert_eq!(r[0]["items"][0]["v"], json!([b64("b2"), b64("other")]));
}

#[tokio::test]
async fn read_batch_rejects_single_item_with_range_parameters() {
    let (_fake, mut c) = k2v().await;
    let body =
        json!([{"partitionKey": "p", "start": "a", "singleItem": true, "limit": 2}]).to_string();
    let r = c.post("/imapsim?search", body).await;
    r.assert_k2v_error(StatusCode::BAD_REQUEST, "InvalidRequest");
    let r = c.post("/imapsim?search", "not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_method_is_read_batch() {
    let (fake, mut c) = k2v().await;
    fill(&mut c).await;
    let r = c
        .call(
            "SEARCH",
            "/imapsim",
            &[],
            json!([{"partitionKey": "p", "prefix": "c"}]).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sks(&r.json()[0]), ["c"]);
    assert_eq!(fake.stats().requests[&Op::ReadBatch], 1);
}

#[tokio::test]
async fn insert_batch_writes_values_and_tombstones_with_tokens() {
    let (fake, mut c) = k2v().await;
    insert(&mut c, "p", "x", None, "old").await;
    let (token, _) = read(&mut c, "p", "x").await;
    let body = json!([
        {"pk": "p", "sk": "x", "ct": token, "v": null},
        {"pk": "q", "sk": "y", "ct": null, "v": b64("new")},
    ]);
    let r = c.post("/imapsim", body.to_string()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let rows = fake.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], ("p".into(), "x".into(), vec![None]));
    assert_eq!(
        rows[1],
        (
            "q".into(),
            "y".into(),
            vec![Some(bytes::Bytes::from_static(b"new"))]
        )
    );
    let bad = json!([{"pk": "p", "sk": "z", "ct": null, "v": "!!!"}]);
    let r = c.post("/imapsim", bad.to_string()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.rows().len(), 2);
}

#[tokio::test]
async fn delete_batch_counts_deleted_items_and_leaves_tombstones() {
    let (fake, mut c) = k2v().await;
    fill(&mut c).await;
    let r = post_json(
        &mut c,
        "/imapsim?delete",
        json!([
            {"partitionKey": "p", "prefix": "b"},
            {"partitionKey": "p", "start": "c", "singleItem": true},
            {"partitionKey": "p", "start": "c", "singleItem": true},
            {"partitionKey": "none"},
        ]),
    )
    .await;
    let counts: Vec<u64> = r
        .as_array()
        .expect("list")
        .iter()
        .map(|q| q["deletedItems"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [4, 1, 0, 0]);
    assert_eq!(r[0]["partitionKey"], "p");
    assert_eq!(r[1]["singleItem"], true);
    let left = post_json(&mut c, "/imapsim?search", json!([{"partitionKey": "p"}])).await;
    assert_eq!(sks(&left[0]), ["a"]);
    assert_eq!(fake.rows().len(), 6);
}

#[tokio::test]
async fn read_index_counts_entries_conflicts_values_and_bytes() {
    let (_fake, mut c) = k2v().await;
    fill(&mut c).await;
    insert(&mut c, "p", "a", None, "xyz").await;
    insert(&mut c, "q", "k", None, "12345").await;
    insert(&mut c, "r", "k", None, "gone").await;
    let (token, _) = read(&mut c, "r", "k").await;
    c.with_token("DELETE", "/imapsim/r?sort_key=k", &token, "")
        .await;
    let r = c.get("/imapsim").await;
    assert_eq!(r.status, StatusCode::OK);
    let index = r.json();
    assert_eq!(
        index["partitionKeys"],
        json!([
            {"pk": "p", "entries": 6, "conflicts": 1, "values": 7, "bytes": 13},
            {"pk": "q", "entries": 1, "conflicts": 0, "values": 1, "bytes": 5},
        ])
    );
    assert_eq!(index["more"], false);
    assert_eq!(index["reverse"], false);
    let r = c.get("/imapsim?limit=1").await.json();
    assert_eq!(r["partitionKeys"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["more"], true);
    assert_eq!(r["nextStart"], "q");
    let r = c.get("/imapsim?prefix=q").await.json();
    assert_eq!(r["partitionKeys"][0]["pk"], "q");
    assert_eq!(r["prefix"], "q");
}

#[tokio::test(start_paused = true)]
async fn poll_item_returns_at_once_when_the_token_is_stale() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "v1").await;
    let (old, _) = read(&mut c, "p", "s").await;
    insert(&mut c, "p", "s", Some(&old), "v2").await;
    let started = tokio::time::Instant::now();
    let r = c
        .get(&format!("/imapsim/p?sort_key=s&causality_token={old}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!([b64("v2")]));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn poll_item_wakes_on_a_later_insert() {
    let fake = fake();
    let mut writer = Client::connect(&fake, Api::K2v).await;
    let mut poller = Client::connect(&fake, Api::K2v).await;
    insert(&mut writer, "p", "s", None, "v1").await;
    let (token, _) = read(&mut writer, "p", "s").await;
    let started = tokio::time::Instant::now();
    let poll = tokio::spawn(async move {
        let r = poller
            .get(&format!(
                "/imapsim/p?sort_key=s&causality_token={token}&timeout=300"
            ))
            .await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(42)).await;
    insert(&mut writer, "p", "s", None, "v2").await;
    let (r, waited) = poll.await.expect("poll task finishes");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!([b64("v1"), b64("v2")]));
    assert!(
        waited >= Duration::from_secs(42) && waited < Duration::from_secs(43),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn poll_item_wakes_for_a_new_item() {
    let fake = fake();
    let mut writer = Client::connect(&fake, Api::K2v).await;
    let mut poller = Client::connect(&fake, Api::K2v).await;
    let empty = CausalContext::default().encode();
    let poll = tokio::spawn(async move {
        poller
            .get(&format!("/imapsim/p?sort_key=new&causality_token={empty}"))
            .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    insert(&mut writer, "p", "new", None, "hi").await;
    let r = poll.await.expect("poll task finishes");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!([b64("hi")]));
}

#[tokio::test(start_paused = true)]
async fn poll_item_returns_304_after_the_timeout() {
    let (fake, mut c) = k2v().await;
    insert(&mut c, "p", "s", None, "v").await;
    let (token, _) = read(&mut c, "p", "s").await;
    let started = tokio::time::Instant::now();
    let r = c
        .get(&format!(
            "/imapsim/p?sort_key=s&causality_token={token}&timeout=5"
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    let r = c
        .get(&format!("/imapsim/p?sort_key=s&causality_token={token}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(started.elapsed(), Duration::from_secs(300));
    let started = tokio::time::Instant::now();
    let r = c
        .get(&format!(
            "/imapsim/p?sort_key=s&causality_token={token}&timeout=100000"
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(started.elapsed(), Duration::from_secs(600));
    assert_eq!(fake.stats().requests[&Op::PollItem], 3);
}

/// PollRange: (status, body as JSON or Null for 304).
async fn poll_range(c: &mut Client, pk: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(&format!("/imapsim/{pk}?poll_range"), body.to_string())
        .await;
    let json = if r.status == StatusCode::OK {
        r.json()
    } else {
        Value::Null
    };
    (r.status, json)
}

#[tokio::test(start_paused = true)]
async fn poll_range_without_marker_returns_the_range_at_once() {
    let (_fake, mut c) = k2v().await;
    for sk in ["a:1", "a:2", "b:1"] {
        insert(&mut c, "w", sk, None, "x").await;
    }
    insert(&mut c, "other", "a:9", None, "x").await;
    let (status, answer) = poll_range(&mut c, "w", json!({ "prefix": "a:" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sks(&answer), ["a:1", "a:2"]);
    assert_eq!(answer["items"][0]["v"], json!([b64("x")]));
    assert!(answer["seenMarker"].is_string());
}

#[tokio::test(start_paused = true)]
async fn poll_range_with_marker_waits_for_a_write_in_the_range() {
    let fake = fake();
    let mut writer = Client::connect(&fake, Api::K2v).await;
    let mut poller = Client::connect(&fake, Api::K2v).await;
    insert(&mut writer, "w", "a", None, "1").await;
    let (_, first) = poll_range(&mut poller, "w", json!({})).await;
    let marker = first["seenMarker"].clone();
    let started = tokio::time::Instant::now();
    let poll = tokio::spawn(async move {
        let answer = poll_range(
            &mut poller,
            "w",
            json!({ "seenMarker": marker, "start": "b" }),
        )
        .await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Outside the range, or in another partition: nothing to answer yet.
    insert(&mut writer, "w", "a", None, "2").await;
    insert(&mut writer, "x", "b", None, "2").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    insert(&mut writer, "w", "c", None, "3").await;
    let ((status, answer), waited) = poll.await.expect("poll task finishes");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sks(&answer), ["c"]);
    assert_eq!(waited, Duration::from_secs(7));
    assert_ne!(answer["seenMarker"], first["seenMarker"]);
    // The new marker covers that write: the next poll times out.
    let mut c = Client::connect(&fake, Api::K2v).await;
    let marker = answer["seenMarker"].clone();
    let (status, _) = poll_range(
        &mut c,
        "w",
        json!({ "seenMarker": marker, "start": "b", "timeout": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(fake.stats().requests[&Op::PollRange], 3);
}

#[tokio::test(start_paused = true)]
async fn poll_range_returns_writes_made_before_the_poll_and_refuses_bad_markers() {
    let (_fake, mut c) = k2v().await;
    insert(&mut c, "w", "a", None, "1").await;
    let (_, first) = poll_range(&mut c, "w", json!({})).await;
    insert(&mut c, "w", "b", None, "2").await;
    let (token, _) = read(&mut c, "w", "a").await;
    let r = c
        .with_token("DELETE", "/imapsim/w?sort_key=a", token.as_str(), "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (status, answer) =
        poll_range(&mut c, "w", json!({ "seenMarker": first["seenMarker"] })).await;
    assert_eq!(status, StatusCode::OK);
    // Deletions are changes too: the tombstone comes back with a null value.
    assert_eq!(sks(&answer), ["a", "b"]);
    assert_eq!(answer["items"][0]["v"], json!([null]));
    let r = c
        .post(
            "/imapsim/w?poll_range",
            json!({ "seenMarker": "garbage" }).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn k2v_errors_for_unknown_requests_are_json() {
    let (_fake, mut c) = k2v().await;
    for (method, path, status, code) in [
        ("GET", "/other/p?sort_key=s", 404, "NoSuchBucket"),
        ("GET", "/imapsim/p", 400, "InvalidRequest"),
        ("PATCH", "/imapsim/p?sort_key=s", 405, "MethodNotAllowed"),
        ("PUT", "/imapsim", 405, "MethodNotAllowed"),
        ("POST", "/imapsim/p?poll_range", 400, "InvalidRequest"),
        ("POST", "/imapsim?poll_range", 400, "InvalidRequest"),
        ("GET", "/imapsim?limit=x", 400, "InvalidArgument"),
    ] {
        let r = c.call(method, path, &[], "").await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{method} {path}");
    }
    let r = c
        .send(request("GET", "/imapsim/p?sort_key=s", &[], ""))
        .await;
    r.assert_k2v_error(StatusCode::FORBIDDEN, "AccessDenied");
}

#[tokio::test(start_paused = true)]
async fn pollers_leave_no_watcher_behind() {
    let fake = fake();
    let mut writer = Client::connect(&fake, Api::K2v).await;
    insert(&mut writer, "p", "s", None, "v").await;
    let (token, _) = read(&mut writer, "p", "s").await;
    let mut pollers = Vec::new();
    for _ in 0..3 {
        let mut poller = Client::connect(&fake, Api::K2v).await;
        let path = format!("/imapsim/p?sort_key=s&causality_token={token}");
        pollers.push(tokio::spawn(async move { poller.get(&path).await.status }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.stats().polled_items, 1);
    insert(&mut writer, "p", "s", Some(&token), "w").await;
    for poller in pollers {
        assert_eq!(poller.await.expect("poller finishes"), StatusCode::OK);
    }
    assert_eq!(fake.stats().polled_items, 0);
    // A poller whose connection goes away stops waiting too.
    let mut poller = Client::connect(&fake, Api::K2v).await;
    let (token, _) = read(&mut writer, "p", "s").await;
    let path = format!("/imapsim/p?sort_key=s&causality_token={token}");
    let task = tokio::spawn(async move { poller.get(&path).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.stats().polled_items, 1);
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.stats().polled_items, 0);
}
