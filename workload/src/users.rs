//! Many-user workloads: every user APPENDs a dataset (one user after the other, or all at
//! once), the dataset delivered by LMTP to every user, and concurrent logins. Each user's
//! session is a local task; phases end when every task (and every deliverer) reaches them.

use std::future::Future;
use std::rc::Rc;

use imap_proto::Status;
use tokio::sync::Semaphore;

use crate::client::ClientError;
use crate::dataset::Dataset;
use crate::driver::{Driver, Phases};
use crate::outcome::{ClientOutcome, Outcomes, WorkloadRun};
use crate::responses::exists;
use crate::session::{lmtp, login, prepare_mailbox};

/// Runs `task(i)` for `i` in `0..tasks` as local tasks and waits for them all; each leaves its
/// outcome under its index.
pub async fn parties<F, Fut>(tasks: usize, task: F) -> Outcomes
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ClientOutcome> + 'static,
{
    let outcomes = Outcomes::default();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let (future, outcomes) = (task(i), outcomes.clone());
        set.spawn_local(async move {
            let outcome = future.await;
            outcomes.borrow_mut().insert(i, outcome);
        });
    }
    while set.join_next().await.is_some() {}
    outcomes
}

/// Every user APPENDs `dataset` to INBOX: `parallel`, all at once; otherwise user i once user
/// i - 1 is done. Phases: login, append, logout.
pub async fn append<D: Driver>(
    driver: Rc<D>,
    users: Vec<(String, String)>,
    dataset: Dataset,
    parallel: bool,
) -> WorkloadRun {
    const PHASES: &[&str] = &["login", "append", "logout"];
    let n = users.len();
    let phases = Phases::new(&driver, n, PHASES);
    let sizes = Rc::new(traces::dataset::recorded_sizes());
    // Sequential: user i appends once user i-1 is done (turns[i] gets its permit then).
    let turns: Rc<Vec<Semaphore>> = Rc::new(
        (0..=n)
            .map(|i| Semaphore::new(usize::from(i == 0 || parallel)))
            .collect(),
    );
    let users = Rc::new(users);
    let outcomes = parties(n, |i| {
        let (driver, users, sizes, turns) =
            (driver.clone(), users.clone(), sizes.clone(), turns.clone());
        let mut cursor = phases.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            let (user, password) = &users[i];
            if let Some(mut client) = login(&*driver, user, password, &mut outcome).await {
                let result = async {
                    prepare_mailbox(&*driver, &mut client, "INBOX").await?;
                    client.command("SELECT INBOX").await?;
                    cursor.end_phase().await;
                    let permit = turns[i].acquire().await.expect("never closed");
                    permit.forget();
                    let seed = driver.dataset_seed();
                    for k in 0..dataset.len() {
                        let email = dataset.email(seed, &sizes, k);
                        client
                            .command_with_literal("APPEND INBOX", &email, Status::Ok)
                            .await?;
                    }
                    turns[i + 1].add_permits(1);
                    cursor.end_phase().await;
                    let select = client.command("SELECT INBOX").await?;
                    outcome.expect_eq(
                        "INBOX EXISTS after APPEND",
                        exists(&select),
                        Some(dataset.len() as u32),
                    );
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                outcome.note_end(result);
                outcome.stats = client.into_stats();
            }
            cursor.end_all().await;
            outcome
        }
    })
    .await;
    WorkloadRun {
        outcomes: outcomes.take(),
        figures: [("users".to_string(), n as u64)].into(),
    }
}

/// `dataset` delivered by LMTP to every user (one LMTP session per user, all at once), then
/// imported by each user's next SELECT. Phases: login, deliver, import, logout.
pub async fn deliver<D: Driver>(
    driver: Rc<D>,
    users: Vec<(String, String)>,
    dataset: Dataset,
) -> WorkloadRun {
    const PHASES: &[&str] = &["login", "deliver", "import", "logout"];
    let n = users.len();
    // Each user's session and its deliverer.
    let phases = Phases::new(&driver, 2 * n, PHASES);
    let sizes = Rc::new(traces::dataset::recorded_sizes());
    let users = Rc::new(users);
    let outcomes = parties(2 * n, |t| {
        let (driver, users, sizes) = (driver.clone(), users.clone(), sizes.clone());
        let mut cursor = phases.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            let (user, password) = &users[t % n];
            if t >= n {
                // The deliverer of user t - n.
                cursor.end_phase().await;
                let result = async {
                    let mut lmtp = lmtp(&*driver).await?;
                    let seed = driver.dataset_seed();
                    for k in 0..dataset.len() {
                        let email = dataset.email(seed, &sizes, k);
                        lmtp.deliver(&[user.as_str()], &email).await?;
                    }
                    lmtp.quit().await
                }
                .await;
                if let Err(e) = result {
                    outcome.stats.unexpected += 1;
                    outcome.notes.push(format!("LMTP delivery to {user}: {e}"));
                }
                cursor.end_all().await;
                return outcome;
            }
            if let Some(mut client) = login(&*driver, user, password, &mut outcome).await {
                let result = async {
                    prepare_mailbox(&*driver, &mut client, "INBOX").await?;
                    client.command("SELECT INBOX").await?;
                    cursor.end_phase().await;
                    cursor.end_phase().await;
                    let select = client.command("SELECT INBOX").await?;
                    outcome.expect_eq(
                        "INBOX EXISTS after delivery",
                        exists(&select),
                        Some(dataset.len() as u32),
                    );
                    cursor.end_phase().await;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                outcome.note_end(result);
                outcome.stats = client.into_stats();
            }
            cursor.end_all().await;
            outcome
        }
    })
    .await;
    WorkloadRun {
        outcomes: outcomes.take(),
        figures: Default::default(),
    }
}

/// Every user logs in and out once (the first login sets up their keys), then all log in at
/// once and SELECT INBOX. Phases: first_login, login, logout.
pub async fn logins<D: Driver>(driver: Rc<D>, users: Vec<(String, String)>) -> WorkloadRun {
    const PHASES: &[&str] = &["first_login", "login", "logout"];
    let n = users.len();
    let phases = Phases::new(&driver, n, PHASES);
    let users = Rc::new(users);
    let outcomes = parties(n, |i| {
        let (driver, users) = (driver.clone(), users.clone());
        let mut cursor = phases.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            let (user, password) = &users[i];
            if let Some(mut client) = login(&*driver, user, password, &mut outcome).await {
                outcome.note_end(client.command("LOGOUT").await.map(drop));
                outcome.stats = client.into_stats();
            }
            cursor.end_phase().await;
            if let Some(mut client) = login(&*driver, user, password, &mut outcome).await {
                let result: Result<(), ClientError> = async {
                    client.command("SELECT INBOX").await?;
                    cursor.end_phase().await;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                outcome.note_end(result);
                outcome.absorb(client.into_stats());
            }
            cursor.end_all().await;
            outcome
        }
    })
    .await;
    WorkloadRun {
        outcomes: outcomes.take(),
        figures: Default::default(),
    }
}
