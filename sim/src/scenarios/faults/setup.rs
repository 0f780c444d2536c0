//! Sessions that bring a scenario's user to where its faults start, or check it once they are
//! over: provisioning, preloading, warming the server up, and the final check against the ledger.

use std::collections::BTreeMap;

use super::connect::login;
use super::link::{append_until_done, Link};
use super::run::Ctx;
use crate::harness::IMAP_HOST;
use workload::client::ClientError;
use workload::ledger::{Ledger, Listing};

/// Logs in on `host`, SELECTs and lists each of `mailboxes` with a fresh session, and checks
/// each against the ledger; returns the listings. Faults must be off.
pub async fn verify(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> BTreeMap<String, Listing> {
    let mut listings = BTreeMap::new();
    let mut session = match login(host, ctx, user_index).await {
        Ok(session) => session,
        Err(e) => {
            ctx.violation(format!(
                "{host}: the final check could not log in with faults off: {e}"
            ));
            return listings;
        }
    };
    for mailbox in mailboxes {
        match Ledger::verify(
            &ctx.ledger,
            session.client(),
            mailbox,
            &format!("final check on {host}"),
        )
        .await
        {
            Ok(listing) => {
                listings.insert(mailbox.to_string(), listing);
            }
            Err(e) => {
                ctx.violation(format!(
                    "{host}: the final check of {mailbox} broke with faults off: {e}"
                ));
                session.end();
                return listings;
            }
        }
    }
    if let Err(e) = session.logout().await {
        ctx.violation(format!("{host}: LOGOUT of the final check failed: {e}"));
    }
    listings
}

/// [`verify`] of user 1 on `host`, then the ledger's check that every MOVE left its messages in
/// exactly one place.
pub async fn verify_moves(host: &str, ctx: &Ctx, mailboxes: &[&str]) {
    let listings = verify(host, ctx, 1, mailboxes).await;
    ctx.ledger.borrow_mut().check_moves(&listings);
}

/// The first login of user `i` on `host`: it provisions the user's keys (concurrent first logins
/// of one user are a known problem, so it runs alone).
pub async fn provision(host: &str, ctx: &Ctx, i: usize) -> Result<(), ClientError> {
    login(host, ctx, i).await?.logout().await
}

/// Waits for every client task of `set`; the last error, if any.
async fn join_clients(
    mut set: tokio::task::JoinSet<Result<(), ClientError>>,
) -> Result<(), ClientError> {
    let mut result = Ok(());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(ClientError::Io(std::io::Error::other(e.to_string()))),
        }
    }
    result
}

/// The setup of a one-user scenario, faults off: user 1 provisioned on [`IMAP_HOST`], `count`
/// emails APPENDed to INBOX (sizes by `bytes`, from `sessions` sessions at once), then warmed.
pub async fn setup_inbox(
    ctx: &Ctx,
    count: usize,
    bytes: fn(usize) -> u64,
    sessions: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    provision(IMAP_HOST, ctx, 1).await?;
    preload(ctx, IMAP_HOST, 1, "INBOX", (0, count), bytes, sessions).await?;
    warm(IMAP_HOST, ctx, 1, mailboxes).await
}

/// APPENDs emails `first..first + count` (sizes by `bytes`) to `mailbox` from `sessions`
/// sessions at once, every APPEND in the ledger with its APPENDUID.
pub async fn preload(
    ctx: &Ctx,
    host: &str,
    i: usize,
    mailbox: &str,
    (first, count): (usize, usize),
    bytes: fn(usize) -> u64,
    sessions: usize,
) -> Result<(), ClientError> {
    let mut set = tokio::task::JoinSet::new();
    for p in 0..sessions.max(1) {
        let (ctx, host, mailbox) = (ctx.clone(), host.to_string(), mailbox.to_string());
        set.spawn_local(async move {
            let mut link = Link::open(&ctx, &host, i).await?;
            for k in (first + p..first + count).step_by(sessions.max(1)) {
                let email = ctx.email(k, bytes(k));
                append_until_done(
                    &mut link,
                    &mailbox,
                    &[],
                    &email,
                    &format!("preload APPEND #{k}"),
                )
                .await?;
            }
            link.logout().await
        });
    }
    join_clients(set).await
}

/// Parallel sessions of [`warm`]: as many as the storage client keeps idle connections per
/// endpoint (the default, 4), so that the pool is full when the idle heap is first measured.
pub const WARM_SESSIONS: usize = 4;

/// Rounds of [`warm`]: pooled connections keep what the largest bursts they carried made them
/// grow (turmoil socket queues), so the first rounds still raise the idle level; from the third
/// on it no longer moves (measured: the same level, to the byte, whatever ran before).
pub const WARM_ROUNDS: usize = 3;

/// The mailbox [`warm`] APPENDs to (never checked).
pub const WARM_MAILBOX: &str = "Warmup";

/// Size of the email each [`warm`] session APPENDs: two full body chunks and a bit.
const WARM_EMAIL_BYTES: u64 = 140_000;

/// Brings the server to its steady idle level before the idle heap is measured: [`WARM_ROUNDS`]
/// times, [`WARM_SESSIONS`] sessions at once each APPEND a three-chunk email to [`WARM_MAILBOX`]
/// and read every message of it and of `mailboxes`, checking nothing. The storage client's pool
/// is then full and each pooled connection holds what it keeps after large requests and answers,
/// so that the level measured next is the one the same warm-up returns to after the faults.
pub async fn warm(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    let mut session = login(host, ctx, user_index).await?;
    let listed = session.retry(&format!("LIST \"\" {WARM_MAILBOX}")).await?;
    let exists = listed.parsed().any(|r| {
        matches!(
            r,
            imap_proto::Response::MailboxData(imap_proto::MailboxDatum::List(_))
        )
    });
    if !exists {
        session.retry(&format!("CREATE {WARM_MAILBOX}")).await?;
    }
    session.logout().await?;
    for _ in 0..WARM_ROUNDS {
        warm_round(host, ctx, user_index, mailboxes).await?;
    }
    Ok(())
}

async fn warm_round(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    let round = ctx.counts.get("warm_rounds") as usize;
    ctx.counts.add("warm_rounds", 1);
    let mut set = tokio::task::JoinSet::new();
    for n in 0..WARM_SESSIONS {
        let (host, ctx) = (host.to_string(), ctx.clone());
        let mailboxes: Vec<String> = mailboxes.iter().map(|m| m.to_string()).collect();
        let k = round * WARM_SESSIONS + n;
        let email =
            traces::dataset::email(ctx.dataset_seed ^ 0x5741_524d, k, WARM_EMAIL_BYTES).bytes;
        set.spawn_local(async move {
            let mut session = login(&host, &ctx, user_index).await?;
            session
                .retry_literal(&format!("APPEND {WARM_MAILBOX}"), &email)
                .await?;
            for mailbox in std::iter::once(&WARM_MAILBOX.to_string()).chain(&mailboxes) {
                let reply = session
                    .retry(&format!("SELECT \"{mailbox}\" (CONDSTORE)"))
                    .await?;
                if workload::responses::exists(&reply).unwrap_or(0) > 0 {
                    session
                        .retry("UID FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[])")
                        .await?;
                }
            }
            session.logout().await
        });
    }
    join_clients(set).await
}
