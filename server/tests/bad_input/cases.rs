//! Fixed cases of bad input: invalid UTF-8, deep parentheses, 1 MB lines, huge or missing
//! literals, pipelining without reading, commands in the wrong state and IDLE without DONE.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::common;
use crate::harness::{self, Answer, Status};
use crate::raw::{limits, session_in, End, Raw, State, BYE};

const ALL_STATES: [State; 3] = [
    State::NotAuthenticated,
    State::Authenticated,
    State::Selected,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_nul_bytes_get_bad_or_no() {
    let addr = common::start(limits()).await.imap;
    for state in ALL_STATES {
        let mut c = session_in(addr, state).await;
        for (i, command) in [
            b"SELECT \xff\xfe".as_slice(),
            b"CREATE \"caf\xc3\x28\"",
            b"STATUS {2+}\r\n\xc0\x80 (MESSAGES)",
            b"LIST \"\" \"\x80*\"",
            b"FETCH 1 BODY[HEADER.FIELDS (\xff)]",
            b"NOOP\x00",
            b"\xef\xbb\xbfNOOP",
        ]
        .iter()
        .enumerate()
        {
            let tag = format!("u{i}");
            c.send(&[tag.as_bytes(), b" ", command, b"\r\n"].concat())
                .await;
            let end = c.read_until(Some(&tag)).await;
            assert!(
                matches!(end, End::Done(Status::No | Status::Bad)),
                "{state:?} {command:?}: {end:?}"
            );
        }
        assert!(c.usable_or_closed_with_bye().await, "{state:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_deep_and_unbalanced_parentheses_get_bad_without_overflowing_the_stack() {
    let addr = common::start(limits()).await.imap;
    let open = "(".repeat(10_000);
    let close = ")".repeat(10_000);
    let commands = [
        format!("SEARCH {open}ALL{close}"),
        format!("SEARCH {open}ALL"),
        format!("SEARCH ALL{close}"),
        format!("FETCH 1 {open}FLAGS{close}"),
        format!("STORE 1 FLAGS {open}\\Seen{close}"),
        format!("LIST {open}SUBSCRIBED{close} \"\" *"),
        format!("LIST (SUBSCRIBED) \"\" * RETURN {open}{close}"),
        format!("ID {open}{close}"),
        format!("SEARCH {}", "NOT ".repeat(10_000) + "ALL"),
        format!("SEARCH {}", "OR ALL ".repeat(5_000) + "ALL"),
    ];
    for state in ALL_STATES {
        let mut c = session_in(addr, state).await;
        for (i, command) in commands.iter().enumerate() {
            let tag = format!("n{i}");
            // Some are valid (nested SEARCH keys): any completion will do, as long as one comes.
            let end = c.run(&tag, command).await;
            assert!(
                matches!(end, End::Done(_)),
                "{state:?} {}...: {end:?}",
                &command[..20]
            );
        }
        assert!(c.usable_or_closed_with_bye().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_line_gets_bad_and_the_session_goes_on() {
    let addr = common::start(limits()).await.imap;
    for state in ALL_STATES {
        let mut c = session_in(addr, state).await;
        let line = format!("m1 NOOP {}\r\n", "x".repeat(1 << 20));
        c.send(line.as_bytes()).await;
        assert_eq!(c.read_until(Some("m1")).await, End::Done(Status::Bad));
        // No tag to answer with: an untagged BAD for the whole line.
        c.send("y".repeat(1 << 20).as_bytes()).await;
        c.send(b"\r\n").await;
        assert_eq!(c.read_until(None).await, End::Quiet);
        assert_eq!(c.seen.last(), Some(&Answer::Status(Status::Bad)));
        assert!(c.usable_or_closed_with_bye().await, "{state:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_announced_at_four_gigabytes_are_refused() {
    let addr = common::start(limits()).await.imap;
    for state in ALL_STATES {
        for command in [
            "LOGIN alice {4294967296}",
            "APPEND INBOX {4294967296}",
            "APPEND INBOX {99999999999999999999999}",
            "SELECT {4294967295}",
        ] {
            // Synchronising: no continuation, a refusal, and the session goes on.
            let mut c = session_in(addr, state).await;
            let end = c.run("g1", command).await;
            assert!(
                matches!(end, End::Done(Status::No | Status::Bad)),
                "{state:?} {command}: {end:?}"
            );
            assert!(!c.seen.contains(&Answer::Continue), "{state:?} {command}");
            assert!(c.usable_or_closed_with_bye().await);
        }
        for command in ["LOGIN alice {4294967296+}", "APPEND INBOX {4294967296+}"] {
            // Non-synchronising: the bytes are on their way and too many to skip: BAD, then BYE.
            let mut c = session_in(addr, state).await;
            c.send(format!("g2 {command}\r\n").as_bytes()).await;
            assert_eq!(c.read_until(Some("g2")).await, End::Done(Status::Bad));
            assert_eq!(c.read_until(None).await, End::Closed, "{state:?} {command}");
            assert!(c.seen.contains(&BYE));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_before_login_is_refused_without_reading_its_literal() {
    let addr = common::start(limits()).await.imap;
    let mut c = Raw::connect(addr).await;
    assert_eq!(
        c.run("p1", "APPEND INBOX {10}").await,
        End::Done(Status::Bad)
    );
    assert!(!c.seen.contains(&Answer::Continue), "no invitation to send");
    // A small non-synchronising literal is skipped, so the next command is read in sync.
    assert_eq!(
        c.run("p2", "APPEND INBOX {10+}\r\n0123456789").await,
        End::Done(Status::Bad)
    );
    assert_eq!(c.run("p3", "NOOP").await, End::Done(Status::Ok));
    // A large one is not read: BAD, then BYE.
    c.send(b"p4 APPEND INBOX {1000000+}\r\n").await;
    assert_eq!(c.read_until(Some("p4")).await, End::Done(Status::Bad));
    assert_eq!(c.read_until(None).await, End::Closed);
    assert!(c.seen.contains(&BYE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_announced_and_never_sent_takes_the_next_bytes_or_ends_with_the_client() {
    let addr = common::start(limits()).await.imap;
    for state in ALL_STATES {
        // The announced bytes never come: the lines that follow are taken as the literal, and
        // once it is complete the session answers again.
        let mut c = session_in(addr, state).await;
        c.send(b"l1 LOGIN {300}\r\n").await;
        assert_eq!(c.read_until(Some("l1")).await, End::Quiet);
        assert_eq!(c.seen.last(), Some(&Answer::Continue), "{state:?}");
        assert!(c.usable_or_closed_with_bye().await, "{state:?}");
        // The client goes away while the server waits for a literal: the server closes too.
        let mut c = session_in(addr, state).await;
        c.send(b"l2 STATUS {64+}\r\nINBO").await;
        c.stream.shutdown().await.expect("half-close");
        assert_eq!(c.read_until(None).await, End::Closed, "{state:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_sent_without_reading_are_all_answered_in_order() {
    let addr = common::start(limits()).await.imap;
    let c = session_in(addr, State::Selected).await;
    let commands = 3_000;
    let mut batch = Vec::new();
    for i in 0..commands {
        let command = if i % 3 == 0 {
            "FETCH 1:* (FLAGS BODY[])"
        } else {
            "NOOP"
        };
        batch.extend_from_slice(format!("q{i} {command}\r\n").as_bytes());
    }
    let (mut reader, sender) = testkit::send_in_background(c.stream, batch);
    // Read nothing for a while: the server must wait (its writes block), not fail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut output = Vec::new();
    let last = format!("q{} OK", commands - 1);
    testkit::read_until_text(&mut reader, &last, Duration::from_secs(20), |chunk| {
        output.extend_from_slice(chunk)
    })
    .await;
    sender.await.expect("the sender finished");
    harness::assert_responses_parse(&output);
    let text = String::from_utf8_lossy(&output);
    let tagged: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| l.starts_with('q'))
        .filter_map(|l| l.split_once(' '))
        .map(|(tag, rest)| (tag, rest.split(' ').next().unwrap_or("")))
        .collect();
    let expected: Vec<String> = (0..commands).map(|i| format!("q{i}")).collect();
    let tags: Vec<&str> = tagged.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, expected, "every command answered once, in order");
    assert!(tagged.iter().all(|(_, status)| *status == "OK"), "all OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_the_wrong_state_get_no_or_bad_as_rfc_3501_says() {
    let addr = common::start(limits()).await.imap;
    let needs_login = [
        "SELECT INBOX",
        "EXAMINE INBOX",
        "CREATE x",
        "DELETE x",
        "RENAME x y",
        "SUBSCRIBE INBOX",
        "UNSUBSCRIBE INBOX",
        "LIST \"\" *",
        "LIST (SUBSCRIBED) \"\" * RETURN (STATUS (MESSAGES))",
        "LSUB \"\" *",
        "STATUS INBOX (MESSAGES)",
        "APPEND INBOX {3}",
        "ENABLE CONDSTORE",
        "NAMESPACE",
        "IDLE",
        "UNSELECT",
    ];
    let needs_selection = [
        "FETCH 1 FLAGS",
        "UID FETCH 1:* FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "UID STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "UID SEARCH ALL",
        "COPY 1 INBOX",
        "MOVE 1 INBOX",
        "EXPUNGE",
        "UID EXPUNGE 1",
        "CLOSE",
        "UNSELECT",
    ];
    let mut c = Raw::connect(addr).await;
    for (i, command) in needs_login.iter().chain(&needs_selection).enumerate() {
        let end = c.run(&format!("w{i}"), command).await;
        assert!(
            matches!(end, End::Done(Status::No | Status::Bad)),
            "before login, {command}: {end:?}"
        );
    }
    assert!(
        !c.seen.contains(&Answer::Continue),
        "nothing invited: {:?}",
        c.seen
    );
    // Valid in every state (RFC 3501 6.1, RFC 2971).
    for (i, command) in ["CAPABILITY", "NOOP", "ID NIL"].iter().enumerate() {
        assert_eq!(
            c.run(&format!("v{i}"), command).await,
            End::Done(Status::Ok)
        );
    }
    let mut c = session_in(addr, State::Authenticated).await;
    for (i, command) in needs_selection.iter().enumerate() {
        let end = c.run(&format!("x{i}"), command).await;
        assert!(
            matches!(end, End::Done(Status::No | Status::Bad)),
            "authenticated, {command}: {end:?}"
        );
    }
    for (i, command) in [
        "LOGIN alice alice-pw",
        "AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXB3",
    ]
    .iter()
    .enumerate()
    {
        let end = c.run(&format!("y{i}"), command).await;
        assert_eq!(
            end,
            End::Done(Status::Bad),
            "already authenticated: {command}"
        );
    }
    assert!(c.usable_or_closed_with_bye().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_without_done_ends_with_bad_and_the_session_goes_on() {
    let addr = common::start(limits()).await.imap;
    for state in [State::Authenticated, State::Selected] {
        // Another command instead of DONE: IDLE ends with BAD, the command is not run.
        let mut c = session_in(addr, state).await;
        c.send(b"i1 IDLE\r\n").await;
        assert_eq!(c.read_until(Some("i1")).await, End::Quiet);
        assert_eq!(c.seen.last(), Some(&Answer::Continue));
        assert_eq!(c.run("i2", "NOOP").await, End::Quiet);
        assert!(c.seen.contains(&Answer::Done("i1".into(), Status::Bad)));
        assert!(c.usable_or_closed_with_bye().await);
        // A 1 MB line instead of DONE.
        c.send(b"i3 IDLE\r\n").await;
        c.send("x".repeat(1 << 20).as_bytes()).await;
        c.send(b"\r\n").await;
        assert_eq!(c.read_until(Some("i3")).await, End::Done(Status::Bad));
        assert!(c.usable_or_closed_with_bye().await);
        // The client leaves while idling: the server closes too.
        c.send(b"i4 IDLE\r\n").await;
        c.stream.shutdown().await.expect("half-close");
        assert_eq!(c.read_until(None).await, End::Closed, "{state:?}");
    }
}
