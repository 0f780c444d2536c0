//! Transport tests of the storage client against small in-process servers: connection reuse and
//! bounds, the in-flight bound, PollItem's own connection, the single retry, timeouts, signing time.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{StorageConfig, StorageError, Store};
use crate::env::{
    BoxFuture, BoxIo, Clock, Connector, Env, SeededEntropy, SystemClock, TokioConnector,
};

/// Opens real TCP connections and counts them.
#[derive(Default)]
struct CountingConnector {
    opened: Arc<AtomicUsize>,
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        TokioConnector.connect(addr)
    }
}

/// A clock stopped at one instant.
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

type Handler =
    Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Full<Bytes>>> + Send + Sync>;

/// Serves HTTP/1.1 on a loopback port with `handler`.
async fn serve(handler: Handler) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn response(status: u16, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = StatusCode::from_u16(status).expect("valid status");
    resp
}

fn store(addr: SocketAddr, max_in_flight: usize, max_idle: usize) -> (Store, Arc<AtomicUsize>) {
    let connector = CountingConnector::default();
    let opened = connector.opened.clone();
    let env = Env {
        connector: Arc::new(connector),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SeededEntropy::new(7)),
    };
    let config = StorageConfig {
        s3_endpoint: addr.to_string(),
        k2v_endpoint: addr.to_string(),
        key_id: "GKtest".into(),
        secret: "secret".into(),
        max_in_flight,
        max_idle_connections: max_idle,
        ..StorageConfig::default()
    };
    (Store::new(config, env), opened)
}

#[tokio::test]
async fn sequential_requests_reuse_one_pooled_connection() {
    let addr = serve(Arc::new(|_req| Box::pin(async { response(200, b"ok") }))).await;
    let (store, opened) = store(addr, 4, 4);
    sequential_gets(&store, 5).await;
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "one connection carries every request"
    );
    assert_eq!(store.idle_connections(), (1, 0));
}

/// Runs `n` GetObjects one after the other, each answered "ok".
async fn sequential_gets(store: &Store, n: usize) {
    for _ in 0..n {
        assert_eq!(
            &store.blob_get("k", None).await.expect("blob_get")[..],
            b"ok"
        );
    }
}

/// Runs `n` GetObjects at once and waits for every one to succeed.
async fn concurrent_gets(store: &Store, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn({
                let s = store.clone();
                async move { s.blob_get("k", None).await }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task does not panic").expect("blob_get");
    }
}

#[tokio::test]
async fn idle_connections_are_bounded_per_endpoint() {
    let addr = serve(Arc::new(|_req| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            response(200, b"ok")
        })
    }))
    .await;
    let (store, opened) = store(addr, 8, 2);
    concurrent_gets(&store, 5).await;
    assert_eq!(
        opened.load(Ordering::SeqCst),
        5,
        "five concurrent requests need five connections"
    );
    assert_eq!(store.idle_connections(), (2, 0), "only two are kept");
}

#[tokio::test]
async fn requests_in_flight_are_bounded() {
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (c, p) = (current.clone(), peak.clone());
    let addr = serve(Arc::new(move |_req| {
        let (c, p) = (c.clone(), p.clone());
        Box::pin(async move {
            let now = c.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            c.fetch_sub(1, Ordering::SeqCst);
            response(200, b"ok")
        })
    }))
    .await;
    let (store, _) = store(addr, 2, 8);
    concurrent_gets(&store, 6).await;
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "never more than max_in_flight at once"
    );
}

#[tokio::test]
async fn poll_takes_neither_an_in_flight_slot_nor_a_pooled_connection() {
    let addr = serve(Arc::new(|req: Request<Incoming>| {
        let polling = req.uri().query().is_some_and(|q| q.contains("causality_token="));
        Box::pin(async move {
            if polling {
                tokio::time::sleep(Duration::from_millis(300)).await;
                response(304, b"")
            } else {
                response(404, br#"{"code":"NoSuchKey","message":"Key not found","region":"garage","path":"/"}"#)
            }
        })
    }))
    .await;
    let (store, opened) = store(addr, 1, 4);
    // Warm the pool with one idle connection, which the poll must not take.
    assert_eq!(store.row_read("pk", "sk").await.expect("row_read"), None);
    let poll = tokio::spawn({
        let s = store.clone();
        async move {
            s.row_poll("pk", "sk", &super::CausalityToken("t".into()), 5)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store
            .row_read("pk", "sk")
            .await
            .expect("row_read during the poll"),
        None
    );
    assert!(
        !poll.is_finished(),
        "the read finished while the poll was still waiting"
    );
    assert_eq!(
        opened.load(Ordering::SeqCst),
        2,
        "the poll opened its own connection"
    );
    assert_eq!(
        poll.await.expect("poll task").expect("row_poll"),
        None,
        "304 is None"
    );
}

/// A raw HTTP/1.1 server whose connections answer their first request and then close as soon as a
/// second request arrives, without answering it. Returns its address and its connection count.
async fn serve_one_request_per_connection() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the first request's head and body.
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
                // Wait for the next request, then hang up without a word.
                let _ = stream.read(&mut chunk).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn get_on_a_pooled_connection_the_peer_closed_is_retried_once() {
    let (addr, accepted) = serve_one_request_per_connection().await;
    let (store, _) = store(addr, 4, 4);
    sequential_gets(&store, 3).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "each retry used a fresh connection"
    );
}

#[tokio::test]
async fn put_on_a_pooled_connection_the_peer_closed_is_not_retried() {
    let (addr, accepted) = serve_one_request_per_connection().await;
    let (store, _) = store(addr, 4, 4);
    store
        .blob_put("k", Bytes::from_static(b"v"))
        .await
        .expect("first put");
    match store.blob_put("k", Bytes::from_static(b"v")).await {
        Err(StorageError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted),
        other => panic!("a PUT the peer dropped is an I/O error, got {other:?}"),
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "no second connection for a PUT"
    );
}

/// Connects to an in-memory stream that never answers.
struct SilentConnector(Mutex<Vec<tokio::io::DuplexStream>>);

impl Connector for SilentConnector {
    fn connect<'a>(&'a self, _addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        self.0.lock().expect("not poisoned").push(theirs);
        Box::pin(async move { Ok(Box::new(ours) as BoxIo) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_never_answered_times_out() {
    let env = Env {
        connector: Arc::new(SilentConnector(Mutex::new(Vec::new()))),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SeededEntropy::new(1)),
    };
    let store = Store::new(StorageConfig::default(), env);
    assert!(matches!(
        store.blob_head("k").await,
        Err(StorageError::Timeout)
    ));
}

#[tokio::test]
async fn connection_refused_is_an_io_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    let (store, _) = store(addr, 1, 1);
    assert!(matches!(
        store.row_read("pk", "sk").await,
        Err(StorageError::Io(_))
    ));
}

#[tokio::test]
async fn requests_are_signed_at_the_env_clock_time_for_their_service() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let addr = serve(Arc::new(move |req: Request<Incoming>| {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        record
            .lock()
            .expect("not poisoned")
            .push((header("x-amz-date"), header("authorization")));
        Box::pin(async { response(200, b"") })
    }))
    .await;
    let env = Env {
        connector: Arc::new(TokioConnector),
        // 2001-02-03T04:05:06Z
        clock: Arc::new(FixedClock(UNIX_EPOCH + Duration::from_secs(981_173_106))),
        entropy: Arc::new(SeededEntropy::new(1)),
    };
    let config = StorageConfig {
        s3_endpoint: addr.to_string(),
        k2v_endpoint: addr.to_string(),
        key_id: "GKtest".into(),
        ..StorageConfig::default()
    };
    let store = Store::new(config, env);
    store
        .row_insert("pk", "sk", None, Bytes::from_static(b"v"))
        .await
        .expect("row_insert");
    store.blob_delete("k").await.expect("blob_delete");
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].0, "20010203T040506Z",
        "the signing time is the env clock's"
    );
    assert!(
        seen[0]
            .1
            .contains("Credential=GKtest/20010203/garage/k2v/aws4_request"),
        "{}",
        seen[0].1
    );
    assert!(
        seen[1]
            .1
            .contains("Credential=GKtest/20010203/garage/s3/aws4_request"),
        "{}",
        seen[1].1
    );
}
