//! Shared setup of the server's integration tests: fakes3 and the server on loopback ports, and a
//! line-oriented test client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use server::config::{KdfParams, Limits, ServerConfig, UserConfig};
use server::env::{Clock, Env, SeededEntropy};
use server::storage::StorageConfig;
use server::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A running fakes3 + server pair.
pub struct Started {
    /// IMAP address.
    pub imap: SocketAddr,
    /// LMTP address.
    pub lmtp: SocketAddr,
    /// The store, to inspect what was written.
    pub fake: fakes3::FakeS3,
}

/// A clock the test moves by hand, in milliseconds since the Unix epoch.
pub struct TestClock(pub std::sync::atomic::AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> std::time::SystemTime {
        let ms = self.0.load(std::sync::atomic::Ordering::SeqCst);
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }
}

impl TestClock {
    /// Moves the clock `ms` milliseconds on.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Starts fakes3 and the server with user alice/alice-pw on a [`TestClock`] at 2024-02-15.
pub async fn start_alice_on_test_clock() -> (Started, Arc<TestClock>) {
    let clock = Arc::new(TestClock(std::sync::atomic::AtomicU64::new(
        1_707_955_200_000,
    )));
    let started = start_with(
        Limits::default(),
        Some(clock.clone()),
        &[("alice", "alice-pw")],
    )
    .await;
    (started, clock)
}

/// Starts fakes3 and the server with users alice/alice-pw and alice-password-less variants.
pub async fn start_with(
    limits: Limits,
    clock: Option<Arc<dyn Clock>>,
    users: &[(&str, &str)],
) -> Started {
    let fake =
        fakes3::FakeS3::new(fakes3::Config::default()).expect("default fakes3 config is valid");
    let (imap, lmtp) = serve_instance(&fake, limits, clock, users, 1).await;
    Started { imap, lmtp, fake }
}

/// Another server instance on the store of `started` (its own node id, from `seed`), with the
/// default limits: its IMAP address.
pub async fn another_instance(started: &Started, users: &[(&str, &str)], seed: u64) -> SocketAddr {
    serve_instance(&started.fake, Limits::default(), None, users, seed)
        .await
        .0
}

/// Serves `fake` on fresh loopback ports and a server instance on those: its IMAP and LMTP addresses.
async fn serve_instance(
    fake: &fakes3::FakeS3,
    limits: Limits,
    clock: Option<Arc<dyn Clock>>,
    users: &[(&str, &str)],
    seed: u64,
) -> (SocketAddr, SocketAddr) {
    let (s3, k2v) = fake
        .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("bind loopback");
    let d = fakes3::Config::default();
    let config = ServerConfig {
        storage: StorageConfig {
            s3_endpoint: s3.to_string(),
            k2v_endpoint: k2v.to_string(),
            region: d.region.clone(),
            bucket: d.bucket.clone(),
            key_id: d.key_id.clone(),
            secret: d.secret.clone(),
            max_in_flight: 8,
            max_idle_connections: 4,
        },
        users: users
            .iter()
            .map(|(n, p)| UserConfig {
                name: n.to_string(),
                password: p.to_string(),
            })
            .collect(),
        limits,
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        hostname: "test".into(),
    };
    let mut env = Env::production();
    env.entropy = Arc::new(SeededEntropy::new(seed));
    if let Some(clock) = clock {
        env.clock = clock;
    }
    let server = Server::new(config, env);
    let imap = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let lmtp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let (imap_addr, lmtp_addr) = (
        imap.local_addr().expect("bound"),
        lmtp.local_addr().expect("bound"),
    );
    let imap_server = server.clone();
    tokio::spawn(async move {
        while let Ok((io, peer)) = imap.accept().await {
            let server = imap_server.clone();
            tokio::spawn(server.serve_imap(io, peer));
        }
    });
    tokio::spawn(async move {
        while let Ok((io, peer)) = lmtp.accept().await {
            let server = server.clone();
            tokio::spawn(async move { server.serve_lmtp(io, peer).await });
        }
    });
    (imap_addr, lmtp_addr)
}

/// How many checkpoint objects the store holds.
pub fn checkpoints(fake: &fakes3::FakeS3) -> usize {
    fake.objects()
        .iter()
        .filter(|(k, _)| k.contains("/ckpt/"))
        .count()
}

/// Starts with the default user alice / alice-pw.
pub async fn start(limits: Limits) -> Started {
    start_with(limits, None, &[("alice", "alice-pw")]).await
}

/// A test client that reads whole lines and literals.
pub struct Client {
    pub reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = c.line().await;
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        c
    }

    /// One line, CRLF included ("" at end of stream).
    pub async fn line(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).await.expect("read line");
        s
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Sends a command and returns every line up to and including the tagged one.
    pub async fn run(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until(tag).await
    }

    /// Lines up to and including the one tagged `tag`.
    pub async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            assert!(!line.is_empty(), "connection closed; got {lines:?}");
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// One response line and, if it announces a literal, the literal.
    pub async fn line_with_literal(&mut self) -> (String, Vec<u8>) {
        let line = self.line().await;
        let mut literal = Vec::new();
        if let Some(n) = line
            .trim_end()
            .strip_suffix('}')
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok())
        {
            literal = vec![0u8; n];
            self.reader.read_exact(&mut literal).await.expect("literal");
        }
        (line, literal)
    }
}

/// The last line (the tagged status).
pub fn tagged(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}
