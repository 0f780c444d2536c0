//! Fuzz harnesses of imapsim's IMAP server: the command decoder (input framing, literal handling and
//! imap-codec) and a whole session over an in-memory connection with an in-process fakes3. The
//! cargo-fuzz targets are one line each over these; `server/tests/bad_input.rs` includes this file
//! to replay the committed corpus under plain `cargo test`.
//!
//! Both harnesses check the same things: nothing panics, every byte the server writes parses as
//! IMAP responses with imap-proto (an independent parser), and a session always ends once its
//! client has gone. The decoder also checks that every command it decodes survives an imap-codec
//! encode and decode unchanged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::CommandCodec;
use server::config::{KdfParams, Limits};
use server::env::{BoxFuture, BoxIo, Clock, Connector};
use server::imap::input::{Incoming, Input};
use server::imap::output::Output;
use server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Commands decoded at most per input (each consumes at least one byte; this only caps the time).
const COMMANDS_MAX: usize = 10_000;
/// Literal bytes read per step when draining an APPEND.
const LITERAL_STEP_BYTES: usize = 4096;
/// Simulated time a session may take after its client has sent everything and gone.
const SESSION_TIME_MAX: Duration = Duration::from_secs(3600);

/// The user every session can log in as.
pub const USER: &str = "alice";
/// Their password.
pub const PASSWORD: &str = "alice-pw";

/// Decodes `data` as a client's byte stream. The first byte picks the limits: bit 0 applies the
/// limits before login, bits 1-3 scale the line limit. Panics when a check fails.
pub fn decode_commands(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let mut written = Vec::new();
    runtime.block_on(async {
        let line_max = 64 << ((mode >> 1) & 0b111);
        let mut input = Input::new(stream, line_max, 4096);
        if mode & 1 == 1 {
            input = input.before_login(256);
        }
        let mut out = Output::new(&mut written);
        for _ in 0..COMMANDS_MAX {
            let incoming = input
                .next(&mut out)
                .await
                .expect("reading from a slice and writing to a Vec cannot fail");
            match incoming {
                Incoming::Eof => break,
                Incoming::Command(command) => {
                    // imap-codec normalises some forms (a range `9:3` encodes as `3:9`): the
                    // encoding, not the value, must be a fixed point.
                    let encoded = CommandCodec::default().encode(&command).dump();
                    match CommandCodec::default().decode(&encoded) {
                        Ok((rest, again)) => {
                            assert!(rest.is_empty(), "re-encoding left {rest:?}");
                            let again = CommandCodec::default().encode(&again).dump();
                            assert_eq!(again, encoded, "{command:?} encodes differently twice");
                        }
                        Err(e) => panic!("{command:?} re-encoded as {encoded:?}: {e:?}"),
                    }
                }
                Incoming::Append { length, .. } => {
                    let mut left = length as usize;
                    let mut chunk = Vec::new();
                    while left > 0 {
                        chunk.clear();
                        let n = input
                            .read_literal(&mut chunk, left.min(LITERAL_STEP_BYTES))
                            .await
                            .expect("reading from a slice cannot fail");
                        if n == 0 {
                            break;
                        }
                        left -= n;
                    }
                    if left == 0 {
                        let _ = input
                            .finish_append()
                            .await
                            .expect("reading from a slice cannot fail");
                    }
                }
                Incoming::Bad { .. }
                | Incoming::AppendTooBig { .. }
                | Incoming::ListExtended(_) => {}
            }
            out.flush().await.expect("writing to a Vec cannot fail");
        }
    });
    drop(runtime);
    assert_responses_parse(&written);
}

/// A clock stopped at one instant: sessions replay the same way every time.
struct StoppedClock;

impl Clock for StoppedClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
}

/// Connects the server's storage client to an in-process fakes3 over in-memory pipes.
struct InMemoryStore(fakes3::FakeS3);

impl Connector for InMemoryStore {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        Box::pin(async move {
            let api = if addr.starts_with("s3") {
                fakes3::Api::S3
            } else {
                fakes3::Api::K2v
            };
            let (client, server) = tokio::io::duplex(64 * 1024);
            let fake = self.0.clone();
            tokio::spawn(async move {
                // The server side ends when the client drops its pipe.
                let _ = fake.serve_connection(api, server).await;
            });
            Ok(Box::new(client) as BoxIo)
        })
    }
}

/// What a session's client sends before the fuzzed bytes, picked by the input's first byte.
fn preamble(mode: u8) -> (Vec<u8>, usize) {
    let login = format!("p1 LOGIN {USER} {PASSWORD}\r\n");
    let message = "From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
    let append = format!(
        "p2 APPEND INBOX (\\Seen) {{{}+}}\r\n{message}\r\np3 APPEND INBOX {{{}+}}\r\n{message}\r\n",
        message.len(),
        message.len()
    );
    match mode % 3 {
        0 => (Vec::new(), 0),
        1 => (login.into_bytes(), 1),
        _ => (
            format!("{login}{append}p4 SELECT INBOX\r\n").into_bytes(),
            4,
        ),
    }
}

/// Runs a whole session over `data`: the first byte picks a preamble (none; LOGIN; LOGIN, two
/// APPENDs and SELECT), the rest is sent as is, then the client closes its side and reads to the
/// end. Returns everything the server wrote. Panics when a check fails.
pub fn run_session(data: &[u8]) -> Vec<u8> {
    let Some((&mode, stream)) = data.split_first() else {
        return Vec::new();
    };
    let (mut sent, preamble_tags) = preamble(mode);
    sent.extend_from_slice(stream);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    let output = runtime.block_on(async move {
        let fake =
            fakes3::FakeS3::new(fakes3::Config::default()).expect("default fakes3 config is valid");
        let setup = testkit::Setup::new()
            .user(USER, PASSWORD)
            .limits(Limits {
                line_bytes_max: 4096,
                literal_bytes_max: 64 * 1024,
                chunk_bytes: 1024,
                auth_failure_delay_ms: 10,
                ..Limits::default()
            })
            .kdf(KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            })
            .clock(Arc::new(StoppedClock))
            .hostname("fuzz");
        // The store's endpoints are names the in-memory connector reads, not addresses.
        let mut config = setup.config("s3.fuzz:1", "k2v.fuzz:1");
        config.storage.max_in_flight = 4;
        config.storage.max_idle_connections = 2;
        let mut env = setup.env();
        env.connector = Arc::new(InMemoryStore(fake));
        let server = Server::new(config, env);
        let (client, connection) = tokio::io::duplex(16 * 1024);
        let peer: SocketAddr = "192.0.2.1:1143".parse().expect("a valid address");
        let session = tokio::spawn(async move { server.serve_imap(connection, peer).await });
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            // The server may close first (LOGOUT, a refused literal): later bytes go nowhere.
            let _ = to_server.write_all(&sent).await;
            let _ = to_server.shutdown().await;
        });
        let mut output = Vec::new();
        let read = tokio::time::timeout(SESSION_TIME_MAX, from_server.read_to_end(&mut output));
        match read.await {
            Ok(result) => {
                result.expect("reading from an in-memory pipe cannot fail");
            }
            Err(_) => panic!(
                "the session did not end after its client left; it wrote {:?}",
                String::from_utf8_lossy(&output)
            ),
        }
        writer.await.expect("the client's writer does not panic");
        session.await.expect("the session does not panic");
        output
    });
    drop(runtime);
    assert_responses_parse(&output);
    check_preamble(&output, preamble_tags);
    output
}

/// The preamble's commands all succeeded, so the fuzzed bytes reach the states they were meant for.
fn check_preamble(output: &[u8], tags: usize) {
    let text = String::from_utf8_lossy(output);
    for i in 1..=tags {
        let tag = format!("p{i} ");
        let ok = text
            .lines()
            .any(|l| l.starts_with(&tag) && l[tag.len()..].starts_with("OK"));
        assert!(ok, "preamble command p{i} failed:\n{text}");
    }
}

/// A response status, as the checks need it (imap-proto's own is neither `Clone` nor `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO.
    No,
    /// BAD.
    Bad,
    /// PREAUTH.
    PreAuth,
    /// BYE.
    Bye,
}

impl From<imap_proto::Status> for Status {
    fn from(status: imap_proto::Status) -> Status {
        match status {
            imap_proto::Status::Ok => Status::Ok,
            imap_proto::Status::No => Status::No,
            imap_proto::Status::Bad => Status::Bad,
            imap_proto::Status::PreAuth => Status::PreAuth,
            imap_proto::Status::Bye => Status::Bye,
        }
    }
}

/// What a check needs to know of one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A tagged completion: tag and status.
    Done(String, Status),
    /// An untagged status response (OK, NO, BAD, BYE, PREAUTH).
    Status(Status),
    /// A continuation request.
    Continue,
    /// Any other untagged response.
    Data,
}

/// The one response imap-proto 0.17 has no parser for (RFC 2342), exactly as the server sends it.
const NAMESPACE_RESPONSE: &[u8] = b"* NAMESPACE ((\"\" \".\")) NIL NIL\r\n";

/// Where the first response of `bytes` ends: lines end in CRLF, and a line that ends in `{n}`
/// continues after `n` bytes of literal. `None` while it is incomplete.
fn response_end(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let nl = bytes[pos..].windows(2).position(|w| w == b"\r\n")?;
        let after = pos + nl + 2;
        match announced(&bytes[pos..pos + nl]) {
            None => return Some(after),
            Some(n) => {
                pos = after.checked_add(n)?;
                if bytes.len() < pos {
                    return None;
                }
            }
        }
    }
}

/// The length of the literal announced at the end of `line` (without its CRLF), if any.
fn announced(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let digits = &inner[inner.iter().rposition(|&b| b == b'{')? + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// imap-proto 0.17 parses BODYSTRUCTURE but not the same structure sent as a FETCH `BODY` item
/// (FETCH FULL's): in a FETCH response's text (not its literals) `BODY (` becomes
/// `BODYSTRUCTURE (`, whose grammar is a superset.
fn adapt_fetch_body(response: &[u8]) -> Vec<u8> {
    let is_fetch = response.starts_with(b"* ")
        && response[2..]
            .iter()
            .position(|&b| b == b' ')
            .is_some_and(|sp| response[2 + sp..].starts_with(b" FETCH ("));
    if !is_fetch {
        return response.to_vec();
    }
    let mut out = Vec::with_capacity(response.len() + 32);
    let mut pos = 0;
    while pos < response.len() {
        let nl = response[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(response.len(), |nl| pos + nl + 2);
        let line = &response[pos..nl];
        let mut i = 0;
        while i < line.len() {
            if line[i..].starts_with(b"BODY (") && i > 0 && matches!(line[i - 1], b' ' | b'(') {
                out.extend_from_slice(b"BODYSTRUCTURE (");
                i += b"BODY (".len();
            } else {
                out.push(line[i]);
                i += 1;
            }
        }
        pos = nl;
        // Copy the literal this line announces, untouched.
        if let Some(n) = line.strip_suffix(b"\r\n").and_then(announced) {
            let end = (pos + n).min(response.len());
            out.extend_from_slice(&response[pos..end]);
            pos = end;
        }
    }
    out
}

/// Splits the first response off `bytes` and parses it with imap-proto: `Ok(None)` while it is
/// incomplete, `Ok(Some((length, answer)))` once parsed, `Err` with a description if unparsable.
pub fn next_response(bytes: &[u8]) -> Result<Option<(usize, Answer)>, String> {
    if bytes.starts_with(NAMESPACE_RESPONSE) {
        return Ok(Some((NAMESPACE_RESPONSE.len(), Answer::Data)));
    }
    let Some(end) = response_end(bytes) else {
        return Ok(None);
    };
    let adapted = adapt_fetch_body(&bytes[..end]);
    match imap_proto::Response::parse(&adapted) {
        Ok((rest, response)) if rest.is_empty() => {
            let answer = match response {
                imap_proto::Response::Done { tag, status, .. } => {
                    Answer::Done(tag.0, status.into())
                }
                imap_proto::Response::Data { status, .. } => Answer::Status(status.into()),
                imap_proto::Response::Continue(_) => Answer::Continue,
                _ => Answer::Data,
            };
            Ok(Some((end, answer)))
        }
        Ok((rest, _)) => Err(format!(
            "{:?} left over after {:?}",
            String::from_utf8_lossy(rest),
            String::from_utf8_lossy(&adapted[..adapted.len() - rest.len()])
        )),
        Err(e) => Err(format!(
            "{:?}: {e:?}",
            String::from_utf8_lossy(&bytes[..end.min(300)])
        )),
    }
}

/// Fails unless `bytes` is a sequence of whole IMAP responses that imap-proto parses.
pub fn assert_responses_parse(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        match next_response(rest) {
            Ok(Some((end, _))) => rest = &rest[end..],
            Ok(None) => panic!(
                "the output ends inside a response: {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(300)])
            ),
            Err(e) => panic!(
                "unparsable response at byte {}: {e}",
                bytes.len() - rest.len()
            ),
        }
    }
}
