//! Memory bounds under bad input (issue #6), measured with the counting allocator: whatever an
//! unauthenticated client sends, its session holds at most 64 KiB; a client that pipelines
//! thousands of commands and never reads cannot grow the server's output; a login flood holds at
//! most the KDF slots' worth of argon2 memory. Every server session runs inside a wrapper that
//! charges what it allocates to one account, so only the sessions' own heap is counted (fakes3
//! and the clients run unattributed). Behaviour under bad input is tested in
//! `server/tests/bad_input.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use server::config::{KdfParams, Limits};
use server::listener::{self, Listeners, Protocol};
use sim::alloc::Account;
use testkit::{cheap_kdf, read_until_text, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

sim::simulation_binary!();

/// The bound of an unauthenticated session's heap.
const UNAUTHENTICATED_BYTES_MAX: u64 = 64 * 1024;

/// Polls a future with its allocations charged to an account.
struct Charged<F> {
    account: Arc<Account>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Charged<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _charged = self.account.enter();
        self.inner.as_mut().poll(cx)
    }
}

/// Starts fakes3 and a server whose IMAP sessions are all charged to the returned account.
async fn start(limits: Limits, kdf: KdfParams) -> (SocketAddr, Arc<Account>) {
    let fake =
        fakes3::FakeS3::new(fakes3::Config::default()).expect("default fakes3 config is valid");
    let setup = Setup::new().user("alice", "alice-pw").limits(limits);
    let server = setup.kdf(kdf).hostname("heap").server_on(&fake).await;
    let account = Arc::new(Account::new("sessions").expect("accounts available"));
    let listeners = Listeners::bind_loopback()
        .await
        .expect("loopback ports are free to bind");
    let (addr, _) = listeners
        .local_addrs()
        .expect("bound listeners have addresses");
    let sessions = account.clone();
    let spawn = move |protocol, io, peer| {
        if protocol == Protocol::Lmtp {
            return listener::spawn_session(&server, protocol, io, peer);
        }
        let session = {
            let _charged = sessions.enter();
            Charged {
                account: sessions.clone(),
                inner: Box::pin(server.serve_imap(io, peer)),
            }
        };
        tokio::spawn(session);
    };
    tokio::spawn(listeners.serve_with(std::future::pending(), spawn));
    (addr, account)
}

/// Sends `bytes` then a NOOP, and reads until the NOOP's answer or the end of the connection.
/// Returns everything read.
async fn exchange(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = stream.split();
    let mut output = Vec::new();
    let send = async {
        // The server may close first (a refused literal): later bytes go nowhere.
        let _ = writer.write_all(bytes).await;
        let _ = writer.write_all(b"zz NOOP\r\n").await;
    };
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buf))
                .await
                .expect("the server answers")
                .unwrap_or(0);
            output.extend_from_slice(&buf[..n]);
            let tail = &output[output.len().saturating_sub(64)..];
            if n == 0 || tail.windows(5).any(|w| w == b"zz OK") {
                return;
            }
        }
    };
    tokio::join!(send, read);
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_session_holds_at_most_64_kib_whatever_it_sends() {
    let limits = Limits {
        auth_failure_delay_ms: 5,
        ..Limits::default()
    };
    let (addr, account) = start(limits, cheap_kdf()).await;
    let deep = format!(
        "a SEARCH {}ALL{}\r\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let noops: String = (0..5_000).map(|i| format!("n{i} NOOP\r\n")).collect();
    let literals: String = (0..50)
        .map(|i| format!("l{i} ID (\"k\" {{8000+}}\r\n{})\r\n", "y".repeat(8000)))
        .collect();
    let mut garbage = Vec::new();
    let mut state = 7u32;
    for _ in 0..200_000 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        garbage.push((state >> 16) as u8);
    }
    garbage.extend_from_slice(b"\r\n");
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "a 1 MB line",
            format!("a NOOP {}\r\n", "x".repeat(1 << 20)).into_bytes(),
        ),
        ("10,000-deep parentheses", deep.into_bytes()),
        ("5,000 pipelined NOOPs", noops.into_bytes()),
        ("50 IDs with 8,000-byte literals", literals.into_bytes()),
        ("200 KB of random bytes", garbage),
        ("a 4 GB literal", b"a LOGIN {4294967295}\r\n".to_vec()),
        (
            "a 4 GB non-synchronising literal",
            b"a LOGIN {4294967296+}\r\n".to_vec(),
        ),
        ("an APPEND", b"a APPEND INBOX {60000+}\r\n".to_vec()),
        (
            "a long AUTHENTICATE answer",
            [
                b"a AUTHENTICATE PLAIN\r\n".to_vec(),
                vec![b'A'; 100_000],
                b"\r\n".to_vec(),
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in inputs {
        let live_before = account.figures().live_bytes;
        account.reset_peak();
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let output = exchange(&mut stream, &bytes).await;
        let peak = account.figures().peak_bytes - live_before;
        drop(stream);
        assert!(!output.is_empty(), "{what}: no answer");
        assert!(
            peak <= UNAUTHENTICATED_BYTES_MAX,
            "{what}: an unauthenticated session reached {peak} bytes"
        );
        eprintln!("{what}: peak {peak} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_grow_the_server_output() {
    let (addr, account) = start(Limits::default(), cheap_kdf()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // A 256 KiB message, so that each FETCH answers with more than a socket buffer's worth soon.
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n";
    let body = line.repeat(256 * 1024 / line.len());
    let message = format!("Subject: big\r\n\r\n{body}");
    let setup = format!(
        "a LOGIN alice alice-pw\r\nb APPEND INBOX {{{}+}}\r\n{message}\r\nc SELECT INBOX\r\n",
        message.len()
    );
    let reply = exchange(&mut stream, setup.as_bytes()).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("c OK"), "{reply}");

    let commands = 1_000;
    let mut pipeline = Vec::new();
    for i in 0..commands {
        let command = if i % 2 == 0 { "FETCH 1 BODY[]" } else { "NOOP" };
        pipeline.extend_from_slice(format!("q{i} {command}\r\n").as_bytes());
    }
    let (mut reader, sender) = testkit::send_in_background(stream, pipeline);
    // The client reads nothing for a second: the server must wait, holding a bounded output.
    let live_before = account.figures().live_bytes;
    account.reset_peak();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled_peak = account.figures().peak_bytes.saturating_sub(live_before);

    let mut received = 0u64;
    let last = format!("q{} OK", commands - 1);
    read_until_text(&mut reader, &last, Duration::from_secs(30), |chunk| {
        received += chunk.len() as u64
    })
    .await;
    sender.await.expect("the sender finished");
    let peak = account.figures().peak_bytes.saturating_sub(live_before);
    eprintln!("stalled peak {stalled_peak} B, peak {peak} B, {received} B answered");
    assert!(
        received > 100 * 1024 * 1024,
        "the answers are far larger than any buffer: {received} bytes"
    );
    assert!(
        peak <= 1024 * 1024,
        "the session held {peak} bytes while {received} bytes were answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_holds_at_most_one_key_derivation_per_slot() {
    let kdf_kib = 4 * 1024;
    let limits = Limits {
        kdf_concurrency: 1,
        kdf_queue_max: 4,
        ..Limits::default()
    };
    let kdf = KdfParams {
        memory_kib: kdf_kib,
        iterations: 1,
        parallelism: 1,
    };
    let (addr, account) = start(limits, kdf).await;
    let sessions = 40;
    let live_before = account.figures().live_bytes;
    account.reset_peak();
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let reply = exchange(&mut stream, b"a LOGIN alice alice-pw\r\n").await;
            String::from_utf8_lossy(&reply).into_owned()
        }));
    }
    let (mut ok, mut busy) = (0, 0);
    for client in clients {
        let reply = client.await.expect("the client finished");
        if reply.contains("a OK") {
            ok += 1;
        } else if reply.contains("a NO [UNAVAILABLE]") {
            busy += 1;
        } else {
            panic!("neither OK nor busy: {reply}");
        }
    }
    let peak = account.figures().peak_bytes.saturating_sub(live_before);
    let bound = u64::from(kdf_kib) * 1024 + sessions * UNAUTHENTICATED_BYTES_MAX + 512 * 1024;
    eprintln!("{ok} logged in, {busy} told to come back; peak {peak} B (bound {bound} B)");
    assert!(ok >= 1, "someone logged in");
    assert!(
        peak <= bound,
        "{sessions} logins held {peak} bytes: more than one derivation at a time"
    );
}
