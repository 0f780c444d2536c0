//! `fault_partition`: the link between the server host and the store host is cut (turmoil
//! partition: every message dropped, TCP does not retransmit) in the middle of five operations,
//! one after the other, then repaired: a 1 MB APPEND and a 1 MB LMTP delivery (cut after 2 to
//! 12 of their 16 body chunks reached the store), a COPY of 200 messages (after 20 to 180 of
//! their records were written), a MOVE of 150 (after 20 to 140) and a STORE on 150 (after its
//! first or second log batch). Where each cut falls and whether it lasts [`SHORT`] (less than the
//! storage client's 120 s request timeout: the operation answers late) or [`LONG`] (more than two
//! of them: it answers NO and the client retries until the link is back) is drawn from the seed. Then a
//! fresh session checks INBOX, Archive and Trash, and the server's idle heap.

use std::time::Duration;

use fakes3::Op;

use super::arm::{arm, disarm, Armed};
use super::delivery::deliver_until_done;
use super::heap::{check_idle, idle_before};
use super::link::{append_until_done, store_until_done, transfer_until_done, Link};
use super::run::{Ctx, FaultRun};
use super::setup::{setup_inbox, verify_moves};
use crate::figures::{Report, ScenarioError};
use crate::harness::{HostFault, FAKES3_HOST, IMAP_HOST};
use workload::client::ClientError;
use workload::ledger::FlagOp;

/// Scenario name.
pub const NAME: &str = "fault_partition";
/// Messages preloaded in INBOX.
pub const PRELOAD: usize = 300;
/// A partition shorter than the storage client's request timeout.
pub const SHORT: Duration = Duration::from_secs(5);
/// A partition longer than two storage request timeouts (a request cut off, then the check of
/// whether it was applied): the operation answers NO, and the client retries until it is over.
pub const LONG: Duration = Duration::from_secs(300);
/// Retries of a command answered NO, at most [`RETRY_PAUSE_MAX`] apart: enough to outlast a
/// [`LONG`] partition without hammering a server that cannot reach its store (each try costs it
/// failed connection attempts).
const RETRIES: usize = 60;
/// Longest pause between two retries.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(10);
/// Size of the APPENDed and the delivered email (16 body chunks).
const LARGE_BYTES: u64 = 1_000_000;
/// The mailboxes checked.
const MAILBOXES: [&str; 3] = ["INBOX", "Archive", "Trash"];

fn small(k: usize) -> u64 {
    1_000 + (k as u64 % 7) * 300
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let mut run = FaultRun::new(NAME, seed, 1)?;
    run.patience(RETRIES, RETRY_PAUSE_MAX);
    run.driver(|ctx, imap| async move {
        let setup = setup_inbox(&ctx, PRELOAD, small, 4, &MAILBOXES);
        let Some(before) = idle_before(&ctx, imap, setup.await, " with faults off").await else {
            return Ok(());
        };
        if let Err(e) = steps(&ctx).await {
            ctx.violation(format!(
                "an IMAP session broke although only the server's link to the store was cut: {e}"
            ));
        }
        // Whatever happened, the link is whole for the final check.
        ctx.controls.request(repair());
        tokio::time::sleep(Duration::from_secs(1)).await;
        verify_moves(IMAP_HOST, &ctx, &MAILBOXES).await;
        check_idle(&ctx, IMAP_HOST, imap, before, &MAILBOXES).await;
        Ok(())
    });
    run.finish(&[])
}

fn partition() -> HostFault {
    HostFault::Partition(IMAP_HOST.to_string(), FAKES3_HOST.to_string())
}

fn repair() -> HostFault {
    HostFault::Repair(IMAP_HOST.to_string(), FAKES3_HOST.to_string())
}

/// Cuts the link once the store has routed between `after` more requests of `op` (drawn in the
/// range), repairs it [`SHORT`] or [`LONG`] later (drawn too).
fn cut_after(ctx: &Ctx, op: Op, after: std::ops::RangeInclusive<u64>) -> Armed {
    let after = ctx.draw(after);
    let hold = if ctx.draw(0..=1) == 0 { SHORT } else { LONG };
    ctx.counts.add(
        if hold == LONG {
            "partitions_long"
        } else {
            "partitions_short"
        },
        1,
    );
    arm(ctx, op, after, partition(), hold, Some(repair()))
}

async fn steps(ctx: &Ctx) -> Result<(), ClientError> {
    let mut link = Link::open(ctx, IMAP_HOST, 1).await?;
    let result = operations(ctx, &mut link).await;
    link.close_after(result).await
}

async fn operations(ctx: &Ctx, link: &mut Link) -> Result<(), ClientError> {
    link.select("INBOX").await?;

    let armed = cut_after(ctx, Op::PutObject, 2..=12);
    let email = ctx.email(PRELOAD, LARGE_BYTES);
    let appended = append_until_done(link, "INBOX", &[], &email, "1 MB APPEND").await;
    disarm(ctx, armed).await;
    appended?;

    let armed = cut_after(ctx, Op::PutObject, 2..=12);
    let email = ctx.email(PRELOAD + 1, LARGE_BYTES);
    deliver_until_done(ctx, IMAP_HOST, 1, &email, "1 MB LMTP delivery").await;
    disarm(ctx, armed).await;

    let armed = cut_after(ctx, Op::InsertItem, 20..=180);
    let copied: Vec<u32> = (1..=200).collect();
    let result = transfer_until_done(link, "Archive", &copied, false).await;
    disarm(ctx, armed).await;
    result?;

    let armed = cut_after(ctx, Op::InsertItem, 20..=140);
    let moved: Vec<u32> = (151..=300).collect();
    let result = transfer_until_done(link, "Trash", &moved, true).await;
    disarm(ctx, armed).await;
    result?;

    let armed = cut_after(ctx, Op::InsertBatch, 1..=2);
    let flagged: Vec<u32> = (1..=150).collect();
    let result = store_until_done(link, &flagged, FlagOp::Add, &["\\Flagged"]).await;
    disarm(ctx, armed).await;
    result?;
    Ok(())
}
