//! Differential test against a live Dovecot 2.3: the same emails (the corpus and a few hundred
//! seeded, generated MIME trees) APPENDed to a private Dovecot and to our server, then FETCH and
//! SEARCH answers compared item by item.
//!
//! Dovecot is the reference. Every difference is either a named exception below (deliberate, or a
//! known gap of our server to be fixed) or the test fails. Comparison is token by token: whitespace
//! is ignored and a string compares by its content whether quoted or literal.
//!
//! Needs `dovecot` (Debian's `dovecot-imapd`); without it the test prints SKIPPED, unless the
//! environment variable `CI` is set, where it fails (CI installs it, see `.ci/run`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use server::config::Limits;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/data/emails");
/// How many emails the generator draws.
const GENERATED: usize = 300;
/// The generator's seed (ChaCha, 32 bytes): the same emails on every run.
const SEED: &[u8; 32] = b"imapsim dovecot differential #1 ";
/// Longest answer shown in a report line, in characters.
const SHOW_MAX: usize = 400;

// ---------------------------------------------------------------------------------------------
// Named exceptions

/// Whether a difference is by design or a gap of our server that is to be fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// We answer differently on purpose; the reason says why.
    Deliberate,
    /// Our server is wrong here and it is known; remove the exception once fixed.
    Gap,
}

struct Exception {
    name: &'static str,
    kind: Kind,
    reason: &'static str,
}

const MEDIA_TYPE_CASE: Exception = Exception {
    name: "media-type-case",
    kind: Kind::Deliberate,
    reason: "imap-codec writes the media type of text and message/rfc822 parts as \"TEXT\", \
             \"MESSAGE\" \"RFC822\" in upper case where Dovecot keeps the header's case; media types \
             are case-insensitive (RFC 2045 5.1).",
};
const CRCRLF: Exception = Exception {
    name: "cr-cr-lf-storage",
    kind: Kind::Deliberate,
    reason: "the email has lines ending in CR CR LF. Dovecot stores mail with LF line ends, which turns \
             each CR CR LF into CR LF, so it answers for other bytes than were delivered; we store and \
             describe the bytes as delivered (see server/tests/data/emails/DOVECOT-2.3.19.md).",
};
const EXCEPTIONS: &[&Exception] = &[&MEDIA_TYPE_CASE, &CRCRLF];

// ---------------------------------------------------------------------------------------------
// Response tokens

/// One token tree of a response: whitespace is dropped, quoted strings and literals are both `Str`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Nil,
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    fn str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    fn show(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("NIL"),
            Value::Atom(a) => out.push_str(a),
            Value::Str(s) => {
                out.push('"');
                for c in String::from_utf8_lossy(s).chars() {
                    match c {
                        '"' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        '\r' => out.push_str("\\r"),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Value::List(l) => {
                out.push('(');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.show(out);
                }
                out.push(')');
            }
        }
    }
}

fn show(v: Option<&Value>) -> String {
    let mut s = String::new();
    match v {
        Some(v) => v.show(&mut s),
        None => s.push_str("(absent)"),
    }
    if s.chars().count() > SHOW_MAX {
        let cut: String = s.chars().take(SHOW_MAX).collect();
        return format!("{cut}... ({} chars)", s.chars().count());
    }
    s
}

/// Tokenizes a whole response (literals inline, as read by [`Conn::response`]).
fn parse(s: &[u8]) -> Vec<Value> {
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                stack.push(Vec::new());
                i += 1;
            }
            b')' => {
                if stack.len() > 1 {
                    let done = stack.pop().expect("more than one level");
                    stack
                        .last_mut()
                        .expect("an outer level")
                        .push(Value::List(done));
                }
                i += 1;
            }
            b'"' => {
                let mut v = Vec::new();
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1;
                stack.last_mut().expect("a level").push(Value::Str(v));
            }
            b'{' if literal_at(s, i).is_some() => {
                let (start, n) = literal_at(s, i).expect("checked");
                let end = (start + n).min(s.len());
                stack
                    .last_mut()
                    .expect("a level")
                    .push(Value::Str(s[start..end].to_vec()));
                i = end;
            }
            _ => {
                let start = i;
                let mut depth = 0;
                while i < s.len() {
                    match s[i] {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' | b'\r' | b'\n' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                let atom = String::from_utf8_lossy(&s[start..i]).into_owned();
                let v = if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Atom(atom)
                };
                stack.last_mut().expect("a level").push(v);
            }
        }
    }
    while stack.len() > 1 {
        let done = stack.pop().expect("more than one level");
        stack
            .last_mut()
            .expect("an outer level")
            .push(Value::List(done));
    }
    stack.pop().expect("the top level")
}

/// `{n}\r\n` or `{n+}\r\n` at `i`: where the literal's bytes start and how many there are.
fn literal_at(s: &[u8], i: usize) -> Option<(usize, usize)> {
    let close = i + s[i..].iter().take(24).position(|&b| b == b'}')?;
    let n: usize = std::str::from_utf8(&s[i + 1..close])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    s[close + 1..]
        .starts_with(b"\r\n")
        .then_some((close + 3, n))
}

/// The length of the literal a line ends with, if any.
fn trailing_literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// A minimal IMAP client, the same for both servers

struct Conn {
    name: &'static str,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    tag: u32,
}

/// The answer to one command.
struct Reply {
    untagged: Vec<Vec<u8>>,
    tagged: String,
}

impl Reply {
    fn ok(&self) -> bool {
        self.tagged
            .split(' ')
            .nth(1)
            .is_some_and(|s| s.eq_ignore_ascii_case("OK"))
    }
}

const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

impl Conn {
    async fn connect(name: &'static str, addr: SocketAddr) -> Conn {
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
    async fn response(&mut self) -> Vec<u8> {
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
    async fn run(&mut self, command: &[u8]) -> Reply {
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
fn astring(s: &[u8]) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------------
// Our server on loopback (as in server/tests/imap_loopback.rs)

const OUR_USER: &str = "alice";
const OUR_PASSWORD: &str = "alice-pw";

async fn start_ours() -> SocketAddr {
    // Small chunks, so that sections spanning chunk borders are exercised.
    let limits = Limits {
        chunk_bytes: 1024,
        ..Limits::default()
    };
    tests::loopback::start(OUR_USER, OUR_PASSWORD, limits, "test")
        .await
        .imap
}

// ---------------------------------------------------------------------------------------------
// The emails

struct Email {
    /// `corpus/dir/name` or `generated/N`.
    name: String,
    bytes: Vec<u8>,
}

/// Bare LF to CRLF (an LF already preceded by CR is kept), as the corpus answers were recorded.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn corpus() -> Vec<Email> {
    let mut out = Vec::new();
    for dir in ["rfc", "thirdparty", "dxflrs", "malformed"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(CORPUS).join(dir))
            .expect("the corpus is in server/tests/data/emails")
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        for f in files {
            let stem = f
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let raw = std::fs::read(&f).expect("readable email");
            out.push(Email {
                name: format!("corpus/{dir}/{stem}"),
                bytes: to_crlf(&raw),
            });
        }
    }
    out
}

/// Seeded MIME trees rendered to bytes.
mod gen {
    use super::*;
    use base64::Engine as _;

    /// Words of the bodies and headers; SEARCH looks for some of them.
    pub const WORDS: &[&str] = &[
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
        "november",
        "oscar",
        "café",
        "naïve",
        "grüße",
        "smörgåsbord",
        "日本語",
        "привет",
        "Zürich",
    ];

    const PREFIX_BOUNDARY: &str = "=_p";

    #[derive(Clone, Copy, Debug)]
    pub enum Enc {
        /// No Content-Transfer-Encoding header.
        Absent,
        SevenBit,
        EightBit,
        Base64,
        QuotedPrintable,
    }

    #[derive(Clone, Debug)]
    pub struct Leaf {
        media: (&'static str, &'static str),
        charset: Option<&'static str>,
        enc: Enc,
        words: Vec<usize>,
        disposition: u8,
        style: u8,
        extras: u8,
    }

    #[derive(Clone, Debug)]
    pub struct Head {
        from: u8,
        to: Vec<u8>,
        cc: bool,
        subject: Vec<usize>,
        subject_style: u8,
        date: u8,
        mime_version: u8,
        x_tag: Option<usize>,
        duplicate: u8,
        message_id: bool,
        name_case: u8,
        odd: u8,
    }

    #[derive(Clone, Debug)]
    pub enum Node {
        Leaf(Leaf),
        Multi {
            subtype: &'static str,
            boundary: String,
            quoted: bool,
            preamble: bool,
            epilogue: bool,
            children: Vec<Node>,
        },
        Message(Box<Head>, Box<Node>),
    }

    fn leaf() -> impl Strategy<Value = Node> {
        let media = prop::sample::select(vec![
            ("text", "plain"),
            ("text", "plain"),
            ("text", "html"),
            ("TEXT", "Plain"),
            ("text", "enriched"),
            ("application", "octet-stream"),
            ("image", "png"),
            ("application", "pdf"),
        ]);
        let charset = prop::sample::select(vec![
            None,
            Some("us-ascii"),
            Some("utf-8"),
            Some("UTF-8"),
            Some("iso-8859-1"),
            Some("windows-1252"),
        ]);
        let enc = prop::sample::select(vec![
            Enc::Absent,
            Enc::SevenBit,
            Enc::EightBit,
            Enc::Base64,
            Enc::QuotedPrintable,
        ]);
        (
            media,
            charset,
            enc,
            prop::collection::vec(0..WORDS.len(), 0..60),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(|(media, charset, enc, words, disposition, style, extras)| {
                Node::Leaf(Leaf {
                    media,
                    charset,
                    enc,
                    words,
                    disposition,
                    style,
                    extras,
                })
            })
    }

    fn boundary() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9]{1,20}",
            "[0-9a-zA-Z'()+_,./:=?-]{1,60}",
            Just("=_NextPart_000_0001".to_string()),
            Just("simple boundary".to_string()),
            Just("b".to_string()),
            // A multipart with this base gets its parent's boundary plus "=_p": a prefix of its own.
            Just(PREFIX_BOUNDARY.to_string()),
        ]
    }

    pub fn head() -> impl Strategy<Value = Head> {
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..4),
            any::<bool>(),
            prop::collection::vec(0..WORDS.len(), 0..8),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::option::of(0..WORDS.len()),
            any::<u8>(),
            any::<bool>(),
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(
                |(
                    from,
                    to,
                    cc,
                    subject,
                    subject_style,
                    date,
                    mime_version,
                    x_tag,
                    duplicate,
                    message_id,
                    name_case,
                    odd,
                )| {
                    Head {
                        from,
                        to,
                        cc,
                        subject,
                        subject_style,
                        date,
                        mime_version,
                        x_tag,
                        duplicate,
                        message_id,
                        name_case,
                        odd,
                    }
                },
            )
    }

    pub fn tree() -> impl Strategy<Value = Node> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                3 => (
                    prop::sample::select(vec!["mixed", "alternative", "related", "Mixed", "digest", "x-unknown"]),
                    boundary(),
                    any::<bool>(),
                    any::<bool>(),
                    any::<bool>(),
                    prop_oneof![9 => prop::collection::vec(inner.clone(), 1..4), 1 => Just(Vec::new())],
                )
                    .prop_map(|(subtype, boundary, quoted, preamble, epilogue, children)| Node::Multi {
                        subtype,
                        boundary,
                        quoted,
                        preamble,
                        epilogue,
                        children
                    }),
                1 => (head(), inner).prop_map(|(h, n)| Node::Message(Box::new(h), Box::new(n))),
            ]
        })
    }

    /// Renders one email: a header and its body tree.
    pub fn render(head: &Head, root: &Node, n: usize) -> Vec<u8> {
        let mut r = Renderer {
            counter: 0,
            seed: n,
            boundaries: Vec::new(),
        };
        let mut out = Vec::new();
        r.message(&mut out, head, root);
        out
    }

    struct Renderer {
        counter: usize,
        seed: usize,
        /// Boundaries of the multiparts enclosing the part being written.
        boundaries: Vec<String>,
    }

    fn text_of(words: &[usize]) -> String {
        let mut s = String::new();
        let mut col = 0;
        for (i, w) in words.iter().enumerate() {
            let w = WORDS[*w];
            if i > 0 {
                if col > 60 {
                    s.push_str("\r\n");
                    col = 0;
                } else {
                    s.push(' ');
                    col += 1;
                }
            }
            s.push_str(w);
            col += w.chars().count();
        }
        s
    }

    /// `text` in `charset`: UTF-8 bytes, Latin-1 bytes, or ASCII with `?` for what does not fit.
    fn encode_charset(text: &str, charset: Option<&str>) -> Vec<u8> {
        match charset.map(str::to_ascii_lowercase).as_deref() {
            Some("utf-8") => text.as_bytes().to_vec(),
            Some("iso-8859-1") | Some("windows-1252") => text
                .chars()
                .map(|c| {
                    if (c as u32) < 256 {
                        c as u32 as u8
                    } else {
                        b'?'
                    }
                })
                .collect(),
            _ => text
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
        }
    }

    fn base64_lines(data: &[u8]) -> Vec<u8> {
        let enc = base64::engine::general_purpose::STANDARD.encode(data);
        let mut out = Vec::new();
        for (i, chunk) in enc.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Quoted-printable (RFC 2045 6.7) with soft line breaks at 76 columns; CRLF stays a line break.
    fn quoted_printable(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut col = 0;
        let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        for (li, line) in lines.iter().enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            for (i, &b) in line.iter().enumerate() {
                let last = i + 1 == line.len();
                let plain = (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' && !last);
                let piece = if plain {
                    vec![b]
                } else {
                    format!("={b:02X}").into_bytes()
                };
                if col + piece.len() > 75 {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
                col += piece.len();
                out.extend_from_slice(&piece);
            }
            if li + 1 < lines.len() {
                out.extend_from_slice(b"\r\n");
                col = 0;
            }
        }
        out
    }

    fn encoded_word_b(text: &str) -> String {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    }

    fn encoded_word_q(text: &str) -> String {
        let mut s = String::from("=?ISO-8859-1?Q?");
        for c in text.chars() {
            match c {
                ' ' => s.push('_'),
                c if c.is_ascii_alphanumeric() => s.push(c),
                c if (c as u32) < 256 => s.push_str(&format!("={:02X}", c as u32)),
                _ => s.push_str("=3F"),
            }
        }
        s.push_str("?=");
        s
    }

    const PEOPLE: &[&str] = &[
        "Jane Doe <jane@example.org>",
        "\"Doe, John\" <john.doe@example.com>",
        "bob@example.net",
        "bob@example.net (Bob the builder)",
        "=?UTF-8?B?Q2Fmw6kgTcO8bGxlcg==?= <mueller@example.de>",
        "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
        "undisclosed-recipients:;",
        "Team: alice@example.org, carol@example.org;",
        "<weird@[127.0.0.1]>",
        "no-address-here",
    ];

    impl Renderer {
        fn name(&self, head: &Head, name: &'static str) -> String {
            match head.name_case % 5 {
                0 => name.to_ascii_uppercase(),
                1 => name.to_ascii_lowercase(),
                _ => name.to_string(),
            }
        }

        fn message(&mut self, out: &mut Vec<u8>, head: &Head, root: &Node) {
            let h = |out: &mut Vec<u8>, name: String, value: &str| {
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            };
            let dates = [
                "Mon, 2 Jan 2023 10:00:00 +0000",
                "2 Jan 2023 23:59:59 -0500",
                "Tue, 03 Jan 2023 00:30:00 GMT",
                "Sun, 31 Dec 2000 12:00:00 +1400",
                "yesterday at noon",
                "Fri, 13 Feb 2009 23:31:30 +0100 (CET)",
            ];
            if head.date % 7 != 6 {
                h(
                    out,
                    self.name(head, "Date"),
                    dates[head.date as usize % 7 % dates.len()],
                );
            }
            h(
                out,
                self.name(head, "From"),
                PEOPLE[head.from as usize % PEOPLE.len()],
            );
            if !head.to.is_empty() {
                let to: Vec<&str> = head
                    .to
                    .iter()
                    .map(|t| PEOPLE[*t as usize % PEOPLE.len()])
                    .collect();
                let sep = if head.to[0] % 2 == 0 { ", " } else { ",\r\n\t" };
                h(out, self.name(head, "To"), &to.join(sep));
            }
            if head.cc {
                h(
                    out,
                    "Cc".into(),
                    PEOPLE[(head.from as usize + 3) % PEOPLE.len()],
                );
            }
            let words: Vec<&str> = head.subject.iter().map(|w| WORDS[*w]).collect();
            let plain = words.join(" ");
            let subject = match head.subject_style % 6 {
                0 | 1 => plain.clone(),
                2 => encoded_word_b(&plain),
                3 => encoded_word_q(&plain),
                4 => words.join("\r\n "),
                _ => format!("Re: {} {}", plain, encoded_word_b("grüße")),
            };
            if head.subject_style % 8 != 7 {
                h(out, self.name(head, "Subject"), &subject);
            }
            if head.duplicate % 4 == 1 {
                h(out, "Subject".into(), "second subject hotel");
            }
            if head.message_id {
                h(
                    out,
                    "Message-ID".into(),
                    &format!("<msg{}.{}@example.org>", self.seed, self.counter),
                );
                h(out, "In-Reply-To".into(), "<parent@example.org>");
            }
            if let Some(t) = head.x_tag {
                h(out, "X-Tag".into(), WORDS[t]);
                if head.duplicate % 4 == 2 {
                    h(out, "X-Tag".into(), "india");
                }
            }
            if head.duplicate % 4 == 3 {
                h(
                    out,
                    "X-Folded".into(),
                    "first line\r\n  second line\r\n\tthird line",
                );
            }
            match head.odd % 9 {
                1 => out.extend_from_slice(b"X-No-Space:value without a space\r\n"),
                2 => out.extend_from_slice(b"this line is not a header field\r\n"),
                3 => h(out, "X-Long".into(), &"oscar ".repeat(200)),
                4 => out.extend_from_slice(b"Subject : spaced name kilo\r\n"),
                5 => out.extend_from_slice(b"X-Empty:\r\n"),
                6 => h(out, "X-Raw".into(), "Grüße aus Zürich"),
                _ => {}
            }
            match head.mime_version % 5 {
                0 => {}
                1 => h(out, "MIME-Version".into(), "1.0 (generated)"),
                _ => h(out, "MIME-Version".into(), "1.0"),
            }
            self.part(out, root, false);
        }

        /// Writes a part's own header fields, the blank line and its body.
        fn part(&mut self, out: &mut Vec<u8>, node: &Node, in_digest: bool) {
            match node {
                Node::Leaf(leaf) => self.leaf(out, leaf),
                Node::Multi {
                    subtype,
                    boundary,
                    quoted,
                    preamble,
                    epilogue,
                    children,
                } => {
                    self.counter += 1;
                    let b = if boundary == PREFIX_BOUNDARY {
                        format!(
                            "{}{PREFIX_BOUNDARY}",
                            self.boundaries.last().map_or("", String::as_str)
                        )
                    } else {
                        format!("{boundary}.{}.", self.counter)
                    };
                    let needs_quotes = b.bytes().any(|c| b" ()<>@,;:\\\"/[]?=".contains(&c));
                    let shown = if *quoted || needs_quotes {
                        format!("\"{b}\"")
                    } else {
                        b.clone()
                    };
                    out.extend_from_slice(
                        format!("Content-Type: multipart/{subtype}; boundary={shown}\r\n\r\n")
                            .as_bytes(),
                    );
                    if *preamble {
                        out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
                    }
                    let digest = subtype.eq_ignore_ascii_case("digest");
                    self.boundaries.push(b.clone());
                    for child in children {
                        out.extend_from_slice(format!("--{b}\r\n").as_bytes());
                        self.part(out, child, digest);
                        out.extend_from_slice(b"\r\n");
                    }
                    self.boundaries.pop();
                    out.extend_from_slice(format!("--{b}--\r\n").as_bytes());
                    if *epilogue {
                        out.extend_from_slice(b"epilogue lima\r\n");
                    }
                }
                Node::Message(head, inner) => {
                    if !(in_digest && head.from % 2 == 0) {
                        out.extend_from_slice(b"Content-Type: message/rfc822\r\n");
                    }
                    if head.from % 3 == 0 {
                        out.extend_from_slice(b"Content-Description: forwarded kilo\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    self.message(out, head, inner);
                }
            }
        }

        fn leaf(&mut self, out: &mut Vec<u8>, leaf: &Leaf) {
            let (t, s) = leaf.media;
            let params = match leaf.charset {
                Some(c) if leaf.style % 4 == 1 => format!(";\r\n\tcharset=\"{c}\""),
                Some(c) if leaf.style % 4 == 2 => format!(";charset={c}; format=flowed"),
                Some(c) => format!("; charset={c}"),
                None => String::new(),
            };
            let no_type =
                leaf.charset.is_none() && leaf.style % 5 == 4 && t.eq_ignore_ascii_case("text");
            if !no_type {
                let comment = if leaf.style % 7 == 3 {
                    " (a comment)"
                } else {
                    ""
                };
                let name = if leaf.style % 11 == 5 {
                    "content-type"
                } else {
                    "Content-Type"
                };
                out.extend_from_slice(format!("{name}: {t}/{s}{comment}{params}\r\n").as_bytes());
            }
            let cte = match leaf.enc {
                Enc::Absent => None,
                Enc::SevenBit => Some("7bit"),
                Enc::EightBit => Some("8bit"),
                Enc::Base64 => Some(if leaf.style % 3 == 0 {
                    "BASE64"
                } else {
                    "base64"
                }),
                Enc::QuotedPrintable => Some("quoted-printable"),
            };
            if let Some(cte) = cte {
                out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes());
            }
            match leaf.disposition % 6 {
                1 => out.extend_from_slice(b"Content-Disposition: inline\r\n"),
                2 => out.extend_from_slice(
                    b"Content-Disposition: attachment; filename=\"report mike.txt\"\r\n",
                ),
                3 => out.extend_from_slice(
                    b"Content-Disposition: attachment;\r\n filename*=UTF-8''caf%C3%A9.txt\r\n",
                ),
                4 => out.extend_from_slice(b"Content-Disposition: ATTACHMENT; size=42\r\n"),
                _ => {}
            }
            if leaf.extras & 1 != 0 {
                self.counter += 1;
                out.extend_from_slice(
                    format!(
                        "Content-ID: <part{}.{}@example.org>\r\n",
                        self.seed, self.counter
                    )
                    .as_bytes(),
                );
            }
            if leaf.extras & 2 != 0 {
                out.extend_from_slice(
                    format!(
                        "Content-Description: {}\r\n",
                        encoded_word_q("naïve description")
                    )
                    .as_bytes(),
                );
            }
            if leaf.extras & 4 != 0 {
                out.extend_from_slice(b"Content-Language: en, de\r\n");
            }
            if leaf.extras & 8 != 0 {
                out.extend_from_slice(b"Content-Location: http://example.org/part\r\n");
            }
            if leaf.extras & 16 != 0 {
                out.extend_from_slice(b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n");
            }
            out.extend_from_slice(b"\r\n");
            let mut text = text_of(&leaf.words);
            if leaf.extras & 32 != 0 {
                text.push_str("\r\n");
            }
            let raw = encode_charset(&text, leaf.charset);
            let body = match leaf.enc {
                Enc::Base64 => base64_lines(&raw),
                Enc::QuotedPrintable => quoted_printable(&raw),
                _ => raw,
            };
            out.extend_from_slice(&body);
        }
    }
}

fn generated() -> Vec<Email> {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, SEED));
    let strategy = (gen::head(), gen::tree());
    (0..GENERATED)
        .map(|n| {
            let (head, tree) = strategy
                .new_tree(&mut runner)
                .expect("the strategy always draws")
                .current();
            Email {
                name: format!("generated/{n:03}"),
                bytes: gen::render(&head, &tree, n),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// The outcome of comparing one item.
enum Verdict {
    Equal,
    Excepted(&'static Exception),
    Wrong,
}

/// One difference, as reported.
struct Difference {
    email: String,
    item: String,
    ours: String,
    theirs: String,
}

#[derive(Default)]
struct Tally {
    equal: usize,
    /// Per kind of item (part numbers as `n`, partial origins as `<p>`): equal, excepted, wrong.
    by_kind: BTreeMap<String, [usize; 3]>,
    excepted: BTreeMap<&'static str, Vec<Difference>>,
    wrong: Vec<Difference>,
}

impl Tally {
    /// Counts one compared item; `d` describes it (built for every item, as the table counts by kind).
    fn record(&mut self, verdict: Verdict, d: impl FnOnce() -> Difference) {
        let d = d();
        let counts = self.by_kind.entry(kind_of(&d.item)).or_default();
        match verdict {
            Verdict::Equal => {
                counts[0] += 1;
                self.equal += 1;
            }
            Verdict::Excepted(e) => {
                counts[1] += 1;
                self.excepted.entry(e.name).or_default().push(d);
            }
            Verdict::Wrong => {
                counts[2] += 1;
                self.wrong.push(d);
            }
        }
    }

    fn count(&self, kind: Kind) -> usize {
        EXCEPTIONS
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| self.excepted.get(e.name).map_or(0, Vec::len))
            .sum()
    }
}

/// An item name with its numbers replaced, for counting by kind: `BODY[n.MIME]`, `BODY[n]<p>`.
fn kind_of(item: &str) -> String {
    if let Some(rest) = item.strip_prefix("SEARCH ") {
        return format!("SEARCH {}", rest.split(' ').next().unwrap_or(""));
    }
    if !item.contains('[') {
        return item.to_string();
    }
    let mut out = String::new();
    let mut in_number = false;
    for c in item.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('n');
            }
            in_number = true;
        } else {
            if in_number && c != ']' && c != '>' && !out.ends_with('.') {
                out.push('.');
            }
            in_number = false;
            out.push(c);
        }
    }
    out.replace("]<n>", "]<p>")
}

/// Equal token trees, with the media-type case tolerance of [`MEDIA_TYPE_CASE`] when `media` is set.
fn same(ours: &Value, theirs: &Value, media: bool) -> bool {
    match (ours, theirs) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, media))
        }
        (Value::Str(a), Value::Str(b))
            if media && [&b"TEXT"[..], b"MESSAGE", b"RFC822"].contains(&a.as_slice()) =>
        {
            a.eq_ignore_ascii_case(b)
        }
        (a, b) => a == b,
    }
}

/// What a message looks like, as far as the exceptions need to know.
struct Traits {
    crcrlf: bool,
}

fn traits(email: &Email) -> Traits {
    Traits {
        crcrlf: email.bytes.windows(3).any(|w| w == b"\r\r\n"),
    }
}

/// Judges one FETCH item.
fn judge_fetch(item: &str, ours: Option<&Value>, theirs: Option<&Value>, t: &Traits) -> Verdict {
    let media = item == "BODYSTRUCTURE" || item == "BODY";
    match (ours, theirs) {
        (Some(a), Some(b)) if a == b => return Verdict::Equal,
        (Some(a), Some(b)) if same(a, b, media) => return Verdict::Excepted(&MEDIA_TYPE_CASE),
        _ => {}
    }
    if t.crcrlf {
        return Verdict::Excepted(&CRCRLF);
    }
    Verdict::Wrong
}

/// Judges one message's membership in one SEARCH where the two servers disagree.
fn judge_search(t: &Traits) -> Verdict {
    if t.crcrlf {
        return Verdict::Excepted(&CRCRLF);
    }
    Verdict::Wrong
}

/// A FETCH item name as both servers write it back: upper case, single spaces, no `.PEEK`.
fn item_key(name: &str) -> String {
    name.replace(".PEEK", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// The data items of every FETCH response for `seq`, merged.
fn fetch_items(reply: &Reply, seq: u32) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in &reply.untagged {
        let v = parse(r);
        let is_ours = matches!(&v[..], [Value::Atom(star), Value::Atom(n), Value::Atom(f), Value::List(_)]
            if star == "*" && n.parse() == Ok(seq) && f.eq_ignore_ascii_case("FETCH"));
        if !is_ours {
            continue;
        }
        let Some(Value::List(items)) = v.get(3) else {
            continue;
        };
        for pair in items.chunks(2) {
            if let [Value::Atom(k), v] = pair {
                out.insert(item_key(k), v.clone());
            }
        }
    }
    out
}

/// Whether an independent parser (imap-proto) reads every untagged response of `reply` whole.
fn parses(reply: &Reply) -> bool {
    reply
        .untagged
        .iter()
        .all(|r| imap_proto::Response::parse(r).is_ok_and(|(rest, _)| rest.is_empty()))
}

/// Part numbers of a BODYSTRUCTURE, depth first: children of multiparts, and the body of each
/// message/rfc822 (its children if multipart, else `n.1`).
fn part_paths(bs: &Value) -> Vec<(String, bool)> {
    fn is_multi(v: &Value) -> bool {
        v.list()
            .is_some_and(|l| matches!(l.first(), Some(Value::List(_))))
    }
    fn is_message(v: &Value) -> bool {
        let l = v.list().unwrap_or(&[]);
        let eq = |i: usize, s: &[u8]| {
            l.get(i)
                .and_then(Value::str)
                .is_some_and(|x| x.eq_ignore_ascii_case(s))
        };
        eq(0, b"message") && eq(1, b"rfc822") && l.len() > 8
    }
    fn children(v: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
        if out.len() > 200 {
            return;
        }
        let join = |i: usize| {
            if prefix.is_empty() {
                format!("{i}")
            } else {
                format!("{prefix}.{i}")
            }
        };
        if is_multi(v) {
            for (i, c) in v
                .list()
                .unwrap_or(&[])
                .iter()
                .take_while(|c| matches!(c, Value::List(_)))
                .enumerate()
            {
                let p = join(i + 1);
                out.push((p.clone(), is_message(c)));
                children(c, &p, out);
            }
        } else if is_message(v) && !prefix.is_empty() {
            let inner = &v.list().expect("a message part is a list")[8];
            if is_multi(inner) {
                children(inner, prefix, out);
            } else {
                let p = join(1);
                out.push((p.clone(), is_message(inner)));
                children(inner, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    if is_multi(bs) {
        children(bs, "", &mut out);
    } else {
        out.push(("1".to_string(), is_message(bs)));
        children(bs, "1", &mut out);
    }
    out
}

/// One SEARCH criterion.
struct SearchKey {
    command: Vec<u8>,
}

fn search_keys() -> Vec<SearchKey> {
    let plain = |s: &str| SearchKey {
        command: s.as_bytes().to_vec(),
    };
    let utf8 = |key: &str, word: &str| {
        let mut command = format!("CHARSET UTF-8 {key} ").into_bytes();
        command.extend_from_slice(&astring(word.as_bytes()));
        SearchKey { command }
    };
    vec![
        plain("ALL"),
        plain("FROM jane"),
        plain("FROM example.org"),
        plain("FROM \"Doe, John\""),
        plain("FROM mueller"),
        plain("FROM Pirard"),
        plain("TO alice"),
        plain("CC bob"),
        plain("SUBJECT bravo"),
        plain("SUBJECT \"alpha bravo\""),
        plain("SUBJECT hotel"),
        plain("SUBJECT test"),
        plain("SUBJECT re"),
        plain("BODY alpha"),
        plain("BODY echo"),
        plain("BODY lima"),
        plain("BODY the"),
        plain("BODY boundary"),
        plain("TEXT golf"),
        plain("TEXT jane"),
        plain("TEXT hotel"),
        plain("LARGER 1000"),
        plain("SMALLER 600"),
        plain("LARGER 5000"),
        plain("HEADER X-Tag lima"),
        plain("HEADER X-Tag india"),
        plain("HEADER X-Tag \"\""),
        plain("HEADER Message-ID example"),
        plain("HEADER X-Folded \"second line\""),
        plain("HEADER Content-Type mixed"),
        plain("OR SUBJECT alpha BODY bravo"),
        plain("NOT LARGER 2000"),
        plain("SENTBEFORE 2-Jan-2023"),
        plain("SENTON 2-Jan-2023"),
        plain("SENTSINCE 3-Jan-2023"),
        plain("RECENT"),
        utf8("SUBJECT", "café"),
        utf8("SUBJECT", "grüße"),
        utf8("FROM", "Müller"),
        utf8("BODY", "café"),
        utf8("BODY", "Zürich"),
        utf8("TEXT", "日本語"),
    ]
}

fn search_hits(reply: &Reply) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for r in &reply.untagged {
        let text = String::from_utf8_lossy(r);
        if let Some(rest) = text.strip_prefix("* SEARCH") {
            out.extend(
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok()),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The test

/// Both sessions, logged in.
struct Peers {
    ours: Conn,
    theirs: Conn,
}

impl Peers {
    async fn both(&mut self, command: &[u8]) -> (Reply, Reply) {
        (self.ours.run(command).await, self.theirs.run(command).await)
    }
}

/// The private Dovecot's one user.
const DOVECOT_LOGIN: &str = "tester";
const DOVECOT_PASSWORD: &str = "tester-pw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_search_answers_match_dovecot_or_a_named_exception() {
    let options = bench::dovecot::DovecotOptions {
        name: "differential".into(),
        users: vec![(DOVECOT_LOGIN.into(), DOVECOT_PASSWORD.into())],
        ..Default::default()
    };
    let dovecot = match bench::dovecot::Dovecot::start(&options) {
        Ok(d) => d,
        Err(bench::dovecot::DovecotError::NotInstalled) if std::env::var_os("CI").is_none() => {
            eprintln!("\n***********************************************************************");
            eprintln!("*** SKIPPED dovecot_differential: dovecot is not installed.           ***");
            eprintln!("*** apt-get install dovecot-imapd to run it (CI requires it).          ***");
            eprintln!("***********************************************************************\n");
            return;
        }
        Err(e) => panic!("cannot start dovecot: {e}"),
    };
    let ours_addr = start_ours().await;
    let mut peers = Peers {
        ours: Conn::connect("ours", ours_addr).await,
        theirs: Conn::connect("dovecot", dovecot.imap).await,
    };
    let login = peers
        .ours
        .run(format!("LOGIN {OUR_USER} {OUR_PASSWORD}").as_bytes())
        .await;
    assert!(login.ok(), "our login: {}", login.tagged);
    let login = peers
        .theirs
        .run(format!("LOGIN {DOVECOT_LOGIN} {DOVECOT_PASSWORD}").as_bytes())
        .await;
    assert!(
        login.ok(),
        "dovecot login: {} (log: {})",
        login.tagged,
        dovecot.log().display()
    );

    let mut emails = corpus();
    let corpus_count = emails.len();
    emails.extend(generated());
    if let Some(dir) = std::env::var_os("DIFFERENTIAL_DUMP") {
        // For reproducing a difference by hand: every email as DIR/NAME.eml.
        for e in &emails {
            let path = Path::new(&dir).join(format!("{}.eml", e.name));
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))
                .expect("create dump folder");
            std::fs::write(&path, &e.bytes).expect("write dumped email");
        }
    }
    println!(
        "SEED={} emails: {corpus_count} from the corpus, {GENERATED} generated",
        String::from_utf8_lossy(SEED)
    );

    let mut tally = Tally::default();
    // The sequence number of each email on each server, when its APPEND succeeded.
    let mut seqs: Vec<(Option<u32>, Option<u32>)> = Vec::new();
    let (mut next_ours, mut next_theirs) = (1u32, 1u32);
    for email in &emails {
        let mut command = format!("APPEND INBOX {{{}+}}\r\n", email.bytes.len()).into_bytes();
        command.extend_from_slice(&email.bytes);
        let (a, b) = peers.both(&command).await;
        let seq_a = a.ok().then(|| {
            next_ours += 1;
            next_ours - 1
        });
        let seq_b = b.ok().then(|| {
            next_theirs += 1;
            next_theirs - 1
        });
        if a.ok() == b.ok() {
            tally.equal += 1;
        } else {
            tally.wrong.push(Difference {
                email: email.name.clone(),
                item: "APPEND".into(),
                ours: a.tagged.clone(),
                theirs: b.tagged.clone(),
            });
        }
        seqs.push((seq_a, seq_b));
    }
    let (a, b) = peers.both(b"SELECT INBOX").await;
    assert!(
        a.ok() && b.ok(),
        "SELECT: ours {}, dovecot {}",
        a.tagged,
        b.tagged
    );

    for (email, seq) in emails.iter().zip(&seqs) {
        let (Some(sa), Some(sb)) = *seq else { continue };
        let t = traits(email);
        // BODY is asked alone: imap-proto 0.17 cannot parse it, and every other answer is also
        // checked to be readable by that independent parser.
        let items =
            "BODYSTRUCTURE ENVELOPE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)] \
                     BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[]";
        let a = peers
            .ours
            .run(format!("FETCH {sa} ({items})").as_bytes())
            .await;
        let b = peers
            .theirs
            .run(format!("FETCH {sb} ({items})").as_bytes())
            .await;
        let (pa, pb) = (parses(&a), parses(&b));
        let (mut ia, mut ib) = (fetch_items(&a, sa), fetch_items(&b, sb));
        let a = peers
            .ours
            .run(format!("FETCH {sa} (BODY)").as_bytes())
            .await;
        let b = peers
            .theirs
            .run(format!("FETCH {sb} (BODY)").as_bytes())
            .await;
        ia.extend(fetch_items(&a, sa));
        ib.extend(fetch_items(&b, sb));
        tally.record(
            if pa || !pb {
                Verdict::Equal
            } else {
                Verdict::Wrong
            },
            || Difference {
                email: email.name.clone(),
                item: "imap-proto parses the FETCH".into(),
                ours: pa.to_string(),
                theirs: pb.to_string(),
            },
        );
        let mut names: Vec<String> = ib.keys().cloned().collect();
        names.extend(ia.keys().filter(|k| !ib.contains_key(*k)).cloned());
        for name in &names {
            let (va, vb) = (ia.get(name), ib.get(name));
            tally.record(judge_fetch(name, va, vb, &t), || Difference {
                email: email.name.clone(),
                item: name.clone(),
                ours: show(va),
                theirs: show(vb),
            });
        }
        if names.is_empty() {
            tally.wrong.push(Difference {
                email: email.name.clone(),
                item: "FETCH".into(),
                ours: a.tagged.clone(),
                theirs: b.tagged.clone(),
            });
        }
        // Sections of each part, as Dovecot's structure numbers them.
        let Some(bs) = ib.get("BODYSTRUCTURE") else {
            continue;
        };
        let mut part_items = Vec::new();
        for (k, (path, message)) in part_paths(bs).into_iter().enumerate() {
            let origin = (k * 37 + email.bytes.len()) % 200;
            let count = 1 + (k * 53 + email.bytes.len()) % 400;
            part_items.push(format!("BODY.PEEK[{path}.MIME]"));
            part_items.push(format!("BODY.PEEK[{path}]"));
            part_items.push(format!("BODY.PEEK[{path}]<{origin}.{count}>"));
            if message {
                part_items.push(format!("BODY.PEEK[{path}.HEADER]"));
                part_items.push(format!("BODY.PEEK[{path}.TEXT]"));
            }
        }
        for batch in part_items.chunks(48) {
            let items = batch.join(" ");
            let a = peers
                .ours
                .run(format!("FETCH {sa} ({items})").as_bytes())
                .await;
            let b = peers
                .theirs
                .run(format!("FETCH {sb} ({items})").as_bytes())
                .await;
            let (ia, ib) = (fetch_items(&a, sa), fetch_items(&b, sb));
            let (pa, pb) = (parses(&a), parses(&b));
            tally.record(
                if pa || !pb {
                    Verdict::Equal
                } else {
                    Verdict::Wrong
                },
                || Difference {
                    email: email.name.clone(),
                    item: "imap-proto parses the FETCH".into(),
                    ours: pa.to_string(),
                    theirs: pb.to_string(),
                },
            );
            for name in batch {
                // Dovecot answers a partial fetch as `BODY[1]<7>`.
                let key = match name.split_once("]<") {
                    Some((head, tail)) => {
                        format!("{head}]<{}>", tail.split('.').next().expect("origin"))
                    }
                    None => name.clone(),
                };
                let key = item_key(&key);
                let (va, vb) = (ia.get(&key), ib.get(&key));
                tally.record(judge_fetch(&key, va, vb, &t), || Difference {
                    email: email.name.clone(),
                    item: key.clone(),
                    ours: show(va),
                    theirs: show(vb),
                });
            }
        }
    }

    // SEARCH: the same keys on both; each email's membership compared.
    let seq_to_email = |f: fn(&(Option<u32>, Option<u32>)) -> Option<u32>| -> BTreeMap<u32, usize> {
        seqs.iter()
            .enumerate()
            .filter_map(|(i, s)| f(s).map(|n| (n, i)))
            .collect()
    };
    let (map_a, map_b) = (seq_to_email(|s| s.0), seq_to_email(|s| s.1));
    for key in search_keys() {
        let mut command = b"SEARCH ".to_vec();
        command.extend_from_slice(&key.command);
        let (a, b) = peers.both(&command).await;
        let shown = String::from_utf8_lossy(&key.command).replace("\r\n", " ");
        if a.ok() != b.ok() {
            tally.wrong.push(Difference {
                email: "(all)".into(),
                item: format!("SEARCH {shown}"),
                ours: a.tagged.clone(),
                theirs: b.tagged.clone(),
            });
            continue;
        }
        let hits_a: BTreeSet<usize> = search_hits(&a)
            .iter()
            .filter_map(|n| map_a.get(n).copied())
            .collect();
        let hits_b: BTreeSet<usize> = search_hits(&b)
            .iter()
            .filter_map(|n| map_b.get(n).copied())
            .collect();
        for (i, email) in emails.iter().enumerate() {
            if seqs[i].0.is_none() || seqs[i].1.is_none() {
                continue;
            }
            let (in_a, in_b) = (hits_a.contains(&i), hits_b.contains(&i));
            let verdict = if in_a == in_b {
                Verdict::Equal
            } else {
                judge_search(&traits(email))
            };
            tally.record(verdict, || Difference {
                email: email.name.clone(),
                item: format!("SEARCH {shown}"),
                ours: if in_a { "matches" } else { "does not match" }.into(),
                theirs: if in_b { "matches" } else { "does not match" }.into(),
            });
        }
    }
    let _ = peers.ours.run(b"LOGOUT").await;
    let _ = peers.theirs.run(b"LOGOUT").await;

    println!(
        "\n=== differential test against Dovecot: {} emails ===",
        emails.len()
    );
    println!("equal:                  {}", tally.equal);
    println!("deliberately different: {}", tally.count(Kind::Deliberate));
    println!("known gaps (to fix):    {}", tally.count(Kind::Gap));
    println!("wrong (unlisted):       {}", tally.wrong.len());
    println!(
        "\n{:<48} {:>7} {:>9} {:>6}",
        "item", "equal", "excepted", "wrong"
    );
    for (kind, [e, x, w]) in &tally.by_kind {
        println!("{kind:<48} {e:>7} {x:>9} {w:>6}");
    }
    for e in EXCEPTIONS {
        let list = tally.excepted.get(e.name).map(Vec::as_slice).unwrap_or(&[]);
        println!(
            "\n[{:?}] {}: {} differences. {}",
            e.kind,
            e.name,
            list.len(),
            e.reason
        );
        let shown = if std::env::var_os("DIFFERENTIAL_VERBOSE").is_some() {
            list.len()
        } else {
            5
        };
        for d in list.iter().take(shown) {
            println!(
                "  {} {}\n    ours:    {}\n    dovecot: {}",
                d.email, d.item, d.ours, d.theirs
            );
        }
        if list.is_empty() {
            println!("  STALE: this exception matched nothing; remove it if the gap is fixed.");
        }
    }
    if !tally.wrong.is_empty() {
        println!("\n=== unlisted differences ===");
        for d in &tally.wrong {
            println!(
                "{} {}\n  ours:    {}\n  dovecot: {}",
                d.email, d.item, d.ours, d.theirs
            );
        }
    }
    assert!(tally.equal > 0, "nothing was compared");
    assert!(
        tally.wrong.is_empty(),
        "{} differences from Dovecot are neither fixed nor a named exception (listed above)",
        tally.wrong.len()
    );
}
