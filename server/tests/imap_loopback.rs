//! The server on real loopback TCP against fakes3: the commands end to end, as transcripts of what a
//! client sends and what it must get back.

mod common;

use std::net::SocketAddr;

use common::{tagged, Client};
use server::config::Limits;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn start(limits: Limits) -> SocketAddr {
    common::start(limits).await.imap
}

async fn start_both(limits: Limits) -> (SocketAddr, SocketAddr) {
    let started = common::start(limits).await;
    (started.imap, started.lmtp)
}

/// A client logged in as alice on a fresh server with `limits`.
async fn alice(limits: Limits) -> Client {
    let mut c = Client::connect(start(limits).await).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    c
}

/// Asserts that `lines` include `line` exactly.
fn has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "no {line:?} in {lines:?}");
}

#[tokio::test]
async fn login_create_append_fetch_round_trip() {
    let addr = start(Limits {
        chunk_bytes: 1000,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("a0", "CAPABILITY").await).starts_with("a0 OK"));
    assert!(tagged(&c.run("a1", "LOGIN alice wrong").await).starts_with("a1 NO"));
    assert!(tagged(&c.run("a2", "LOGIN alice alice-pw").await).starts_with("a2 OK"));
    assert!(tagged(&c.run("a3", "CREATE Work").await).starts_with("a3 OK"));
    assert!(tagged(&c.run("a4", "CREATE Work").await).starts_with("a4 NO"));
    let body: Vec<u8> = (0..2500u32)
        .map(|i| b"abcdefghij\r\n"[(i % 12) as usize])
        .collect();
    let mut message = b"From: a@b.c\r\nSubject: hi\r\n\r\n".to_vec();
    message.extend_from_slice(&body);
    c.send(format!("a5 APPEND Work (\\Flagged) {{{}}}\r\n", message.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with('+'));
    c.send(&message).await;
    c.send(b"\r\n").await;
    assert!(tagged(&c.until("a5").await).starts_with("a5 OK"));
    let select = c.run("a6", "SELECT Work").await;
    assert!(select.iter().any(|l| l == "* 1 EXISTS\r\n"), "{select:?}");
    assert!(tagged(&select).starts_with("a6 OK [READ-WRITE]"));
    let fetch = c.run("a7", "FETCH 1 (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(
        fetch[0],
        format!(
            // The first session to select the mailbox after the APPEND gets \Recent (RFC 3501).
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) RFC822.SIZE {})\r\n",
            message.len()
        )
    );
    c.send(b"a8 FETCH 1:* BODY.PEEK[]\r\n").await;
    let head = c.line().await;
    assert_eq!(head, format!("* 1 FETCH (BODY[] {{{}}}\r\n", message.len()));
    let mut got = vec![0u8; message.len()];
    c.reader.read_exact(&mut got).await.expect("literal");
    assert_eq!(got, message);
    assert_eq!(c.line().await, ")\r\n");
    assert!(tagged(&c.until("a8").await).starts_with("a8 OK"));
    assert!(tagged(&c.run("a9", "NOOP").await).starts_with("a9 OK"));
    let logout = c.run("a10", "LOGOUT").await;
    assert_eq!(logout[0], "* BYE logging out\r\n");
}

#[tokio::test]
async fn bad_input_gets_bad_and_the_session_goes_on() {
    let addr = start(Limits {
        literal_bytes_max: 100,
        line_bytes_max: 200,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("b1", "FROB").await).starts_with("b1 BAD"));
    c.send(b")))\r\n").await;
    assert!(c.line().await.starts_with("* BAD"));
    assert!(
        tagged(&c.run("b2", "SELECT INBOX").await).starts_with("b2 NO"),
        "not logged in yet"
    );
    assert!(tagged(&c.run("b3", "LOGIN alice alice-pw").await).starts_with("b3 OK"));
    let long = "x".repeat(500);
    c.send(format!("b4 NOOP {long}\r\n").as_bytes()).await;
    assert!(c.line().await.contains("BAD"));
    assert!(tagged(&c.run("b5", "APPEND INBOX {4000000000}").await).starts_with("b5 NO [TOOBIG]"));
    assert!(tagged(&c.run("b6", "NOOP").await).starts_with("b6 OK"));
}

#[tokio::test]
async fn lmtp_delivery_reaches_inbox_and_wakes_idle() {
    let (imap, lmtp) = start_both(Limits::default()).await;
    let mut c = Client::connect(imap).await;
    assert!(tagged(&c.run("c1", "LOGIN alice alice-pw").await).starts_with("c1 OK"));
    let select = c.run("c2", "SELECT INBOX").await;
    assert!(select.iter().any(|l| l == "* 0 EXISTS\r\n"), "{select:?}");
    c.send(b"c3 IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));

    let (r, mut w) = TcpStream::connect(lmtp)
        .await
        .expect("connect lmtp")
        .into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("banner");
    assert!(line.starts_with("220"), "{line}");
    w.write_all(b"LHLO test\r\nMAIL FROM:<x@y.z>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n").await.expect("write");
    let mut replies = Vec::new();
    while !replies
        .last()
        .is_some_and(|l: &String| l.starts_with("354"))
    {
        let mut l = String::new();
        r.read_line(&mut l).await.expect("reply");
        replies.push(l);
    }
    assert!(
        replies.iter().any(|l| l.starts_with("550")),
        "unknown user refused: {replies:?}"
    );
    w.write_all(b"Subject: lmtp\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n")
        .await
        .expect("write");
    let mut l = String::new();
    r.read_line(&mut l).await.expect("reply");
    assert!(l.starts_with("250 2.0.0"), "{l}");

    let untagged = c.line().await;
    assert_eq!(untagged, "* 1 EXISTS\r\n");
    c.send(b"DONE\r\n").await;
    assert!(tagged(&c.until("c3").await).starts_with("c3 OK"));
    c.send(b"c4 FETCH 1 BODY.PEEK[]\r\n").await;
    let head = c.line().await;
    let expected = b"Subject: lmtp\r\n\r\n.dot\r\nbody\r\n";
    assert_eq!(
        head,
        format!("* 1 FETCH (BODY[] {{{}}}\r\n", expected.len())
    );
    let mut got = vec![0u8; expected.len()];
    c.reader.read_exact(&mut got).await.expect("literal");
    assert_eq!(&got, expected);
}

async fn line_with_literal(c: &mut Client) -> (String, Vec<u8>) {
    c.line_with_literal().await
}

#[tokio::test]
async fn sections_envelope_and_bodystructure_come_from_metadata_and_ranges() {
    let mut c = alice(Limits {
        chunk_bytes: 64,
        ..Limits::default()
    })
    .await;
    let message: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: parts\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain\r\n\r\nfirst part body\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n--b1--\r\n";
    c.send(format!("d2 APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
        .await;
    c.send(message).await;
    c.send(b"\r\n").await;
    assert!(tagged(&c.until("d2").await).starts_with("d2 OK"));
    assert!(tagged(&c.run("d3", "SELECT INBOX").await).starts_with("d3 OK"));

    let fetch = c.run("d4", "FETCH 1 (ENVELOPE BODYSTRUCTURE)").await;
    assert!(
        fetch[0].contains("ENVELOPE (NIL \"parts\" ((\"Alice\" NIL \"alice\" \"example.org\"))"),
        "{fetch:?}"
    );
    assert!(
        fetch[0].contains("BODYSTRUCTURE ((\"TEXT\" \"plain\""),
        "{fetch:?}"
    );
    assert!(
        fetch[0].contains("\"mixed\" (\"boundary\" \"b1\")"),
        "{fetch:?}"
    );

    c.send(b"d5 FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<10.20>)\r\n").await;
    let (l1, part1) = line_with_literal(&mut c).await;
    assert!(l1.contains("BODY[1] {15}"), "{l1}");
    assert_eq!(part1, b"first part body");
    let (l2, mime2) = line_with_literal(&mut c).await;
    assert!(l2.contains("BODY[2.MIME]"), "{l2}");
    assert_eq!(mime2, b"Content-Type: text/html\r\n\r\n");
    let (l3, fields) = line_with_literal(&mut c).await;
    assert!(l3.contains("BODY[HEADER.FIELDS (SUBJECT)]"), "{l3}");
    assert_eq!(fields, b"Subject: parts\r\n\r\n");
    let (l4, partial) = line_with_literal(&mut c).await;
    assert!(l4.contains("BODY[]<10> {20}"), "{l4}");
    assert_eq!(partial, &message[10..30]);
    assert!(tagged(&c.until("d5").await).starts_with("d5 OK"));

    let flags = c.run("d6", "FETCH 1 FLAGS").await;
    assert_eq!(
        flags[0], "* 1 FETCH (FLAGS (\\Recent))\r\n",
        "PEEK leaves \\Seen unset"
    );
    c.send(b"d7 FETCH 1 BODY[TEXT]\r\n").await;
    let (l7, text) = line_with_literal(&mut c).await;
    assert!(l7.contains("FLAGS (\\Seen \\Recent)"), "{l7}");
    assert!(text.starts_with(b"preamble"));
    assert!(tagged(&c.until("d7").await).starts_with("d7 OK"));
    let search = c.run("d8", "SEARCH SUBJECT parts BODY second SEEN").await;
    assert_eq!(search[0], "* SEARCH 1\r\n");
    let search = c.run("d9", "SEARCH BODY absent").await;
    assert_eq!(search[0], "* SEARCH\r\n");
}

#[tokio::test]
async fn authenticate_plain_and_login_rate_limit() {
    let addr = start(Limits {
        auth_failure_delay_ms: 5,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(addr).await;
    // "\0alice\0alice-pw" in base64, as an initial response and after a continuation.
    assert!(
        tagged(&c.run("e1", "AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXB3").await).starts_with("e1 OK")
    );
    let mut c = Client::connect(addr).await;
    c.send(b"e2 AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(b"AGFsaWNlAGFsaWNlLXB3\r\n").await;
    assert!(tagged(&c.until("e2").await).starts_with("e2 OK"));
    let mut c = Client::connect(addr).await;
    for i in 0..5 {
        let reply = c.run(&format!("f{i}"), "LOGIN alice nope").await;
        assert!(
            tagged(&reply).contains("NO [AUTHENTICATIONFAILED] invalid credentials"),
            "{reply:?}"
        );
    }
    let reply = c.run("f5", "LOGIN alice alice-pw").await;
    assert!(
        tagged(&reply).contains("too many failed logins"),
        "the right password is refused too while limited: {reply:?}"
    );
}

#[tokio::test]
async fn list_shows_special_use_hierarchy_and_status() {
    let mut c = alice(Limits::default()).await;
    assert!(tagged(&c.run("g2", "CREATE Archive.2024").await).starts_with("g2 OK"));
    let list = c.run("g3", "LIST \"\" \"*\"").await;
    has(&list, "* LIST (\\HasChildren \\Archive) \".\" Archive\r\n");
    has(&list, "* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n");
    has(&list, "* LIST (\\HasNoChildren) \".\" Archive.2024\r\n");
    let top = c.run("g4", "LIST \"\" \"%\"").await;
    assert!(
        !top.iter().any(|l| l.contains("Archive.2024")),
        "% stops at the separator: {top:?}"
    );
    let status = c
        .run("g5", "LIST \"\" \"*\" RETURN (STATUS (UNSEEN MESSAGES))")
        .await;
    has(&status, "* STATUS INBOX (UNSEEN 0 MESSAGES 0)\r\n");
    assert!(tagged(&status).starts_with("g5 OK"));
    let special = c.run("g6", "LIST (SPECIAL-USE) \"\" \"*\"").await;
    assert_eq!(
        special.len(),
        6,
        "five special-use mailboxes and the tagged OK: {special:?}"
    );
    assert!(tagged(&c.run("g7", "LIST \"\" \"*\" RETURN (BOGUS)").await).starts_with("g7 BAD"));
}

#[tokio::test]
async fn uidplus_codes_and_uid_expunge() {
    let mut c = alice(Limits::default()).await;
    for i in 0..3 {
        let message = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        c.send(format!("h2{i} APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes())
            .await;
        let reply = c.until(&format!("h2{i}")).await;
        assert!(
            tagged(&reply).contains(&format!("[APPENDUID ")),
            "{reply:?}"
        );
        assert!(
            tagged(&reply).contains(&format!(" {}] APPEND", i + 1)),
            "{reply:?}"
        );
    }
    assert!(tagged(&c.run("h3", "SELECT INBOX").await).starts_with("h3 OK"));
    let copy = c.run("h4", "UID COPY 2:3 Archive").await;
    assert!(
        tagged(&copy).contains("[COPYUID ") && tagged(&copy).contains(" 2:3 1:2] COPY"),
        "{copy:?}"
    );
    assert!(tagged(&c.run("h5", "STORE 1:2 +FLAGS.SILENT (\\Deleted)").await).starts_with("h5 OK"));
    let expunge = c.run("h6", "UID EXPUNGE 2").await;
    assert_eq!(
        expunge[0], "* 2 EXPUNGE\r\n",
        "only UID 2 goes: {expunge:?}"
    );
    assert!(tagged(&expunge).starts_with("h6 OK"));
    let moved = c.run("h7", "MOVE 1 Trash").await;
    assert!(moved[0].starts_with("* OK [COPYUID "), "{moved:?}");
    has(&moved, "* 1 EXPUNGE\r\n");
    let status = c.run("h8", "STATUS Trash (MESSAGES UIDNEXT)").await;
    assert_eq!(status[0], "* STATUS Trash (MESSAGES 1 UIDNEXT 2)\r\n");
}

#[tokio::test]
async fn mailbox_names_are_modified_utf7_unless_utf8_is_enabled() {
    let mut c = alice(Limits::default()).await;
    assert!(tagged(&c.run("i2", "CREATE \"Caf&AOk-\"").await).starts_with("i2 OK"));
    let list = c.run("i3", "LIST \"\" \"Caf*\"").await;
    assert_eq!(list[0], "* LIST (\\HasNoChildren) \".\" Caf&AOk-\r\n");
    assert_eq!(
        c.run("i4", "ENABLE UTF8=ACCEPT").await[0],
        "* ENABLED UTF8=ACCEPT\r\n"
    );
    let list = c.run("i5", "LIST \"\" \"Caf*\"").await;
    assert!(
        list[0].starts_with("* LIST (\\HasNoChildren) \".\" {5}"),
        "UTF-8 name as a literal: {list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_logins_of_one_user_agree_on_their_keys() {
    let addr = start(Limits::default()).await;
    let mut sessions = Vec::new();
    for i in 0..4 {
        sessions.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            assert!(tagged(&c.run("a", "LOGIN alice alice-pw").await).starts_with("a OK"));
            let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            c.send(format!("b APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
                .await;
            let reply = c.until("b").await;
            assert!(tagged(&reply).starts_with("b OK"), "session {i}: {reply:?}");
        }));
    }
    for s in sessions {
        s.await.expect("session task");
    }
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("c", "LOGIN alice alice-pw").await).starts_with("c OK"));
    let select = c.run("d", "SELECT INBOX").await;
    has(&select, "* 4 EXISTS\r\n");
}

#[tokio::test]
async fn idle_is_allowed_in_the_authenticated_state() {
    let mut c = alice(Limits::default()).await;
    c.send(b"j2 IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(b"DONE\r\n").await;
    assert!(tagged(&c.until("j2").await).starts_with("j2 OK"));
}
