//! `append_fetch`: every user APPENDs the same generated emails (the first recorded sizes), then
//! FETCHes them back and compares every byte; with CAPABILITY, LOGIN, CREATE, SELECT, FETCH (UID
//! FLAGS RFC822.SIZE), NOOP and LOGOUT around it. Phases: login, append, fetch, logout.

use std::rc::Rc;

use imap_proto::Status;

use crate::client::ClientError;
use crate::driver::{Driver, PhaseCursor, Phases};
use crate::outcome::{ClientOutcome, WorkloadRun};
use crate::responses::fetched;
use crate::session::{astring, connect, prepare_mailbox, quote, select_inbox_holding, Client};
use crate::users::parties;

/// The phases.
pub const PHASES: &[&str] = &["login", "append", "fetch", "logout"];

/// Runs it: each of `users` APPENDs `emails` emails.
pub async fn run<D: Driver>(
    driver: Rc<D>,
    users: Vec<(String, String)>,
    emails: usize,
) -> WorkloadRun {
    let sizes: Vec<u64> = traces::dataset::recorded_sizes()
        .into_iter()
        .take(emails)
        .collect();
    let bodies: Rc<Vec<Vec<u8>>> = Rc::new(
        traces::dataset::generate(driver.dataset_seed(), &sizes)
            .into_iter()
            .map(|e| e.bytes)
            .collect(),
    );
    let phases = Phases::new(&driver, users.len(), PHASES);
    let users = Rc::new(users);
    parties(&phases, users.len(), |i, mut cursor| {
        let (driver, users, bodies) = (driver.clone(), users.clone(), bodies.clone());
        async move {
            let mut outcome = ClientOutcome::default();
            if let Some(mut client) = connect(&*driver, &mut outcome).await {
                let (user, password) = &users[i];
                let result = steps(
                    &*driver,
                    &mut client,
                    user,
                    password,
                    &bodies,
                    &mut cursor,
                    &mut outcome,
                )
                .await;
                outcome.end_session(client.into_stats(), result);
            }
            (outcome, cursor)
        }
    })
    .await
}

async fn steps<D: Driver>(
    driver: &D,
    client: &mut Client<D>,
    user: &str,
    password: &str,
    emails: &[Vec<u8>],
    phases: &mut PhaseCursor,
    outcome: &mut ClientOutcome,
) -> Result<(), ClientError> {
    client.command("CAPABILITY").await?;
    client
        .command(&format!("LOGIN {} {}", astring(user), quote(password)))
        .await?;
    if driver.store_is_fresh() {
        client.command("CREATE Projects").await?;
    } else {
        // A real server's user may have it from an earlier run.
        client.command_ok_or_no("CREATE Projects").await?;
        prepare_mailbox(driver, client, "INBOX").await?;
    }
    phases.end_phase().await;
    for email in emails {
        client
            .command_with_literal("APPEND INBOX", email, Status::Ok)
            .await?;
    }
    phases.end_phase().await;
    select_inbox_holding(client, outcome, "SELECT INBOX EXISTS", emails.len()).await?;

    let sizes = fetched(&client.command("FETCH 1:* (UID FLAGS RFC822.SIZE)").await?);
    for message in &sizes {
        let expected = emails
            .get((message.seq as usize).wrapping_sub(1))
            .map(Vec::len);
        let size = message.size.map(|s| s as usize);
        if size.is_none() || size != expected {
            let seq = message.seq;
            outcome.mismatch(format!(
                "FETCH {seq} RFC822.SIZE {size:?}, expected {expected:?}"
            ));
        }
    }
    outcome.expect_eq(
        "FETCH (UID FLAGS RFC822.SIZE) messages",
        sizes.len(),
        emails.len(),
    );

    let bodies = fetched(&client.command("FETCH 1:* BODY[]").await?);
    for message in &bodies {
        let expected = emails.get((message.seq as usize).wrapping_sub(1));
        if message.body.as_deref() != expected.map(Vec::as_slice) {
            outcome.mismatch(format!(
                "FETCH {} BODY[]: {} bytes differ from the {} appended",
                message.seq,
                message.body.as_ref().map_or(0, Vec::len),
                expected.map_or(0, Vec::len)
            ));
        }
    }
    outcome.expect_eq("FETCH BODY[] messages", bodies.len(), emails.len());

    phases.end_phase().await;
    client.command("NOOP").await?;
    client.command("LOGOUT").await?;
    phases.end_phase().await;
    Ok(())
}
