//! `fault_disconnect`: clients go away at the worst moments, each on its own connection: in the
//! middle of an APPEND literal of 300 KB (before any byte of it, after a number of bytes drawn
//! from the seed, and with every byte sent but the final CRLF), in the middle of an LMTP DATA
//! (after a drawn number of bytes), in the middle of a FETCH answer of about 4 MB of bodies
//! (after 0 bytes, a drawn number up to 50 KB and one up to 3 MB), and in IDLE (right after the
//! continuation, and after a new-mail notification arrived). An LMTP delivery follows each IDLE
//! drop, so that the watcher the session left would have something to do. None of the cut-off
//! messages may appear, every other message must be intact, and the server's idle heap must come
//! back: nothing a dropped session held may stay behind.

use std::time::Duration;

use super::connect::raw_login;
use super::delivery::{deliver_until_done, lmtp_deliver};
use super::heap::{check_idle, idle_before};
use super::link::{fetch_all, Link};
use super::run::{Ctx, FaultRun};
use super::setup::{setup_inbox, verify_moves};
use crate::figures::{Report, ScenarioError};
use crate::harness::IMAP_HOST;
use workload::ledger::Ack;

/// Scenario name.
pub const NAME: &str = "fault_disconnect";
/// Messages preloaded in INBOX (about 200 KB each: a FETCH of all is about 4 MB).
pub const PRELOAD: usize = 20;
/// Size of the emails whose APPEND or DATA is cut off.
const CUT_BYTES: u64 = 300_000;
/// The mailboxes checked.
const MAILBOXES: [&str; 1] = ["INBOX"];

fn large(k: usize) -> u64 {
    150_000 + (k as u64 % 4) * 30_000
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let mut run = FaultRun::new(NAME, seed, 1)?;
    run.driver(|ctx, imap| async move {
        let setup = setup_inbox(&ctx, PRELOAD, large, 4, &MAILBOXES);
        let Some(before) = idle_before(&ctx, imap, setup.await, "").await else {
            return Ok(());
        };
        if let Err(e) = disconnects(&ctx).await {
            ctx.violation(format!(
                "a connection failed before the client meant to drop it: {e}"
            ));
        }
        // The other sessions never noticed: a session still open reads everything intact.
        match Link::open(&ctx, IMAP_HOST, 1).await {
            Ok(mut link) => {
                let read = async {
                    link.select("INBOX").await?;
                    fetch_all(&mut link).await
                };
                if let Err(e) = read.await {
                    ctx.violation(format!("reading INBOX after the disconnects failed: {e}"));
                }
                if let Err(e) = link.logout().await {
                    ctx.violation(format!("LOGOUT after the disconnects failed: {e}"));
                }
            }
            Err(e) => ctx.violation(format!("logging in after the disconnects failed: {e}")),
        }
        verify_moves(IMAP_HOST, &ctx, &MAILBOXES).await;
        check_idle(&ctx, IMAP_HOST, imap, before, &MAILBOXES).await;
        Ok(())
    });
    run.finish(&[])
}

/// Records a deliberate disconnect.
fn dropped(ctx: &Ctx, what: &str) {
    ctx.counts.add("disconnects", 1);
    ctx.counts.add(&format!("disconnects_{what}"), 1);
}

async fn disconnects(ctx: &Ctx) -> std::io::Result<()> {
    // APPEND literals cut off: before the first byte, halfway, all but the final CRLF.
    for n in 0..3 {
        let email = ctx.email(PRELOAD + n, CUT_BYTES);
        let len = email.len() as u64;
        let sent = match n {
            0 => 0,
            1 => ctx.draw(1..=len - 1) as usize,
            _ => email.len(),
        };
        let mut raw = raw_login(IMAP_HOST, ctx, 1).await?;
        raw.send(format!("c1 APPEND INBOX {{{}+}}\r\n", email.len()).as_bytes())
            .await?;
        raw.send(&email[..sent]).await?;
        drop(raw);
        ctx.ledger.borrow_mut().add(
            "INBOX",
            &email,
            &[],
            Ack::Refused,
            None,
            &format!(
                "APPEND cut off after {sent} of its {} literal bytes",
                email.len()
            ),
        );
        dropped(ctx, "mid_literal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An LMTP DATA cut off.
    let email = ctx.email(PRELOAD + 3, CUT_BYTES);
    let cut = ctx.draw(1..=email.len() as u64 - 1) as usize;
    let outcome = lmtp_deliver(IMAP_HOST, &ctx.user(1).0, &email, Some(cut)).await;
    let ack = match outcome.ack() {
        // The client never sent the final dot: no delivery may come of it.
        Ack::Unknown => Ack::Refused,
        other => other,
    };
    ctx.ledger.borrow_mut().add(
        "INBOX",
        &email,
        &[],
        ack,
        None,
        &format!("LMTP DATA cut off after {cut} bytes"),
    );
    dropped(ctx, "mid_data");

    // FETCH answers cut off after 0 bytes, up to 50 KB and up to 3 MB.
    let cuts = [0, ctx.draw(1..=50_000), ctx.draw(50_001..=3_000_000)];
    for cut in cuts.map(|c| c as usize) {
        let mut raw = raw_login(IMAP_HOST, ctx, 1).await?;
        raw.send(b"c2 SELECT INBOX\r\n").await?;
        raw.until_tagged("c2").await?;
        raw.send(b"c3 UID FETCH 1:* (UID BODY.PEEK[])\r\n").await?;
        if cut > 0 {
            raw.read_at_least(cut).await?;
        }
        drop(raw);
        dropped(ctx, "mid_fetch");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // IDLE dropped right after the continuation, then after a notification.
    for notified in [false, true] {
        let mut raw = raw_login(IMAP_HOST, ctx, 1).await?;
        raw.send(b"c4 SELECT INBOX\r\n").await?;
        raw.until_tagged("c4").await?;
        raw.send(b"c5 IDLE\r\n").await?;
        while !raw.line().await?.starts_with(b"+") {}
        let k = PRELOAD + 4 + usize::from(notified);
        let email = ctx.email(k, 5_000);
        if notified {
            deliver_until_done(ctx, IMAP_HOST, 1, &email, "LMTP delivery during IDLE").await;
            // Wait for the EXISTS the delivery causes (or give up after a while).
            let wait = async {
                loop {
                    let line = raw.line().await?;
                    if line.ends_with(b"EXISTS\r\n") {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(30), wait).await {
                Ok(result) => result?,
                Err(_) => ctx.counts.add("idle_notifications_missed", 1),
            }
            drop(raw);
        } else {
            drop(raw);
            tokio::time::sleep(Duration::from_millis(200)).await;
            deliver_until_done(
                ctx,
                IMAP_HOST,
                1,
                &email,
                "LMTP delivery after an IDLE drop",
            )
            .await;
        }
        dropped(ctx, "in_idle");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
