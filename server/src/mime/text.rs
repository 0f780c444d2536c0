//! The searchable text of a message, as Dovecot's SEARCH BODY and TEXT see it, computed while the
//! stored message streams through: each part's header is parsed for its Content-Type and
//! Content-Transfer-Encoding, the body of each text/* or message/* part (or of a part without a
//! Content-Type) is transfer-decoded, converted to UTF-8 and case-folded, and fed to a substring
//! matcher. For TEXT, every header field of every part is fed too (encoded words decoded).
//!
//! [`segments`] says which byte ranges of the stored message to feed, in order; [`TextSearch`]
//! takes those bytes in chunks of any size. Memory is a few buffers of at most
//! [`SLICE_BYTES`]-derived sizes, the header field being read (at most [`FIELD_BYTES_MAX`]) and the
//! needles: never the message.

use super::decode::{decode_header_value, fold_into, CharsetDecoder, Cte, TransferDecoder};
use super::header::{eq_ic, parse_content_type};
use super::meta::{Kind, MessageMeta, Part};

/// Bytes of a body chunk decoded at a time.
pub const SLICE_BYTES: usize = 4096;
/// Bytes of one header field kept (the rest of a longer field is not searched).
pub const FIELD_BYTES_MAX: usize = 64 * 1024;
/// Bytes of a charset name kept.
const CHARSET_BYTES_MAX: usize = 64;

/// Case-insensitive substring search for several needles over a stream of text.
///
/// Hand-written Knuth-Morris-Pratt: the text arrives in pieces that the caller cannot keep (each
/// decoded chunk is dropped before the next is read), and KMP carries a match across pieces in one
/// integer per needle; the usual crates (`memchr::memmem`, `aho-corasick`) search one slice, or
/// need a blocking `std::io::Read`.
#[derive(Debug, Clone)]
pub struct Finder {
    needles: Vec<Needle>,
    folded: String,
}

#[derive(Debug, Clone)]
struct Needle {
    /// The case-folded needle, UTF-8.
    pattern: Vec<u8>,
    /// KMP failure function: `fail[i]` is the longest proper border of `pattern[..=i]`.
    fail: Vec<usize>,
    /// Bytes of `pattern` matched so far.
    state: usize,
    found: bool,
}

impl Needle {
    fn new(text: &str) -> Needle {
        let mut folded = String::new();
        fold_into(text, &mut folded);
        let pattern = folded.into_bytes();
        let mut fail = vec![0; pattern.len()];
        let mut k = 0;
        for i in 1..pattern.len() {
            while k > 0 && pattern[i] != pattern[k] {
                k = fail[k - 1];
            }
            if pattern[i] == pattern[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Needle {
            found: pattern.is_empty(),
            pattern,
            fail,
            state: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.found {
            return;
        }
        for &b in bytes {
            while self.state > 0 && self.pattern[self.state] != b {
                self.state = self.fail[self.state - 1];
            }
            if self.pattern[self.state] == b {
                self.state += 1;
                if self.state == self.pattern.len() {
                    self.found = true;
                    return;
                }
            }
        }
    }
}

impl Finder {
    /// A finder for these needles (UTF-8; an empty needle is found at once).
    pub fn new<S: AsRef<str>>(needles: &[S]) -> Finder {
        Finder {
            needles: needles.iter().map(|n| Needle::new(n.as_ref())).collect(),
            folded: String::new(),
        }
    }

    /// Forgets partial matches: what follows is not a continuation of what came before.
    pub fn reset(&mut self) {
        self.needles.iter_mut().for_each(|n| n.state = 0);
    }

    /// Feeds the next piece of text.
    pub fn feed(&mut self, text: &str) {
        self.folded.clear();
        fold_into(text, &mut self.folded);
        let folded = std::mem::take(&mut self.folded);
        for n in &mut self.needles {
            n.feed(folded.as_bytes());
        }
        self.folded = folded;
    }

    /// Whether every needle was found.
    pub fn all_found(&self) -> bool {
        self.needles.iter().all(|n| n.found)
    }

    /// For each needle, in order, whether it was found.
    pub fn found(&self) -> Vec<bool> {
        self.needles.iter().map(|n| n.found).collect()
    }
}

/// Whether `haystack` holds `needle`, ignoring case (both UTF-8).
pub fn contains_folded(haystack: &str, needle: &str) -> bool {
    let mut f = Finder::new(&[needle]);
    f.feed(haystack);
    f.all_found()
}

/// A byte range of the stored message to feed to a [`TextSearch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// The header of the next part (a new part begins).
    Header {
        /// First byte.
        start: u64,
        /// Just past the last byte.
        end: u64,
        /// Whether this is the message's own header.
        root: bool,
    },
    /// The body of the part whose header came last.
    Body {
        /// First byte.
        start: u64,
        /// Just past the last byte.
        end: u64,
    },
}

/// The segments of a message in byte order: each part's header, and the body of each leaf part
/// (a multipart's own preamble, boundaries and epilogue are never searched; a message/rfc822
/// part's body is the embedded message, with its header and parts).
pub fn segments(meta: &MessageMeta) -> Segments<'_> {
    Segments {
        stack: vec![(std::slice::from_ref(&meta.root), 0)],
        body: None,
    }
}

/// Iterator of [`segments`]: a stack of sibling lists as deep as the part tree.
pub struct Segments<'a> {
    stack: Vec<(&'a [Part], usize)>,
    body: Option<Segment>,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        if let Some(body) = self.body.take() {
            return Some(body);
        }
        loop {
            let root = self.stack.len() == 1;
            let (parts, next) = self.stack.last_mut()?;
            let Some(part) = parts.get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            match &part.kind {
                Kind::Single => {
                    self.body = Some(Segment::Body {
                        start: part.body_start,
                        end: part.body_end,
                    })
                }
                Kind::Multipart(children) => self.stack.push((children, 0)),
                Kind::Message(m) => self.stack.push((std::slice::from_ref(&m.part), 0)),
            }
            return Some(Segment::Header {
                start: part.header_start,
                end: part.body_start,
                root,
            });
        }
    }
}

/// What one part's header says about its body.
#[derive(Debug)]
struct PartHead {
    /// The last Content-Type says text/* or message/* (or there is none).
    text: bool,
    /// The first Content-Type has been read.
    content_type_seen: bool,
    /// The `charset` of the first Content-Type.
    charset: Option<Vec<u8>>,
    /// The last Content-Transfer-Encoding.
    cte: Cte,
}

impl Default for PartHead {
    fn default() -> Self {
        PartHead {
            text: true,
            content_type_seen: false,
            charset: None,
            cte: Cte::Identity,
        }
    }
}

/// The search of one message's text for the strings of BODY keys (bodies only) and of TEXT keys
/// (headers and bodies), fed segment by segment.
pub struct TextSearch {
    body_finder: Finder,
    text_finder: Finder,
    head: PartHead,
    /// The header field being read (first line and continuations, line breaks kept).
    field: Vec<u8>,
    /// Whether `field` holds a field (a line was started).
    field_open: bool,
    /// Whether the current header line was seen to be a field or a continuation (not blank).
    line_decided: bool,
    /// Whether the current header line started with CR.
    line_crs: bool,
    transfer: TransferDecoder,
    charset: CharsetDecoder,
    bytes: Vec<u8>,
    text: String,
}

impl TextSearch {
    /// A search for `body` strings in bodies and `text` strings in headers and bodies.
    pub fn new<S: AsRef<str>>(body: &[S], text: &[S]) -> TextSearch {
        TextSearch {
            body_finder: Finder::new(body),
            text_finder: Finder::new(text),
            head: PartHead::default(),
            field: Vec::new(),
            field_open: false,
            line_decided: false,
            line_crs: false,
            transfer: TransferDecoder::Identity,
            charset: CharsetDecoder::new(None),
            bytes: Vec::new(),
            text: String::new(),
        }
    }

    /// A new part begins (its header comes next): partial matches are forgotten.
    pub fn begin_part(&mut self) {
        self.body_finder.reset();
        self.text_finder.reset();
        self.head = PartHead::default();
        self.field.clear();
        self.field_open = false;
        self.line_decided = false;
        self.line_crs = false;
    }

    /// The next bytes of the part's header.
    pub fn header(&mut self, bytes: &[u8]) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let (mut rest, ends) = match line.strip_suffix(b"\n") {
                Some(content) => (content, true),
                None => (line, false),
            };
            if !self.line_decided {
                // A line is a field, a continuation or the blank line: its first byte that is not
                // a CR tells, and it may come in a later chunk.
                let crs = rest.iter().take_while(|&&b| b == b'\r').count();
                self.line_crs |= crs > 0;
                rest = &rest[crs..];
                if let Some(&first) = rest.first() {
                    self.line_decided = true;
                    if matches!(first, b' ' | b'\t') && !self.line_crs && self.field_open {
                        self.keep(b"\n");
                    } else {
                        self.finish_field();
                        self.field_open = true;
                    }
                }
            }
            self.keep(rest);
            if ends {
                if !self.line_decided {
                    // The blank line ending the header.
                    self.finish_field();
                    if !self.text_finder.all_found() {
                        self.text_finder.feed("\r\n");
                    }
                }
                self.line_decided = false;
                self.line_crs = false;
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = FIELD_BYTES_MAX.saturating_sub(self.field.len());
        self.field
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The header is complete: the body's decoding is set up.
    pub fn end_header(&mut self) {
        self.finish_field();
        self.transfer = TransferDecoder::new(self.head.cte);
        self.charset = CharsetDecoder::new(self.head.charset.as_deref());
    }

    /// Whether the body of the current part is searched (so its bytes are worth reading).
    pub fn wants_body(&self) -> bool {
        self.head.text && self.head.cte != Cte::Unknown && !self.done()
    }

    /// The next bytes of the part's body.
    pub fn body(&mut self, bytes: &[u8]) {
        if !self.wants_body() {
            return;
        }
        for piece in bytes.chunks(SLICE_BYTES) {
            self.bytes.clear();
            self.transfer.decode(piece, &mut self.bytes);
            self.text.clear();
            self.charset.decode(&self.bytes, &mut self.text);
            self.body_finder.feed(&self.text);
            self.text_finder.feed(&self.text);
            if self.done() {
                break;
            }
        }
        if self.bytes.capacity() > 4 * SLICE_BYTES {
            self.bytes = Vec::new();
        }
    }

    /// Whether every string was found (nothing more needs reading).
    pub fn done(&self) -> bool {
        self.body_finder.all_found() && self.text_finder.all_found()
    }

    /// For each BODY string and each TEXT string, whether it was found.
    pub fn found(&self) -> (Vec<bool>, Vec<bool>) {
        (self.body_finder.found(), self.text_finder.found())
    }

    /// Handles the field read so far: Content-* fields set up decoding; with TEXT, it is searched.
    fn finish_field(&mut self) {
        if !self.field_open {
            return;
        }
        self.field_open = false;
        let mut raw = std::mem::take(&mut self.field);
        // Unfold as Dovecot does: line breaks go, a TAB opening a continuation becomes a space.
        let mut value: Vec<u8> = Vec::with_capacity(raw.len());
        let mut after_break = false;
        for &b in &raw {
            match b {
                b'\n' => after_break = true,
                b'\r' => {}
                b'\t' if after_break => {
                    value.push(b' ');
                    after_break = false;
                }
                _ => {
                    value.push(b);
                    after_break = false;
                }
            }
        }
        let colon = value.iter().position(|&b| b == b':');
        let (name, middle_end) = match colon {
            Some(c) => {
                let lwsp = value[c + 1..]
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                (value[..c].trim_ascii_end(), c + 1 + lwsp)
            }
            None => (&value[..0], 0),
        };
        let field_value = &value[middle_end..];
        if name.len() > 8 && eq_ic(&name[..8], b"Content-") {
            let rest = &name[8..];
            if eq_ic(rest, b"Type") {
                let ct = parse_content_type(field_value);
                self.head.text = ct.full.len() >= 5 && eq_ic(&ct.full[..5], b"text/")
                    || ct.full.len() >= 8 && eq_ic(&ct.full[..8], b"message/");
                if !self.head.content_type_seen {
                    self.head.content_type_seen = true;
                    self.head.charset = ct
                        .params
                        .iter()
                        .find(|(k, _)| eq_ic(k, b"charset"))
                        .map(|(_, v)| v[..v.len().min(CHARSET_BYTES_MAX)].to_vec());
                }
            } else if eq_ic(rest, b"Transfer-Encoding") {
                self.head.cte = Cte::parse(field_value);
            }
        }
        if !self.text_finder.all_found() {
            let mut text = String::from_utf8_lossy(&value[..middle_end]).into_owned();
            decode_header_value(field_value, &mut text);
            text.push_str("\r\n");
            self.text_finder.feed(&text);
        }
        raw.clear();
        self.field = raw;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Searches a whole message held in memory, fed in chunks of `chunk` bytes: the strings as
    /// TEXT keys when `headers`, else as BODY keys.
    fn search(message: &[u8], needles: &[&str], headers: bool, chunk: usize) -> Vec<bool> {
        let meta = MessageMeta::from_bytes(message);
        let none: &[&str] = &[];
        let mut s = if headers {
            TextSearch::new(none, needles)
        } else {
            TextSearch::new(needles, none)
        };
        for seg in segments(&meta) {
            let (start, end) = match seg {
                Segment::Header { start, end, .. } => {
                    s.begin_part();
                    (start, end)
                }
                Segment::Body { start, end } => (start, end),
            };
            for piece in message[start as usize..end as usize].chunks(chunk) {
                match seg {
                    Segment::Header { .. } => s.header(piece),
                    Segment::Body { .. } => s.body(piece),
                }
            }
            if matches!(seg, Segment::Header { .. }) {
                s.end_header();
            }
        }
        let (body, text) = s.found();
        if headers {
            text
        } else {
            body
        }
    }

    const MULTI: &[u8] = b"Subject: =?UTF-8?B?Z3LDvMOfZQ==?= hotel\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
preamble lima\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
WsO8cmljaCBhbHBoYQ==\r\n\
--b\r\n\
Content-Type: text/plain;\r\n\
\tcharset=\"iso-8859-1\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=E9 br=\r\navo\r\n\
--b\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
ZWNobw==\r\n\
--b--\r\n\
epilogue kilo\r\n";

    #[test]
    fn decoded_text_parts_match_at_every_chunking() {
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let found = search(
                MULTI,
                &[
                    "zürich alpha",
                    "CAFÉ",
                    "bravo",
                    "echo",
                    "lima",
                    "kilo",
                    "grüße",
                ],
                false,
                chunk,
            );
            assert_eq!(
                found,
                [true, true, true, false, false, false, false],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn text_also_searches_decoded_headers_of_every_part() {
        let found = search(
            MULTI,
            &["GRÜSSE", "grüße hotel", "image/png", "mixed"],
            true,
            5,
        );
        assert_eq!(found, [false, true, true, true]);
    }

    #[test]
    fn unknown_transfer_encoding_is_not_searched() {
        let msg =
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nalpha\r\n";
        assert_eq!(search(msg, &["alpha"], false, 100), [false]);
        let msg = b"Content-Transfer-Encoding: base64\r\n\r\nYWxwaGE=\r\n";
        assert_eq!(search(msg, &["alpha"], false, 100), [true]);
    }

    #[test]
    fn matches_do_not_span_parts() {
        let msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nal\r\n--b\r\n\r\npha\r\n--b--\r\n";
        assert_eq!(search(msg, &["alpha", "al"], false, 1), [false, true]);
    }

    #[test]
    fn finder_handles_overlapping_prefixes_across_pieces() {
        let mut f = Finder::new(&["aab", "abab"]);
        for piece in ["a", "aa", "ba", "b"] {
            f.feed(piece);
        }
        assert_eq!(f.found(), [true, true]);
        assert!(contains_folded("Grüße aus ZÜRICH", "zürich"));
        assert!(!contains_folded("Zurich", "zürich"));
    }
}
