//! `fault_lost_response`: the store applies a share of requests of every kind and then answers
//! 500, as if the response had been lost on the way back. One user APPENDs 30 emails (every
//! third one three body chunks long), gets 8 more by LMTP, reads everything back, flags 20 and
//! COPYs 10 to Archive, retrying every NO as a client would. At the end no message may be there
//! twice, no UID may be missing (nothing was ever expunged), every acknowledged message must be
//! there with its bytes and flags, and the server's idle heap must be back where it was.

use std::time::Duration;

use super::delivery::deliver_until_done;
use super::heap::{check_idle, idle_before};
use super::link::{append_until_done, fetch_all, store_until_done, transfer_until_done, Link};
use super::run::{Ctx, FaultRun};
use super::setup::{provision, verify_moves, warm};
use crate::figures::{Report, ScenarioError};
use crate::harness::IMAP_HOST;
use workload::client::ClientError;
use workload::ledger::{Ack, FlagOp};

/// Scenario name.
pub const NAME: &str = "fault_lost_response";
/// Emails APPENDed.
pub const EMAILS: usize = 30;
/// Emails delivered by LMTP.
pub const DELIVERIES: usize = 8;
/// The mailboxes checked.
const MAILBOXES: [&str; 2] = ["INBOX", "Archive"];
/// Flags of the k-th APPEND, in turn.
const FLAGS: [&[&str]; 3] = [&[], &["\\Seen"], &["$Label1"]];

/// The store's faults while the clients work: 15% of requests lost after being applied, up to
/// 10 ms added to each.
pub fn faults() -> fakes3::Faults {
    fakes3::Faults {
        lost_response_probability: 0.15,
        latency_ms_min: 0,
        latency_ms_max: 10,
        ..fakes3::Faults::default()
    }
}

/// Size of the k-th email: every third one spans three 64 KiB body chunks.
fn size(k: usize) -> u64 {
    if k % 3 == 0 {
        150_000
    } else {
        2_000 + 1_000 * k as u64
    }
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let mut run = FaultRun::new(NAME, seed, 1)?;
    run.driver(|ctx, imap| async move {
        let setup = async {
            provision(IMAP_HOST, &ctx, 1).await?;
            warm(IMAP_HOST, &ctx, 1, &MAILBOXES).await
        };
        let Some(before) = idle_before(&ctx, imap, setup.await, " with faults off").await else {
            return Ok(());
        };
        ctx.set_faults(faults());
        let result = steps(&ctx).await;
        ctx.set_faults(fakes3::Faults::default());
        if let Err(e) = result {
            ctx.violation(format!(
                "the IMAP session broke while storage responses were lost: {e}"
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        verify_moves(IMAP_HOST, &ctx, &MAILBOXES).await;
        check_idle(&ctx, IMAP_HOST, imap, before, &MAILBOXES).await;
        Ok(())
    });
    run.finish(&[])
}

async fn steps(ctx: &Ctx) -> Result<(), ClientError> {
    let mut link = Link::open(ctx, IMAP_HOST, 1).await?;
    match session(&mut link, ctx).await {
        Ok(()) => link.logout().await,
        Err(e) => {
            link.end();
            Err(e)
        }
    }
}

async fn session(link: &mut Link, ctx: &Ctx) -> Result<(), ClientError> {
    link.select("INBOX").await?;
    for k in 0..EMAILS {
        let email = ctx.email(k, size(k));
        let what = format!("APPEND #{k}");
        append_until_done(link, "INBOX", FLAGS[k % 3], &email, &what).await?;
    }
    for j in 0..DELIVERIES {
        let email = ctx.email(EMAILS + j, 3_000 + 500 * j as u64);
        deliver_until_done(ctx, IMAP_HOST, 1, &email, &format!("LMTP delivery #{j}")).await;
    }
    // A new SELECT imports the deliveries; reading everything back learns every UID.
    link.select("INBOX").await?;
    fetch_all(link).await?;
    let flagged: Vec<u32> = (1..=20).collect();
    store_until_done(link, &flagged, FlagOp::Add, &["\\Flagged"]).await?;
    let copied: Vec<u32> = (1..=10).collect();
    if transfer_until_done(link, "Archive", &copied, false).await? != Ack::Ok {
        link.note("COPY to Archive never succeeded".into());
    }
    fetch_all(link).await?;
    link.select("Archive").await?;
    fetch_all(link).await
}
