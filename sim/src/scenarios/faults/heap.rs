//! The server's idle heap, read once it has been left alone, before and after the faults.

use std::time::Duration;

use super::run::Ctx;
use super::setup::warm;
use crate::alloc;
use crate::harness::IMAP_HOST;
use workload::client::ClientError;

/// How long the server is left alone before its idle heap is read (sessions closing, pooled
/// connections settling).
pub const SETTLE: Duration = Duration::from_secs(3);

/// The server's live heap once it has been left alone for [`SETTLE`].
pub async fn idle_heap(account: u16) -> u64 {
    tokio::time::sleep(SETTLE).await;
    alloc::figures_of(account).live_bytes
}

/// Runs [`warm`] on `host` again once the faults are over, then reads [`idle_level`]: the level
/// to compare with the one measured before the faults (the pool full again, its buffers grown
/// the same way).
pub async fn idle_after(
    ctx: &Ctx,
    host: &str,
    account: u16,
    user_index: usize,
    mailboxes: &[&str],
) -> u64 {
    if let Err(e) = warm(host, ctx, user_index, mailboxes).await {
        ctx.violation(format!(
            "{host}: warming up again with faults off failed: {e}"
        ));
    }
    idle_level(ctx, host, account, "idle_after").await
}

/// The idle level of [`IMAP_HOST`] before the faults (figure `idle_before_bytes`), once `setup`
/// went through; a failed setup is a violation (`setup failed{when}: ...`) and gives `None`.
pub async fn idle_before(
    ctx: &Ctx,
    account: u16,
    setup: Result<(), ClientError>,
    when: &str,
) -> Option<u64> {
    if let Err(e) = setup {
        ctx.violation(format!("setup failed{when}: {e}"));
        return None;
    }
    Some(idle_level(ctx, IMAP_HOST, account, "idle_before").await)
}

/// [`idle_after`] (user 1 warms `host` up again), then [`check_heap`] against `before`.
pub async fn check_idle(ctx: &Ctx, host: &str, account: u16, before: u64, mailboxes: &[&str]) {
    let after = idle_after(ctx, host, account, 1, mailboxes).await;
    check_heap(ctx, host, before, after);
}

/// Checks `host`'s idle heap after the faults against `before` (see
/// [`Ledger::check_heap`](workload::ledger::Ledger::check_heap)), allowing for the sockets
/// turmoil keeps of the connection attempts the server abandoned in between.
pub fn check_heap(ctx: &Ctx, host: &str, before: u64, after: u64) {
    let abandoned = ctx
        .connects
        .get(host)
        .map_or(0, |c| c.abandoned())
        .saturating_sub(
            ctx.counts
                .get(&idle_key(host, "idle_before_abandoned_connects")),
        );
    ctx.ledger
        .borrow_mut()
        .check_heap(host, before, after, abandoned);
}

/// The figure name of `label` for server host `host` (`imap` keeps the bare label).
fn idle_key(host: &str, label: &str) -> String {
    if host == IMAP_HOST {
        label.to_string()
    } else {
        format!("{host}_{label}")
    }
}

/// [`idle_heap`] of server host `host`, also noting its open TCP connections as figure
/// `{label}_tcp_streams` (a leaked connection shows there too).
pub async fn idle_level(ctx: &Ctx, host: &str, account: u16, label: &str) -> u64 {
    let label = idle_key(host, label);
    let bytes = idle_heap(account).await;
    if let Some(counts) = ctx.connects.get(host) {
        ctx.counts
            .set(&format!("{label}_abandoned_connects"), counts.abandoned());
    }
    let streams = turmoil::established_tcp_stream_count_on(host) as u64;
    ctx.counts.set(&format!("{label}_tcp_streams"), streams);
    ctx.counts.set(
        &format!("{label}_store_tcp_streams"),
        turmoil::established_tcp_stream_count_on(crate::harness::FAKES3_HOST) as u64,
    );
    ctx.counts.set(&format!("{label}_bytes"), bytes);
    bytes
}
