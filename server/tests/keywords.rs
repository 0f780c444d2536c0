//! Keywords as clients learn them (RFC 3501 7.2.6, 7.1 PERMANENTFLAGS): `* FLAGS` and PERMANENTFLAGS
//! name a keyword before any FETCH carries it, in the session that set it and in the others; once
//! the mailbox's table is full (56 keywords here; Dovecot has no limit) `\*` is no longer offered.

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

#[tokio::test]
async fn a_full_keyword_table_stops_offering_the_wildcard() {
    let addr = common::start(Limits::default()).await.imap;
    let (mut one, mut seen) = login_select(addr).await;
    seen.check(&append(&mut one, "").await);
    let many: Vec<String> = (1..=56).map(|i| format!("k{i}")).collect();
    let lines = one
        .run("a", &format!("STORE 1 +FLAGS ({})", many.join(" ")))
        .await;
    assert!(tagged(&lines).starts_with("a OK"), "{lines:?}");
    seen.check(&lines);
    assert!(
        !seen.any_allowed,
        "\\* offered with no room left: {lines:?}"
    );
    let (_, again) = login_select(addr).await;
    assert!(!again.any_allowed && again.keywords.len() == 5 + 56);
}
