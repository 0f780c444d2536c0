//! Isolation and encryption: another user reaches nothing of alice's by any command or mailbox-name
//! trick, and nothing the store holds contains plaintext of a message, header, flag or mailbox name.

mod common;

use common::{tagged, Client};
use server::config::Limits;

const SECRET_BODY: &str = "the-launch-code-is-0000";
const SECRET_SUBJECT: &str = "Quarterly-Plans-Confidential";
const SECRET_MAILBOX: &str = "Projets-Secrets";
const SECRET_KEYWORD: &str = "$HushHush";

async fn alice_fills_her_mailboxes(c: &mut Client) {
    assert!(tagged(&c.run("a1", "LOGIN alice alice-pw").await).starts_with("a1 OK"));
    assert!(tagged(&c.run("a2", &format!("CREATE {SECRET_MAILBOX}")).await).starts_with("a2 OK"));
    let m =
        format!("From: alice@example.org\r\nSubject: {SECRET_SUBJECT}\r\n\r\n{SECRET_BODY}\r\n");
    for (tag, mailbox) in [("a3", "INBOX"), ("a4", SECRET_MAILBOX)] {
        c.send(
            format!(
                "{tag} APPEND {mailbox} ({SECRET_KEYWORD}) {{{}+}}\r\n{m}\r\n",
                m.len()
            )
            .as_bytes(),
        )
        .await;
        assert!(tagged(&c.until(tag).await).starts_with(&format!("{tag} OK")));
    }
}

#[tokio::test]
async fn another_user_reaches_nothing_of_alice_by_any_name() {
    let started = common::start_with(
        Limits::default(),
        None,
        &[("alice", "alice-pw"), ("bob", "bob-pw")],
    )
    .await;
    let mut alice = Client::connect(started.imap).await;
    alice_fills_her_mailboxes(&mut alice).await;
    assert!(tagged(&alice.run("a5", "SELECT INBOX").await).starts_with("a5 OK"));

    let mut bob = Client::connect(started.imap).await;
    assert!(tagged(&bob.run("b1", "LOGIN bob bob-pw").await).starts_with("b1 OK"));
    let names = [
        SECRET_MAILBOX.to_string(),
        format!("../alice/{SECRET_MAILBOX}"),
        format!("alice/{SECRET_MAILBOX}"),
        format!("alice.{SECRET_MAILBOX}"),
        "../alice/INBOX".to_string(),
        "~alice/INBOX".to_string(),
        "#user/alice/INBOX".to_string(),
        "Projets&AC0-Secrets".to_string(),
        "*".to_string(),
        "%".to_string(),
    ];
    for (i, name) in names.iter().enumerate() {
        for command in ["SELECT", "EXAMINE", "STATUS", "DELETE", "SUBSCRIBE"] {
            let args = if command == "STATUS" {
                format!("\"{name}\" (MESSAGES)")
            } else {
                format!("\"{name}\"")
            };
            let reply = bob
                .run(&format!("n{i}"), &format!("{command} {args}"))
                .await;
            assert!(
                !tagged(&reply).contains(" OK"),
                "{command} {name}: {reply:?}"
            );
        }
        for (reference, pattern) in [
            ("", name.as_str()),
            (name.as_str(), "*"),
            ("../", "*"),
            ("alice/", "*"),
        ] {
            let reply = bob
                .run(
                    &format!("l{i}"),
                    &format!("LIST \"{reference}\" \"{pattern}\""),
                )
                .await;
            assert!(
                !reply.iter().any(|l| l.contains(SECRET_MAILBOX)),
                "LIST {reference} {pattern}: {reply:?}"
            );
        }
    }
    // Bob's own INBOX is empty; a COPY from it to alice's names goes nowhere of hers.
    let select = bob.run("s", "SELECT INBOX").await;
    assert!(select.contains(&"* 0 EXISTS\r\n".to_string()), "{select:?}");
    let search = bob.run("t", &format!("SEARCH BODY {SECRET_BODY}")).await;
    assert_eq!(search[0], "* SEARCH\r\n");

    // Bob's IDLE on his INBOX is not woken by mail for alice.
    bob.send(b"i IDLE\r\n").await;
    assert!(bob.line().await.starts_with('+'));
    let m = "Subject: for alice\r\n\r\nhi\r\n";
    alice
        .send(format!("a6 APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(tagged(&alice.until("a6").await).starts_with("a6 OK"));
    bob.send(b"DONE\r\n").await;
    let done = bob.until("i").await;
    assert_eq!(
        done,
        vec!["i OK IDLE terminated\r\n".to_string()],
        "no untagged data for bob"
    );
}

#[tokio::test]
async fn the_store_holds_no_plaintext() {
    let started = common::start(Limits::default()).await;
    let mut alice = Client::connect(started.imap).await;
    alice_fills_her_mailboxes(&mut alice).await;
    assert!(
        tagged(&alice.run("a6", &format!("SELECT {SECRET_MAILBOX}")).await).starts_with("a6 OK")
    );
    assert!(tagged(&alice.run("a7", "STORE 1 +FLAGS (\\Answered)").await).starts_with("a7 OK"));
    let needles = [
        SECRET_BODY,
        SECRET_SUBJECT,
        SECRET_MAILBOX,
        SECRET_KEYWORD,
        "alice@example.org",
        "alice",
        "Answered",
    ];
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    let mut scanned = 0;
    for (key, bytes) in started.fake.objects() {
        scanned += 1;
        for needle in needles {
            assert!(
                !contains(key.as_bytes(), needle) && !contains(&bytes, needle),
                "S3 object {key} holds {needle}"
            );
        }
    }
    for (pk, sk, values) in started.fake.rows() {
        scanned += 1;
        for needle in needles {
            assert!(
                !contains(pk.as_bytes(), needle) && !contains(sk.as_bytes(), needle),
                "K2V key {pk}/{sk} holds {needle}"
            );
            for value in values.iter().flatten() {
                assert!(!contains(value, needle), "K2V row {pk}/{sk} holds {needle}");
            }
        }
    }
    assert!(scanned > 10, "only {scanned} objects and rows scanned");
}
