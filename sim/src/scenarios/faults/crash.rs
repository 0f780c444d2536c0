//! `fault_crash`: the server host crashes (turmoil drops its runtime, every task and socket) and
//! restarts [`DOWN`] later, five times, each in the middle of something: a 2 MB APPEND (after 4
//! to 24 of its 32 body chunks reached the store), a 1 MB LMTP delivery (after 2 to 12 of 16),
//! a STORE on 1,000 messages (after 1 to 6 of its 8 log batches), and two event-log
//! checkpoints (a SELECT after the log's operations are [`CHECKPOINT_AGE`] old: once as the
//! checkpoint object is written, before the log rows it covers are deleted; once after that
//! delete, before older checkpoints are). The client reconnects and retries each cut-off command
//! until it succeeds. A fresh session then checks INBOX and the server's idle heap.

use std::time::Duration;

use fakes3::Op;

use super::arm::{arm, disarm, Armed};
use super::delivery::deliver_until_done;
use super::heap::{check_idle, idle_before};
use super::link::{append_until_done, store_until_done, Link};
use super::run::{Ctx, FaultRun};
use super::setup::{setup_inbox, verify_moves};
use crate::figures::{Report, ScenarioError};
use crate::harness::{HostFault, IMAP_HOST};
use workload::client::ClientError;
use workload::ledger::FlagOp;

/// Scenario name.
pub const NAME: &str = "fault_crash";
/// Messages preloaded in INBOX (and flagged by the STORE that crashes).
pub const PRELOAD: usize = 1_000;
/// How long the server stays down.
pub const DOWN: Duration = Duration::from_millis(500);
/// How long the driver waits before a SELECT that checkpoints: operations must be older than
/// 60 s (`server::mail::checkpoint::LAG`) to be covered.
pub const CHECKPOINT_AGE: Duration = Duration::from_secs(61);
/// The mailboxes checked.
const MAILBOXES: [&str; 1] = ["INBOX"];

fn small(k: usize) -> u64 {
    600 + (k as u64 % 5) * 100
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let mut run = FaultRun::new(NAME, seed, 1)?;
    run.driver(|ctx, imap| async move {
        let setup = setup_inbox(&ctx, PRELOAD, small, 8, &MAILBOXES);
        let Some(before) = idle_before(&ctx, imap, setup.await, " with no crash").await else {
            return Ok(());
        };
        if let Err(e) = steps(&ctx).await {
            ctx.violation(format!("the client could not get through the crashes: {e}"));
        }
        verify_moves(IMAP_HOST, &ctx, &MAILBOXES).await;
        let checkpoints = ctx
            .fake
            .objects()
            .iter()
            .filter(|(key, _)| key.contains("/ckpt/"))
            .count();
        ctx.counts.set("checkpoints_stored", checkpoints as u64);
        check_idle(&ctx, IMAP_HOST, imap, before, &MAILBOXES).await;
        Ok(())
    });
    run.finish(&[])
}

/// Crashes the server once the store has routed `after` more requests of `op` (drawn in the
/// range), restarts it [`DOWN`] later.
fn crash_after(ctx: &Ctx, op: Op, after: std::ops::RangeInclusive<u64>) -> Armed {
    let after = ctx.draw(after);
    arm(
        ctx,
        op,
        after,
        HostFault::Crash(IMAP_HOST.to_string()),
        DOWN,
        Some(HostFault::Bounce(IMAP_HOST.to_string())),
    )
}

/// Counts whether a crash point was reached (`crash_points_hit`) or the operation ended first.
async fn settle(ctx: &Ctx, armed: Armed, point: &str) {
    if disarm(ctx, armed).await {
        ctx.counts.add("crash_points_hit", 1);
    } else {
        ctx.counts.add(&format!("crash_point_missed_{point}"), 1);
    }
}

async fn steps(ctx: &Ctx) -> Result<(), ClientError> {
    let mut link = Link::open(ctx, IMAP_HOST, 1).await?;
    link.expect_breaks(true);
    let result = operations(ctx, &mut link).await;
    link.close_after(result).await
}

async fn operations(ctx: &Ctx, link: &mut Link) -> Result<(), ClientError> {
    link.select("INBOX").await?;

    let armed = crash_after(ctx, Op::PutObject, 4..=24);
    let email = ctx.email(PRELOAD, 2_000_000);
    let result = append_until_done(link, "INBOX", &["\\Seen"], &email, "2 MB APPEND").await;
    settle(ctx, armed, "append").await;
    result?;

    let armed = crash_after(ctx, Op::PutObject, 2..=12);
    let email = ctx.email(PRELOAD + 1, 1_000_000);
    deliver_until_done(ctx, IMAP_HOST, 1, &email, "1 MB LMTP delivery").await;
    settle(ctx, armed, "lmtp").await;

    // The SELECT imports the delivery; the STORE covers the preloaded messages.
    link.select("INBOX").await?;
    let all: Vec<u32> = (1..=PRELOAD as u32).collect();
    let armed = crash_after(ctx, Op::InsertBatch, 1..=6);
    let result = store_until_done(link, &all, FlagOp::Add, &["\\Flagged"]).await;
    settle(ctx, armed, "store").await;
    result?;

    // Checkpoint 1: crash once the checkpoint object is stored.
    tokio::time::sleep(CHECKPOINT_AGE).await;
    let armed = crash_after(ctx, Op::PutObject, 1..=1);
    let result = link.select("INBOX").await;
    settle(ctx, armed, "checkpoint_put").await;
    result?;

    // Checkpoint 2 (over the 1,000 operations of another STORE): crash once the log rows it
    // covers are deleted.
    store_until_done(link, &all, FlagOp::Remove, &["\\Flagged"]).await?;
    tokio::time::sleep(CHECKPOINT_AGE).await;
    let armed = crash_after(ctx, Op::DeleteBatch, 1..=1);
    let result = link.select("INBOX").await;
    settle(ctx, armed, "checkpoint_delete").await;
    result?;
    Ok(())
}
