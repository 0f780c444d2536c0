//! The write side of a session: responses are gathered in a small buffer and written when a command
//! ends or the buffer fills, so a slow reader makes the session wait (backpressure) instead of
//! growing memory. The buffer is given back while the session waits.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bytes gathered before a write is forced.
const FLUSH_BYTES: usize = 16 * 1024;

/// Buffered response writer.
pub struct Output<W> {
    writer: W,
    buf: Vec<u8>,
    /// Every byte written, for figures.
    pub written: u64,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    /// A writer over `writer`.
    pub fn new(writer: W) -> Self {
        Output {
            writer,
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Queues bytes (a whole line or part of one).
    pub fn line(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Queues bytes, writing first if the buffer is full.
    pub async fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > FLUSH_BYTES {
            self.write_buffered().await?;
        }
        if bytes.len() > FLUSH_BYTES {
            self.writer.write_all(bytes).await?;
            self.written += bytes.len() as u64;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    async fn write_buffered(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.writer.write_all(&self.buf).await?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes everything queued and gives the buffer's memory back.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.write_buffered().await?;
        self.writer.flush().await?;
        self.buf = Vec::new();
        Ok(())
    }

    /// Shuts the connection down after flushing.
    pub async fn close(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.writer.shutdown().await
    }
}

/// Appends `s` as an IMAP string: quoted when it can be, a literal otherwise.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024
        && s.iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// Appends `s` as an astring: an atom when it is one, else a string.
pub fn push_astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(s);
    } else {
        push_string(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal() {
        let mut out = Vec::new();
        push_string(&mut out, b"a \"b\"");
        assert_eq!(out, b"\"a \\\"b\\\"\"");
        out.clear();
        push_string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
        out.clear();
        push_astring(&mut out, b"INBOX");
        assert_eq!(out, b"INBOX");
    }
}

/// A UID set in compact form: `1:3,7` for [1, 2, 3, 7] (input in any order).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted: Vec<u32> = uids.to_vec();
    sorted.sort_unstable();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod uid_set_tests {
    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(super::uid_set(&[3, 1, 2, 7]), "1:3,7");
        assert_eq!(super::uid_set(&[5]), "5");
    }
}
