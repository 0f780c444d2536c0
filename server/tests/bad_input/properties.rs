//! Random bad input in each session state: garbled command lines built from IMAP words, pieces
//! and literals, or raw random bytes.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::common;
use crate::raw::{limits, survives, State};

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
