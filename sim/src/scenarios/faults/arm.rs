//! Host faults armed on a store request count, and the tasks that undo them.

use std::time::Duration;

use super::run::Ctx;
use crate::harness::{HostFault, Trigger};

/// A host fault armed on a store request count, and the task that undoes it (see [`arm`]).
pub struct Armed {
    undo: tokio::task::JoinHandle<()>,
}

/// Arms `fault` to fire once the store has routed `after` more requests of `op` (counted from
/// now); once it fired, a task waits `hold` and requests `undo` (a bounce after a crash, a repair
/// after a partition). Pass the result to [`disarm`] when the operation it targets has ended.
pub fn arm(
    ctx: &Ctx,
    op: fakes3::Op,
    after: u64,
    fault: HostFault,
    hold: Duration,
    undo: Option<HostFault>,
) -> Armed {
    let applied = ctx.controls.applied_count();
    ctx.controls.arm(Trigger {
        op,
        requests: ctx.requests(op) + after,
        fault,
    });
    let controls = ctx.controls.clone();
    let undo = tokio::task::spawn_local(async move {
        while controls.applied_count() == applied {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(undo) = undo {
            tokio::time::sleep(hold).await;
            controls.request(undo);
        }
    });
    Armed { undo }
}

/// Waits for the undo of an armed fault; a fault whose count was never reached is disarmed and
/// counted as `faults_not_reached` (the operation ended before it). Returns whether it fired.
pub async fn disarm(ctx: &Ctx, armed: Armed) -> bool {
    if ctx.controls.armed() {
        ctx.controls.disarm();
        armed.undo.abort();
        ctx.counts.add("faults_not_reached", 1);
        return false;
    }
    // The task only sleeps and requests; it cannot fail.
    let _ = armed.undo.await;
    // Let the undo be applied (it takes effect after the current step).
    tokio::time::sleep(Duration::from_millis(2)).await;
    true
}
