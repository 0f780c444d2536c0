//! The idle workload: sessions fill their users' INBOXes, log in again, SELECT and go into IDLE;
//! then one new email per user arrives (by LMTP, or by APPEND when the driver has no LMTP
//! server), one user after the other, each waiting until every session of that user has seen its
//! EXISTS. Phases: preload, idle, notify, done.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use imap_proto::{MailboxDatum, Response, Status};
use tokio::sync::{mpsc, Semaphore};

use crate::dataset::Dataset;
use crate::driver::{Driver, Phases};
use crate::outcome::{ClientOutcome, WorkloadRun};
use crate::responses::parse_exists;
use crate::session::{append_emails, lmtp, login, prepare_mailbox};
use crate::users::parties;

/// The phases.
pub const PHASES: &[&str] = &["preload", "idle", "notify", "done"];
/// How long the deliverer waits for a session to see its new email.
const NOTIFY_WAIT: Duration = Duration::from_secs(30);
/// Index of the new email of user `i` among the dataset's: `NEW_EMAIL_INDEX + i`.
const NEW_EMAIL_INDEX: usize = 100_000;
/// Size of each new email.
const NEW_EMAIL_BYTES: u64 = 4096;
/// "preload", "idle" and "done" end this long after their last command: when the server has
/// closed the connections that were done (and its storage connections beyond its pool).
const SETTLE: Duration = Duration::from_secs(1);

/// The idle workload's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle {
    /// Sessions in IDLE; session `t` is user `t % users`.
    pub sessions: usize,
    /// What each user's INBOX holds before the new email.
    pub dataset: Dataset,
    /// Logins in flight at once (a client pool that backs off): unpaced, 10,000 logins are
    /// answered NO [UNAVAILABLE] and retried up to ~120 times on one connection.
    pub logins_in_flight: usize,
}

impl Idle {
    /// Runs it for `users` (each user's INBOX filled by the user's first session).
    pub async fn run<D: Driver>(self, driver: Rc<D>, users: Vec<(String, String)>) -> WorkloadRun {
        let (n, u) = (self.sessions, users.len().max(1));
        let phases = Phases::new(&driver, n + 1, PHASES);
        let sizes = Rc::new(traces::dataset::recorded_sizes());
        let (notified_tx, notified_rx) = mpsc::unbounded_channel::<usize>();
        let notified_rx = Rc::new(RefCell::new(Some(notified_rx)));
        let logins = Rc::new(Semaphore::new(self.logins_in_flight.max(1)));
        // Sessions that saw their new email's EXISTS.
        let notified = Rc::new(std::cell::Cell::new(0u64));
        let users = Rc::new(users);
        let dataset = self.dataset;
        let mut run = parties(&phases, n + 1, |t, mut cursor| {
            let (driver, users, sizes) = (driver.clone(), users.clone(), sizes.clone());
            let (notified_tx, notified_rx, logins) =
                (notified_tx.clone(), notified_rx.clone(), logins.clone());
            let notified = notified.clone();
            async move {
                let mut outcome = ClientOutcome::default();
                if t == n {
                    cursor.end_phase().await;
                    cursor.end_phase().await;
                    let mut rx = notified_rx.borrow_mut().take().expect("one deliverer");
                    deliver(&*driver, &users, n, &mut rx, &mut outcome).await;
                    return (outcome, cursor);
                }
                let (user, password) = &users[t % u];
                // The user's first session fills the INBOX (paced as the idle logins are).
                if t < u {
                    let permit = logins.acquire().await.expect("never closed");
                    let preloading = login(&*driver, user, password, &mut outcome).await;
                    drop(permit);
                    if let Some(mut client) = preloading {
                        let result = async {
                            prepare_mailbox(&*driver, &mut client, "INBOX").await?;
                            let keys = 0..dataset.len();
                            append_emails(&*driver, &mut client, dataset, &sizes, keys).await?;
                            client.command("LOGOUT").await?;
                            tokio::time::sleep(SETTLE).await;
                            Ok(())
                        }
                        .await;
                        outcome.end_session(client.into_stats(), result);
                    }
                }
                cursor.end_phase().await;
                let permit = logins.acquire().await.expect("never closed");
                let logged_in = login(&*driver, user, password, &mut outcome).await;
                drop(permit);
                if let Some(mut client) = logged_in {
                    let result = async {
                        client.command("SELECT INBOX").await?;
                        let (tag, _) = client.idle_start().await?;
                        tokio::time::sleep(SETTLE).await;
                        cursor.end_phase().await;
                        let response = client
                            .wait_untagged("EXISTS", |r| {
                                matches!(r, Response::MailboxData(MailboxDatum::Exists(_)))
                            })
                            .await?;
                        outcome.expect_eq(
                            "EXISTS after delivery",
                            parse_exists(&response),
                            Some(dataset.len() as u32 + 1),
                        );
                        notified.set(notified.get() + 1);
                        let _ = notified_tx.send(t);
                        cursor.end_phase().await;
                        client.idle_done(&tag).await?;
                        client.command("LOGOUT").await?;
                        tokio::time::sleep(SETTLE).await;
                        Ok(())
                    }
                    .await;
                    outcome.note_end(result);
                    outcome.absorb(client.into_stats());
                }
                (outcome, cursor)
            }
        })
        .await;
        run.figures = [
            ("idle_sessions".to_string(), n as u64),
            ("inbox_emails".to_string(), dataset.len() as u64),
            ("idle_sessions_notified".to_string(), notified.get()),
        ]
        .into();
        run
    }
}

/// The new email of user `i`.
fn new_email(seed: u64, i: usize) -> Vec<u8> {
    traces::dataset::email(seed, NEW_EMAIL_INDEX + i, NEW_EMAIL_BYTES).bytes
}

/// Delivers one new email per user, one user after the other, each once every session of the
/// previous user has seen its own (a lost notification fails the run at [`NOTIFY_WAIT`]).
async fn deliver<D: Driver>(
    driver: &D,
    users: &[(String, String)],
    sessions: usize,
    notified: &mut mpsc::UnboundedReceiver<usize>,
    outcome: &mut ClientOutcome,
) {
    let u = users.len().max(1);
    let seed = driver.dataset_seed();
    let result: Result<(), String> = async {
        let mut lmtp_client = match driver.dial_lmtp() {
            Some(_) => Some(lmtp(driver).await.map_err(|e| format!("LMTP: {e}"))?),
            None => None,
        };
        for (i, (user, password)) in users.iter().enumerate() {
            let email = new_email(seed, i);
            match lmtp_client.as_mut() {
                Some(l) => l
                    .deliver(&[user.as_str()], &email)
                    .await
                    .map_err(|e| format!("LMTP: {e}"))?,
                None => {
                    let mut appender = ClientOutcome::default();
                    let Some(mut client) = login(driver, user, password, &mut appender).await
                    else {
                        return Err(format!("APPEND of the new email: {:?}", appender.notes));
                    };
                    let appended = client
                        .command_with_literal("APPEND INBOX", &email, Status::Ok)
                        .await;
                    let _ = client.command("LOGOUT").await;
                    outcome.absorb(client.into_stats());
                    appended.map_err(|e| format!("APPEND of the new email: {e}"))?;
                }
            }
            let expected = (i..sessions).step_by(u).count();
            for _ in 0..expected {
                match tokio::time::timeout(NOTIFY_WAIT, notified.recv()).await {
                    Ok(Some(j)) if j % u == i => {}
                    Ok(_) => outcome.mismatch(format!("{user} was not the one notified")),
                    Err(_) => {
                        outcome.mismatch(format!("{user} was not notified within {NOTIFY_WAIT:?}"))
                    }
                }
            }
        }
        if let Some(l) = lmtp_client {
            l.quit().await.map_err(|e| format!("LMTP: {e}"))?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        outcome.stats.unexpected += 1;
        outcome.notes.push(e);
    }
}
