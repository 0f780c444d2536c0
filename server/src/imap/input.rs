//! Reads IMAP commands off the socket with bounded memory. Lines are capped; small literals are
//! gathered into the command; an APPEND's message literal is not read here but handed to the caller
//! to stream to storage. imap-codec does the parsing once a command is complete. Before login a
//! whole command is held to a smaller size and APPEND is refused, so an unauthenticated
//! connection holds little memory whatever it sends.

use std::io;

use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::LiteralMode;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::output::Output;

/// Literals inside ordinary commands (not APPEND messages) are gathered up to this many bytes in all.
const SMALL_LITERALS_MAX: usize = 64 * 1024;
/// Bytes read at once, into the task's own state, while a session waits for input.
const WAITING_READ_BYTES: usize = 32;
/// Bytes reserved for the rest of a command line.
const LINE_READ_BYTES: usize = 256;
/// Bytes reserved for reading while data flows.
const BUSY_READ_BYTES: usize = 16 * 1024;
/// Bytes reserved for reading while data flows before login.
const LOGIN_READ_BYTES: usize = 2 * 1024;
/// What a read is for, which sets how much buffer it takes.
#[derive(Clone, Copy)]
enum Reading {
    /// The start of a command, or DONE: the session is waiting.
    Waiting,
    /// The rest of a command line.
    Line,
    /// Literal bytes.
    Data,
}

/// Bytes of an oversized line kept to answer with its tag (tags are at most 64 bytes here).
const HEAD_BYTES: usize = 80;
/// Before login, an ID command may take this many bytes (line and literals, each): RFC 2971 allows
/// 30 pairs of a 30-octet field and a 1,024-octet value, about 32 KiB quoted; the rest is room for
/// the tag and escapes.
const ID_BYTES_MAX: usize = 40 * 1024;

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
    /// Before login: the most bytes a command's line, and its literals, may take each (and APPEND
    /// is refused); `None` once logged in.
    login_bytes_max: Option<usize>,
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// A reader with the given line and literal limits.
    pub fn new(reader: R, line_max: usize, literal_max: u64) -> Self {
        Input {
            reader,
            buf: Vec::new(),
            line_max,
            literal_max,
            login_bytes_max: None,
        }
    }

    /// Holds commands to `bytes_max` (line, and literals) and refuses APPEND until
    /// [`Input::logged_in`].
    pub fn before_login(mut self, bytes_max: usize) -> Self {
        self.login_bytes_max = Some(bytes_max);
        self
    }

    /// Lifts the limits of [`Input::before_login`].
    pub fn logged_in(&mut self) {
        self.login_bytes_max = None;
    }

    /// Reads more bytes into the buffer; returns false at end of stream.
    async fn fill(&mut self, reading: Reading) -> io::Result<bool> {
        let want = match reading {
            Reading::Waiting if self.buf.is_empty() => {
                // Waiting for a command (or for DONE): read into a few bytes of the task's own
                // state, so that a waiting session holds no read buffer at all.
                let mut first = [0u8; WAITING_READ_BYTES];
                let n = self.reader.read(&mut first).await?;
                self.buf.extend_from_slice(&first[..n]);
                return Ok(n > 0);
            }
            // Most command lines are short: a small buffer first, a large one for long lines.
            Reading::Waiting | Reading::Line if self.buf.len() < LINE_READ_BYTES => {
                LINE_READ_BYTES - self.buf.len()
            }
            // Before login reads stay small too: an unauthenticated session holds little.
            _ if self.login_bytes_max.is_some() => LOGIN_READ_BYTES,
            _ => BUSY_READ_BYTES,
        };
        // Exact: doubling would let a stream of long lines grow the buffer to twice the limit.
        self.buf.reserve_exact(want);
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
                let too_long = overflow || into.len() + end > budget;
                if !too_long {
                    into.extend_from_slice(&self.buf[..end]);
                } else if !overflow {
                    self.keep_head(into);
                }
                self.buf.drain(..end);
                return Ok(if too_long { Err(TooLong) } else { Ok(true) });
            }
            if into.len() + self.buf.len() > budget {
                // Drop what we have of the oversized line and keep reading to its end.
                if !overflow {
                    self.keep_head(into);
                }
                overflow = true;
                self.buf.clear();
                scanned = 0;
            } else {
                scanned = self.buf.len();
            }
            let reading = if into.is_empty() && self.buf.is_empty() {
                Reading::Waiting
            } else {
                Reading::Line
            };
            if !self.fill(reading).await? {
                return Ok(Ok(false));
            }
        }
    }

    /// Whether the next command is an ID: reads until its tag and name are buffered (at most
    /// [`HEAD_BYTES`]); only looks, the bytes stay for [`Input::next`].
    async fn next_is_id(&mut self) -> io::Result<bool> {
        loop {
            let head = &self.buf[..self.buf.len().min(HEAD_BYTES)];
            // No more bytes can decide it once the head is full or holds the line's end (a space
            // at byte 79 of random input must not wait for bytes the head will never hold).
            let complete = head.len() == HEAD_BYTES || head.contains(&b'\n');
            if let Some(tag) = head.iter().position(|&b| b == b' ') {
                let name = &head[tag + 1..];
                if name.len() >= 3 || complete {
                    return Ok(name.len() >= 3
                        && name[..2].eq_ignore_ascii_case(b"ID")
                        && matches!(name[2], b' ' | b'('));
                }
            } else if complete {
                return Ok(false);
            }
            let reading = if self.buf.is_empty() {
                Reading::Waiting
            } else {
                Reading::Line
            };
            if !self.fill(reading).await? {
                return Ok(false); // end of stream: the read that follows reports it
            }
        }
    }

    /// Keeps the head of an oversized line, so that its refusal can carry the command's tag.
    fn keep_head(&self, into: &mut Vec<u8>) {
        let keep = HEAD_BYTES.saturating_sub(into.len()).min(self.buf.len());
        into.extend_from_slice(&self.buf[..keep]);
    }

    /// Reads exactly `n` bytes into `into`.
    async fn read_exact_into(&mut self, into: &mut Vec<u8>, n: usize) -> io::Result<bool> {
        into.reserve_exact(n);
        let mut left = n;
        while left > 0 {
            if self.buf.is_empty() && !self.fill(Reading::Data).await? {
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
        if self.buf.is_empty() && !self.fill(Reading::Data).await? {
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
            if self.buf.is_empty() && !self.fill(Reading::Data).await? {
                return Ok(false);
            }
            let take = (n.min(self.buf.len() as u64)) as usize;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(true)
    }

    /// Skips what is left of a refused command after a non-synchronising literal: the rest of its
    /// line and the further non-synchronising literals that line announces, so that the next
    /// command starts in sync. Returns false at end of stream.
    async fn skip_rest_of_command(&mut self, skippable: u64) -> io::Result<bool> {
        loop {
            let mut rest = Vec::new();
            match self.read_line(&mut rest, self.line_max).await? {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(TooLong) => return Ok(true),
            }
            match literal_announcement(&rest) {
                Some(a) if a.mode == LiteralMode::NonSync && a.length <= skippable => {
                    if !self.skip(a.length).await? {
                        return Ok(false);
                    }
                }
                _ => return Ok(true),
            }
        }
    }

    /// Refuses a command whose literal is not accepted. A synchronising literal was not invited,
    /// so nothing more comes; a non-synchronising one is already on its way: up to `skippable`
    /// bytes it is skipped, beyond that the connection is closed with BYE (RFC 7888, section 4),
    /// as reading gigabytes to stay in sync is worse.
    async fn refuse<W: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        out: &mut Output<W>,
        tag: Option<String>,
        announced: Announced,
        skippable: u64,
        reason: &'static str,
    ) -> io::Result<Incoming> {
        if announced.mode == LiteralMode::NonSync {
            if announced.length > skippable {
                let line = format!("{} BAD {reason}\r\n", tag.as_deref().unwrap_or("*"));
                out.line(line.as_bytes());
                out.line(b"* BYE literal too large to skip, closing\r\n");
                out.close().await?;
                return Ok(Incoming::Eof);
            }
            if !self.skip(announced.length).await? || !self.skip_rest_of_command(skippable).await? {
                return Ok(Incoming::Eof);
            }
        }
        Ok(Incoming::Bad { tag, reason })
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
        let mut login_bytes_max = self.login_bytes_max;
        // ID comes before login with some clients: it may reach RFC 2971's limits.
        if let Some(max) = login_bytes_max {
            if self.next_is_id().await? {
                login_bytes_max = Some(max.max(ID_BYTES_MAX));
            }
        }
        let (line_max, literals_max) = match login_bytes_max {
            Some(max) => (self.line_max.min(max), SMALL_LITERALS_MAX.min(max)),
            None => (self.line_max, SMALL_LITERALS_MAX),
        };
        // Non-synchronising literals of refused commands are skipped up to this many bytes.
        let skippable = match self.login_bytes_max {
            Some(max) => max as u64,
            None => u64::from(u32::MAX),
        };
        let mut message: Vec<u8> = Vec::new();
        let mut literals = 0usize;
        loop {
            match self.read_line(&mut message, line_max + literals).await? {
                Ok(true) => {}
                Ok(false) => return Ok(Incoming::Eof),
                Err(TooLong) => {
                    return Ok(Incoming::Bad {
                        tag: tag_of(&message),
                        reason: "line too long",
                    });
                }
            }
            let Some(announced) = literal_announcement(&message) else {
                return Ok(decode_complete(&message));
            };
            if announced.length > u64::from(u32::MAX) {
                // RFC 3501's number is 32 bits: the command is malformed.
                let tag = tag_of(&message);
                return self
                    .refuse(out, tag, announced, 0, "literal length out of range")
                    .await;
            }
            // An APPEND's message literal is streamed, not gathered: decode the command with an
            // empty literal in its place to learn mailbox, flags and date.
            let mut probe = message[..announced.at].to_vec();
            probe.extend_from_slice(b"{0}\r\n\r\n");
            if let Ok((_, command)) = CommandCodec::default().decode_static(&probe) {
                if matches!(command.body, CommandBody::Append { .. }) {
                    let tag = Some(command.tag.inner().to_string());
                    if self.login_bytes_max.is_some() {
                        return self
                            .refuse(out, tag, announced, skippable, "log in first")
                            .await;
                    }
                    if announced.length > self.literal_max {
                        let tag = command.tag.inner().to_string();
                        if announced.mode == LiteralMode::NonSync
                            && (!self.skip(announced.length).await?
                                || !self.skip_rest_of_command(skippable).await?)
                        {
                            return Ok(Incoming::Eof);
                        }
                        return Ok(Incoming::AppendTooBig { tag });
                    }
                    if announced.mode == LiteralMode::Sync {
                        out.line(b"+ Ready for literal data\r\n");
                        out.flush().await?;
                    }
                    let length = u32::try_from(announced.length)
                        .expect("lengths over u32::MAX were refused above");
                    return Ok(Incoming::Append { command, length });
                }
            }
            let length = announced.length as usize;
            if literals + length > literals_max {
                let tag = tag_of(&message);
                return self
                    .refuse(out, tag, announced, skippable, "[TOOBIG] literal too large")
                    .await;
            }
            literals += length;
            if announced.mode == LiteralMode::Sync {
                out.line(b"+ Ready for literal data\r\n");
                out.flush().await?;
            }
            if !self.read_exact_into(&mut message, length).await? {
                return Ok(Incoming::Eof);
            }
        }
    }
}

/// A line went over the limit.
#[derive(Debug)]
pub struct TooLong;

/// A literal announced at the end of a line.
#[derive(Clone, Copy, Debug)]
struct Announced {
    /// Offset of its `{` (or of the `~` of a literal8).
    at: usize,
    /// Announced length (saturating: any number of digits is read, none is trusted).
    length: u64,
    mode: LiteralMode,
}

/// The literal announced at the end of a line, if any.
fn literal_announcement(line: &[u8]) -> Option<Announced> {
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
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length = digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let at = if open > 0 && inner[open - 1] == b'~' {
        open - 1
    } else {
        open
    };
    Some(Announced { at, length, mode })
}

/// Whether every `{` of `message` opens at most ten digits: a longer number is no literal length
/// (RFC 3501's are 32 bits), and the fallback parsers are not given one to add up.
fn literal_lengths_are_sane(message: &[u8]) -> bool {
    message.iter().enumerate().all(|(i, &b)| {
        b != b'{'
            || message[i + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count()
                <= 10
    })
}

fn decode_complete(message: &[u8]) -> Incoming {
    match CommandCodec::default().decode_static(message) {
        Ok((rest, command)) if rest.is_empty() => Incoming::Command(command),
        Ok(_) | Err(CommandDecodeError::Incomplete) | Err(CommandDecodeError::Failed) => {
            // The fallback parser is lenient: its tag must be one a response can carry.
            let list = literal_lengths_are_sane(message)
                .then(|| super::list_extended::parse(message))
                .flatten()
                .filter(|list| tag_of(message).as_deref() == Some(list.tag.as_str()));
            match list {
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

/// Decodes a mailbox name from modified UTF-7 (RFC 3501, section 5.1.3); `None` if a shifted
/// run is not valid base64 of UTF-16 (the utf7-imap crate panics on those). A `&` never closed by
/// `-` is kept as it is, as clients that do not encode names send it.
pub fn decode_modified_utf7(text: &str) -> Option<String> {
    use base64::Engine;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        base64::engine::general_purpose::NO_PAD,
    );
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(dash) = after.find('-') else {
            out.push_str(&rest[amp..]);
            return Some(out);
        };
        let shifted = &after[..dash];
        if shifted.is_empty() {
            out.push('&');
        } else {
            let bytes = engine.decode(shifted).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[dash + 1..];
    }
    out.push_str(rest);
    Some(out)
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
            literal_announcement(b"a APPEND x {12}\r\n").map(|a| (a.at, a.length)),
            Some((11, 12))
        );
        assert!(matches!(
            literal_announcement(b"a APPEND x {12+}\r\n"),
            Some(Announced {
                at: 11,
                length: 12,
                mode: LiteralMode::NonSync
            })
        ));
        assert!(literal_announcement(b"a NOOP\r\n").is_none());
        assert_eq!(
            literal_announcement(b"a X {4294967296+}\r\n").map(|a| a.length),
            Some(4_294_967_296)
        );
        assert_eq!(
            literal_announcement(&[b"a X {".as_slice(), &[b'9'; 40], b"}\r\n"].concat())
                .map(|a| a.length),
            Some(u64::MAX)
        );
    }

    #[test]
    fn overlong_literal_lengths_are_not_sane() {
        assert!(literal_lengths_are_sane(b"a LIST {4294967295}\r\nx"));
        assert!(!literal_lengths_are_sane(
            b"a LIST {18446744073709551615} x\r\n"
        ));
    }

    #[test]
    fn modified_utf7_decodes_and_refuses_what_is_not() {
        assert_eq!(decode_modified_utf7("Caf&AOk-").as_deref(), Some("Café"));
        assert_eq!(
            decode_modified_utf7("&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-").as_deref(),
            Some("Отправленные")
        );
        assert_eq!(decode_modified_utf7("a&-b").as_deref(), Some("a&b"));
        assert_eq!(
            decode_modified_utf7("Tom & Jerry").as_deref(),
            Some("Tom & Jerry")
        );
        // Found by fuzzing: utf7-imap panics on these.
        assert_eq!(decode_modified_utf7("Caf&A[Ok-"), None);
        assert_eq!(decode_modified_utf7("&A-"), None);
        assert_eq!(decode_modified_utf7("&AOl-"), None);
        assert_eq!(decode_modified_utf7("&2AA-"), None, "a lone surrogate");
    }

    #[test]
    fn reads_tags() {
        assert_eq!(tag_of(b"a1 NOOP\r\n").as_deref(), Some("a1"));
        assert_eq!(tag_of(b"a{ NOOP\r\n"), None);
        assert_eq!(tag_of(b"NOOP"), None);
    }
}
