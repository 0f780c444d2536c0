//! LIST-EXTENDED's SUBSCRIBED and RECURSIVEMATCH (RFC 5258) and LSUB's `\Noselect` parents (RFC
//! 3501 6.3.9). New mailboxes are subscribed here when created, so the test unsubscribes some.

mod common;

use common::{tagged, Client};
use server::config::Limits;

async fn ok(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    let lines = c.run(tag, command).await;
    assert!(
        tagged(&lines).starts_with(&format!("{tag} OK")),
        "{command}: {lines:?}"
    );
    lines
}

/// The untagged lines of `lines`, sorted.
fn untagged(lines: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("* "))
        .map(|l| l.trim_end())
        .collect();
    out.sort();
    out
}

async fn setup() -> Client {
    let addr = common::start(Limits::default()).await.imap;
    let mut c = Client::connect(addr).await;
    ok(&mut c, "l", "LOGIN alice alice-pw").await;
    for name in ["x.a", "x.b", "p.q", "r", "r.s"] {
        ok(&mut c, "c", &format!("CREATE {name}")).await;
    }
    ok(&mut c, "u", "UNSUBSCRIBE x.b").await;
    ok(&mut c, "u", "UNSUBSCRIBE r").await;
    c
}

#[tokio::test]
async fn recursivematch_alone_is_bad() {
    let mut c = setup().await;
    let lines = c.run("a", "LIST (RECURSIVEMATCH) \"\" \"\"").await;
    assert!(tagged(&lines).starts_with("a BAD"), "{lines:?}");
}

#[tokio::test]
async fn list_subscribed_returns_subscribed_names_marked_subscribed() {
    let mut c = setup().await;
    let lines = ok(&mut c, "a", "LIST (SUBSCRIBED) \"\" x.*").await;
    assert_eq!(
        untagged(&lines),
        ["* LIST (\\HasNoChildren \\Subscribed) \".\" x.a"]
    );
}

#[tokio::test]
async fn recursivematch_adds_childinfo_for_parents_of_subscribed_children() {
    let mut c = setup().await;
    let lines = ok(&mut c, "a", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    let listed = untagged(&lines);
    for parent in [
        "* LIST () \".\" r (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "* LIST (\\NonExistent) \".\" p (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "* LIST (\\NonExistent) \".\" x (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX",
    ] {
        assert!(listed.contains(&parent), "{parent} missing: {listed:?}");
    }
    assert!(
        !listed
            .iter()
            .any(|l| l.ends_with(" x.a") || l.ends_with(" r.s")),
        "{listed:?}"
    );
}

#[tokio::test]
async fn lsub_percent_shows_unsubscribed_or_missing_parents_as_noselect() {
    let mut c = setup().await;
    let lines = ok(&mut c, "a", "LSUB \"\" %").await;
    let listed = untagged(&lines);
    for parent in ["r", "p", "x"] {
        let line = format!("* LSUB (\\Noselect) \".\" {parent}");
        assert!(
            listed.contains(&line.as_str()),
            "{line} missing: {listed:?}"
        );
    }
    // With `*` the children themselves match: no parent is added.
    let lines = ok(&mut c, "b", "LSUB \"\" *").await;
    let listed = untagged(&lines);
    assert!(
        !listed.iter().any(|l| l.contains("\\Noselect")),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|l| l.ends_with(" r.s")) && !listed.iter().any(|l| l.ends_with(" r"))
    );
}
