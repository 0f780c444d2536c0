//! Reads IMAP commands off the socket with bounded memory. Lines are capped; small literals are
//! gathered into the command; an APPEND's message literal is not read here but handed to the caller
//! to stream to storage. imap-codec does the parsing once a command is complete.

use std::io;

use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::LiteralMode;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::output::Output;

/// Literals inside ordinary commands (not APPEND messages) are gathered up to this many bytes in all.
const SMALL_LITERALS_MAX: usize = 64 * 1024;
/// Bytes reserved for reading while a session waits for input: a waiting session holds no more.
const IDLE_READ_BYTES: usize = 256;
/// Bytes reserved for reading while data flows.
const BUSY_READ_BYTES: usize = 16 * 1024;

/// What the client sent next.
pub enum Incoming {
    /// A complete, decoded command.
    Command(Command<'static>),
    /// An APPEND whose message literal follows on the socket (already accepted with `+` if sync).
    Append {
        /// The command with an empty message: mailbox, flags and date.
        command: Command<'static>,
        /// Announced literal length.
        length: u32,
    },
    /// An APPEND whose literal is over the limit; nothing of it was read (sync) or it was skipped.
    AppendTooBig {
        /// Tag of the command.
        tag: String,
    },
    /// A command that did not parse; `tag` if one could be read.
    Bad {
        /// Tag, if readable.
        tag: Option<String>,
        /// What was wrong.
        reason: &'static str,
    },
    /// A LIST with selection or return options, which imap-codec does not decode.
    ListExtended(super::list_extended::ListExtended),
    /// The client closed the connection.
    Eof,
}

/// The read side of a session.
pub struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    line_max: usize,
    literal_max: u64,
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// A reader with the given line and literal limits.
    pub fn new(reader: R, line_max: usize, literal_max: u64) -> Self {
        Input {
            reader,
            buf: Vec::new(),
            line_max,
            literal_max,
        }
    }

    /// Reads more bytes into the buffer; returns false at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let want = if self.buf.is_empty() {
            IDLE_READ_BYTES
        } else {
            BUSY_READ_BYTES
        };
        self.buf.reserve(want);
        Ok(self.reader.read_buf(&mut self.buf).await? > 0)
    }

    /// Gives back the buffer's memory when nothing is pending, so a waiting session stays small.
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// Reads one line (CRLF included) into `into`; `Ok(false)` on EOF. A line over the limit is
    /// consumed and dropped, and reported as `Err(TooLong)`.
    async fn read_line(
        &mut self,
        into: &mut Vec<u8>,
        budget: usize,
    ) -> io::Result<Result<bool, TooLong>> {
        let mut scanned = 0;
        let mut overflow = false;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos + 1;
                if !overflow && into.len() + end <= budget {
                    into.extend_from_slice(&self.buf[..end]);
                }
                let too_long = overflow || into.len() + end > budget;
                self.buf.drain(..end);
                return Ok(if too_long { Err(TooLong) } else { Ok(true) });
            }
            if into.len() + self.buf.len() > budget {
                // Drop what we have of the oversized line and keep reading to its end.
                overflow = true;
                self.buf.clear();
                scanned = 0;
            } else {
                scanned = self.buf.len();
            }
            if !self.fill().await? {
                return Ok(Ok(false));
            }
        }
    }

    /// Reads exactly `n` bytes into `into`.
    async fn read_exact_into(&mut self, into: &mut Vec<u8>, n: usize) -> io::Result<bool> {
        let mut left = n;
        while left > 0 {
            if self.buf.is_empty() && !self.fill().await? {
                return Ok(false);
            }
            let take = left.min(self.buf.len());
            into.extend_from_slice(&self.buf[..take]);
            self.buf.drain(..take);
            left -= take;
        }
        Ok(true)
    }

    /// Reads up to `max` bytes of a literal being streamed; returns the bytes read (0 at EOF).
    pub async fn read_literal(&mut self, into: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        if self.buf.is_empty() && !self.fill().await? {
            return Ok(0);
        }
        let take = max.min(self.buf.len());
        into.extend_from_slice(&self.buf[..take]);
        self.buf.drain(..take);
        Ok(take)
    }

    /// Puts bytes back in front of the buffer (read past the end of an LMTP message).
    pub fn unread(&mut self, bytes: &[u8]) {
        self.buf.splice(0..0, bytes.iter().copied());
    }

    /// Skips `n` bytes (a refused non-synchronising literal).
    async fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            if self.buf.is_empty() && !self.fill().await? {
                return Ok(false);
            }
            let take = (n.min(self.buf.len() as u64)) as usize;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(true)
    }

    /// Reads one line of at most `max` bytes (CRLF included); `Ok(None)` at end of stream,
    /// `Ok(Some(Err(TooLong)))` for a longer line, which is consumed and dropped.
    pub async fn line(&mut self, max: usize) -> io::Result<Option<Result<Vec<u8>, TooLong>>> {
        let mut line = Vec::new();
        Ok(match self.read_line(&mut line, max).await? {
            Ok(true) => Some(Ok(line)),
            Ok(false) => None,
            Err(TooLong) => Some(Err(TooLong)),
        })
    }

    /// Reads the line that ends IDLE, without its CRLF; `None` at end of stream.
    pub async fn idle_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        match self.read_line(&mut line, 64).await? {
            Ok(true) => {
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                Ok(Some(line))
            }
            Ok(false) => Ok(None),
            Err(TooLong) => Ok(Some(Vec::new())),
        }
    }

    /// Reads the rest of an APPEND line after its literal (normally just CRLF).
    pub async fn finish_append(&mut self) -> io::Result<Result<bool, TooLong>> {
        let mut rest = Vec::new();
        let r = self.read_line(&mut rest, self.line_max).await?;
        Ok(r.map(|ok| ok && (rest == b"\r\n" || rest == b"\n")))
    }

    /// Reads the next command.
    pub async fn next<W: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        out: &mut Output<W>,
    ) -> io::Result<Incoming> {
        let mut message: Vec<u8> = Vec::new();
        let mut literals = 0usize;
        loop {
            match self
                .read_line(&mut message, self.line_max + literals)
                .await?
            {
                Ok(true) => {}
                Ok(false) => return Ok(Incoming::Eof),
                Err(TooLong) => {
                    return Ok(Incoming::Bad {
                        tag: tag_of(&message),
                        reason: "line too long",
                    });
                }
            }
            let Some((announce_at, length, mode)) = literal_announcement(&message) else {
                return Ok(decode_complete(&message));
            };
            // An APPEND's message literal is streamed, not gathered: decode the command with an
            // empty literal in its place to learn mailbox, flags and date.
            let mut probe = message[..announce_at].to_vec();
            probe.extend_from_slice(b"{0}\r\n\r\n");
            if let Ok((_, command)) = CommandCodec::default().decode_static(&probe) {
                if matches!(command.body, CommandBody::Append { .. }) {
                    if u64::from(length) > self.literal_max {
                        let tag = command.tag.inner().to_string();
                        if mode == LiteralMode::NonSync && !self.skip(u64::from(length)).await? {
                            return Ok(Incoming::Eof);
                        }
                        if mode == LiteralMode::NonSync {
                            let mut rest = Vec::new();
                            let _ = self.read_line(&mut rest, self.line_max).await?;
                        }
                        return Ok(Incoming::AppendTooBig { tag });
                    }
                    if mode == LiteralMode::Sync {
                        out.line(b"+ Ready for literal data\r\n");
                        out.flush().await?;
                    }
                    return Ok(Incoming::Append { command, length });
                }
            }
            literals += length as usize;
            if literals > SMALL_LITERALS_MAX {
                let tag = tag_of(&message);
                if mode == LiteralMode::NonSync && !self.skip(u64::from(length)).await? {
                    return Ok(Incoming::Eof);
                }
                if mode == LiteralMode::NonSync {
                    let mut rest = Vec::new();
                    let _ = self.read_line(&mut rest, self.line_max).await?;
                }
                return Ok(Incoming::Bad {
                    tag,
                    reason: "literal too large",
                });
            }
            if mode == LiteralMode::Sync {
                out.line(b"+ Ready for literal data\r\n");
                out.flush().await?;
            }
            if !self.read_exact_into(&mut message, length as usize).await? {
                return Ok(Incoming::Eof);
            }
        }
    }
}

/// A line went over the limit.
#[derive(Debug)]
pub struct TooLong;

/// The literal announced at the end of a line: (offset of `{`, length, mode).
fn literal_announcement(line: &[u8]) -> Option<(usize, u32, LiteralMode)> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let mut mode = LiteralMode::Sync;
    if let Some(d) = digits.strip_suffix(b"+") {
        digits = d;
        mode = LiteralMode::NonSync;
    }
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let open = if open > 0 && inner[open - 1] == b'~' {
        open - 1
    } else {
        open
    };
    Some((open, u32::try_from(length).ok()?, mode))
}

fn decode_complete(message: &[u8]) -> Incoming {
    match CommandCodec::default().decode_static(message) {
        Ok((rest, command)) if rest.is_empty() => Incoming::Command(command),
        Ok(_) | Err(CommandDecodeError::Incomplete) | Err(CommandDecodeError::Failed) => {
            match super::list_extended::parse(message) {
                Some(list) => Incoming::ListExtended(list),
                None => Incoming::Bad {
                    tag: tag_of(message),
                    reason: "malformed command",
                },
            }
        }
        Err(CommandDecodeError::LiteralFound { .. }) => Incoming::Bad {
            tag: tag_of(message),
            reason: "malformed literal",
        },
    }
}

/// The tag at the start of a command line, if it is a valid tag.
pub fn tag_of(message: &[u8]) -> Option<String> {
    let end = message.iter().position(|&b| b == b' ')?;
    let tag = &message[..end];
    let valid = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\+]".contains(&b));
    valid.then(|| String::from_utf8_lossy(tag).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_announcements() {
        assert_eq!(
            literal_announcement(b"a APPEND x {12}\r\n").map(|a| (a.0, a.1)),
            Some((11, 12))
        );
        assert!(matches!(
            literal_announcement(b"a APPEND x {12+}\r\n"),
            Some((11, 12, LiteralMode::NonSync))
        ));
        assert!(literal_announcement(b"a NOOP\r\n").is_none());
        assert!(literal_announcement(b"a X {99999999999}\r\n").is_none());
    }

    #[test]
    fn reads_tags() {
        assert_eq!(tag_of(b"a1 NOOP\r\n").as_deref(), Some("a1"));
        assert_eq!(tag_of(b"a{ NOOP\r\n"), None);
        assert_eq!(tag_of(b"NOOP"), None);
    }
}
