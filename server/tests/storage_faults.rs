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

/// Faults `faults` on the operations `ops` only.
fn set_faults_on(fake: &fakes3::FakeS3, faults: Faults, ops: &[Op]) {
    let faults = Faults {
        ops: Some(ops.to_vec()),
        ..faults
    };
    fake.set_faults(faults).expect("valid faults");
}

/// Asserts that the tagged line of `reply` starts with `status` (tag and status word).
fn expect_status(reply: &[String], status: &str) {
    assert!(tagged(reply).starts_with(status), "{reply:?}");
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
        ..Faults::default()
    };
    set_faults_on(
        &started.fake,
        lost,
        &[Op::InsertItem, Op::InsertBatch, Op::PutObject],
    );
    expect_status(&append(&mut c, "c", "one").await, "c OK");
    expect_status(&c.run("d", "STORE 1 +FLAGS (\\Flagged)").await, "d OK");

    // Every K2V insert is refused (not applied).
    let refused = Faults {
        error_probability: 1.0,
        ..Faults::default()
    };
    set_faults_on(&started.fake, refused, &[Op::InsertItem, Op::InsertBatch]);
    expect_status(&append(&mut c, "e", "two").await, "e NO");
    expect_status(&c.run("f", "STORE 1 +FLAGS (\\Seen)").await, "f NO");

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
