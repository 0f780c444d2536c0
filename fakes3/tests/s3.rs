//! S3 subset over HTTP: objects, ranges, copies, listings and S3 XML errors.

mod common;

use common::{authorization, fake, request, Client};
use fakes3::{Api, Config, FakeS3, Op};
use hyper::StatusCode;

async fn s3() -> (FakeS3, Client) {
    let fake = fake();
    let client = Client::connect(&fake, Api::S3).await;
    (fake, client)
}

#[tokio::test]
async fn put_then_get_returns_the_body_and_its_md5_etag() {
    let (fake, mut c) = s3().await;
    let put = c.call("PUT", "/imapsim/a/b.txt", &[], "hello").await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        put.header("etag"),
        Some("\"5d41402abc4b2a76b9719d911017c592\"")
    );
    let get = c.get("/imapsim/a/b.txt").await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(&get.body[..], b"hello");
    assert_eq!(get.header("etag"), put.header("etag"));
    assert_eq!(
        fake.objects(),
        vec![("a/b.txt".to_string(), bytes::Bytes::from_static(b"hello"))]
    );
}

#[tokio::test]
async fn percent_encoded_keys_are_decoded() {
    let (fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/user%201/msg%2B1", &[], "x").await;
    assert_eq!(fake.objects()[0].0, "user 1/msg+1");
    assert_eq!(
        c.get("/imapsim/user%201/msg%2B1").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn ranged_get_returns_206_with_content_range() {
    let (_fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/k", &[], "0123456789").await;
    let r = c
        .call("GET", "/imapsim/k", &[("range", "bytes=2-5")], "")
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"2345");
    assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
    let r = c
        .call("GET", "/imapsim/k", &[("range", "bytes=7-")], "")
        .await;
    assert_eq!(&r.body[..], b"789");
    let r = c
        .call("GET", "/imapsim/k", &[("range", "bytes=-2")], "")
        .await;
    assert_eq!(&r.body[..], b"89");
    assert_eq!(r.header("content-range"), Some("bytes 8-9/10"));
    let r = c
        .call("GET", "/imapsim/k", &[("range", "bytes=5-100")], "")
        .await;
    assert_eq!(&r.body[..], b"56789");
}

#[tokio::test]
async fn unsatisfiable_range_is_416_invalid_range() {
    let (_fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/k", &[], "0123").await;
    let r = c
        .call("GET", "/imapsim/k", &[("range", "bytes=4-9")], "")
        .await;
    r.assert_s3_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange");
}

#[tokio::test]
async fn head_reports_size_and_etag_without_a_body() {
    let (_fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/k", &[], "12345").await;
    let r = c.call("HEAD", "/imapsim/k", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(r.header("etag").is_some());
    assert!(r.body.is_empty());
    let r = c.call("HEAD", "/imapsim/absent", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn delete_is_204_even_when_absent_and_removes_the_object() {
    let (fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/k", &[], "x").await;
    assert_eq!(
        c.call("DELETE", "/imapsim/k", &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.call("DELETE", "/imapsim/k", &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    assert!(fake.objects().is_empty());
    assert_eq!(c.get("/imapsim/k").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn copy_object_duplicates_the_source_under_a_new_key() {
    let (fake, mut c) = s3().await;
    c.call("PUT", "/imapsim/src/a", &[], "body").await;
    let r = c
        .put_with(
            "/imapsim/dst",
            ("x-amz-copy-source", "/imapsim/src%2Fa"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("<CopyObjectResult>"));
    assert_eq!(
        r.xml("ETag").as_deref(),
        Some("&quot;841a2d689ad86bd1611447453c22c6fc&quot;")
    );
    assert_eq!(&c.get("/imapsim/dst").await.body[..], b"body");
    assert_eq!(fake.objects().len(), 2);
    assert_eq!(fake.stats().requests[&Op::CopyObject], 1);
}

#[tokio::test]
async fn copy_from_a_missing_source_is_no_such_key() {
    let (_fake, mut c) = s3().await;
    let r = c
        .put_with("/imapsim/dst", ("x-amz-copy-source", "imapsim/none"), "")
        .await;
    r.assert_s3_error(StatusCode::NOT_FOUND, "NoSuchKey");
}

#[tokio::test]
async fn list_objects_v2_pages_with_continuation_tokens() {
    let (_fake, mut c) = s3().await;
    for k in ["u/1", "u/2", "u/3", "u/4", "u/5", "v/1"] {
        c.call("PUT", &format!("/imapsim/{k}"), &[], k).await;
    }
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/imapsim?list-type=2&prefix=u%2F&max-keys=2".to_string();
        if let Some(t) = &token {
            path.push_str(&format!("&continuation-token={t}"));
        }
        let r = c.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("<ListBucketResult"));
        pages += 1;
        let page = r.xml_all("Key");
        assert_eq!(r.xml("KeyCount"), Some(page.len().to_string()));
        assert_eq!(r.xml_all("Size"), vec!["3".to_string(); page.len()]);
        assert_eq!(r.xml_all("ETag").len(), page.len());
        keys.extend(page);
        if r.xml("IsTruncated").as_deref() == Some("true") {
            token = Some(
                r.xml("NextContinuationToken")
                    .expect("truncated page has a token"),
            );
        } else {
            assert_eq!(r.xml("NextContinuationToken"), None);
            break;
        }
    }
    assert_eq!(keys, ["u/1", "u/2", "u/3", "u/4", "u/5"]);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn list_objects_v2_honours_start_after_delimiter_and_url_encoding() {
    let (_fake, mut c) = s3().await;
    for k in ["a", "b/1", "b/2", "c d", "e"] {
        c.call(
            "PUT",
            &format!("/imapsim/{}", k.replace(' ', "%20")),
            &[],
            "x",
        )
        .await;
    }
    let r = c.get("/imapsim?list-type=2&start-after=a").await;
    assert_eq!(r.xml_all("Key"), ["b/1", "b/2", "c d", "e"]);
    let r = c.get("/imapsim?list-type=2&delimiter=%2F").await;
    assert_eq!(r.xml_all("Key"), ["a", "c d", "e"]);
    assert_eq!(r.xml_all("Prefix"), ["", "b/"]);
    assert_eq!(r.xml("KeyCount").as_deref(), Some("4"));
    let r = c.get("/imapsim?list-type=2&delimiter=%2F&max-keys=2").await;
    assert_eq!(r.xml_all("Key"), ["a"]);
    let token = r.xml("NextContinuationToken").expect("truncated");
    let r = c
        .get(&format!(
            "/imapsim?list-type=2&delimiter=%2F&continuation-token={token}"
        ))
        .await;
    assert_eq!(r.xml_all("Key"), ["c d", "e"]);
    let r = c
        .get("/imapsim?list-type=2&encoding-type=url&prefix=c")
        .await;
    assert_eq!(r.xml_all("Key"), ["c%20d"]);
}

#[tokio::test]
async fn bad_continuation_token_is_invalid_argument() {
    let (_fake, mut c) = s3().await;
    let r = c
        .get("/imapsim?list-type=2&continuation-token=%21%21")
        .await;
    r.assert_s3_error(StatusCode::BAD_REQUEST, "InvalidArgument");
}

#[tokio::test]
async fn missing_key_is_404_no_such_key_in_s3_xml() {
    let (_fake, mut c) = s3().await;
    let r = c.get("/imapsim/none").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert!(r.text().starts_with("<?xml"));
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchKey"));
    assert!(r.xml("Message").is_some());
    assert_eq!(r.xml("Resource").as_deref(), Some("/imapsim/none"));
}

#[tokio::test]
async fn other_bucket_is_404_no_such_bucket() {
    let (_fake, mut c) = s3().await;
    let r = c.call("PUT", "/other/k", &[], "x").await;
    r.assert_s3_error(StatusCode::NOT_FOUND, "NoSuchBucket");
}

#[tokio::test]
async fn missing_authorization_is_403_access_denied() {
    let (fake, mut c) = s3().await;
    let r = c.send(request("PUT", "/imapsim/k", &[], "x")).await;
    r.assert_s3_error(StatusCode::FORBIDDEN, "AccessDenied");
    assert!(fake.objects().is_empty());
}

#[tokio::test]
async fn other_access_key_is_403_invalid_access_key_id() {
    let (fake, mut c) = s3().await;
    let auth = authorization("GKother", "s3");
    let r = c
        .send(request(
            "PUT",
            "/imapsim/k",
            &[("authorization", &auth)],
            "x",
        ))
        .await;
    r.assert_s3_error(StatusCode::FORBIDDEN, "InvalidAccessKeyId");
    assert!(fake.objects().is_empty());
    assert_eq!(fake.stats().rejected_requests, 1);
}

#[tokio::test]
async fn unsupported_operations_get_errors_and_the_connection_lives_on() {
    let (_fake, mut c) = s3().await;
    for (method, path, status, code) in [
        ("GET", "/", 501, "NotImplemented"),
        ("GET", "/imapsim", 501, "NotImplemented"),
        ("POST", "/imapsim/k?uploads", 501, "NotImplemented"),
        (
            "PUT",
            "/imapsim/k?partNumber=1&uploadId=x",
            501,
            "NotImplemented",
        ),
        ("POST", "/imapsim?delete", 501, "NotImplemented"),
        ("PATCH", "/imapsim/k", 405, "MethodNotAllowed"),
        ("GET", "/imapsim/%FF", 400, "InvalidRequest"),
        (
            "GET",
            "/imapsim?list-type=2&max-keys=many",
            400,
            "InvalidArgument",
        ),
    ] {
        let r = c.call(method, path, &[], "").await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text());
        assert_eq!(r.xml("Code").as_deref(), Some(code), "{method} {path}");
    }
    assert_eq!(
        c.call("PUT", "/imapsim/k", &[], "still served")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_body_is_400_entity_too_large() {
    let fake = FakeS3::new(Config {
        max_body_bytes: 1024,
        ..Config::default()
    })
    .expect("valid config");
    let mut c = Client::connect(&fake, Api::S3).await;
    let r = c.call("PUT", "/imapsim/big", &[], vec![7u8; 2048]).await;
    r.assert_s3_error(StatusCode::BAD_REQUEST, "EntityTooLarge");
    assert!(fake.objects().is_empty());
    let mut c = Client::connect(&fake, Api::S3).await;
    assert_eq!(
        c.call("PUT", "/imapsim/ok", &[], vec![7u8; 1024])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_content_md5_is_bad_digest() {
    let (fake, mut c) = s3().await;
    let r = c
        .put_with(
            "/imapsim/k",
            ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="),
            "x",
        )
        .await;
    r.assert_s3_error(StatusCode::BAD_REQUEST, "BadDigest");
    assert!(fake.objects().is_empty());
}

#[tokio::test]
async fn loopback_serves_both_apis_on_real_tcp() {
    let fake = fake();
    let (s3_addr, k2v_addr) = fake
        .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("loopback listeners bind");
    assert_ne!(s3_addr.port(), 0);
    let stream = tokio::net::TcpStream::connect(s3_addr)
        .await
        .expect("S3 port accepts");
    let mut s3 = Client::over(stream, Api::S3).await;
    assert_eq!(
        s3.call("PUT", "/imapsim/k", &[], "v").await.status,
        StatusCode::OK
    );
    let stream = tokio::net::TcpStream::connect(k2v_addr)
        .await
        .expect("K2V port accepts");
    let mut k2v = Client::over(stream, Api::K2v).await;
    let r = k2v.call("PUT", "/imapsim/pk?sort_key=sk", &[], "v").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Each port speaks only its own API.
    let r = k2v.get("/imapsim/k").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.objects().len(), 1);
    assert_eq!(fake.rows().len(), 1);
}

/// Writes raw bytes on a fresh connection and returns everything the store answers until it closes.
async fn raw_exchange(fake: &FakeS3, request: &[u8]) -> (String, Result<(), hyper::Error>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let served = tokio::spawn({
        let fake = fake.clone();
        async move { fake.serve_connection(Api::S3, server).await }
    });
    client
        .write_all(request)
        .await
        .expect("pipe accepts the request");
    client.shutdown().await.expect("pipe closes");
    let mut answer = Vec::new();
    client
        .read_to_end(&mut answer)
        .await
        .expect("pipe is readable");
    let result = served.await.expect("connection task does not panic");
    (String::from_utf8_lossy(&answer).into_owned(), result)
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_400_entity_too_large() {
    let fake = FakeS3::new(Config {
        max_body_bytes: 8,
        ..Config::default()
    })
    .expect("valid config");
    let auth = authorization(&common::key_id(), "s3");
    let request = format!(
        "PUT /imapsim/k HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ntransfer-encoding: chunked\r\n\r\n\
         5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
    );
    let (answer, _) = raw_exchange(&fake, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>EntityTooLarge</Code>"), "{answer}");
    assert!(fake.objects().is_empty());
}

#[tokio::test]
async fn garbage_on_the_wire_ends_the_connection_without_a_panic() {
    let fake = fake();
    let (answer, result) = raw_exchange(&fake, b"\x00\x01 not http at all\r\n\r\n").await;
    assert!(
        result.is_err() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let mut c = Client::connect(&fake, Api::S3).await;
    assert_eq!(
        c.call("PUT", "/imapsim/k", &[], "v").await.status,
        StatusCode::OK
    );
}
