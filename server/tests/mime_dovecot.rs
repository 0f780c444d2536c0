//! Conformance of the streaming MIME scanner with Dovecot's BODYSTRUCTURE, BODY and ENVELOPE answers
//! on the email corpus (`tests/data/emails`, a copy of the shared corpus plus live Dovecot answers).
//!
//! Dovecot is the reference. Comparison is token by token (whitespace normalised, an IMAP string
//! compared by its content whether quoted or literal), with one deliberate difference: imap-codec
//! writes the media type of text and message/rfc822 parts as `"TEXT"`, `"MESSAGE" "RFC822"`, in upper
//! case, where Dovecot keeps the case of the header; IMAP media types are case-insensitive.

use std::path::{Path, PathBuf};

use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::ResponseCodec;
use server::mime::{Kind, MessageMeta, Scanner, HEADER_BLOCK_MAX, MAX_NESTING, MAX_PARTS};
use testkit::to_crlf;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/emails");

/// Emails whose recorded Dovecot answers are for other bytes than the ones we store, and why.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("rfc/003", CRCRLF),
    ("thirdparty/000", CRCRLF),
    ("thirdparty/001", CRCRLF),
];
const CRCRLF: &str = "lines end in CR CR LF; Dovecot stores mail with LF line ends, which turns each CR CR LF \
     into CR LF before parsing, so its sizes and structure are those of that other byte string. We store and \
     describe the bytes as delivered, so here the answers differ (there is no blank line ending the header). \
     Checked instead: scanning the email with CR CR LF turned into CR LF gives Dovecot's recorded answer.";

fn emails() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["dxflrs", "rfc", "thirdparty", "malformed"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join(dir))
            .expect("the corpus copy is in tests/data/emails")
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// `dir/name` of an email.
fn name_of(eml: &Path) -> String {
    let dir = eml
        .parent()
        .and_then(Path::file_name)
        .expect("email in a folder")
        .to_string_lossy();
    let stem = eml.file_stem().expect("email file name").to_string_lossy();
    format!("{dir}/{stem}")
}

fn answer(eml: &Path, suffix: &str) -> Option<Vec<u8>> {
    std::fs::read(eml.with_extension(suffix)).ok()
}

/// CR CR LF to CR LF, as Dovecot's LF storage does in effect.
fn crcrlf_to_crlf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for (i, &b) in msg.iter().enumerate() {
        if b == b'\r' && msg.get(i + 1) == Some(&b'\r') && msg.get(i + 2) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

fn scan_chunked(msg: &[u8], chunk: usize) -> MessageMeta {
    let mut s = Scanner::new();
    for c in msg.chunks(chunk.max(1)) {
        s.feed(c);
    }
    s.finish()
}

/// Scans with chunks of 1, 7, 4096 bytes and whole, asserting all give the same metadata.
fn scan_all_chunkings(name: &str, msg: &[u8]) -> MessageMeta {
    let whole = scan_chunked(msg, msg.len());
    for size in [1, 7, 4096] {
        assert_eq!(
            scan_chunked(msg, size),
            whole,
            "{name}: chunks of {size} bytes change the result"
        );
    }
    whole
}

fn encode(item: MessageDataItem<'static>) -> Vec<u8> {
    let seq = std::num::NonZeroU32::new(1).expect("1 is not zero");
    let resp = Response::Data(Data::Fetch {
        seq,
        items: Vec1::from(item),
    });
    let out = ResponseCodec::default().encode(&resp).dump();
    let out = out
        .strip_prefix(b"* 1 FETCH ")
        .expect("a FETCH response")
        .to_vec();
    out.strip_suffix(b"\r\n").expect("a response line").to_vec()
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Atom(Vec<u8>),
    Str(Vec<u8>),
}

fn tokens(s: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'"' => {
                let mut v = Vec::new();
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            b'{' => {
                let close = i + s[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .expect("literal length ends with }");
                let n: usize = std::str::from_utf8(&s[i + 1..close])
                    .expect("ascii")
                    .trim_end_matches('+')
                    .parse()
                    .expect("literal length");
                let start = close + 3; // "}\r\n"
                out.push(Tok::Str(s[start..start + n].to_vec()));
                i = start + n;
            }
            _ => {
                let start = i;
                while i < s.len() && !matches!(s[i], b' ' | b'(' | b')' | b'\r' | b'\n') {
                    i += 1;
                }
                out.push(Tok::Atom(s[start..i].to_vec()));
            }
        }
    }
    out
}

/// Token-wise comparison; see the module doc for the one tolerated difference.
fn same(ours: &[u8], theirs: &[u8]) -> bool {
    let (a, b) = (tokens(ours), tokens(theirs));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| match (x, y) {
            (Tok::Str(x), Tok::Str(y))
                if [&b"TEXT"[..], b"MESSAGE", b"RFC822"].contains(&x.as_slice()) =>
            {
                x.eq_ignore_ascii_case(y)
            }
            _ => x == y,
        })
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Tally {
    equal: usize,
    different: Vec<String>,
    exceptions: usize,
}

impl Tally {
    fn new() -> Self {
        Tally {
            equal: 0,
            different: Vec::new(),
            exceptions: 0,
        }
    }

    fn check(&mut self, what: String, ours: &[u8], theirs: &[u8]) {
        if same(ours, theirs) {
            self.equal += 1;
        } else {
            self.different.push(format!(
                "{what}\n  ours:    {}\n  dovecot: {}",
                show(ours),
                show(theirs)
            ));
        }
    }

    fn report(&self, title: &str) {
        println!(
            "{title}: equal {}, different {}, exceptions {}",
            self.equal,
            self.different.len(),
            self.exceptions
        );
        for d in &self.different {
            println!("DIFFERENT {d}");
        }
        if self.exceptions > 0 {
            for (name, why) in EXCEPTIONS {
                println!("exception {name}: {why}");
            }
        }
        assert!(
            self.different.is_empty(),
            "{title}: {} answers differ from Dovecot's",
            self.different.len()
        );
    }
}

fn exception(name: &str) -> bool {
    EXCEPTIONS.iter().any(|(n, _)| *n == name)
}

#[test]
fn bodystructure_and_body_match_dovecot_recorded_answers() {
    let mut tally = Tally::new();
    for eml in emails() {
        let name = name_of(&eml);
        let (Some(bs), Some(body)) = (
            answer(&eml, "dovecot.bodystructure"),
            answer(&eml, "dovecot.body"),
        ) else {
            continue;
        };
        let msg = to_crlf(&std::fs::read(&eml).expect("readable email"));
        let meta = scan_all_chunkings(&name, &msg);
        let ours_bs = encode(MessageDataItem::BodyStructure(meta.bodystructure(true)));
        let ours_body = encode(MessageDataItem::Body(meta.bodystructure(false)));
        if exception(&name) {
            tally.exceptions += 1;
            assert!(
                !same(&ours_bs, &bs),
                "{name} is listed as an exception but matches: remove it from EXCEPTIONS"
            );
            let dovecot_view = scan_all_chunkings(&name, &crcrlf_to_crlf(&msg));
            tally.check(
                format!("{name} (CR CR LF as CR LF) BODYSTRUCTURE"),
                &encode(MessageDataItem::BodyStructure(
                    dovecot_view.bodystructure(true),
                )),
                &bs,
            );
            tally.check(
                format!("{name} (CR CR LF as CR LF) BODY"),
                &encode(MessageDataItem::Body(dovecot_view.bodystructure(false))),
                &body,
            );
            continue;
        }
        tally.check(format!("{name} BODYSTRUCTURE"), &ours_bs, &bs);
        tally.check(format!("{name} BODY"), &ours_body, &body);
    }
    assert!(
        tally.equal >= 2 * 23,
        "expected the 27 answered emails to be compared"
    );
    tally.report("BODYSTRUCTURE/BODY vs recorded Dovecot answers");
}

#[test]
fn envelope_matches_live_dovecot_for_every_email() {
    let mut tally = Tally::new();
    for eml in emails() {
        let name = name_of(&eml);
        let Some(env) = answer(&eml, "dovecot-2.3.19.envelope") else {
            continue;
        };
        let mut msg = to_crlf(&std::fs::read(&eml).expect("readable email"));
        if exception(&name) {
            tally.exceptions += 1;
            msg = crcrlf_to_crlf(&msg);
        }
        let meta = scan_all_chunkings(&name, &msg);
        tally.check(
            format!("{name} ENVELOPE"),
            &encode(MessageDataItem::Envelope(meta.envelope())),
            &env,
        );
    }
    assert_eq!(
        tally.equal + tally.different.len(),
        44,
        "every email has a live envelope answer"
    );
    tally.report("ENVELOPE vs live Dovecot 2.3.19");
}

#[test]
fn malformed_emails_match_live_dovecot_and_encode() {
    let mut tally = Tally::new();
    for eml in emails()
        .into_iter()
        .filter(|p| name_of(p).starts_with("malformed/"))
    {
        let name = name_of(&eml);
        let raw = std::fs::read(&eml).expect("readable email");
        // As delivered (bare LF) and as stored by IMAP clients (CRLF): no panic, same for all chunkings.
        for msg in [raw.clone(), to_crlf(&raw)] {
            let meta = scan_all_chunkings(&name, &msg);
            assert_eq!(meta.size, msg.len() as u64);
            let bs = encode(MessageDataItem::BodyStructure(meta.bodystructure(true)));
            assert!(
                bs.starts_with(b"(BODYSTRUCTURE (") && bs.ends_with(b"))"),
                "{name}: {}",
                show(&bs)
            );
        }
        let meta = scan_all_chunkings(&name, &to_crlf(&raw));
        if let (Some(bs), Some(body)) = (
            answer(&eml, "dovecot-2.3.19.bodystructure"),
            answer(&eml, "dovecot-2.3.19.body"),
        ) {
            tally.check(
                format!("{name} BODYSTRUCTURE"),
                &encode(MessageDataItem::BodyStructure(meta.bodystructure(true))),
                &bs,
            );
            tally.check(
                format!("{name} BODY"),
                &encode(MessageDataItem::Body(meta.bodystructure(false))),
                &body,
            );
        }
    }
    assert_eq!(tally.equal + tally.different.len(), 2 * 17);
    tally.report("malformed BODYSTRUCTURE/BODY vs live Dovecot 2.3.19");
}

/// Every part's byte range lies inside the message, in order, and the part of a section path
/// serves the right bytes.
#[test]
fn part_ranges_serve_sections() {
    for eml in emails() {
        let name = name_of(&eml);
        let msg = to_crlf(&std::fs::read(&eml).expect("readable email"));
        let meta = MessageMeta::from_bytes(&msg);
        fn walk(p: &server::mime::Part, lo: u64, hi: u64, name: &str) {
            assert!(
                lo <= p.header_start
                    && p.header_start <= p.body_start
                    && p.body_start <= p.body_end
                    && p.body_end <= hi,
                "{name}: {p:?}"
            );
            match &p.kind {
                Kind::Multipart(children) => children
                    .iter()
                    .for_each(|c| walk(c, p.body_start, p.body_end, name)),
                Kind::Message(m) => walk(&m.part, p.body_start, p.body_end, name),
                Kind::Single => {}
            }
        }
        walk(&meta.root, 0, meta.size, &name);
        if meta.header_complete {
            assert_eq!(
                meta.header,
                &msg[..meta.root.body_start as usize],
                "{name}: kept header is the header block"
            );
        }
    }
    let msg = to_crlf(
        &std::fs::read(Path::new(DATA).join("dxflrs/0004_msg-in-msg.eml")).expect("readable email"),
    );
    let meta = MessageMeta::from_bytes(&msg);
    let range = |p: &server::mime::Part| {
        (
            &msg[p.header_start as usize..p.body_start as usize],
            &msg[p.body_start as usize..p.body_end as usize],
        )
    };
    let (mime, body) = range(meta.part(&[1]).expect("part 1"));
    assert_eq!(
        mime,
        b"Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n"
    );
    assert_eq!(body, b"Hello 1");
    let inner = meta
        .part(&[2, 1])
        .expect("part 2.1: the body of the embedded message");
    let (header, text) = range(inner);
    assert!(
        header.starts_with(b"From: ") && header.ends_with(b"\r\n\r\n"),
        "{}",
        show(header)
    );
    assert_eq!(text.len(), 49);
    assert_eq!(meta.part(&[3]), None);
    assert_eq!(meta.part(&[]).map(|p| p.header_start), Some(0));
}

#[test]
fn boundary_split_across_chunks_is_found() {
    let msg = b"Content-Type: multipart/mixed; boundary=\"abcdef\"\r\n\r\npre\r\n--abcdef\r\n\r\none\r\n--abcdef\r\n\r\ntwo\r\n--abcdef--\r\n";
    let whole = MessageMeta::from_bytes(msg);
    let Kind::Multipart(children) = &whole.root.kind else {
        panic!("multipart expected")
    };
    assert_eq!(children.len(), 2);
    for cut in 0..msg.len() {
        let mut s = Scanner::new();
        s.feed(&msg[..cut]);
        s.feed(&msg[cut..]);
        assert_eq!(s.finish(), whole, "split at {cut}");
    }
}

#[test]
fn huge_header_and_body_keep_memory_bounded() {
    let mut s = Scanner::new();
    s.feed(b"Subject: big\r\nX-Filler: ");
    let filler = vec![b'a'; 64 * 1024];
    for _ in 0..4 {
        s.feed(&filler);
    }
    s.feed(b"\r\nContent-Type: text/plain\r\n\r\n");
    let line = [b'x'; 1000];
    for _ in 0..20_000 {
        s.feed(&line);
        s.feed(b"\r\n");
    }
    let meta = s.finish();
    assert!(!meta.header_complete);
    assert_eq!(meta.header.len(), HEADER_BLOCK_MAX);
    assert_eq!(meta.root.lines, 20_000);
    assert_eq!(meta.root.body_end - meta.root.body_start, 20_000 * 1002);
    // The Content-Type beyond the kept header block is ignored: text/plain by default anyway.
    assert!(postcard::to_allocvec(&meta).expect("serialisable").len() < HEADER_BLOCK_MAX + 4096);
}

#[test]
fn parts_beyond_the_limit_are_opaque_body() {
    let mut s = Scanner::new();
    s.feed(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for _ in 0..(MAX_PARTS as usize + 500) {
        s.feed(b"--b\r\n\r\nx\r\n");
    }
    s.feed(b"--b--\r\n");
    let meta = s.finish();
    let Kind::Multipart(children) = &meta.root.kind else {
        panic!("multipart expected")
    };
    assert_eq!(children.len(), MAX_PARTS as usize - 1);
    let _ = encode(MessageDataItem::BodyStructure(meta.bodystructure(true)));
}

#[test]
fn nesting_beyond_the_limit_is_opaque_body() {
    let mut msg = Vec::new();
    for i in 0..(MAX_NESTING + 50) {
        msg.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    msg.extend_from_slice(b"\r\nleaf\r\n");
    let meta = scan_all_chunkings("deep", &msg);
    fn depth(p: &server::mime::Part) -> usize {
        match &p.kind {
            Kind::Multipart(c) => 1 + c.iter().map(depth).max().unwrap_or(0),
            Kind::Message(m) => 1 + depth(&m.part),
            Kind::Single => 0,
        }
    }
    assert!(depth(&meta.root) < MAX_NESTING);
    assert!(meta.truncated);
    let _ = encode(MessageDataItem::BodyStructure(meta.bodystructure(true)));
}
