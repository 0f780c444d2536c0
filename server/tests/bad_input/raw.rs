//! The bad-input tests' client: it sends raw bytes and parses every answer with imap-proto (the
//! fuzz harness's parser), and opens sessions in each state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use server::config::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{self, Answer, Status};

/// How long the server may stay silent before the client decides it waits for more bytes.
const QUIET: Duration = Duration::from_millis(150);
/// Sent when the server waits for more: completes a pending literal or line, then is one line.
const FILLER_BYTES: usize = 8 * 1024;
/// NOOPs tried (with fillers between) before a session is declared stuck.
const NOOP_ATTEMPTS: usize = 24;

pub(crate) const BYE: Answer = Answer::Status(Status::Bye);

/// How reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The tagged completion awaited arrived, with this status.
    Done(Status),
    /// The server closed the connection.
    Closed,
    /// Nothing more came for [`QUIET`].
    Quiet,
}

/// A client that sends raw bytes and parses every answer with imap-proto.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    unparsed: Vec<u8>,
    pub(crate) seen: Vec<Answer>,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Raw {
        Raw::wrap(TcpStream::connect(addr).await.expect("connect")).await
    }

    /// Connects from the loopback address `from` (127.0.0.0/8 is all loopback on Linux).
    pub(crate) async fn connect_from(addr: SocketAddr, from: Ipv4Addr) -> Raw {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(from), 0))
            .expect("bind a loopback address");
        Raw::wrap(socket.connect(addr).await.expect("connect")).await
    }

    async fn wrap(stream: TcpStream) -> Raw {
        let mut raw = Raw {
            stream,
            unparsed: Vec::new(),
            seen: Vec::new(),
        };
        let end = raw.read_while(|seen| seen.is_empty()).await;
        assert_eq!(
            raw.seen,
            vec![Answer::Status(Status::Ok)],
            "a greeting: {end:?}"
        );
        raw
    }

    /// Sends bytes; false if the server has closed the connection.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads and parses until the completion tagged `tag`, the end of the connection, or silence.
    pub(crate) async fn read_until(&mut self, tag: Option<&str>) -> End {
        let Some(tag) = tag else {
            return self.read_while(|_| true).await;
        };
        let before = self.seen.len();
        let end = self
            .read_while(|seen| {
                !seen
                    .iter()
                    .any(|s| matches!(s, Answer::Done(t, _) if t == tag))
            })
            .await;
        let done = self.seen[before..].iter().find_map(|s| match s {
            Answer::Done(t, status) if t == tag => Some(*status),
            _ => None,
        });
        match done {
            Some(status) => End::Done(status),
            None => end,
        }
    }

    /// Reads and parses while `more` says so of the responses seen since the call, until the end
    /// of the connection or silence.
    async fn read_while(&mut self, more: impl Fn(&[Answer]) -> bool) -> End {
        let before = self.seen.len();
        loop {
            loop {
                let (end, answer) = match harness::next_response(&self.unparsed) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) => break,
                    Err(e) => panic!("unparsable answer: {e}"),
                };
                self.unparsed.drain(..end);
                self.seen.push(answer);
                if !more(&self.seen[before..]) {
                    return End::Quiet;
                }
            }
            let mut buf = [0u8; 16 * 1024];
            match tokio::time::timeout(QUIET, self.stream.read(&mut buf)).await {
                Err(_) => return End::Quiet,
                // A reset counts as a close: the server went away either way.
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.unparsed.is_empty(),
                        "the connection ended inside a response: {:?}",
                        String::from_utf8_lossy(&self.unparsed)
                    );
                    return End::Closed;
                }
                Ok(Ok(n)) => self.unparsed.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends a command and reads to its completion.
    pub(crate) async fn run(&mut self, tag: &str, command: &str) -> End {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.read_until(Some(tag)).await
    }

    /// The session either answers a NOOP with OK (after fillers, if it was waiting for literal or
    /// line bytes) or was closed after a BYE. Returns true if it is still open.
    pub(crate) async fn usable_or_closed_with_bye(&mut self) -> bool {
        for attempt in 0..NOOP_ATTEMPTS {
            let tag = format!("zz{attempt}");
            let end = if self.send(format!("{tag} NOOP\r\n").as_bytes()).await {
                self.read_until(Some(&tag)).await
            } else {
                self.read_until(None).await
            };
            match end {
                End::Done(status) => {
                    assert_eq!(status, Status::Ok, "NOOP after bad input: {:?}", self.seen);
                    return true;
                }
                End::Closed => {
                    assert!(
                        self.seen.contains(&BYE),
                        "closed without BYE: {:?}",
                        self.seen
                    );
                    return false;
                }
                End::Quiet => {
                    let mut filler = vec![b' '; FILLER_BYTES];
                    filler.extend_from_slice(b"\r\n");
                    self.send(&filler).await;
                }
            }
        }
        panic!(
            "the session neither answered NOOP nor closed: {:?}",
            self.seen
        );
    }
}

/// Limits of the tests: cheap failed logins, everything else as in production.
pub(crate) fn limits() -> Limits {
    Limits {
        auth_failure_delay_ms: 5,
        ..Limits::default()
    }
}

/// The state a session is in before the bad input arrives.
#[derive(Clone, Copy, Debug)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

pub(crate) async fn session_in(addr: SocketAddr, state: State) -> Raw {
    let mut c = Raw::connect(addr).await;
    if matches!(state, State::Authenticated | State::Selected) {
        assert_eq!(
            c.run("s1", "LOGIN alice alice-pw").await,
            End::Done(Status::Ok)
        );
    }
    if matches!(state, State::Selected) {
        let m = "Subject: hello\r\n\r\nbody\r\n";
        let append = format!("APPEND INBOX {{{}+}}\r\n{m}", m.len());
        assert_eq!(c.run("s2", &append).await, End::Done(Status::Ok));
        assert_eq!(c.run("s3", "SELECT INBOX").await, End::Done(Status::Ok));
    }
    c
}

/// Sends `bad`, then checks that every answer parsed and the session is usable or closed with BYE.
pub(crate) async fn survives(addr: SocketAddr, state: State, bad: &[u8]) -> Raw {
    let mut c = session_in(addr, state).await;
    c.send(bad).await;
    c.usable_or_closed_with_bye().await;
    c
}
