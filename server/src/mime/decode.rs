//! Streaming decoders for searching text: Content-Transfer-Encoding (base64, quoted-printable),
//! charsets to UTF-8 (with `encoding_rs`), RFC 2047 encoded words in header values, and Unicode
//! case folding.
//!
//! They follow Dovecot 2.3's `message-decoder.c`, `qp-decoder.c`, `base64.c` and
//! `message-header-decode.c`, which SEARCH BODY/TEXT/HEADER are compared against: broken input is
//! decoded as far as it goes and never fails (an invalid base64 character ends that part's data, an
//! invalid `=` escape in quoted-printable is kept as written, an unknown charset is read as UTF-8).
//!
//! The transfer decoders are hand-written because they must be fed a part chunk by chunk, with
//! Dovecot's leniency: the `base64` crate decodes whole strings and rejects whitespace and junk,
//! and `quoted_printable` decodes whole strings only. Each keeps a few bytes of state between
//! chunks (a partial base64 quantum; a pending `=`, hex digit or run of trailing whitespace).

use super::header::{eq_ic, Parser};

/// A Content-Transfer-Encoding, as Dovecot's decoder classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cte {
    /// 7bit, 8bit, binary, or no header at all: the bytes as they are.
    Identity,
    /// base64.
    Base64,
    /// quoted-printable.
    QuotedPrintable,
    /// Anything else: the body cannot be decoded and is not searched.
    Unknown,
}

impl Cte {
    /// Classifies a `Content-Transfer-Encoding` value: one token, optionally followed by `;`.
    pub fn parse(value: &[u8]) -> Cte {
        let mut p = Parser::new(value);
        p.skip_lwsp();
        let mut token = Vec::new();
        if p.parse_mime_token(&mut token) == 1 {
            p.skip_lwsp();
            if p.cur() != b';' {
                return Cte::Unknown;
            }
        }
        if eq_ic(&token, b"7bit") || eq_ic(&token, b"8bit") || eq_ic(&token, b"binary") {
            Cte::Identity
        } else if eq_ic(&token, b"base64") {
            Cte::Base64
        } else if eq_ic(&token, b"quoted-printable") {
            Cte::QuotedPrintable
        } else {
            Cte::Unknown
        }
    }
}

/// A transfer decoder fed one part's body chunk by chunk.
#[derive(Debug)]
pub enum TransferDecoder {
    /// Bytes pass through.
    Identity,
    /// base64.
    Base64(Base64Decoder),
    /// quoted-printable.
    QuotedPrintable(QpDecoder),
    /// Nothing comes out.
    Skip,
}

impl TransferDecoder {
    /// The decoder for a part of this encoding.
    pub fn new(cte: Cte) -> Self {
        match cte {
            Cte::Identity => TransferDecoder::Identity,
            Cte::Base64 => TransferDecoder::Base64(Base64Decoder::default()),
            Cte::QuotedPrintable => TransferDecoder::QuotedPrintable(QpDecoder::default()),
            Cte::Unknown => TransferDecoder::Skip,
        }
    }

    /// Decodes the next bytes of the part, appending to `out` (at most twice `input`'s length).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            TransferDecoder::Identity => out.extend_from_slice(input),
            TransferDecoder::Base64(d) => d.decode(input, out),
            TransferDecoder::QuotedPrintable(d) => d.decode(input, out),
            TransferDecoder::Skip => {}
        }
    }
}

/// The value of a base64 alphabet character.
fn base64_value(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Streaming, lenient base64: whitespace is skipped, each byte comes out as soon as its bits are
/// in, and padding or any other character ends the data (what follows is ignored, as in Dovecot).
#[derive(Debug, Default)]
pub struct Base64Decoder {
    /// Bits not yet written, right-aligned.
    bits: u32,
    /// How many of them (0, 2, 4 or 6).
    held: u8,
    /// Alphabet characters in the current 4-character quantum.
    quantum: u8,
    done: bool,
}

impl Base64Decoder {
    /// Decodes the next bytes, appending to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.done {
                return;
            }
            match base64_value(b) {
                Some(v) => {
                    self.bits = (self.bits << 6) | v;
                    self.held += 6;
                    self.quantum = (self.quantum + 1) % 4;
                    if self.held >= 8 {
                        self.held -= 8;
                        out.push((self.bits >> self.held) as u8);
                        self.bits &= (1 << self.held) - 1;
                    }
                }
                None if matches!(b, b' ' | b'\t' | b'\r' | b'\n') => {}
                // Padding (valid or not) or junk: the data ends here.
                None => self.done = true,
            }
        }
    }
}

/// Longest run of whitespace a quoted-printable decoder holds while it waits to see whether it
/// ends the line (Dovecot's `QP_MAX_WHITESPACE_LEN`); beyond, the rest of the run is dropped.
const QP_WHITESPACE_MAX: usize = 76;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum QpState {
    #[default]
    Text,
    /// After SP/TAB (held in `space`): trailing whitespace is dropped before a line break.
    Space,
    /// After `=`.
    Equals,
    /// After `=` and whitespace (held): a soft line break if a line break follows.
    EqualsSpace,
    /// After `=` and one hex digit.
    Hex,
    /// After CR (a hard line break if LF follows).
    Cr,
    /// After `=`, maybe whitespace, and CR (a soft line break if LF follows).
    SoftCr,
}

/// Streaming quoted-printable (RFC 2045 6.7) with Dovecot's leniency: lowercase hex is accepted,
/// invalid escapes are kept as written, a bare LF is a line break, and line breaks come out as CRLF.
#[derive(Debug, Default)]
pub struct QpDecoder {
    state: QpState,
    hex: u8,
    space: Vec<u8>,
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

impl QpDecoder {
    /// Decodes the next bytes, appending to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                QpState::Text => match b {
                    b'=' => self.state = QpState::Equals,
                    b'\r' => self.state = QpState::Cr,
                    b'\n' => out.extend_from_slice(b"\r\n"),
                    b' ' | b'\t' => {
                        self.space.push(b);
                        self.state = QpState::Space;
                    }
                    _ => out.push(b),
                },
                QpState::Space => match b {
                    b' ' | b'\t' => self.hold_space(b),
                    b'\r' => self.state = QpState::Cr,
                    b'\n' => {
                        self.space.clear();
                        out.extend_from_slice(b"\r\n");
                        self.state = QpState::Text;
                    }
                    _ => {
                        out.append(&mut self.space);
                        self.state = QpState::Text;
                        continue; // `b` is text: look at it again
                    }
                },
                QpState::Equals => match b {
                    _ if hex_value(b).is_some() => {
                        self.hex = b;
                        self.state = QpState::Hex;
                    }
                    b' ' | b'\t' => {
                        self.space.push(b);
                        self.state = QpState::EqualsSpace;
                    }
                    b'\r' => self.state = QpState::SoftCr,
                    b'\n' => self.state = QpState::Text,
                    _ => {
                        self.invalid(out);
                        continue;
                    }
                },
                QpState::Hex => match (hex_value(self.hex), hex_value(b)) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        self.state = QpState::Text;
                    }
                    _ => {
                        self.invalid(out);
                        continue;
                    }
                },
                QpState::EqualsSpace => match b {
                    b' ' | b'\t' => self.hold_space(b),
                    b'\r' => self.state = QpState::SoftCr,
                    b'\n' => {
                        self.space.clear();
                        self.state = QpState::Text;
                    }
                    _ => {
                        self.invalid(out);
                        continue;
                    }
                },
                QpState::Cr | QpState::SoftCr => {
                    if b == b'\n' {
                        self.space.clear();
                        if self.state == QpState::Cr {
                            out.extend_from_slice(b"\r\n");
                        }
                        self.state = QpState::Text;
                    } else {
                        self.invalid(out);
                        continue;
                    }
                }
            }
            i += 1;
        }
    }

    fn hold_space(&mut self, b: u8) {
        if self.space.len() <= QP_WHITESPACE_MAX {
            self.space.push(b);
        }
    }

    /// What was held is not a valid sequence: it comes out as written, and decoding goes on.
    fn invalid(&mut self, out: &mut Vec<u8>) {
        match self.state {
            QpState::Equals => out.push(b'='),
            QpState::Hex => out.extend_from_slice(&[b'=', self.hex]),
            QpState::EqualsSpace => {
                out.push(b'=');
                out.append(&mut self.space);
            }
            QpState::Cr => {
                out.append(&mut self.space);
                out.push(b'\r');
            }
            QpState::SoftCr => {
                out.push(b'=');
                out.append(&mut self.space);
                out.push(b'\r');
            }
            QpState::Text | QpState::Space => {}
        }
        self.space.clear();
        self.state = QpState::Text;
    }
}

/// Whether Dovecot reads this charset as UTF-8 (it treats US-ASCII as UTF-8 too).
fn is_utf8_label(label: &[u8]) -> bool {
    [&b"us-ascii"[..], b"ascii", b"utf-8", b"utf8"]
        .iter()
        .any(|l| eq_ic(label, l))
}

/// The encoding of a charset label; UTF-8 when absent or unknown (as Dovecot does).
pub fn encoding_for(label: Option<&[u8]>) -> &'static encoding_rs::Encoding {
    let label = match label {
        Some(l) if !is_utf8_label(l) => l,
        _ => return encoding_rs::UTF_8,
    };
    // RFC 2231 allows a language after the charset: `utf-8*en`.
    let label = label.split(|&b| b == b'*').next().unwrap_or(label);
    match encoding_rs::Encoding::for_label(label) {
        // The WHATWG "replacement" encoding turns everything into one U+FFFD: not useful here.
        Some(e) if e != encoding_rs::REPLACEMENT => e,
        _ => encoding_rs::UTF_8,
    }
}

/// A charset decoder to UTF-8, fed a part's (transfer-decoded) bytes chunk by chunk: a character
/// split between two chunks is completed with the next one; invalid input becomes U+FFFD. A byte
/// order mark of the declared charset is dropped, and one of another charset does not switch it.
pub struct CharsetDecoder {
    decoder: encoding_rs::Decoder,
}

impl CharsetDecoder {
    /// A decoder for the charset `label` (a Content-Type `charset` parameter).
    pub fn new(label: Option<&[u8]>) -> Self {
        CharsetDecoder {
            decoder: encoding_for(label).new_decoder_with_bom_removal(),
        }
    }

    /// Decodes the next bytes, appending to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut String) {
        loop {
            let room = self
                .decoder
                .max_utf8_buffer_length(input.len())
                .unwrap_or(input.len().saturating_mul(3).saturating_add(16));
            out.reserve(room);
            let (result, read, _) = self.decoder.decode_to_string(input, out, false);
            input = &input[read..];
            if result == encoding_rs::CoderResult::InputEmpty || input.is_empty() {
                return;
            }
        }
    }
}

/// Decodes a whole (short) byte string in `charset` to UTF-8, appending to `out`.
fn decode_all(charset: Option<&[u8]>, bytes: &[u8], out: &mut String) {
    let (text, _) = encoding_for(charset).decode_without_bom_handling(bytes);
    out.push_str(&text);
}

/// The RFC 2047 `Q` encoding: `_` is a space, `=XX` a byte; a broken escape stays as written.
fn q_decode(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => match (
                text.get(i + 1).copied().and_then(hex_value),
                text.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
}

/// One encoded word after its `=?`: `charset?E?text?=`. Returns its length (up to and including
/// `?=`), or `None` when it is not a valid encoded word.
fn encoded_word(data: &[u8], out: &mut String) -> Option<usize> {
    let mut marks = data
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'?')
        .map(|(i, _)| i);
    let (q1, q2, q3) = (marks.next()?, marks.next()?, marks.next()?);
    if data.get(q3 + 1) != Some(&b'=') {
        return None;
    }
    let charset = &data[..q1];
    let text = &data[q2 + 1..q3];
    let mut bytes = Vec::with_capacity(text.len());
    match data.get(q1 + 1) {
        Some(b'q' | b'Q') => q_decode(text, &mut bytes),
        Some(b'b' | b'B') => Base64Decoder::default().decode(text, &mut bytes),
        _ => return None,
    }
    decode_all(Some(charset), &bytes, out);
    Some(q3 + 2)
}

/// A header value as text: RFC 2047 encoded words decoded to UTF-8 (whitespace between two of
/// them dropped), the rest read as UTF-8 (invalid bytes become U+FFFD). Appends to `out`.
pub fn decode_header_value(value: &[u8], out: &mut String) {
    let mut plain_start = 0;
    let mut pos = 0;
    while pos + 1 < value.len() {
        if value[pos] != b'=' || value[pos + 1] != b'?' {
            pos += 1;
            continue;
        }
        let before = &value[plain_start..pos];
        let mut decoded = String::new();
        match encoded_word(&value[pos + 2..], &mut decoded) {
            Some(len) => {
                if !before
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                {
                    out.push_str(&String::from_utf8_lossy(before));
                }
                out.push_str(&decoded);
                pos += 2 + len;
                plain_start = pos;
            }
            None => pos += 2,
        }
    }
    out.push_str(&String::from_utf8_lossy(&value[plain_start..]));
}

/// Appends the case folding of `text` (each character lower-cased) to `out`.
pub fn fold_into(text: &str, out: &mut String) {
    for c in text.chars() {
        out.extend(c.to_lowercase());
    }
}

/// The case folding of `text`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(d: &mut TransferDecoder, input: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in input.chunks(size) {
            d.decode(piece, &mut out);
        }
        out
    }

    /// `encoded` fed in chunks of each size from 1 byte up decodes to `decoded`.
    fn decodes_in_chunks_of_every_size(cte: Cte, encoded: &[u8], decoded: &[u8]) {
        for size in 1..encoded.len() {
            let mut d = TransferDecoder::new(cte);
            assert_eq!(chunked(&mut d, encoded, size), decoded, "size {size}");
        }
    }

    #[test]
    fn base64_decodes_across_chunks_and_skips_line_breaks() {
        decodes_in_chunks_of_every_size(Cte::Base64, b"aGVsbG8g\r\nd29ybGQ=\r\n", b"hello world");
    }

    #[test]
    fn base64_stops_at_junk_and_keeps_what_came_before() {
        let mut d = TransferDecoder::new(Cte::Base64);
        assert_eq!(chunked(&mut d, b"aGVs!bG8=", 100), b"hel");
        let mut d = TransferDecoder::new(Cte::Base64);
        assert_eq!(chunked(&mut d, b"QQ==QkI=", 3), b"A");
    }

    #[test]
    fn quoted_printable_soft_breaks_escapes_and_trailing_space() {
        decodes_in_chunks_of_every_size(
            Cte::QuotedPrintable,
            b"caf=C3=A9 =\r\nna=c3=afve  \r\nend=\nx = y =ZZ",
            "café naïve\r\nendx = y =ZZ".as_bytes(),
        );
    }

    #[test]
    fn quoted_printable_keeps_a_lone_cr_and_breaks_bare_lf() {
        let mut d = TransferDecoder::new(Cte::QuotedPrintable);
        assert_eq!(chunked(&mut d, b"a\rb\nc", 1), b"a\rb\r\nc");
    }

    #[test]
    fn transfer_encoding_values_are_classified_like_dovecot() {
        assert_eq!(Cte::parse(b" BASE64"), Cte::Base64);
        assert_eq!(Cte::parse(b"quoted-printable; x=y"), Cte::QuotedPrintable);
        assert_eq!(Cte::parse(b"8bit (comment)"), Cte::Identity);
        assert_eq!(Cte::parse(b"base64 binary"), Cte::Unknown);
        assert_eq!(Cte::parse(b"x-uuencode"), Cte::Unknown);
        assert_eq!(Cte::parse(b""), Cte::Unknown);
    }

    #[test]
    fn charsets_decode_across_chunks_and_unknown_ones_read_as_utf8() {
        /// `input` in `charset`, fed `chunk` bytes at a time.
        fn decoded(charset: &[u8], input: &[u8], chunk: usize) -> String {
            let mut d = CharsetDecoder::new(Some(charset));
            let mut out = String::new();
            for piece in input.chunks(chunk) {
                d.decode(piece, &mut out);
            }
            out
        }
        assert_eq!(decoded(b"iso-8859-1", b"caf\xe9", 100), "café");
        assert_eq!(decoded(b"x-unheard-of", "Zürich".as_bytes(), 1), "Zürich");
        assert_eq!(decoded(b"us-ascii", b"a\xffb", 100), "a\u{FFFD}b");
        assert_eq!(
            decoded(b"utf-8", b"\xff\xfeab", 100),
            "\u{FFFD}\u{FFFD}ab",
            "a UTF-16 BOM does not switch the charset"
        );
    }

    #[test]
    fn encoded_words_are_decoded_and_the_space_between_them_dropped() {
        let mut out = String::new();
        decode_header_value(
            b"Re: =?UTF-8?B?Q2Fmw6k=?= =?ISO-8859-1?Q?M=FCller_x?= tail",
            &mut out,
        );
        assert_eq!(out, "Re: CaféMüller x tail");
    }

    #[test]
    fn broken_encoded_words_stay_as_written() {
        for raw in [
            &b"=?utf-8?X?abc?= z"[..],
            b"=?utf-8?B?abc",
            b"=?",
            b"a =?? b",
            b"=?x?q?=Z?=",
        ] {
            let mut out = String::new();
            decode_header_value(raw, &mut out);
            if raw == b"=?x?q?=Z?=" {
                assert_eq!(out, "=Z");
            } else {
                assert_eq!(out.as_bytes(), raw);
            }
        }
    }

    #[test]
    fn folding_lower_cases_beyond_ascii() {
        assert_eq!(fold("ZÜRICH Grüße"), "zürich grüße");
    }
}
