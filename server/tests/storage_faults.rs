//! Storage faults seen from IMAP: a refused write gives NO and changes nothing; a write applied
//! whose answer was lost is recognised, so the client sees OK and no duplicate appears.

mod common;

use common::{tagged, Client};
use fakes3::{Faults, Op};
use server::config::Limits;

async fn append(c: &mut Client, tag: &str, body: &str) -> Vec<String> {
    let m = format!("Subject: {body}\r\n\r\n{body}\r\n");
    c.send(format!("{tag} APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    c.until(tag).await
}

#[tokio::test]
async fn lost_answers_to_log_writes_are_not_errors_and_refused_writes_change_nothing() {
    let started = common::start(Limits::default()).await;
    let mut c = Client::connect(started.imap).await;
    assert!(tagged(&c.run("a", "LOGIN alice alice-pw").await).starts_with("a OK"));
    assert!(tagged(&c.run("b", "SELECT INBOX").await).starts_with("b OK"));

    // Every K2V insert is applied but answered 500.
    let lost = Faults {
        lost_response_probability: 1.0,
        ops: Some(vec![Op::InsertItem, Op::InsertBatch, Op::PutObject]),
        ..Faults::default()
    };
    started.fake.set_faults(lost).expect("valid faults");
    let reply = append(&mut c, "c", "one").await;
    assert!(tagged(&reply).starts_with("c OK"), "{reply:?}");
    let reply = c.run("d", "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(tagged(&reply).starts_with("d OK"), "{reply:?}");

    // Every K2V insert is refused (not applied).
    let refused = Faults {
        error_probability: 1.0,
        ops: Some(vec![Op::InsertItem, Op::InsertBatch]),
        ..Faults::default()
    };
    started.fake.set_faults(refused).expect("valid faults");
    let reply = append(&mut c, "e", "two").await;
    assert!(tagged(&reply).starts_with("e NO"), "{reply:?}");
    let reply = c.run("f", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(tagged(&reply).starts_with("f NO"), "{reply:?}");

    started
        .fake
        .set_faults(Faults::default())
        .expect("valid faults");
    let select = c.run("g", "SELECT INBOX").await;
    assert!(
        select.contains(&"* 1 EXISTS\r\n".to_string()),
        "exactly the acknowledged message: {select:?}"
    );
    let fetch = c.run("h", "FETCH 1 FLAGS").await;
    assert_eq!(fetch[0], "* 1 FETCH (FLAGS (\\Flagged))\r\n");
}
