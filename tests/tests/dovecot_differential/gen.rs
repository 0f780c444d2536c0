//! Seeded MIME trees rendered to bytes.

use base64::Engine as _;
use proptest::prelude::*;

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

prop_compose! {
    pub fn head()(
        from in any::<u8>(),
        to in prop::collection::vec(any::<u8>(), 0..4),
        cc in any::<bool>(),
        subject in prop::collection::vec(0..WORDS.len(), 0..8),
        subject_style in any::<u8>(),
        date in any::<u8>(),
        mime_version in any::<u8>(),
        x_tag in prop::option::of(0..WORDS.len()),
        duplicate in any::<u8>(),
        message_id in any::<bool>(),
        name_case in any::<u8>(),
        odd in any::<u8>(),
    ) -> Head {
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
    }
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
