//! A minimal IMAP client over loopback TCP for the tests that talk to a server by hand (our server,
//! Dovecot): one connection, commands with fresh tags, whole responses with their literals.

// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a command may take, its answer included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// One connection; `name` says which server in failure messages.
pub struct Conn {
    name: &'static str,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    tag: u32,
}

/// The answer to one command.
pub struct Reply {
    /// Each untagged response, literals inline.
    pub untagged: Vec<Vec<u8>>,
    pub tagged: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.tagged
            .split(' ')
            .nth(1)
            .is_some_and(|s| s.eq_ignore_ascii_case("OK"))
    }
}

impl Conn {
    pub async fn connect(name: &'static str, addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("{name}: connect timed out"))
            .unwrap_or_else(|e| panic!("{name}: connect to {addr}: {e}"));
        let (r, w) = stream.into_split();
        let mut c = Conn {
            name,
            reader: BufReader::new(r),
            writer: w,
            tag: 0,
        };
        let greeting = c.response().await;
        assert!(
            greeting.starts_with(b"* OK"),
            "{name} greeting: {}",
            String::from_utf8_lossy(&greeting)
        );
        c
    }

    /// One whole response: a line, and while it ends with a literal, the literal and the next line.
    pub async fn response(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self
                .reader
                .read_until(b'\n', &mut out)
                .await
                .unwrap_or_else(|e| panic!("{}: read: {e}", self.name));
            assert!(
                n > 0,
                "{}: connection closed after {}",
                self.name,
                String::from_utf8_lossy(&out)
            );
            match trailing_literal(&out[start..]) {
                Some(len) => {
                    let at = out.len();
                    out.resize(at + len, 0);
                    self.reader
                        .read_exact(&mut out[at..])
                        .await
                        .unwrap_or_else(|e| panic!("{}: literal: {e}", self.name));
                }
                None => return out,
            }
        }
    }

    /// Sends `command` (which may hold `{n+}` literals) with a fresh tag; returns the answer.
    pub async fn run(&mut self, command: &[u8]) -> Reply {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        let name = self.name;
        let shown = String::from_utf8_lossy(&command[..command.len().min(200)]).into_owned();
        tokio::time::timeout(COMMAND_TIMEOUT, async {
            self.writer
                .write_all(&line)
                .await
                .unwrap_or_else(|e| panic!("{name}: write: {e}"));
            let mut untagged = Vec::new();
            loop {
                let r = self.response().await;
                if r.starts_with(format!("{tag} ").as_bytes()) {
                    return Reply {
                        untagged,
                        tagged: String::from_utf8_lossy(&r).trim_end().to_string(),
                    };
                }
                untagged.push(r);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer to {shown}"))
    }
}

/// `s` as an IMAP string argument: a quoted string if it is plain ASCII, else a LITERAL+.
pub fn astring(s: &[u8]) -> Vec<u8> {
    if s.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        let mut out = vec![b'"'];
        out.extend_from_slice(s);
        out.push(b'"');
        out
    } else {
        let mut out = format!("{{{}+}}\r\n", s.len()).into_bytes();
        out.extend_from_slice(s);
        out
    }
}

/// The length of the literal a line ends with, if any.
pub fn trailing_literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

pub use testkit::to_crlf;
