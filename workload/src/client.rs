//! The simulated IMAP client: sends tagged commands and literals, splits what the server sends
//! into complete responses, and parses each one with imap-proto (an independent parser: a
//! response it cannot parse is a failure, recorded with its bytes).
//!
//! It measures each command's latency in simulated time (`tokio::time` inside turmoil), counts
//! commands and completions whose status was not the expected one, and hashes (blake2b) every
//! byte the server sent, so two runs can be compared byte for byte.

use std::collections::BTreeSet;
use std::io;

use blake2::{Blake2b512, Digest};
use hdrhistogram::Histogram;
use imap_proto::{Capability, Response, ResponseCode, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How many bytes of an offending response a failure record keeps.
const FAILURE_BYTES_MAX: usize = 4096;

/// How many failure records a client keeps (the counters keep counting).
const FAILURES_KEPT_MAX: usize = 32;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Longest latency a histogram tracks, in microseconds (one hour); longer ones saturate.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// An empty latency histogram (microseconds, 3 significant figures). Fixed bounds: in
/// hdrhistogram 7.6 `saturating_record` does not grow an auto-resizing histogram, it clamps.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
        .expect("1 us .. 1 h at 3 figures is a valid range")
}

/// The `q` quantile of `h`, as the lowest value of its bucket (0 for an empty histogram):
/// a latency recorded as 3000 reads back as 3000, not as its bucket's top, 3001.
pub fn quantile_us(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.lowest_equivalent(h.value_at_quantile(q))
    }
}

/// What can stop a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before completing the command.
    #[error("connection closed by the server while waiting for {waiting_for}")]
    Closed {
        /// What the client was waiting for.
        waiting_for: String,
    },
    /// A response line or literal announced more bytes than the client accepts.
    #[error("response too large: {bytes} bytes")]
    TooLarge {
        /// The announced size.
        bytes: u64,
    },
}

/// Something the server sent that was wrong, kept for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// imap-proto could not parse this response (first bytes kept).
    Unparsable {
        /// The command it answered.
        command: String,
        /// The response's first bytes.
        bytes: Vec<u8>,
    },
    /// A command completed with another status than the expected one.
    Unexpected {
        /// The command.
        command: String,
        /// The expected status.
        expected: String,
        /// The tagged response line.
        line: String,
    },
    /// The connection broke or closed in the middle of a command.
    Broken {
        /// The command.
        command: String,
        /// What happened.
        error: String,
    },
}

/// A client's counters.
#[derive(Debug)]
pub struct ClientStats {
    /// Tagged commands sent.
    pub commands: u64,
    /// Commands whose completion did not have the expected status (or never came).
    pub unexpected: u64,
    /// Responses imap-proto could not parse.
    pub unparsable: u64,
    /// Bytes received from the server.
    pub bytes_received: u64,
    /// Command latencies in simulated microseconds.
    pub latency_us: Histogram<u64>,
    /// The first failures, in order.
    pub failures: Vec<Failure>,
    hasher: Blake2b512,
}

impl Default for ClientStats {
    fn default() -> Self {
        ClientStats {
            commands: 0,
            unexpected: 0,
            unparsable: 0,
            bytes_received: 0,
            latency_us: latency_histogram(),
            failures: Vec::new(),
            hasher: Blake2b512::new(),
        }
    }
}

impl ClientStats {
    /// The blake2b-512 hash of every byte received so far.
    pub fn received_hash(&self) -> [u8; 64] {
        self.hasher.clone().finalize().into()
    }

    fn fail(&mut self, failure: Failure) {
        if self.failures.len() < FAILURES_KEPT_MAX {
            self.failures.push(failure);
        }
    }
}

/// The responses that answered one command, each a complete, parsable response.
#[derive(Debug, Default)]
pub struct Reply {
    /// Every response received while the command ran, in order, the tagged one last.
    pub responses: Vec<Vec<u8>>,
    /// The completion status, if the tagged response was parsable.
    pub status: Option<Status>,
}

impl Reply {
    /// The responses, parsed (the unparsable ones were already recorded and are skipped).
    pub fn parsed(&self) -> impl Iterator<Item = Response<'_>> {
        self.responses
            .iter()
            .filter_map(|bytes| parse_complete(bytes))
    }

    /// Whether the command completed with OK.
    pub fn is_ok(&self) -> bool {
        self.status == Some(Status::Ok)
    }
}

/// Parses one complete response; `None` if imap-proto fails or leaves bytes over.
pub fn parse_complete(bytes: &[u8]) -> Option<Response<'_>> {
    match Response::parse(bytes) {
        Ok((&[], response)) => Some(response),
        _ => None,
    }
}

/// Where a complete response ends in `buf`, if one is there: lines end in CRLF, and a line that
/// ends in `{n}` (or `~{n}`, `{n+}`) continues after `n` bytes of literal.
pub fn response_end(buf: &[u8], max_bytes: u64) -> Result<Option<usize>, ClientError> {
    let mut pos = 0;
    loop {
        let Some(nl) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            if buf.len() as u64 > max_bytes {
                return Err(ClientError::TooLarge {
                    bytes: buf.len() as u64,
                });
            }
            return Ok(None);
        };
        let line = &buf[pos..pos + nl];
        let after = pos + nl + 2;
        match literal_len(line) {
            None => return Ok(Some(after)),
            Some(n) => {
                if n > max_bytes {
                    return Err(ClientError::TooLarge { bytes: n });
                }
                let end = after as u64 + n;
                if (buf.len() as u64) < end {
                    return Ok(None);
                }
                pos = end as usize;
            }
        }
    }
}

/// The literal length announced at the end of a line, if any.
fn literal_len(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A simulated IMAP client over any byte stream (turmoil TCP in the simulation).
pub struct ImapClient<S> {
    stream: S,
    buf: Vec<u8>,
    next_tag: u64,
    capabilities: BTreeSet<String>,
    /// Largest response accepted, in bytes.
    response_bytes_max: u64,
    stats: ClientStats,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapClient<S> {
    /// Wraps a connected stream and reads the greeting (capabilities in it are remembered).
    pub async fn connect(stream: S) -> Result<(Self, Reply), ClientError> {
        let mut client = ImapClient {
            stream,
            buf: Vec::new(),
            next_tag: 1,
            capabilities: BTreeSet::new(),
            response_bytes_max: 256 * 1024 * 1024,
            stats: ClientStats::default(),
        };
        let greeting = client.read_response("greeting").await?;
        client.note_capabilities(&greeting);
        let status = parse_complete(&greeting).and_then(|r| match r {
            Response::Data { status, .. } => Some(status),
            _ => None,
        });
        if !matches!(status, Some(Status::Ok) | Some(Status::PreAuth)) {
            client.stats.unexpected += 1;
            client.stats.fail(Failure::Unexpected {
                command: "greeting".into(),
                expected: "OK".into(),
                line: String::from_utf8_lossy(&greeting).trim_end().to_string(),
            });
        }
        Ok((
            client,
            Reply {
                responses: vec![greeting],
                status,
            },
        ))
    }

    /// The counters so far.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Ends the client, returning its counters (the stream is dropped).
    pub fn into_stats(self) -> ClientStats {
        self.stats
    }

    /// Whether the server announced `capability` (case-insensitive).
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.contains(&capability.to_ascii_uppercase())
    }

    /// Sends `command` (without tag or CRLF) and reads up to its completion, expecting OK.
    pub async fn command(&mut self, command: &str) -> Result<Reply, ClientError> {
        self.command_expect(command, Status::Ok).await
    }

    /// Sends `command` and reads up to its completion, taking OK or NO as expected: for commands whose
    /// NO the caller handles, e.g. a LOGIN refused for now with `[UNAVAILABLE]`.
    pub async fn command_ok_or_no(&mut self, command: &str) -> Result<Reply, ClientError> {
        self.command_judged(command, |result| match result {
            Ok(reply) if reply.status == Some(Status::No) => Status::No,
            _ => Status::Ok,
        })
        .await
    }

    /// Sends `command` and reads up to its completion, expecting `expected`.
    pub async fn command_expect(
        &mut self,
        command: &str,
        expected: Status,
    ) -> Result<Reply, ClientError> {
        self.command_judged(command, |_| expected).await
    }

    /// Sends the one-line `command` and reads up to its completion; `expected` says, from the
    /// result, which status was expected.
    async fn command_judged(
        &mut self,
        command: &str,
        expected: impl FnOnce(&Result<Reply, ClientError>) -> Status,
    ) -> Result<Reply, ClientError> {
        let tag = self.tag();
        let started = tokio::time::Instant::now();
        self.stats.commands += 1;
        let line = format!("{tag} {command}\r\n");
        let result = self
            .send_and_complete(&tag, command, line.as_bytes(), None)
            .await;
        let expected = expected(&result);
        self.finish(command, expected, started, result)
    }

    /// Sends `command` followed by a literal (`{n}` waiting for `+`, or `{n+}` with LITERAL+),
    /// e.g. `APPEND INBOX (\Seen)` and the message, and reads up to the completion.
    pub async fn command_with_literal(
        &mut self,
        command: &str,
        literal: &[u8],
        expected: Status,
    ) -> Result<Reply, ClientError> {
        let tag = self.tag();
        let started = tokio::time::Instant::now();
        self.stats.commands += 1;
        let plus = if self.has_capability("LITERAL+") {
            "+"
        } else {
            ""
        };
        let line = format!("{tag} {command} {{{}{plus}}}\r\n", literal.len());
        let result = self
            .send_and_complete(
                &tag,
                command,
                line.as_bytes(),
                Some((literal, plus.is_empty())),
            )
            .await;
        self.finish(command, expected, started, result)
    }

    /// Starts IDLE: sends the command and waits for the continuation; returns the tag to pass to
    /// [`ImapClient::idle_done`]. Untagged responses before the continuation are kept in the reply.
    pub async fn idle_start(&mut self) -> Result<(String, Reply), ClientError> {
        let tag = self.tag();
        self.stats.commands += 1;
        self.stream
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        self.stream.flush().await?;
        let mut reply = Reply::default();
        loop {
            let response = self.read_response("IDLE continuation").await?;
            let is_continuation = response.starts_with(b"+");
            let is_completion = is_tagged(&response, &tag);
            self.absorb("IDLE", &mut reply, response);
            if is_completion {
                self.stats.unexpected += 1;
                return Ok((tag, reply));
            }
            if is_continuation {
                return Ok((tag, reply));
            }
        }
    }

    /// Waits (while idling) for an untagged response that `wanted` accepts; returns it.
    pub async fn wait_untagged(
        &mut self,
        waiting_for: &str,
        wanted: impl Fn(&Response<'_>) -> bool,
    ) -> Result<Vec<u8>, ClientError> {
        let mut reply = Reply::default();
        loop {
            let response = self.read_response(waiting_for).await?;
            let hit = parse_complete(&response).is_some_and(|r| wanted(&r));
            if hit {
                return Ok(response);
            }
            self.absorb(waiting_for, &mut reply, response);
        }
    }

    /// Ends IDLE with DONE and reads up to the tagged completion, expecting OK.
    pub async fn idle_done(&mut self, tag: &str) -> Result<Reply, ClientError> {
        let started = tokio::time::Instant::now();
        let result = self.send_and_complete(tag, "IDLE", b"DONE\r\n", None).await;
        self.finish("IDLE", Status::Ok, started, result)
    }

    fn tag(&mut self) -> String {
        let tag = format!("A{:04}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    fn finish(
        &mut self,
        command: &str,
        expected: Status,
        started: tokio::time::Instant,
        result: Result<Reply, ClientError>,
    ) -> Result<Reply, ClientError> {
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.latency_us.saturating_record(elapsed_us);
        match result {
            Ok(reply) => {
                if reply.status.as_ref() != Some(&expected) {
                    self.stats.unexpected += 1;
                    let line = reply
                        .responses
                        .last()
                        .map(|r| String::from_utf8_lossy(r).trim_end().to_string());
                    self.stats.fail(Failure::Unexpected {
                        command: command.to_string(),
                        expected: format!("{expected:?}"),
                        line: line.unwrap_or_default(),
                    });
                }
                Ok(reply)
            }
            Err(error) => {
                self.stats.unexpected += 1;
                self.stats.fail(Failure::Broken {
                    command: command.to_string(),
                    error: error.to_string(),
                });
                Err(error)
            }
        }
    }

    async fn send_and_complete(
        &mut self,
        tag: &str,
        command: &str,
        line: &[u8],
        literal: Option<(&[u8], bool)>,
    ) -> Result<Reply, ClientError> {
        let mut reply = Reply::default();
        self.stream.write_all(line).await?;
        if let Some((bytes, wait_for_continuation)) = literal {
            if wait_for_continuation {
                loop {
                    let response = self.read_response(command).await?;
                    let is_continuation = response.starts_with(b"+");
                    let is_completion = is_tagged(&response, tag);
                    self.absorb(command, &mut reply, response);
                    if is_completion {
                        // Refused before the literal was sent.
                        return Ok(reply);
                    }
                    if is_continuation {
                        break;
                    }
                }
            }
            self.stream.write_all(bytes).await?;
            self.stream.write_all(b"\r\n").await?;
        }
        self.stream.flush().await?;
        loop {
            let response = self.read_response(command).await?;
            let done = is_tagged(&response, tag);
            self.absorb(command, &mut reply, response);
            if done {
                return Ok(reply);
            }
        }
    }

    /// Parses a response (recording it if unparsable), notes status and capabilities, keeps it.
    fn absorb(&mut self, command: &str, reply: &mut Reply, response: Vec<u8>) {
        let response = if parse_complete(&response).is_none() {
            body_as_bodystructure(&response)
                .filter(|r| parse_complete(r).is_some())
                .unwrap_or(response)
        } else {
            response
        };
        match parse_complete(&response) {
            Some(Response::Done { status, .. }) => reply.status = Some(status),
            Some(_) => {}
            None => {
                self.stats.unparsable += 1;
                let kept = response.len().min(FAILURE_BYTES_MAX);
                self.stats.fail(Failure::Unparsable {
                    command: command.to_string(),
                    bytes: response[..kept].to_vec(),
                });
            }
        }
        self.note_capabilities(&response);
        reply.responses.push(response);
    }

    fn note_capabilities(&mut self, response: &[u8]) {
        let capabilities = match parse_complete(response) {
            Some(Response::Capabilities(caps)) => caps,
            Some(Response::Data { outcome, .. }) | Some(Response::Done { outcome, .. }) => {
                match outcome.code {
                    Some(ResponseCode::Capabilities(caps)) => caps,
                    _ => return,
                }
            }
            _ => return,
        };
        self.capabilities.clear();
        for capability in capabilities {
            let name = match capability {
                Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            };
            self.capabilities.insert(name);
        }
    }

    /// Reads one complete response (line plus any literals), hashing the bytes as they arrive.
    async fn read_response(&mut self, waiting_for: &str) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(end) = response_end(&self.buf, self.response_bytes_max)? {
                let rest = self.buf.split_off(end);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK_BYTES, 0);
            let n = self.stream.read(&mut self.buf[start..]).await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e.into());
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                return Err(ClientError::Closed {
                    waiting_for: waiting_for.to_string(),
                });
            }
            self.stats.hasher.update(&self.buf[start..]);
            self.stats.bytes_received += n as u64;
        }
    }
}

/// imap-proto 0.17 parses `BODYSTRUCTURE` without extension data but not the non-extensible
/// `BODY (...)` form of FETCH BODY/FULL (RFC 3501 `body`), whose grammar is the same: the copy of
/// `response` with ` BODY (` read as ` BODYSTRUCTURE (`, if it has one.
fn body_as_bodystructure(response: &[u8]) -> Option<Vec<u8>> {
    let at = response.windows(7).position(|w| w == b" BODY (")?;
    let mut copy = Vec::with_capacity(response.len() + 9);
    copy.extend_from_slice(&response[..at]);
    copy.extend_from_slice(b" BODYSTRUCTURE (");
    copy.extend_from_slice(&response[at + 7..]);
    Some(copy)
}

fn is_tagged(response: &[u8], tag: &str) -> bool {
    response.len() > tag.len()
        && response.starts_with(tag.as_bytes())
        && response[tag.len()] == b' '
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_proto::AttributeValue;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use turmoil::net::{TcpListener, TcpStream};

    #[test]
    fn latency_histogram_keeps_millisecond_values() {
        let mut h = latency_histogram();
        for v in [2000, 2000, 3000, 4000, 49_000] {
            h.saturating_record(v);
        }
        assert_eq!(quantile_us(&h, 0.5), 3000);
        // Three significant figures: 49,000 reads back within 0.1%.
        assert!((48_951..=49_000).contains(&quantile_us(&h, 0.99)));
        assert_eq!(quantile_us(&latency_histogram(), 0.5), 0);
        assert!(h.max() >= 49_000);
    }

    #[test]
    fn response_end_waits_for_the_whole_literal() {
        let data = b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n* 2 EXISTS\r\n";
        assert_eq!(response_end(&data[..20], 1000).expect("small"), None);
        assert_eq!(response_end(&data[..27], 1000).expect("small"), None);
        assert_eq!(response_end(data, 1000).expect("small"), Some(31));
        assert!(matches!(
            response_end(b"* 1 FETCH (BODY[] {5000}\r\n", 100),
            Err(ClientError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_extensible_body_is_read_with_the_bodystructure_grammar() {
        let raw = b"* 1 FETCH (UID 1 BODY (\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 134 2))\r\n";
        assert!(
            parse_complete(raw).is_none(),
            "imap-proto 0.17 still rejects BODY (...)"
        );
        let copy = body_as_bodystructure(raw).expect("has a BODY (");
        assert!(matches!(parse_complete(&copy), Some(Response::Fetch(1, _))));
        assert_eq!(body_as_bodystructure(b"* 1 FETCH (UID 2)\r\n"), None);
    }

    #[test]
    fn literal_len_reads_plain_binary_and_nonsync_forms() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_len(b"* 1 FETCH (BINARY[] ~{3}"), Some(3));
        assert_eq!(literal_len(b"A1 APPEND INBOX {7+}"), Some(7));
        assert_eq!(literal_len(b"* OK done {}"), None);
        assert_eq!(literal_len(b"* OK {x}"), None);
    }

    /// A scripted IMAP server: answers each command line with canned bytes; APPEND gets a
    /// continuation, then its literal is read and checked before the OK.
    async fn scripted_server() -> turmoil::Result {
        let listener = TcpListener::bind("0.0.0.0:143").await?;
        let (stream, _) = listener.accept().await?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        write
            .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted ready\r\n")
            .await?;
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let (tag, rest) = line.trim_end().split_once(' ').expect("tagged command");
            let verb = rest.split(' ').next().expect("a verb").to_ascii_uppercase();
            let answer = match verb.as_str() {
                "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n"),
                "APPEND" => {
                    let size = literal_len(line.trim_end().as_bytes()).expect("a literal") as usize;
                    write.write_all(b"+ go ahead\r\n").await?;
                    let mut literal = vec![0; size + 2];
                    read.read_exact(&mut literal).await?;
                    assert_eq!(&literal[size..], b"\r\n");
                    format!("{tag} OK [APPENDUID 1 1] APPEND completed\r\n")
                }
                "FETCH" => format!(
                    "* 1 FETCH (UID 1 BODY[] {{10}}\r\nhello\r\nbye)\r\n* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n{tag} OK fetched\r\n"
                ),
                "GARBAGE" => format!("* THIS IS (NOT IMAP\r\n{tag} NO nope\r\n"),
                "LOGOUT" => format!("* BYE logging out\r\n{tag} OK bye\r\n"),
                _ => format!("{tag} BAD unknown\r\n"),
            };
            write.write_all(answer.as_bytes()).await?;
        }
    }

    #[test]
    fn client_sends_literals_and_parses_literal_responses_with_imap_proto() {
        let mut sim = turmoil::Builder::new().rng_seed(1).build();
        sim.host("imap", scripted_server);
        sim.client("client", async {
            let stream = TcpStream::connect("imap:143").await?;
            let (mut client, greeting) = ImapClient::connect(stream).await?;
            assert!(greeting.status == Some(Status::Ok));
            assert!(client.has_capability("auth=plain"));
            let reply = client.command("CAPABILITY").await?;
            assert!(reply.is_ok());
            assert!(client.has_capability("IDLE"));
            assert!(!client.has_capability("LITERAL+"));
            let reply = client.command_with_literal("APPEND INBOX", b"Subject: x\r\n\r\nbody", Status::Ok).await?;
            assert!(reply.is_ok(), "{reply:?}");
            let reply = client.command("FETCH 1:* (UID BODY[])").await?;
            let bodies: Vec<Vec<u8>> = reply
                .parsed()
                .filter_map(|r| match r {
                    Response::Fetch(_, attrs) => attrs.into_iter().find_map(|a| match a {
                        AttributeValue::BodySection { data: Some(data), .. } => Some(data.into_owned()),
                        _ => None,
                    }),
                    _ => None,
                })
                .collect();
            assert_eq!(bodies, vec![b"hello\r\nbye".to_vec()]);
            // An unparsable response is a recorded failure; NO where OK was expected too.
            let reply = client.command("GARBAGE").await?;
            assert_eq!(reply.status, Some(Status::No));
            let reply = client.command("LOGOUT").await?;
            assert!(reply.is_ok());
            let stats = client.into_stats();
            assert_eq!(stats.commands, 5);
            assert_eq!(stats.unexpected, 1);
            assert_eq!(stats.unparsable, 1);
            assert!(matches!(&stats.failures[0], Failure::Unparsable { bytes, .. } if bytes.starts_with(b"* THIS IS")));
            assert_eq!(stats.latency_us.len(), 5);
            assert!(stats.latency_us.min() > 0, "latency is simulated network time");
            Ok(())
        });
        sim.run().expect("the scripted session completes");
    }
}
