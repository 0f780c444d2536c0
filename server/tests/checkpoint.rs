//! Checkpoints: once a mailbox's log tail is long and old enough, loading the mailbox writes a
//! sealed snapshot to S3 and deletes the log rows it covers; a later session loads the same state
//! from the snapshot.

mod common;

use common::{tagged, Client};

/// Asserts that `lines` include `line` exactly.
fn has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "no {line:?} in {lines:?}");
}

#[tokio::test]
async fn a_long_old_log_tail_becomes_a_checkpoint_that_loads_the_same_state() {
    let (started, clock) = common::start_alice_on_test_clock().await;
    let mut c = Client::connect(started.imap).await;
    assert!(tagged(&c.run("a", "LOGIN alice alice-pw").await).starts_with("a OK"));
    for i in 0..10 {
        let m = format!("Subject: {i}\r\n\r\nbody\r\n");
        c.send(format!("b{i} APPEND Archive {{{}+}}\r\n{m}\r\n", m.len()).as_bytes())
            .await;
        assert!(tagged(&c.until(&format!("b{i}")).await).contains("OK"));
    }
    assert!(tagged(&c.run("c", "SELECT Archive").await).starts_with("c OK"));
    for round in 0..26 {
        let sign = if round % 2 == 0 { '+' } else { '-' };
        let reply = c
            .run(
                &format!("d{round}"),
                &format!("STORE 1:10 {sign}FLAGS.SILENT (\\Flagged)"),
            )
            .await;
        assert!(tagged(&reply).contains("OK"), "{reply:?}");
    }
    let before = c.run("e", "SELECT Archive").await;
    let checkpoints = |fake: &fakes3::FakeS3| {
        fake.objects()
            .iter()
            .filter(|(k, _)| k.contains("/ckpt/"))
            .count()
    };
    assert_eq!(
        checkpoints(&started.fake),
        0,
        "operations younger than the lag are not checkpointed"
    );
    let log_rows = |fake: &fakes3::FakeS3| {
        fake.rows()
            .iter()
            .filter(|(pk, _, values)| pk.contains(":log:") && values.iter().any(Option::is_some))
            .count()
    };
    let rows_before = log_rows(&started.fake);
    // 270 operations: a row per APPEND, one per STORE (its 10 flag changes in one batch).
    assert_eq!(rows_before, 36, "{rows_before} log rows");

    clock.advance(120_000);
    let after = c.run("f", "SELECT Archive").await;
    assert_eq!(checkpoints(&started.fake), 1);
    assert!(
        log_rows(&started.fake) < 10,
        "covered rows deleted: {} left",
        log_rows(&started.fake)
    );
    assert_eq!(
        before,
        after
            .iter()
            .map(|l| l.replacen("f OK", "e OK", 1))
            .collect::<Vec<_>>(),
        "same state from the checkpoint"
    );
    let fetch = c.run("g", "FETCH 1:10 (UID FLAGS MODSEQ)").await;
    assert_eq!(fetch.len(), 11);
    assert!(
        fetch[9].starts_with("* 10 FETCH (UID 10 FLAGS () MODSEQ ("),
        "{fetch:?}"
    );

    // A new session, a new checkpoint once more operations are old enough.
    for round in 0..26 {
        let sign = if round % 2 == 0 { '+' } else { '-' };
        c.run(
            &format!("h{round}"),
            &format!("STORE 1:10 {sign}FLAGS.SILENT (\\Seen)"),
        )
        .await;
    }
    clock.advance(120_000);
    let mut d = Client::connect(started.imap).await;
    assert!(tagged(&d.run("a", "LOGIN alice alice-pw").await).starts_with("a OK"));
    let select = d.run("b", "SELECT Archive").await;
    has(&select, "* 10 EXISTS\r\n");
    has(&select, "* OK [UIDNEXT 11] predicted next UID\r\n");
    assert_eq!(
        checkpoints(&started.fake),
        2,
        "the newest checkpoint and the one before it are kept"
    );
}
