//! The conformance gaps of issue #3, closed, as transcripts against the server on loopback: SEARCH
//! BODY/TEXT on decoded text (transfer encodings, charsets), header keys on decoded encoded words,
//! \Recent in exactly one session, and the MIME header of an empty part before a boundary.
//! Dovecot 2.3 is the reference (tests/tests/dovecot_differential/ compares against it live).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::{tagged, Client};
use server::config::Limits;

/// Small chunks, so that decoding and matching run across chunk borders.
async fn start() -> SocketAddr {
    common::start(Limits {
        chunk_bytes: 64,
        ..Limits::default()
    })
    .await
    .imap
}

async fn login(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    c
}

async fn append(c: &mut Client, mailbox: &str, message: &[u8]) {
    c.send(format!("ap APPEND {mailbox} {{{}+}}\r\n", message.len()).as_bytes())
        .await;
    c.send(message).await;
    c.send(b"\r\n").await;
    let lines = c.until("ap").await;
    assert!(tagged(&lines).starts_with("ap OK"), "{lines:?}");
}

/// The sequence numbers a SEARCH answers; `key` may be UTF-8 (sent as a LITERAL+ with CHARSET).
async fn search(c: &mut Client, key: &str, value: &str) -> BTreeSet<u32> {
    let command = if value.is_ascii() {
        format!("s SEARCH {key} \"{value}\"\r\n")
    } else {
        format!(
            "s SEARCH CHARSET UTF-8 {key} {{{}+}}\r\n{value}\r\n",
            value.len()
        )
    };
    c.send(command.as_bytes()).await;
    hits(&c.until("s").await)
}

/// The numbers of the `* SEARCH` line of an answer (which must be OK).
fn hits(lines: &[String]) -> BTreeSet<u32> {
    assert!(tagged(lines).starts_with("s OK"), "{lines:?}");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()))
        .collect()
}

fn set(seqs: &[u32]) -> BTreeSet<u32> {
    seqs.iter().copied().collect()
}

/// Encoded words in the header; a base64 UTF-8 part, a quoted-printable Latin-1 part with a soft
/// line break, an attachment, a preamble and an epilogue.
const MIXED: &[u8] = b"From: =?UTF-8?B?Q2Fmw6kgTcO8bGxlcg==?= <mueller@example.de>\r\n\
To: alice@example.org\r\n\
Subject: =?ISO-8859-1?Q?gr=FC=DFe?= aus =?UTF-8?B?WsO8cmljaA==?=\r\n\
X-Note: =?UTF-8?Q?caf=C3=A9_au_lait?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
preamble kilo\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
R3LDvMOfZSBhdXMgWsO8cmljaCwg\r\n\
YWxwaGEgYnJhdm8NCg==\r\n\
--b1\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Un caf=E9 tr=E8s cha=\r\n\
ud, charlie\r\n\
--b1\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
ZGVsdGEgc2VjcmV0\r\n\
--b1--\r\n\
epilogue lima\r\n";

/// One 8-bit part in windows-1252 (smart quotes, accents).
const CP1252: &[u8] = b"Subject: plain\r\n\
Content-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Na\xefve \x93quotes\x94 fa\xe7ade\r\n";

/// Broken encodings everywhere: decoding goes as far as it can and nothing fails.
const BROKEN: &[u8] = b"Subject: =?utf-8?B?!!!?= =?bogus?X?y?= =?\r\n\
Content-Type: multipart/mixed; boundary=x\r\n\
\r\n\
--x\r\n\
Content-Type: text/plain; charset=x-no-such-charset\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG8gd29y!!!bGQ=\r\n\
--x\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
broken =ZZ escape =\r\nand = lone =4\r\n\
--x\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
foxtrot\r\n\
--x\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
\xff\xfe invalid utf-8 echo\r\n\
--x--\r\n";

async fn mailbox_with_fixtures(addr: SocketAddr) -> Client {
    let mut c = login(addr).await;
    for message in [MIXED, CP1252, BROKEN] {
        append(&mut c, "INBOX", message).await;
    }
    assert!(tagged(&c.run("x", "SELECT INBOX").await).starts_with("x OK"));
    c
}

#[tokio::test]
async fn search_body_matches_the_decoded_text_of_base64_quoted_printable_and_8bit_parts() {
    let mut c = mailbox_with_fixtures(start().await).await;
    // base64, UTF-8, case-insensitive beyond ASCII.
    assert_eq!(search(&mut c, "BODY", "ZÜRICH, alpha").await, set(&[1]));
    assert_eq!(search(&mut c, "BODY", "alpha bravo").await, set(&[1]));
    // Quoted-printable Latin-1 with a soft line break inside a word.
    assert_eq!(search(&mut c, "BODY", "café très chaud").await, set(&[1]));
    // windows-1252 8-bit text.
    assert_eq!(
        search(&mut c, "BODY", "naïve “quotes” façade").await,
        set(&[2])
    );
    // The encoded forms themselves are not text.
    assert_eq!(search(&mut c, "BODY", "R3LDvMOfZ").await, set(&[]));
    assert_eq!(search(&mut c, "BODY", "caf=E9").await, set(&[]));
    // Neither attachments, preamble, epilogue nor headers are body text.
    for word in ["delta", "kilo", "lima", "mueller", "b1", "Content-Type"] {
        assert_eq!(search(&mut c, "BODY", word).await, set(&[]), "BODY {word}");
    }
}

#[tokio::test]
async fn search_text_also_matches_every_decoded_header_of_every_part() {
    let mut c = mailbox_with_fixtures(start().await).await;
    assert_eq!(search(&mut c, "TEXT", "mueller").await, set(&[1]));
    assert_eq!(search(&mut c, "TEXT", "CAFÉ AU LAIT").await, set(&[1]));
    assert_eq!(search(&mut c, "TEXT", "grüße aus").await, set(&[1]));
    assert_eq!(
        search(&mut c, "TEXT", "Transfer-Encoding: quoted").await,
        set(&[1, 3])
    );
    assert_eq!(search(&mut c, "TEXT", "charlie").await, set(&[1]));
    assert_eq!(search(&mut c, "TEXT", "delta").await, set(&[]));
    // BODY and TEXT together in one SEARCH, with OR.
    c.send(b"s SEARCH OR BODY mueller TEXT naive\r\n").await;
    assert_eq!(hits(&c.until("s").await), set(&[]));
    c.send(b"s SEARCH BODY charlie TEXT mueller\r\n").await;
    assert_eq!(hits(&c.until("s").await), set(&[1]));
}

#[tokio::test]
async fn header_keys_match_decoded_encoded_words() {
    let mut c = mailbox_with_fixtures(start().await).await;
    assert_eq!(
        search(&mut c, "SUBJECT", "grüße aus zürich").await,
        set(&[1])
    );
    assert_eq!(search(&mut c, "SUBJECT", "=?ISO-8859-1").await, set(&[]));
    assert_eq!(search(&mut c, "FROM", "Müller").await, set(&[1]));
    assert_eq!(search(&mut c, "FROM", "café m").await, set(&[1]));
    assert_eq!(search(&mut c, "FROM", "Q2Fmw6k").await, set(&[]));
    assert_eq!(search(&mut c, "HEADER X-Note", "AU LAIT").await, set(&[1]));
    // A broken encoded word stays as written.
    assert_eq!(search(&mut c, "SUBJECT", "=?bogus?X?y?=").await, set(&[3]));
}

#[tokio::test]
async fn broken_encodings_decode_as_far_as_they_go_and_never_fail() {
    let mut c = mailbox_with_fixtures(start().await).await;
    // base64 up to the junk; an unknown charset is read as UTF-8.
    assert_eq!(search(&mut c, "BODY", "hello wor").await, set(&[3]));
    assert_eq!(search(&mut c, "BODY", "world").await, set(&[]));
    // Invalid quoted-printable escapes are kept as written.
    assert_eq!(
        search(&mut c, "BODY", "broken =ZZ escape and").await,
        set(&[3])
    );
    // An unknown transfer encoding is not searched.
    assert_eq!(search(&mut c, "BODY", "foxtrot").await, set(&[]));
    // Invalid UTF-8 is replaced, the rest still matches.
    assert_eq!(
        search(&mut c, "BODY", "invalid utf-8 echo").await,
        set(&[3])
    );
    // The junk of a base64 body or of a B-encoded word is not text; a broken word stays raw.
    assert_eq!(search(&mut c, "TEXT", "!!!").await, set(&[]));
    assert_eq!(search(&mut c, "TEXT", "=?bogus?X?y?=").await, set(&[3]));
}

/// `* N RECENT` of a SELECT/EXAMINE answer.
fn recent_count(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" RECENT\r\n")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no RECENT in {lines:?}"))
}

fn recent_status(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .cloned()
        .unwrap_or_else(|| panic!("no STATUS in {lines:?}"))
}

#[tokio::test]
async fn recent_belongs_to_the_first_session_that_selects() {
    let addr = start().await;
    let mut a = login(addr).await;
    let mut b = login(addr).await;
    let mut other = login(addr).await;
    append(&mut other, "INBOX", b"Subject: one\r\n\r\none\r\n").await;
    append(&mut other, "INBOX", b"Subject: two\r\n\r\ntwo\r\n").await;
    let status = other.run("st", "STATUS INBOX (MESSAGES RECENT)").await;
    assert_eq!(
        recent_status(&status),
        "* STATUS INBOX (MESSAGES 2 RECENT 2)\r\n"
    );

    // EXAMINE sees them as recent but does not take them.
    let examine = b.run("e", "EXAMINE INBOX").await;
    assert_eq!(recent_count(&examine), 2);
    let flags = b.run("f", "FETCH 1 FLAGS").await;
    assert_eq!(flags[0], "* 1 FETCH (FLAGS (\\Recent))\r\n");

    // The first SELECT takes them.
    let select = a.run("sa", "SELECT INBOX").await;
    assert_eq!(recent_count(&select), 2);
    a.send(b"s SEARCH RECENT\r\n").await;
    assert_eq!(hits(&a.until("s").await), set(&[1, 2]));
    let flags = a.run("f", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert!(tagged(&flags).starts_with("f OK"), "{flags:?}");
    let flags = a.run("f", "FETCH 1:2 FLAGS").await;
    assert_eq!(flags[0], "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n");
    assert_eq!(flags[1], "* 2 FETCH (FLAGS (\\Recent))\r\n");
    a.send(b"s SEARCH NEW\r\n").await;
    assert_eq!(hits(&a.until("s").await), set(&[2]));
    let status = other.run("st", "STATUS INBOX (RECENT)").await;
    assert_eq!(recent_status(&status), "* STATUS INBOX (RECENT 0)\r\n");

    // A later SELECT gets none of them.
    let select = b.run("sb", "SELECT INBOX").await;
    assert_eq!(recent_count(&select), 0);
    b.send(b"s SEARCH RECENT\r\n").await;
    assert_eq!(hits(&b.until("s").await), set(&[]));
    b.send(b"s SEARCH OLD\r\n").await;
    assert_eq!(hits(&b.until("s").await), set(&[1, 2]));

    // A message that arrives while both have INBOX selected is recent in the one that looks first.
    append(&mut other, "INBOX", b"Subject: three\r\n\r\nthree\r\n").await;
    let noop = a.run("n", "NOOP").await;
    assert!(noop.iter().any(|l| l == "* 3 EXISTS\r\n"), "{noop:?}");
    assert!(noop.iter().any(|l| l == "* 3 RECENT\r\n"), "{noop:?}");
    let noop = b.run("n", "NOOP").await;
    assert!(noop.iter().any(|l| l == "* 3 EXISTS\r\n"), "{noop:?}");
    assert!(!noop.iter().any(|l| l.ends_with(" RECENT\r\n")), "{noop:?}");
    a.send(b"s SEARCH RECENT\r\n").await;
    assert_eq!(hits(&a.until("s").await), set(&[1, 2, 3]));
    b.send(b"s SEARCH RECENT\r\n").await;
    assert_eq!(hits(&b.until("s").await), set(&[]));

    // Selecting again in the same session does not make them recent again.
    let select = a.run("sa", "SELECT INBOX").await;
    assert_eq!(recent_count(&select), 0);
}

#[tokio::test]
async fn concurrent_selects_never_share_a_recent_message() {
    let addr = start().await;
    let mut c = login(addr).await;
    for n in 0..4 {
        append(
            &mut c,
            "INBOX",
            format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
        )
        .await;
    }
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(login(addr).await);
    }
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let select = s.run("sel", "SELECT INBOX").await;
                assert!(tagged(&select).starts_with("sel OK"), "{select:?}");
                s.send(b"s SEARCH RECENT\r\n").await;
                let recent = hits(&s.until("s").await);
                assert_eq!(recent.len() as u32, recent_count(&select));
                recent
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        for seq in task.await.expect("session task") {
            assert!(seen.insert(seq), "message {seq} recent in two sessions");
        }
    }
    assert!(seen.is_subset(&set(&[1, 2, 3, 4])));
}

#[tokio::test]
async fn an_empty_parts_mime_header_ends_before_the_blank_line_that_precedes_a_boundary() {
    let mut c = login(start().await).await;
    let message: &[u8] = b"Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n\
--a\r\n\
Content-Type: text/plain\r\n\
\r\n\
--a\r\n\
Content-Type: text/plain\r\n\
\r\n\
\r\n\
--a\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
--a--\r\n";
    append(&mut c, "INBOX", message).await;
    assert!(tagged(&c.run("x", "SELECT INBOX").await).starts_with("x OK"));
    c.send(
        b"m FETCH 1 (BODY.PEEK[1.MIME] BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[3.MIME] \
BODY.PEEK[3.HEADER] BODY.PEEK[3])\r\n",
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..6 {
        let (line, literal) = c.line_with_literal().await;
        got.push((line, String::from_utf8(literal).expect("ASCII")));
    }
    let lines = c.until("m").await;
    assert!(tagged(&lines).starts_with("m OK"), "{lines:?}");
    let literals: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        literals,
        [
            // Blank line, then the boundary: that line break is the boundary's.
            "Content-Type: text/plain\r\n",
            "",
            // Blank line, an empty line, then the boundary: the header keeps its blank line.
            "Content-Type: text/plain\r\n\r\n",
            "Content-Type: message/rfc822\r\n\r\n",
            "Subject: inner\r\n",
            "Subject: inner\r\n\r\n",
        ],
        "{got:?}"
    );
    let bs = c.run("b", "FETCH 1 BODYSTRUCTURE").await;
    assert!(
        bs[0].starts_with("* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "),
        "{bs:?}"
    );
}
