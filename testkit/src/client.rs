//! A line-oriented IMAP test client: sends tagged commands and reads whole lines up to their
//! tagged answer, and literals; plus helpers for tests that talk raw bytes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A test client that reads whole lines and literals.
pub struct Client {
    /// The server's side of the conversation.
    pub reader: BufReader<OwnedReadHalf>,
    /// The client's side.
    pub writer: OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting, which must be `* OK`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr)
            .await
            .expect("the server listens")
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

/// Reads until the text `needle` has arrived, handing each chunk read to `keep`. Fails the test
/// if the server closes the connection first or sends nothing for `patience`.
pub async fn read_until_text(
    reader: &mut (impl AsyncRead + Unpin),
    needle: &str,
    patience: Duration,
    mut keep: impl FnMut(&[u8]),
) {
    assert!(!needle.is_empty(), "a text to wait for");
    let needle = needle.as_bytes();
    // Only the end of what came can complete the needle: the last bytes before a chunk and the chunk.
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::time::timeout(patience, reader.read(&mut buf))
            .await
            .expect("answers keep coming")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        keep(&buf[..n]);
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(needle.len()).any(|w| w == needle) {
            return;
        }
        tail.drain(..tail.len().saturating_sub(needle.len()));
    }
}

/// Splits `stream` and sends `bytes` on a task of its own, so that the test reads (or does not
/// read) the answers meanwhile: the read half, and the task, which gives the write half back once
/// everything is sent.
pub fn send_in_background(
    stream: TcpStream,
    bytes: Vec<u8>,
) -> (OwnedReadHalf, JoinHandle<OwnedWriteHalf>) {
    let (reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer
            .write_all(&bytes)
            .await
            .expect("the server keeps reading");
        writer
    });
    (reader, sender)
}

/// Sends `script` over a new blocking connection to `addr` and reads until the server closes it
/// (the script ends with LOGOUT): the whole transcript, greeting included.
pub fn transcript(addr: &str, script: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("the server listens");
    stream
        .write_all(script.as_bytes())
        .expect("send the commands");
    let mut transcript = String::new();
    stream
        .read_to_string(&mut transcript)
        .expect("read until the server closes");
    transcript
}

/// Bare LF to CRLF (an LF already preceded by CR is kept): lines as IMAP carries them.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
