//! Many-user workloads: every user APPENDs a dataset (one user after the other, or all at
//! once), the dataset delivered by LMTP to every user, and concurrent logins. Each user's
//! session is a local task; phases end when every task (and every deliverer) reaches them.

use std::future::Future;
use std::rc::Rc;

use tokio::sync::Semaphore;

use crate::client::ClientError;
use crate::dataset::Dataset;
use crate::driver::{Driver, PhaseCursor, Phases};
use crate::outcome::{ClientOutcome, Outcomes, WorkloadRun};
use crate::session::{append_emails, lmtp, login, prepare_mailbox, select_inbox_holding};

/// Runs `task(i, cursor)` for `i` in `0..tasks` as local tasks, each with its way through
/// `phases`, and waits for them all. A task hands its cursor back with its outcome: the cursor
/// passes the boundaries the task did not reach (a party that stopped early must not block the
/// others), then the outcome is kept under the task's index.
pub async fn parties<F, Fut>(phases: &Phases, tasks: usize, task: F) -> WorkloadRun
where
    F: Fn(usize, PhaseCursor) -> Fut,
    Fut: Future<Output = (ClientOutcome, PhaseCursor)> + 'static,
{
    let outcomes = Outcomes::default();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let (future, outcomes) = (task(i, phases.cursor()), outcomes.clone());
        set.spawn_local(async move {
            let (outcome, mut cursor) = future.await;
            cursor.end_all().await;
            outcomes.borrow_mut().insert(i, outcome);
        });
    }
    while set.join_next().await.is_some() {}
    WorkloadRun {
        outcomes: outcomes.take(),
        figures: Default::default(),
    }
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
    let mut run = parties(&phases, n, |i, mut cursor| {
        let (driver, users, sizes, turns) =
            (driver.clone(), users.clone(), sizes.clone(), turns.clone());
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
                    append_emails(&*driver, &mut client, dataset, &sizes, 0..dataset.len()).await?;
                    turns[i + 1].add_permits(1);
                    cursor.end_phase().await;
                    let what = "INBOX EXISTS after APPEND";
                    select_inbox_holding(&mut client, &mut outcome, what, dataset.len()).await?;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                outcome.end_session(client.into_stats(), result);
            }
            (outcome, cursor)
        }
    })
    .await;
    run.figures = [("users".to_string(), n as u64)].into();
    run
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
    parties(&phases, 2 * n, |t, mut cursor| {
        let (driver, users, sizes) = (driver.clone(), users.clone(), sizes.clone());
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
                return (outcome, cursor);
            }
            if let Some(mut client) = login(&*driver, user, password, &mut outcome).await {
                let result = async {
                    prepare_mailbox(&*driver, &mut client, "INBOX").await?;
                    client.command("SELECT INBOX").await?;
                    cursor.end_phase().await;
                    cursor.end_phase().await;
                    let what = "INBOX EXISTS after delivery";
                    select_inbox_holding(&mut client, &mut outcome, what, dataset.len()).await?;
                    cursor.end_phase().await;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                outcome.end_session(client.into_stats(), result);
            }
            (outcome, cursor)
        }
    })
    .await
}

/// Every user logs in and out once (the first login sets up their keys), then all log in at
/// once and SELECT INBOX. Phases: first_login, login, logout.
pub async fn logins<D: Driver>(driver: Rc<D>, users: Vec<(String, String)>) -> WorkloadRun {
    const PHASES: &[&str] = &["first_login", "login", "logout"];
    let n = users.len();
    let phases = Phases::new(&driver, n, PHASES);
    let users = Rc::new(users);
    parties(&phases, n, |i, mut cursor| {
        let (driver, users) = (driver.clone(), users.clone());
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
            (outcome, cursor)
        }
    })
    .await
}
