//! When a session hears of messages another session expunged (RFC 3501 7.4.1): never during FETCH,
//! STORE or SEARCH by sequence number, whose numbers an EXPUNGE would shift, but at the next
//! command that may carry it (NOOP, CHECK, IDLE, the UID forms, ...). Until then the session's view
//! keeps the message's sequence number. Dovecot 2.3 is the reference: a FETCH of such a message
//! leaves it out and answers `OK [EXPUNGEISSUED] Some messages were already expunged.`, a COPY of
//! one answers `NO [EXPUNGEISSUED]` and copies nothing.

mod common;

use std::net::SocketAddr;

use common::{tagged, Client};
use server::config::Limits;

async fn login(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    c
}

async fn append(c: &mut Client, n: u32) {
    let message = format!("Subject: message {n}\r\n\r\nbody {n}\r\n");
    c.send(format!("ap APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes())
        .await;
    let lines = c.until("ap").await;
    assert!(tagged(&lines).starts_with("ap OK"), "{lines:?}");
}

/// A server with `n` messages in INBOX and two sessions that selected it.
async fn two_sessions(n: u32) -> (Client, Client) {
    let addr = common::start(Limits::default()).await.imap;
    let mut one = login(addr).await;
    for i in 1..=n {
        append(&mut one, i).await;
    }
    let mut two = login(addr).await;
    for c in [&mut one, &mut two] {
        let lines = c.run("s", "SELECT INBOX").await;
        assert!(lines.contains(&format!("* {n} EXISTS\r\n")), "{lines:?}");
    }
    (one, two)
}

/// Session `one` expunges message `seq`.
async fn expunge_elsewhere(one: &mut Client, seq: u32) {
    let lines = one
        .run("d", &format!("STORE {seq} +FLAGS.SILENT (\\Deleted)"))
        .await;
    assert!(tagged(&lines).starts_with("d OK"), "{lines:?}");
    let lines = one.run("x", "EXPUNGE").await;
    assert!(lines.contains(&format!("* {seq} EXPUNGE\r\n")), "{lines:?}");
}

/// Asserts that the answer has this line.
fn has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "no {line:?} in {lines:?}");
}

fn expunges(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.ends_with(" EXPUNGE\r\n"))
        .collect()
}

#[tokio::test]
async fn no_expunge_during_fetch_store_or_search_and_sequence_numbers_stay() {
    let (mut one, mut two) = two_sessions(3).await;
    expunge_elsewhere(&mut one, 1).await;

    // STORE learns of the expunge but must not tell: message 2 is still number 2.
    let lines = two.run("a", "STORE 2 FLAGS (\\Seen)").await;
    assert!(
        expunges(&lines).is_empty(),
        "EXPUNGE during STORE: {lines:?}"
    );
    has(&lines, "* 2 FETCH (FLAGS (\\Seen))\r\n");
    assert!(tagged(&lines).starts_with("a OK"), "{lines:?}");

    // FETCH of the expunged message: left out, as Dovecot does; the others keep their numbers.
    let lines = two.run("b", "FETCH 1:3 (FLAGS)").await;
    assert!(
        expunges(&lines).is_empty(),
        "EXPUNGE during FETCH: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("* 1 FETCH")),
        "{lines:?}"
    );
    has(&lines, "* 2 FETCH (FLAGS (\\Seen))\r\n");
    assert!(
        lines.iter().any(|l| l.starts_with("* 3 FETCH")),
        "{lines:?}"
    );
    assert_eq!(
        tagged(&lines),
        "b OK [EXPUNGEISSUED] Some messages were already expunged.\r\n"
    );

    // SEARCH: the expunged message matches nothing, the numbers are the unshifted ones.
    let lines = two.run("c", "SEARCH ALL").await;
    assert!(
        expunges(&lines).is_empty(),
        "EXPUNGE during SEARCH: {lines:?}"
    );
    has(&lines, "* SEARCH 2 3\r\n");

    // COPY of it: nothing copied (Dovecot), and the expunge is announced.
    let lines = two.run("e", "COPY 1:2 INBOX").await;
    assert_eq!(expunges(&lines), ["* 1 EXPUNGE\r\n"], "{lines:?}");
    assert!(
        tagged(&lines).starts_with("e NO [EXPUNGEISSUED]"),
        "{lines:?}"
    );
    let lines = two.run("f", "NOOP").await;
    assert!(expunges(&lines).is_empty(), "announced twice: {lines:?}");
    let lines = two.run("g", "FETCH 1 (FLAGS)").await;
    has(&lines, "* 1 FETCH (FLAGS (\\Seen))\r\n");
}

#[tokio::test]
async fn expunge_seen_during_store_is_announced_at_the_next_noop() {
    // The transcript: session 1 deletes and expunges message 2; session 2 stores flags on
    // message 1 and then must hear of the expunge at NOOP.
    let (mut one, mut two) = two_sessions(3).await;
    expunge_elsewhere(&mut one, 2).await;
    let lines = two.run("a", "STORE 1 FLAGS (\\Answered)").await;
    assert!(
        expunges(&lines).is_empty(),
        "EXPUNGE during STORE: {lines:?}"
    );
    let lines = two.run("b", "NOOP").await;
    assert_eq!(expunges(&lines), ["* 2 EXPUNGE\r\n"], "{lines:?}");
    let lines = two.run("c", "FETCH 2 (UID)").await;
    has(&lines, "* 2 FETCH (UID 3)\r\n");
}

#[tokio::test]
async fn uid_commands_and_check_announce_pending_expunges() {
    let (mut one, mut two) = two_sessions(4).await;
    expunge_elsewhere(&mut one, 1).await;
    let lines = two.run("a", "STORE 2 +FLAGS (\\Flagged)").await;
    assert!(expunges(&lines).is_empty(), "{lines:?}");
    // UID FETCH may carry it: UIDs do not shift. Its FETCH numbers are then the shifted ones.
    let lines = two.run("b", "UID FETCH 2 (FLAGS)").await;
    assert_eq!(expunges(&lines), ["* 1 EXPUNGE\r\n"], "{lines:?}");
    has(&lines, "* 1 FETCH (UID 2 FLAGS (\\Flagged))\r\n");
    expunge_elsewhere(&mut one, 3).await; // UID 4
    let lines = two.run("c", "SEARCH ALL").await;
    has(&lines, "* SEARCH 1 2 3\r\n");
    let lines = two.run("d", "FETCH 3 (UID)").await;
    has(&lines, "* 3 FETCH (UID 4)\r\n");
    // Nothing folded the expunge yet (FETCH and SEARCH do not read the log): CHECK does, and tells.
    let lines = two.run("e", "CHECK").await;
    assert_eq!(expunges(&lines), ["* 3 EXPUNGE\r\n"], "{lines:?}");
    let lines = two.run("f", "UID SEARCH ALL").await;
    has(&lines, "* SEARCH 2 3\r\n");
}

#[tokio::test]
async fn messages_added_and_expunged_elsewhere_are_announced_in_an_order_the_client_can_follow() {
    // A message that arrives and is expunged between two of this session's commands: its EXISTS
    // must come before its EXPUNGE, never an EXPUNGE of a number the client does not have.
    let (mut one, mut two) = two_sessions(2).await;
    append(&mut one, 3).await;
    let lines = one.run("n", "NOOP").await;
    assert!(tagged(&lines).starts_with("n OK"), "{lines:?}");
    expunge_elsewhere(&mut one, 3).await;
    let lines = two.run("a", "NOOP").await;
    let exists = lines.iter().position(|l| l == "* 3 EXISTS\r\n");
    let expunge = lines.iter().position(|l| l == "* 3 EXPUNGE\r\n");
    assert!(
        matches!((exists, expunge), (Some(a), Some(b)) if a < b),
        "{lines:?}"
    );
}
