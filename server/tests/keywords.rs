//! Keywords as clients learn them (RFC 3501 7.2.6, 7.1 PERMANENTFLAGS): `* FLAGS` and PERMANENTFLAGS
//! name a keyword before any FETCH carries it, in the session that set it and in the others; no
//! keyword is ever dropped, however many a mailbox has, and `\*` is always offered (as Dovecot).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::{tagged, Client};
use server::config::Limits;

async fn login_select(addr: SocketAddr) -> (Client, Announced) {
    let mut c = Client::connect(addr).await;
    assert!(tagged(&c.run("l", "LOGIN alice alice-pw").await).starts_with("l OK"));
    let mut announced = Announced::default();
    announced.check(&c.run("s", "SELECT INBOX").await);
    (c, announced)
}

async fn append(c: &mut Client, flags: &str) -> Vec<String> {
    let message = "Subject: k\r\n\r\nbody\r\n";
    c.send(
        format!(
            "ap APPEND INBOX ({flags}) {{{}+}}\r\n{message}\r\n",
            message.len()
        )
        .as_bytes(),
    )
    .await;
    c.until("ap").await
}

/// The keywords a client was told of, and a check of every FETCH against them.
#[derive(Default)]
struct Announced {
    keywords: BTreeSet<String>,
    any_allowed: bool,
}

fn parenthesised<'a>(line: &'a str, after: &str) -> Option<&'a str> {
    let rest = &line[line.find(after)? + after.len()..];
    Some(&rest[..rest.find(')')?])
}

impl Announced {
    fn check(&mut self, lines: &[String]) {
        for line in lines {
            if let Some(list) = parenthesised(line, "* FLAGS (") {
                self.keywords = list.split_whitespace().map(str::to_string).collect();
            } else if let Some(list) = parenthesised(line, "[PERMANENTFLAGS (") {
                self.any_allowed = list.split_whitespace().any(|f| f == "\\*");
            } else if line.contains(" FETCH ") {
                let flags = parenthesised(line, "FLAGS (").unwrap_or("");
                for flag in flags.split_whitespace().filter(|f| !f.starts_with('\\')) {
                    assert!(
                        self.keywords.contains(flag),
                        "{flag} in a FETCH before FLAGS named it: {lines:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn flags_name_a_new_keyword_before_a_fetch_carries_it_in_every_session() {
    let addr = common::start(Limits::default()).await.imap;
    let (mut one, mut seen_one) = login_select(addr).await;
    seen_one.check(&append(&mut one, "\\Seen").await);
    let (mut two, mut seen_two) = login_select(addr).await;
    for (tag, command) in [
        ("a", "STORE 1 +FLAGS ($hello)"),
        ("b", "STORE 1 +FLAGS NIL"),
        ("c", "FETCH 1 (FLAGS)"),
    ] {
        let lines = one.run(tag, command).await;
        assert!(
            tagged(&lines).starts_with(&format!("{tag} OK")),
            "{lines:?}"
        );
        seen_one.check(&lines);
    }
    assert!(seen_one.keywords.contains("NIL") && seen_one.keywords.contains("$hello"));
    // A keyword that arrives with a new message, in the session that appends it.
    seen_one.check(&append(&mut one, "$keyword1 \\Flagged").await);
    seen_one.check(&one.run("d", "FETCH 1:* (FLAGS)").await);
    assert!(seen_one.keywords.contains("$keyword1"));
    // The other session hears of all three before their FETCHes.
    let lines = two.run("e", "NOOP").await;
    seen_two.check(&lines);
    seen_two.check(&two.run("f", "FETCH 1:* (FLAGS)").await);
    assert_eq!(seen_two.keywords, seen_one.keywords, "{lines:?}");
    assert!(seen_two.any_allowed);
}

/// The keywords of the one FETCH among `lines` (system flags left out).
fn fetched_keywords(lines: &[String]) -> BTreeSet<String> {
    let fetches: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .collect();
    assert_eq!(fetches.len(), 1, "{lines:?}");
    parenthesised(fetches[0], "FLAGS (")
        .expect("FETCH FLAGS")
        .split_whitespace()
        .filter(|f| !f.starts_with('\\'))
        .map(str::to_string)
        .collect()
}

fn names(prefix: &str, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// `STORE set +FLAGS.SILENT (keywords)`, answered OK.
async fn add_keywords(
    c: &mut Client,
    seen: &mut Announced,
    tag: &str,
    set: &str,
    keywords: &[String],
) {
    let command = format!("STORE {set} +FLAGS.SILENT ({})", keywords.join(" "));
    ok(c, seen, tag, &command).await;
}

async fn ok(c: &mut Client, seen: &mut Announced, tag: &str, command: &str) -> Vec<String> {
    let lines = c.run(tag, command).await;
    assert!(
        tagged(&lines).starts_with(&format!("{tag} OK")),
        "{command}: {lines:?}"
    );
    seen.check(&lines);
    lines
}

/// Dovecot keeps any number of keywords and always offers `\*`; so does this server, past the 56
/// a message's flags word has bits for.
#[tokio::test]
async fn keywords_beyond_the_flags_word_are_kept_and_the_wildcard_stays() {
    let addr = common::start(Limits::default()).await.imap;
    let (mut one, mut seen) = login_select(addr).await;
    seen.check(&append(&mut one, "").await);
    seen.check(&append(&mut one, "\\Seen").await);
    let many = names("k", 1..=70);
    add_keywords(&mut one, &mut seen, "a", "1", &many).await;
    assert!(seen.any_allowed && seen.keywords.len() == 5 + 70);
    let all: BTreeSet<String> = many.iter().cloned().collect();
    assert_eq!(
        fetched_keywords(&ok(&mut one, &mut seen, "b", "FETCH 1 (FLAGS)").await),
        all
    );
    // Removing and replacing work past the flags word too.
    ok(&mut one, &mut seen, "c", "STORE 1 -FLAGS.SILENT (k3 k60)").await;
    ok(
        &mut one,
        &mut seen,
        "d",
        "STORE 2 FLAGS.SILENT (k65 \\Seen)",
    )
    .await;
    let mut expected = all.clone();
    expected.remove("k3");
    expected.remove("k60");
    let lines = ok(&mut one, &mut seen, "e", "FETCH 1 (FLAGS)").await;
    assert_eq!(fetched_keywords(&lines), expected);
    let search = ok(&mut one, &mut seen, "f", "SEARCH KEYWORD k65").await;
    assert_eq!(search[0], "* SEARCH 1 2\r\n");
    let search = ok(&mut one, &mut seen, "g", "SEARCH UNKEYWORD k60").await;
    assert_eq!(search[0], "* SEARCH 1 2\r\n");
    let search = ok(&mut one, &mut seen, "h", "SEARCH KEYWORD k70").await;
    assert_eq!(search[0], "* SEARCH 1\r\n");
    // A new keyword with a new message, and copies keep theirs.
    seen.check(&append(&mut one, "k71 k2").await);
    let lines = ok(&mut one, &mut seen, "i", "FETCH 3 (FLAGS)").await;
    assert_eq!(
        fetched_keywords(&lines),
        names("k", 71..=71)
            .into_iter()
            .chain(["k2".into()])
            .collect()
    );
    ok(&mut one, &mut seen, "j", "COPY 1 Archive").await;
    let (mut two, mut seen_two) = login_select(addr).await;
    assert!(seen_two.any_allowed && seen_two.keywords.len() == 5 + 71);
    let lines = ok(&mut two, &mut seen_two, "k", "FETCH 1 (FLAGS)").await;
    assert_eq!(fetched_keywords(&lines), expected);
    ok(&mut two, &mut seen_two, "l", "SELECT Archive").await;
    let lines = ok(&mut two, &mut seen_two, "m", "FETCH 1 (FLAGS)").await;
    assert_eq!(fetched_keywords(&lines), expected);
}

/// Two server instances setting keywords on one message at once, across the end of the flags
/// word: every keyword is kept, and every session sees the same flags.
#[tokio::test]
async fn two_servers_adding_keywords_at_once_near_the_flags_word_limit_keep_all() {
    let started = common::start(Limits::default()).await;
    let other = common::another_instance(&started, &[("alice", "alice-pw")], 2).await;
    let (mut one, mut seen_one) = login_select(started.imap).await;
    seen_one.check(&append(&mut one, "").await);
    let first = names("a", 1..=50);
    add_keywords(&mut one, &mut seen_one, "a", "1", &first).await;
    let (mut two, mut seen_two) = login_select(other).await;
    let mut all: BTreeSet<String> = first.into_iter().collect();
    for round in 0..3u32 {
        let mine = names(&format!("x{round}-"), 1..=4);
        let theirs = names(&format!("y{round}-"), 1..=4);
        all.extend(mine.iter().chain(&theirs).cloned());
        let [store_a, store_b] =
            [&mine, &theirs].map(|k| format!("STORE 1 +FLAGS.SILENT ({})", k.join(" ")));
        let (a, b) = tokio::join!(one.run("b", &store_a), two.run("b", &store_b));
        assert!(
            tagged(&a).starts_with("b OK") && tagged(&b).starts_with("b OK"),
            "{a:?} {b:?}"
        );
        seen_one.check(&a);
        seen_two.check(&b);
    }
    for (c, seen) in [(&mut one, &mut seen_one), (&mut two, &mut seen_two)] {
        ok(c, seen, "c", "NOOP").await;
        let lines = ok(c, seen, "d", "FETCH 1 (FLAGS)").await;
        assert_eq!(fetched_keywords(&lines), all);
        assert_eq!(seen.keywords.len(), 5 + all.len());
    }
}

/// A checkpoint keeps the keywords past the flags word; one without them (written before they
/// existed) still loads (unit test `mail::checkpoint::tests`).
#[tokio::test]
async fn keywords_beyond_the_flags_word_survive_a_checkpoint() {
    let (started, clock) = common::start_alice_on_test_clock().await;
    let (mut one, mut seen) = login_select(started.imap).await;
    for _ in 0..10 {
        seen.check(&append(&mut one, "").await);
    }
    let many = names("k", 1..=60);
    add_keywords(&mut one, &mut seen, "a", "1:10", &many).await;
    ok(&mut one, &mut seen, "b", "STORE 2 -FLAGS.SILENT (k58)").await;
    // Enough operations for a checkpoint, once old enough.
    for round in 0..26 {
        let sign = if round % 2 == 0 { '+' } else { '-' };
        let command = format!("STORE 1:10 {sign}FLAGS.SILENT (\\Flagged)");
        ok(&mut one, &mut seen, &format!("r{round}"), &command).await;
    }
    clock.advance(120_000);
    ok(&mut one, &mut seen, "c", "SELECT INBOX").await;
    assert_eq!(common::checkpoints(&started.fake), 1);
    let (mut two, mut seen_two) = login_select(started.imap).await;
    let all: BTreeSet<String> = many.into_iter().collect();
    let lines = ok(&mut two, &mut seen_two, "d", "FETCH 1 (FLAGS)").await;
    assert_eq!(fetched_keywords(&lines), all);
    let lines = ok(&mut two, &mut seen_two, "e", "FETCH 2 (FLAGS)").await;
    let mut but_one = all.clone();
    but_one.remove("k58");
    assert_eq!(fetched_keywords(&lines), but_one);
}
