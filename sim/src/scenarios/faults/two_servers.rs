//! `fault_two_servers`: two server hosts, `imap` and `imap2`, on the same store serve one user at
//! once. One session on each APPENDs 10 emails, reads INBOX, flags 10 preloaded messages,
//! deletes and EXPUNGEs 5 others and MOVEs 5 more to Archive (each side its own messages), then
//! reads INBOX again; meanwhile `imap2` is cut off the store for 3 to 8 s (when, and for how long,
//! drawn from the seed). Once the network has healed, a fresh session on each server lists INBOX
//! and Archive: both must show the same mailboxes (same UIDVALIDITY, UIDs, flags and bytes), and
//! each must hold what the clients were told.

use std::collections::BTreeMap;
use std::time::Duration;

use super::connect::login;
use super::heap::{check_idle, idle_before, idle_level};
use super::link::{
    append_until_done, expunge_until_done, fetch_all, store_until_done, transfer_until_done, Link,
};
use super::run::{Ctx, FaultRun};
use super::setup::{preload, provision, verify, warm};
use crate::figures::{Report, ScenarioError};
use crate::harness::{HostFault, FAKES3_HOST, IMAP_HOST};
use workload::client::ClientError;
use workload::ledger::{FlagOp, Listing};

/// Scenario name.
pub const NAME: &str = "fault_two_servers";
/// The second server host.
pub const IMAP2_HOST: &str = "imap2";
/// Messages preloaded in INBOX.
pub const PRELOAD: usize = 40;
/// Emails each side APPENDs.
const APPENDS: usize = 10;
/// The mailboxes checked.
const MAILBOXES: [&str; 2] = ["INBOX", "Archive"];

fn small(k: usize) -> u64 {
    1_500 + (k as u64 % 9) * 700
}

/// What one side does: the host it talks to, the flag it sets, and its share of the preloaded
/// messages (UIDs) to flag, expunge and move.
struct Side {
    host: &'static str,
    first_email: usize,
    flag: &'static str,
    flagged: std::ops::RangeInclusive<u32>,
    expunged: std::ops::RangeInclusive<u32>,
    moved: std::ops::RangeInclusive<u32>,
}

const SIDES: [Side; 2] = [
    Side::new(IMAP_HOST, 100, "\\Flagged", 1),
    Side::new(IMAP2_HOST, 200, "$Label1", 21),
];

impl Side {
    /// A side whose twenty UIDs from `first_uid` are flagged (ten), expunged (five) and moved
    /// (five), in that order.
    const fn new(
        host: &'static str,
        first_email: usize,
        flag: &'static str,
        first_uid: u32,
    ) -> Side {
        Side {
            host,
            first_email,
            flag,
            flagged: first_uid..=first_uid + 9,
            expunged: first_uid + 10..=first_uid + 14,
            moved: first_uid + 15..=first_uid + 19,
        }
    }
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let mut run = FaultRun::new(NAME, seed, 1)?;
    let imap2 = run.add_server(IMAP2_HOST)?;
    run.driver(|ctx, imap| async move {
        let setup = async {
            provision(IMAP_HOST, &ctx, 1).await?;
            login(IMAP2_HOST, &ctx, 1).await?.logout().await?;
            preload(&ctx, IMAP_HOST, 1, "INBOX", (0, PRELOAD), small, 2).await?;
            warm(IMAP_HOST, &ctx, 1, &MAILBOXES).await?;
            warm(IMAP2_HOST, &ctx, 1, &MAILBOXES).await
        };
        let Some(before) = idle_before(&ctx, imap, setup.await, " with faults off").await else {
            return Ok(());
        };
        let before2 = idle_level(&ctx, IMAP2_HOST, imap2, "idle_before").await;
        concurrently(&ctx).await;
        let first = verify(IMAP_HOST, &ctx, 1, &MAILBOXES).await;
        let second = verify(IMAP2_HOST, &ctx, 1, &MAILBOXES).await;
        compare(&ctx, &first, &second);
        ctx.ledger.borrow_mut().check_moves(&first);
        check_idle(&ctx, IMAP_HOST, imap, before, &MAILBOXES).await;
        check_idle(&ctx, IMAP2_HOST, imap2, before2, &MAILBOXES).await;
        Ok(())
    });
    run.finish(&[IMAP2_HOST])
}

/// Both sides at once, and the partition of `imap2` from the store.
async fn concurrently(ctx: &Ctx) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..SIDES.len() {
        let ctx = ctx.clone();
        set.spawn_local(async move {
            if let Err(e) = work(&ctx, &SIDES[i]).await {
                ctx.violation(format!(
                    "the session on {} broke (only the link from imap2 to the store was cut): {e}",
                    side_host(i)
                ));
            }
        });
    }
    let start = Duration::from_millis(ctx.draw(200..=2_000));
    let hold = Duration::from_millis(ctx.draw(3_000..=8_000));
    let controls = ctx.controls.clone();
    set.spawn_local(async move {
        tokio::time::sleep(start).await;
        controls.request(HostFault::Partition(
            IMAP2_HOST.to_string(),
            FAKES3_HOST.to_string(),
        ));
        tokio::time::sleep(hold).await;
        controls.request(HostFault::Repair(
            IMAP2_HOST.to_string(),
            FAKES3_HOST.to_string(),
        ));
    });
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            ctx.violation(format!("a client task failed: {e}"));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn side_host(i: usize) -> &'static str {
    SIDES[i].host
}

async fn work(ctx: &Ctx, side: &Side) -> Result<(), ClientError> {
    let mut link = Link::open(ctx, side.host, 1).await?;
    let result = async {
        link.select("INBOX").await?;
        for k in side.first_email..side.first_email + APPENDS {
            let email = ctx.email(k, small(k));
            let what = format!("APPEND #{k} on {}", side.host);
            append_until_done(&mut link, "INBOX", &[], &email, &what).await?;
        }
        fetch_all(&mut link).await?;
        let flagged: Vec<u32> = side.flagged.clone().collect();
        store_until_done(&mut link, &flagged, FlagOp::Add, &[side.flag]).await?;
        let expunged: Vec<u32> = side.expunged.clone().collect();
        store_until_done(&mut link, &expunged, FlagOp::Add, &["\\Deleted"]).await?;
        expunge_until_done(&mut link, &expunged).await?;
        let moved: Vec<u32> = side.moved.clone().collect();
        transfer_until_done(&mut link, "Archive", &moved, true).await?;
        fetch_all(&mut link).await
    }
    .await;
    link.close_after(result).await
}

/// Both servers' listings must be the same: UIDVALIDITY, and each message's UID, flags and bytes.
fn compare(ctx: &Ctx, first: &BTreeMap<String, Listing>, second: &BTreeMap<String, Listing>) {
    for mailbox in MAILBOXES {
        let (Some(a), Some(b)) = (first.get(mailbox), second.get(mailbox)) else {
            continue;
        };
        if a.uidvalidity != b.uidvalidity {
            ctx.violation(format!(
                "{mailbox}: UIDVALIDITY {} on {IMAP_HOST}, {} on {IMAP2_HOST}",
                a.uidvalidity, b.uidvalidity
            ));
        }
        let view = |l: &Listing| -> Vec<(u32, Vec<String>, String)> {
            l.messages
                .iter()
                .map(|m| {
                    (
                        m.uid,
                        m.flags.iter().cloned().collect(),
                        hex::encode(&m.digest[..4]),
                    )
                })
                .collect()
        };
        let (va, vb) = (view(a), view(b));
        if va != vb {
            let first_difference = va
                .iter()
                .zip(&vb)
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("{x:?} vs {y:?}"))
                .unwrap_or_else(|| format!("{} vs {} messages", va.len(), vb.len()));
            ctx.violation(format!(
                "{mailbox}: {IMAP_HOST} and {IMAP2_HOST} disagree after the network healed (first difference: {first_difference})"
            ));
        }
    }
}
