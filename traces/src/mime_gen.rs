//! Low-level MIME writing helpers for the dataset generator: exact-length text fillers (7bit and
//! quoted-printable), base64 attachment bodies, RFC 2047 encoded words, header folding, and a
//! `Draft` of message segments whose one filler is sized last so the message hits a byte count exactly.

use base64::Engine as _;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand::RngCore as _;
use rand_chacha::ChaCha8Rng;

/// Longest content of a generated body line, before its CRLF (RFC 5322 recommends 78).
const LINE_MAX: usize = 76;

/// Raw bytes per base64 line: 57 bytes encode to exactly 76 characters.
const BASE64_LINE_RAW: usize = 57;

/// Words of generated bodies, ASCII and accented, so that SEARCH BODY finds them.
pub(crate) static WORDS: &[&str] = &[
    "meeting",
    "budget",
    "report",
    "garage",
    "server",
    "storage",
    "cluster",
    "release",
    "invoice",
    "schedule",
    "draft",
    "review",
    "planning",
    "quarterly",
    "deadline",
    "holiday",
    "train",
    "ticket",
    "concert",
    "dinner",
    "weekend",
    "project",
    "update",
    "backup",
    "network",
    "mailbox",
    "calendar",
    "photos",
    "garden",
    "bicycle",
    "kitchen",
    "library",
    "question",
    "answer",
    "proposal",
    "contract",
    "agenda",
    "minutes",
    "summary",
    "feedback",
    "please",
    "thanks",
    "tomorrow",
    "monday",
    "friday",
    "morning",
    "evening",
    "together",
    "about",
    "with",
    "from",
    "the",
    "and",
    "for",
    "this",
    "that",
    "will",
    "have",
    "been",
    "could",
    "would",
    "should",
    "reunion",
    "projet",
    "rapport",
    "facture",
    "demain",
    "semaine",
    "merci",
    "bonjour",
    "serveur",
    "stockage",
    "courriel",
    "fichier",
    "voici",
    "pour",
    "avec",
    "dans",
    "nous",
    "vous",
    "quand",
    "association",
    "assemblée",
    "été",
    "réunion",
    "café",
    "théâtre",
    "fête",
    "élève",
    "déjà",
    "très",
    "où",
    "naïve",
    "Grüße",
    "Müller",
    "straße",
    "smørrebrød",
    "año",
];

/// True if `word` is plain ASCII.
fn is_ascii(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii())
}

/// Picks a word: any word when `ascii_only` is false, else an ASCII one.
pub(crate) fn word(rng: &mut ChaCha8Rng, ascii_only: bool) -> &'static str {
    loop {
        let w = WORDS.choose(rng).expect("WORDS is not empty");
        if !ascii_only || is_ascii(w) {
            return w;
        }
    }
}

/// Quoted-printable encoding of one word (no spaces in it): non-ASCII bytes and `=` as `=XX`.
fn qp_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len() * 3);
    for b in word.bytes() {
        if b.is_ascii_alphanumeric() || b"-.,;:!?'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// Line content of exactly `n` bytes: tokens separated by spaces, padded with letters, never
/// ending with a space. `qp` encodes the tokens as quoted-printable.
fn line_content(rng: &mut ChaCha8Rng, n: usize, qp: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let mut first = true;
    loop {
        let w = word(rng, !qp);
        let token = if qp { qp_word(w) } else { w.to_owned() };
        let used = out.len() - start;
        let need = token.len() + usize::from(!first);
        if used + need > n {
            break;
        }
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(token.as_bytes());
        first = false;
    }
    let mut k = n - (out.len() - start);
    if k == 1 && !first {
        out.push(b'.');
        k = 0;
    } else if k >= 2 && !first {
        out.push(b' ');
        k -= 1;
    }
    // Pad with letters taken from an ASCII word (an `x` run would look artificial).
    let pad = word(rng, true).as_bytes();
    for i in 0..k {
        out.push(pad[i % pad.len()]);
    }
    debug_assert_eq!(out.len() - start, n);
}

/// Writes exactly `len` bytes of body text in CRLF lines of at most 76 characters. `qp` makes it
/// valid quoted-printable (with accented words encoded and some soft line breaks), else 7bit ASCII.
pub(crate) fn fill(rng: &mut ChaCha8Rng, out: &mut Vec<u8>, len: usize, qp: bool) {
    let end = out.len() + len;
    out.reserve(len);
    loop {
        let remaining = end - out.len();
        if remaining == 0 {
            break;
        }
        if remaining <= LINE_MAX + 2 {
            if remaining >= 3 {
                line_content(rng, remaining - 2, qp, out);
                out.extend_from_slice(b"\r\n");
            } else {
                line_content(rng, remaining, qp, out);
            }
            continue;
        }
        // remaining > 78 and a line takes at most 76 bytes, so at least 3 bytes stay: the last
        // line always has room for content and its CRLF.
        let content = rng.gen_range(30..=LINE_MAX - 2);
        if qp && rng.gen_bool(0.2) {
            line_content(rng, content - 1, qp, out);
            out.extend_from_slice(b"=\r\n");
        } else {
            line_content(rng, content, qp, out);
            out.extend_from_slice(b"\r\n");
        }
        // A paragraph break now and then.
        if end - out.len() > LINE_MAX + 4 && rng.gen_bool(0.1) {
            out.extend_from_slice(b"\r\n");
        }
    }
    debug_assert_eq!(out.len(), end);
}

/// Byte length of `raw_len` bytes encoded as base64 in 76-character CRLF-terminated lines.
pub(crate) fn base64_len(raw_len: u64) -> u64 {
    let chars = raw_len.div_ceil(3) * 4;
    chars + 2 * chars.div_ceil(76)
}

/// Largest raw length whose base64 body (see [`base64_len`]) fits in `budget` bytes.
pub(crate) fn max_raw_for_base64(budget: u64) -> u64 {
    // Each full line is 57 raw bytes for 78 encoded ones; start just above and step down.
    let mut raw = budget / 78 * 57 + 57;
    while raw > 0 && base64_len(raw) > budget {
        raw -= 1;
    }
    raw
}

/// Kinds of generated attachments: MIME type, file extension and leading magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttachmentKind {
    pub mime: &'static str,
    pub ext: &'static str,
    pub magic: &'static [u8],
}

pub(crate) static ATTACHMENT_KINDS: &[AttachmentKind] = &[
    AttachmentKind {
        mime: "application/pdf",
        ext: "pdf",
        magic: b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n",
    },
    AttachmentKind {
        mime: "image/jpeg",
        ext: "jpg",
        magic: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    },
    AttachmentKind {
        mime: "image/png",
        ext: "png",
        magic: b"\x89PNG\r\n\x1a\n",
    },
    AttachmentKind {
        mime: "application/zip",
        ext: "zip",
        magic: b"PK\x03\x04",
    },
    AttachmentKind {
        mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ext: "docx",
        magic: b"PK\x03\x04",
    },
];

/// Writes `raw_len` bytes of attachment content (magic bytes, then seeded noise) as base64 lines,
/// generating and encoding chunk by chunk so a large attachment is never held raw.
fn write_base64(rng: &mut ChaCha8Rng, out: &mut Vec<u8>, raw_len: u64, kind: AttachmentKind) {
    const CHUNK: usize = BASE64_LINE_RAW * 1024;
    let mut raw = vec![0u8; CHUNK];
    let mut line = [0u8; 76];
    let mut done: u64 = 0;
    while done < raw_len {
        let n = usize::try_from((raw_len - done).min(CHUNK as u64)).expect("chunk fits usize");
        let chunk = &mut raw[..n];
        rng.fill_bytes(chunk);
        if done == 0 {
            let m = kind.magic.len().min(n);
            chunk[..m].copy_from_slice(&kind.magic[..m]);
        }
        for piece in chunk.chunks(BASE64_LINE_RAW) {
            let w = base64::engine::general_purpose::STANDARD
                .encode_slice(piece, &mut line)
                .expect("76 bytes hold the encoding of 57");
            out.extend_from_slice(&line[..w]);
            out.extend_from_slice(b"\r\n");
        }
        done += n as u64;
    }
}

/// Encodes `text` as RFC 2047 encoded words (`=?UTF-8?B?...?=` or `?Q?`), each at most 75
/// characters, split on character boundaries and joined by folding whitespace (`CRLF SP`).
pub(crate) fn encoded_words(text: &str, b: bool) -> String {
    // Encoded text budget per word: 75 - len("=?UTF-8?B?") - len("?=") = 63.
    const BUDGET: usize = 63;
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_raw = String::new();
    let enc = |raw: &str| -> String {
        if b {
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        } else {
            let mut s = String::new();
            for byte in raw.bytes() {
                if byte == b' ' {
                    s.push('_');
                } else if byte.is_ascii_alphanumeric() {
                    s.push(char::from(byte));
                } else {
                    s.push_str(&format!("={byte:02X}"));
                }
            }
            s
        }
    };
    for ch in text.chars() {
        let mut tentative = cur_raw.clone();
        tentative.push(ch);
        let e = enc(&tentative);
        if e.len() > BUDGET && !cur_raw.is_empty() {
            words.push(std::mem::take(&mut cur));
            cur_raw.clear();
            cur_raw.push(ch);
            cur = enc(&cur_raw);
        } else {
            cur_raw = tentative;
            cur = e;
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let tag = if b { "B" } else { "Q" };
    words
        .iter()
        .map(|w| format!("=?UTF-8?{tag}?{w}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// A header line `Name: value` folded at spaces so that lines stay under 78 characters, with CRLF.
pub(crate) fn header(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut col = out.len();
    for (i, piece) in value.split(' ').enumerate() {
        // Pieces that already contain folds (encoded words) reset the column to their last line.
        let first_line = piece.split("\r\n").next().unwrap_or("");
        if i > 0 && col + 1 + first_line.len() > 76 {
            out.push_str("\r\n");
            col = 0;
        }
        out.push(' ');
        out.push_str(piece);
        col = match piece.rfind("\r\n") {
            Some(p) => piece.len() - p - 2,
            None => col + 1 + piece.len(),
        };
    }
    out.push_str("\r\n");
    out
}

/// One segment of a message under construction.
enum Segment {
    Bytes(Vec<u8>),
    /// The text filler: its length is whatever the message size leaves.
    Filler {
        qp: bool,
    },
    /// A base64 attachment body, sized after the structure is known.
    Attachment {
        raw_len: u64,
        kind: AttachmentKind,
    },
}

/// A message as segments: fixed bytes, at most one filler and some attachments.
#[derive(Default)]
pub(crate) struct Draft {
    segments: Vec<Segment>,
}

impl Draft {
    pub fn push(&mut self, s: impl AsRef<[u8]>) {
        if let Some(Segment::Bytes(b)) = self.segments.last_mut() {
            b.extend_from_slice(s.as_ref());
        } else {
            self.segments.push(Segment::Bytes(s.as_ref().to_vec()));
        }
    }

    pub fn filler(&mut self, qp: bool) {
        assert!(
            !self
                .segments
                .iter()
                .any(|s| matches!(s, Segment::Filler { .. })),
            "a draft has one filler"
        );
        self.segments.push(Segment::Filler { qp });
    }

    /// Adds an attachment body of size 0 and returns its handle for [`Draft::set_attachment`].
    pub fn attachment(&mut self, kind: AttachmentKind) -> usize {
        self.segments.push(Segment::Attachment { raw_len: 0, kind });
        self.segments.len() - 1
    }

    pub fn set_attachment(&mut self, handle: usize, raw: u64) {
        match &mut self.segments[handle] {
            Segment::Attachment { raw_len, .. } => *raw_len = raw,
            _ => unreachable!("handles come from Draft::attachment"),
        }
    }

    /// Bytes of everything but the filler.
    pub fn fixed_len(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::Filler { .. } => 0,
                Segment::Attachment { raw_len, .. } => base64_len(*raw_len),
            })
            .sum()
    }

    /// Writes the message, the filler taking `size - fixed_len()` bytes. `None` if it does not fit
    /// or there is no filler to absorb a difference.
    pub fn render(self, rng: &mut ChaCha8Rng, size: u64) -> Option<Vec<u8>> {
        let fixed = self.fixed_len();
        let filler_len = usize::try_from(size.checked_sub(fixed)?).ok()?;
        let has_filler = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Filler { .. }));
        if !has_filler && filler_len != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(usize::try_from(size).ok()?);
        for s in self.segments {
            match s {
                Segment::Bytes(b) => out.extend_from_slice(&b),
                Segment::Filler { qp } => fill(rng, &mut out, filler_len, qp),
                Segment::Attachment { raw_len, kind } => write_base64(rng, &mut out, raw_len, kind),
            }
        }
        debug_assert_eq!(out.len() as u64, size);
        Some(out)
    }
}

/// Fixed HTML of roughly `target` bytes: paragraphs of ASCII words, in lines of at most 76.
pub(crate) fn html(rng: &mut ChaCha8Rng, target: usize) -> String {
    let mut s = String::from(
        "<html>\r\n<head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\r\n<body>\r\n",
    );
    while s.len() < target {
        let n = rng.gen_range(20..=60);
        let mut line = Vec::new();
        line_content(rng, n, false, &mut line);
        s.push_str("<p>");
        s.push_str(&String::from_utf8(line).expect("ASCII words"));
        s.push_str("</p>\r\n");
    }
    s.push_str("</body>\r\n</html>\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn fill_writes_exact_lengths_with_short_crlf_lines() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for qp in [false, true] {
            for len in (0..400).chain([1000, 4096, 65_537]) {
                let mut out = Vec::new();
                fill(&mut rng, &mut out, len, qp);
                assert_eq!(out.len(), len);
                for line in out.split(|&b| b == b'\n') {
                    assert!(line.len() <= 78, "line too long: {}", line.len());
                    assert!(!line.contains(&b'\r') || line.ends_with(b"\r"));
                    assert!(line.iter().all(|b| b.is_ascii()), "7bit output");
                }
                for (i, &b) in out.iter().enumerate() {
                    if b == b'\n' {
                        assert_eq!(out[i - 1], b'\r', "bare LF");
                    }
                }
            }
        }
    }

    #[test]
    fn base64_budget_is_tight() {
        for budget in [0, 1, 77, 78, 79, 1000, 123_457, 6_000_000] {
            let raw = max_raw_for_base64(budget);
            assert!(base64_len(raw) <= budget);
            assert!(base64_len(raw + 1) > budget || raw == 0 && budget < 6);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for raw in [1u64, 2, 3, 56, 57, 58, 114, 1000, 100_000] {
            let mut out = Vec::new();
            write_base64(&mut rng, &mut out, raw, ATTACHMENT_KINDS[0]);
            assert_eq!(out.len() as u64, base64_len(raw));
        }
    }

    #[test]
    fn encoded_words_stay_within_75_chars() {
        let long =
            "Réunion de l'association à propos du théâtre et de la fête de l'été, très naïve";
        for b in [true, false] {
            let e = encoded_words(long, b);
            for w in e.split("\r\n ") {
                assert!(w.len() <= 75, "{w}");
                assert!(w.starts_with("=?UTF-8?") && w.ends_with("?="));
            }
        }
    }
}
