//! Bad input (issue #6): garbled commands, random bytes, invalid UTF-8, unbalanced and 10,000-deep
//! parentheses, 1 MB lines, literals announced at 4 GB or never sent, pipelining without reading,
//! commands in the wrong state and IDLE without DONE. Whatever arrives, the server does not panic,
//! every answer parses with imap-proto, and the session either stays usable (a NOOP gets OK) or
//! is closed after a BYE. Also the login rate limits per user and per source address, and a replay
//! of the committed fuzz corpus (`fuzz/corpus`) through the fuzz harnesses themselves.
//! Memory bounds under bad input are measured in `tests/tests/bad_input_heap.rs` (it needs the
//! counting allocator).

mod common;
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use harness::{Answer, Status};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use server::config::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long the server may stay silent before the client decides it waits for more bytes.
const QUIET: Duration = Duration::from_millis(150);
/// Sent when the server waits for more: completes a pending literal or line, then is one line.
const FILLER_BYTES: usize = 8 * 1024;
/// NOOPs tried (with fillers between) before a session is declared stuck.
const NOOP_ATTEMPTS: usize = 24;

const BYE: Answer = Answer::Status(Status::Bye);

/// How reading stopped.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The tagged completion awaited arrived, with this status.
    Done(Status),
    /// The server closed the connection.
    Closed,
    /// Nothing more came for [`QUIET`].
    Quiet,
}

/// A client that sends raw bytes and parses every answer with imap-proto.
struct Raw {
    stream: TcpStream,
    unparsed: Vec<u8>,
    seen: Vec<Answer>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw::wrap(TcpStream::connect(addr).await.expect("connect")).await
    }

    /// Connects from the loopback address `from` (127.0.0.0/8 is all loopback on Linux).
    async fn connect_from(addr: SocketAddr, from: Ipv4Addr) -> Raw {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(from), 0))
            .expect("bind a loopback address");
        Raw::wrap(socket.connect(addr).await.expect("connect")).await
    }

    async fn wrap(stream: TcpStream) -> Raw {
        let mut raw = Raw {
            stream,
            unparsed: Vec::new(),
            seen: Vec::new(),
        };
        let end = raw.read_while(|seen| seen.is_empty()).await;
        assert_eq!(
            raw.seen,
            vec![Answer::Status(Status::Ok)],
            "a greeting: {end:?}"
        );
        raw
    }

    /// Sends bytes; false if the server has closed the connection.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads and parses until the completion tagged `tag`, the end of the connection, or silence.
    async fn read_until(&mut self, tag: Option<&str>) -> End {
        let Some(tag) = tag else {
            return self.read_while(|_| true).await;
        };
        let before = self.seen.len();
        let end = self
            .read_while(|seen| {
                !seen
                    .iter()
                    .any(|s| matches!(s, Answer::Done(t, _) if t == tag))
            })
            .await;
        let done = self.seen[before..].iter().find_map(|s| match s {
            Answer::Done(t, status) if t == tag => Some(*status),
            _ => None,
        });
        match done {
            Some(status) => End::Done(status),
            None => end,
        }
    }

    /// Reads and parses while `more` says so of the responses seen since the call, until the end
    /// of the connection or silence.
    async fn read_while(&mut self, more: impl Fn(&[Answer]) -> bool) -> End {
        let before = self.seen.len();
        loop {
            loop {
                let (end, answer) = match harness::next_response(&self.unparsed) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) => break,
                    Err(e) => panic!("unparsable answer: {e}"),
                };
                self.unparsed.drain(..end);
                self.seen.push(answer);
                if !more(&self.seen[before..]) {
                    return End::Quiet;
                }
            }
            let mut buf = [0u8; 16 * 1024];
            match tokio::time::timeout(QUIET, self.stream.read(&mut buf)).await {
                Err(_) => return End::Quiet,
                // A reset counts as a close: the server went away either way.
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.unparsed.is_empty(),
                        "the connection ended inside a response: {:?}",
                        String::from_utf8_lossy(&self.unparsed)
                    );
                    return End::Closed;
                }
                Ok(Ok(n)) => self.unparsed.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends a command and reads to its completion.
    async fn run(&mut self, tag: &str, command: &str) -> End {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.read_until(Some(tag)).await
    }

    /// The session either answers a NOOP with OK (after fillers, if it was waiting for literal or
    /// line bytes) or was closed after a BYE. Returns true if it is still open.
    async fn usable_or_closed_with_bye(&mut self) -> bool {
        for attempt in 0..NOOP_ATTEMPTS {
            let tag = format!("zz{attempt}");
            let end = if self.send(format!("{tag} NOOP\r\n").as_bytes()).await {
                self.read_until(Some(&tag)).await
            } else {
                self.read_until(None).await
            };
            match end {
                End::Done(status) => {
                    assert_eq!(status, Status::Ok, "NOOP after bad input: {:?}", self.seen);
                    return true;
                }
                End::Closed => {
                    assert!(
                        self.seen.contains(&BYE),
                        "closed without BYE: {:?}",
                        self.seen
                    );
                    return false;
                }
                End::Quiet => {
                    let mut filler = vec![b' '; FILLER_BYTES];
                    filler.extend_from_slice(b"\r\n");
                    self.send(&filler).await;
                }
            }
        }
        panic!(
            "the session neither answered NOOP nor closed: {:?}",
            self.seen
        );
    }
}

/// Limits of the tests: cheap failed logins, everything else as in production.
fn limits() -> Limits {
    Limits {
        auth_failure_delay_ms: 5,
        ..Limits::default()
    }
}

/// The state a session is in before the bad input arrives.
#[derive(Clone, Copy, Debug)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

async fn session_in(addr: SocketAddr, state: State) -> Raw {
    let mut c = Raw::connect(addr).await;
    if matches!(state, State::Authenticated | State::Selected) {
        assert_eq!(
            c.run("s1", "LOGIN alice alice-pw").await,
            End::Done(Status::Ok)
        );
    }
    if matches!(state, State::Selected) {
        let m = "Subject: hello\r\n\r\nbody\r\n";
        let append = format!("APPEND INBOX {{{}+}}\r\n{m}", m.len());
        assert_eq!(c.run("s2", &append).await, End::Done(Status::Ok));
        assert_eq!(c.run("s3", "SELECT INBOX").await, End::Done(Status::Ok));
    }
    c
}

/// Sends `bad`, then checks that every answer parsed and the session is usable or closed with BYE.
async fn survives(addr: SocketAddr, state: State, bad: &[u8]) -> Raw {
    let mut c = session_in(addr, state).await;
    c.send(bad).await;
    c.usable_or_closed_with_bye().await;
    c
}

// ---- Generators ---------------------------------------------------------------------------------

/// Words that steer random lines into commands (never LOGIN or AUTHENTICATE: failed logins would
/// trip the rate limit of the shared test address).
const VERBS: &[&str] = &[
    "NOOP",
    "CAPABILITY",
    "LOGOUT",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "CHECK",
    "CLOSE",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID",
    "IDLE",
    "ENABLE",
    "ID",
    "NAMESPACE",
    "UNSELECT",
    "fetch",
    "Select",
];

const ARGS: &[&str] = &[
    "INBOX",
    "1",
    "1:*",
    "*",
    "0",
    "4294967295",
    "4294967296",
    "-1",
    "FLAGS",
    "(FLAGS)",
    "BODY[]",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
    "BODY[1.2.3]<0.10>",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "FULL",
    "(",
    ")",
    "((",
    "))",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "\"\"",
    "\"a\\\"b\"",
    "\\Seen",
    "+FLAGS",
    "-FLAGS.SILENT",
    "(\\Deleted $Junk)",
    "ALL",
    "OR",
    "NOT",
    "SUBJECT",
    "BODY",
    "CHARSET",
    "UTF-8",
    "SINCE",
    "1-Jan-2020",
    "LARGER",
    "RETURN",
    "(STATUS (MESSAGES))",
    "(SUBSCRIBED)",
    "CONDSTORE",
    "UTF8=ACCEPT",
    "(CHANGEDSINCE 1)",
    "(UNCHANGEDSINCE 0)",
    "\"\"",
    "%",
    "~",
    "NIL",
    "{",
    "}",
    "{0}",
    "{x}",
    "+",
];

/// One piece of a command line.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(ARGS).prop_map(|a| a.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 1..12),
        1 => proptest::collection::vec(0x80u8..=0xff, 1..6),
        // A literal with its bytes, synchronising or not.
        1 => (proptest::collection::vec(any::<u8>(), 0..24), any::<bool>()).prop_map(|(data, plus)| {
            let mut out = format!("{{{}{}}}\r\n", data.len(), if plus { "+" } else { "" }).into_bytes();
            out.extend_from_slice(&data);
            out
        }),
    ]
}

/// One garbled command line.
fn garbled_line() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(&["a", "A1", "*", "", "+", "x{", "t.t", "z]"][..]),
        proptest::sample::select(VERBS),
        proptest::collection::vec(piece(), 0..6),
        proptest::sample::select(&["\r\n", "\n", "\r\n", "\r\n", " \r\n"][..]),
    )
        .prop_map(|(tag, verb, pieces, end)| {
            let mut line = format!("{tag} {verb}").into_bytes();
            for p in pieces {
                line.push(b' ');
                line.extend_from_slice(&p);
            }
            line.extend_from_slice(end.as_bytes());
            line
        })
}

/// What a bad client sends: garbled lines, or raw random bytes ended by a newline.
fn bad_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(garbled_line(), 1..6).prop_map(|lines| lines.concat()),
        1 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(|mut b| {
            b.extend_from_slice(b"\r\n");
            b
        }),
    ]
}

fn run_property(state: State, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = runtime.block_on(async { common::start(limits()).await.imap });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&bad_input(), |bad| {
        runtime.block_on(survives(addr, state, &bad));
        Ok::<(), TestCaseError>(())
    });
    if let Err(e) = result {
        panic!("{state:?}: {e}");
    }
}

#[test]
fn garbled_commands_and_random_bytes_before_login_get_parsable_answers_and_the_session_goes_on() {
    run_property(State::NotAuthenticated, 48);
}

#[test]
fn garbled_commands_and_random_bytes_after_login_get_parsable_answers_and_the_session_goes_on() {
    run_property(State::Authenticated, 32);
}

#[test]
fn garbled_commands_and_random_bytes_with_a_mailbox_selected_get_parsable_answers() {
    run_property(State::Selected, 32);
}

// ---- Fixed cases --------------------------------------------------------------------------------

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
    let (mut reader, mut writer) = c.stream.into_split();
    let sender = tokio::spawn(async move {
        writer
            .write_all(&batch)
            .await
            .expect("the server keeps reading");
        writer
    });
    // Read nothing for a while: the server must wait (its writes block), not fail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut output = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let last = format!("q{} OK", commands - 1);
    while !String::from_utf8_lossy(&output[output.len().saturating_sub(200)..]).contains(&last) {
        let n = tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buf))
            .await
            .expect("answers keep coming")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        output.extend_from_slice(&buf[..n]);
    }
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

// ---- Login --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_user_whatever_the_source_address() {
    let started =
        common::start_with(limits(), None, &[("alice", "alice-pw"), ("bob", "bob-pw")]).await;
    let addr = started.imap;
    for i in 0..server::auth::FAILURES_MAX {
        let from = Ipv4Addr::new(127, 0, 1, 1 + i as u8);
        let mut c = Raw::connect_from(addr, from).await;
        assert_eq!(c.run("f", "LOGIN alice wrong").await, End::Done(Status::No));
    }
    // A fresh address, the right password: alice is limited.
    let mut c = Raw::connect_from(addr, Ipv4Addr::new(127, 0, 1, 100)).await;
    assert_eq!(
        c.run("g", "LOGIN alice alice-pw").await,
        End::Done(Status::No)
    );
    // Another user from that address is not.
    assert_eq!(c.run("h", "LOGIN bob bob-pw").await, End::Done(Status::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_source_address_whatever_the_user() {
    let started =
        common::start_with(limits(), None, &[("alice", "alice-pw"), ("bob", "bob-pw")]).await;
    let addr = started.imap;
    let guesser = Ipv4Addr::new(127, 0, 2, 1);
    let mut c = Raw::connect_from(addr, guesser).await;
    for i in 0..server::auth::FAILURES_MAX {
        let command = format!("LOGIN user{i} wrong");
        assert_eq!(c.run("f", &command).await, End::Done(Status::No));
    }
    // From that address even a right password is refused, over a new connection too.
    assert_eq!(c.run("g", "LOGIN bob bob-pw").await, End::Done(Status::No));
    let mut again = Raw::connect_from(addr, guesser).await;
    assert_eq!(
        again.run("g", "LOGIN bob bob-pw").await,
        End::Done(Status::No)
    );
    // From another address bob and alice log in: the guesses were not theirs.
    for user in ["bob bob-pw", "alice alice-pw"] {
        let mut other = Raw::connect_from(addr, Ipv4Addr::new(127, 0, 2, 2)).await;
        let end = other.run("h", &format!("LOGIN {user}")).await;
        assert_eq!(end, End::Done(Status::Ok), "{user}");
    }
}

// ---- Fuzzing corpus and its findings ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_names_in_invalid_modified_utf7_get_no_or_bad_and_no_panic() {
    // Found by the session fuzz target (fuzz/corpus/session/regression-utf7-invalid-base64): the
    // utf7-imap decoder panicked on a shifted run that is not base64, killing the session.
    let addr = common::start(limits()).await.imap;
    let mut c = session_in(addr, State::Authenticated).await;
    for (i, command) in [
        "RENAME Caf&A[Ok- Tea",
        "SELECT &A-",
        "CREATE &AOl-",
        "STATUS &2AA- (MESSAGES)",
        "SUBSCRIBE &,,,-",
        "DELETE \"&A[\"",
    ]
    .iter()
    .enumerate()
    {
        let end = c.run(&format!("u{i}"), command).await;
        assert!(
            matches!(end, End::Done(Status::No | Status::Bad)),
            "{command}: {end:?}"
        );
    }
    // A pattern that does not decode is matched as it is: nothing.
    assert_eq!(
        c.run("l", "LIST \"\" \"&A[Ok-*\"").await,
        End::Done(Status::Ok)
    );
    assert!(c.usable_or_closed_with_bye().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_list_with_an_invalid_tag_gets_an_untagged_bad() {
    // Found by the garbled-command property: the fallback LIST parser took `x{` for a tag and
    // answered `x{ OK`, which no client can parse.
    let addr = common::start(limits()).await.imap;
    let mut c = session_in(addr, State::Authenticated).await;
    c.send(b"x{ LIST (SUBSCRIBED) \"\" *\r\n").await;
    assert_eq!(c.read_until(None).await, End::Quiet);
    assert_eq!(c.seen.last(), Some(&Answer::Status(Status::Bad)));
    assert!(c.usable_or_closed_with_bye().await);
}

/// The committed seeds and minimised findings of one fuzz target, by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into();
            (name, std::fs::read(&path).expect("a readable corpus file"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} holds only {} inputs",
        dir.display(),
        files.len()
    );
    files
}

#[test]
fn the_command_decoder_fuzz_corpus_replays_cleanly() {
    for (name, data) in corpus("command_decoder") {
        let result = std::panic::catch_unwind(|| harness::decode_commands(&data));
        assert!(result.is_ok(), "fuzz/corpus/command_decoder/{name} fails");
    }
}

#[test]
fn the_session_fuzz_corpus_replays_cleanly() {
    for (name, data) in corpus("session") {
        let result = std::panic::catch_unwind(|| harness::run_session(&data));
        assert!(result.is_ok(), "fuzz/corpus/session/{name} fails");
    }
}
