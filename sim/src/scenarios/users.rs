//! The many-user RAM-study scenarios: `append_seq`, `append_par`, `lmtp`, `login` and
//! `idle_N`. Every user's session is a task of one client host; phases end when every task
//! (and the LMTP deliverer, where there is one) reaches the boundary.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use imap_proto::{MailboxDatum, Response, Status};
use tokio::sync::{mpsc, Semaphore};

use super::common::{add_sampler, config, exists, expect_eq, login, users, Dataset, LmtpClient};
use crate::client::ClientError;
use crate::harness::Harness;
use crate::report::{KIB, MIB};
use crate::scenario::{ClientOutcome, Outcomes, PhaseMarks, Report, ScenarioError};

/// Users of the append, lmtp and login scenarios.
pub const USERS: usize = 16;

/// Runs `tasks` futures as local tasks of one client host and waits for them all.
fn client_host<F, Fut>(harness: &mut Harness, tasks: usize, task: F)
where
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    harness.client("clients", async move {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..tasks {
            set.spawn_local(task(i));
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| format!("a client task failed: {e}"))?;
        }
        Ok(())
    });
}

/// Builds the report: figures of the run, the measured steps, the sampler's series, and the
/// per-session base cost from the phase `sessions_phase` in which `sessions` sessions opened.
fn finish(
    name: &str,
    seed: u64,
    harness: &mut Harness,
    marks: &PhaseMarks,
    outcomes: &Outcomes,
    samples: &super::common::Samples,
    measured: &[&str],
    target_bytes: u64,
    sessions_phase: &str,
    sessions: usize,
) -> Result<Report, ScenarioError> {
    let run = harness.run()?;
    let mut report = Report::build(name, seed, &run, outcomes, marks.phases());
    report.measure_steps(measured, target_bytes);
    if let Some(phase) = report.phase(sessions_phase) {
        report.session_base_bytes = phase
            .server_live_end_bytes
            .saturating_sub(phase.server_live_start_bytes)
            / sessions.max(1) as u64;
    }
    report.samples = std::mem::take(&mut *samples.borrow_mut());
    Ok(report)
}

/// Notes a session error in the outcome.
fn note(outcome: &mut ClientOutcome, result: Result<(), ClientError>) {
    if let Err(e) = result {
        outcome.notes.push(format!("session ended early: {e}"));
    }
}

fn append_run(name: &'static str, parallel: bool, seed: u64) -> Result<Report, ScenarioError> {
    const PHASES: &[&str] = &["login", "append", "logout"];
    let list = users(USERS);
    let mut harness = Harness::new(config(seed, list.clone()))?;
    let samples = add_sampler(&mut harness);
    let marks = PhaseMarks::new(&harness.accounts().imap, USERS, PHASES);
    let outcomes = Outcomes::default();
    let dataset_seed = harness.seeds().dataset;
    let sizes = Rc::new(traces::dataset::recorded_sizes());
    // Sequential: user i appends once user i-1 is done (turns[i] gets its permit then).
    let turns: Rc<Vec<Semaphore>> = Rc::new(
        (0..=USERS)
            .map(|i| Semaphore::new(usize::from(i == 0 || parallel)))
            .collect(),
    );
    let (m, o) = (marks.clone(), outcomes.clone());
    client_host(&mut harness, USERS, move |i| {
        let (user, password) = list[i].clone();
        let (sizes, turns, outcomes) = (sizes.clone(), turns.clone(), o.clone());
        let mut phases = m.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            if let Some(mut client) = login(&user, &password, &mut outcome).await {
                let result = async {
                    client.command("SELECT INBOX").await?;
                    phases.end_phase().await;
                    let permit = turns[i].acquire().await.expect("never closed");
                    permit.forget();
                    for (k, size) in sizes.iter().enumerate() {
                        let email = traces::dataset::email(dataset_seed, k, *size).bytes;
                        client
                            .command_with_literal("APPEND INBOX", &email, Status::Ok)
                            .await?;
                    }
                    turns[i + 1].add_permits(1);
                    phases.end_phase().await;
                    let select = client.command("SELECT INBOX").await?;
                    expect_eq(
                        &mut outcome,
                        "INBOX EXISTS after APPEND",
                        exists(&select),
                        Some(sizes.len() as u32),
                    );
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                note(&mut outcome, result);
                let stats = client.into_stats();
                outcome.stats = stats;
            }
            phases.end_all().await;
            outcomes.borrow_mut().insert(i, outcome);
        }
    });
    let mut report = finish(
        name,
        seed,
        &mut harness,
        &marks,
        &outcomes,
        &samples,
        &["append"],
        if parallel { 16 * MIB } else { 4 * MIB },
        "login",
        USERS,
    )?;
    report.figures.insert("users".into(), USERS as u64);
    drop(harness);
    Ok(report)
}

/// 16 users each APPEND the 100 emails, one user after the other.
pub fn run_append_seq(seed: u64) -> Result<Report, ScenarioError> {
    append_run("append_seq", false, seed)
}

/// 16 users each APPEND the 100 emails, all at once.
pub fn run_append_par(seed: u64) -> Result<Report, ScenarioError> {
    append_run("append_par", true, seed)
}

/// The 100 emails delivered by LMTP to 16 users (16 LMTP sessions at once, one per user), then
/// imported by each user's next SELECT.
pub fn run_lmtp(seed: u64) -> Result<Report, ScenarioError> {
    const PHASES: &[&str] = &["login", "deliver", "import", "logout"];
    let list = users(USERS);
    let mut harness = Harness::new(config(seed, list.clone()))?;
    let samples = add_sampler(&mut harness);
    // Each user's session and its deliverer: 2 x USERS tasks.
    let marks = PhaseMarks::new(&harness.accounts().imap, 2 * USERS, PHASES);
    let outcomes = Outcomes::default();
    let dataset_seed = harness.seeds().dataset;
    let sizes = Rc::new(traces::dataset::recorded_sizes());
    let (m, o) = (marks.clone(), outcomes.clone());
    client_host(&mut harness, 2 * USERS, move |t| {
        let (user, password) = list[t % USERS].clone();
        let (sizes, outcomes) = (sizes.clone(), o.clone());
        let mut phases = m.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            if t >= USERS {
                // The deliverer of user t - USERS.
                phases.end_phase().await;
                let result = async {
                    let mut lmtp = LmtpClient::connect().await?;
                    for (k, size) in sizes.iter().enumerate() {
                        let email = traces::dataset::email(dataset_seed, k, *size).bytes;
                        lmtp.deliver(&[user.as_str()], &email).await?;
                    }
                    lmtp.quit().await
                }
                .await;
                if let Err(e) = result {
                    outcome.stats.unexpected += 1;
                    outcome.notes.push(format!("LMTP delivery to {user}: {e}"));
                }
                phases.end_all().await;
                outcomes.borrow_mut().insert(t, outcome);
                return;
            }
            if let Some(mut client) = login(&user, &password, &mut outcome).await {
                let result = async {
                    client.command("SELECT INBOX").await?;
                    phases.end_phase().await;
                    phases.end_phase().await;
                    let select = client.command("SELECT INBOX").await?;
                    expect_eq(
                        &mut outcome,
                        "INBOX EXISTS after delivery",
                        exists(&select),
                        Some(sizes.len() as u32),
                    );
                    phases.end_phase().await;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                note(&mut outcome, result);
                outcome.stats = client.into_stats();
            }
            phases.end_all().await;
            outcomes.borrow_mut().insert(t, outcome);
        }
    });
    let mut report = finish(
        "lmtp",
        seed,
        &mut harness,
        &marks,
        &outcomes,
        &samples,
        &["deliver"],
        16 * MIB,
        "login",
        USERS,
    )?;
    if let Some(import) = report.phase("import") {
        let bytes = import.above_baseline_bytes();
        report
            .figures
            .insert("import_above_baseline_bytes".into(), bytes);
    }
    drop(harness);
    Ok(report)
}

/// The login target: key derivations at once x argon2 memory + 1 MiB.
pub fn login_target_bytes() -> u64 {
    let limits = server::config::Limits::default();
    let kdf = server::config::KdfParams::default();
    limits.kdf_concurrency as u64 * u64::from(kdf.memory_kib) * KIB + MIB
}

/// 16 concurrent logins with production argon2id parameters (after a first login each, which
/// sets up the users' keys). The figure is the login step's absolute peak.
pub fn run_login(seed: u64) -> Result<Report, ScenarioError> {
    const PHASES: &[&str] = &["first_login", "login", "logout"];
    let list = users(USERS);
    let mut harness = Harness::new(crate::harness::SimConfig {
        kdf: server::config::KdfParams::default(),
        ..config(seed, list.clone())
    })?;
    let samples = add_sampler(&mut harness);
    let marks = PhaseMarks::new(&harness.accounts().imap, USERS, PHASES);
    let outcomes = Outcomes::default();
    let (m, o) = (marks.clone(), outcomes.clone());
    client_host(&mut harness, USERS, move |i| {
        let (user, password) = list[i].clone();
        let outcomes = o.clone();
        let mut phases = m.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            if let Some(mut client) = login(&user, &password, &mut outcome).await {
                note(&mut outcome, client.command("LOGOUT").await.map(drop));
                outcome.stats = client.into_stats();
            }
            phases.end_phase().await;
            if let Some(mut client) = login(&user, &password, &mut outcome).await {
                let result = async {
                    client.command("SELECT INBOX").await?;
                    phases.end_phase().await;
                    client.command("LOGOUT").await?;
                    Ok(())
                }
                .await;
                note(&mut outcome, result);
                let stats = client.into_stats();
                outcome.stats.commands += stats.commands;
                outcome.stats.unexpected += stats.unexpected;
                outcome.stats.unparsable += stats.unparsable;
                outcome.stats.failures.extend(stats.failures);
            }
            phases.end_all().await;
            outcomes.borrow_mut().insert(i, outcome);
        }
    });
    let mut report = finish(
        "login",
        seed,
        &mut harness,
        &marks,
        &outcomes,
        &samples,
        &["login"],
        login_target_bytes(),
        "login",
        USERS,
    )?;
    // The login target bounds the absolute peak, not the rise above the baseline.
    report.above_baseline_bytes = report.phase("login").map_or(0, |p| p.server_peak_bytes);
    drop(harness);
    Ok(report)
}

/// How long the deliverer waits for a session to see its new email.
const NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Target live bytes per idle session.
pub const IDLE_SESSION_TARGET_BYTES: u64 = 4 * KIB;

/// `n` users with INBOXes of `dataset` go into IDLE; then one email each by LMTP, one user after
/// the other, each waiting for its session's EXISTS.
pub fn run_idle(
    name: &'static str,
    n: usize,
    dataset: Dataset,
    seed: u64,
) -> Result<Report, ScenarioError> {
    const PHASES: &[&str] = &["preload", "idle", "notify", "done"];
    let list = Rc::new(users(n));
    let mut harness = Harness::new(crate::harness::SimConfig {
        // Every session connects at once: the listener's backlog must hold them all.
        tcp_capacity: n.max(64) + 1,
        // Logins queue at the key-derivation bound and notifications come one by one: the
        // simulated time grows with the users. A lost notification fails the run at NOTIFY_WAIT.
        duration_s: 600 + n as u64 / 4,
        ..config(seed, (*list).clone())
    })?;
    let samples = add_sampler(&mut harness);
    let marks = PhaseMarks::new(&harness.accounts().imap, n + 1, PHASES);
    let outcomes = Outcomes::default();
    let dataset_seed = harness.seeds().dataset;
    let sizes = Rc::new(traces::dataset::recorded_sizes());
    let server_account = harness.accounts().imap.id();
    let trace_sizes = std::env::var_os("IMAPSIM_TRACE_SIZES").is_some();
    let (notified_tx, notified_rx) = mpsc::unbounded_channel::<usize>();
    let notified_rx = Rc::new(RefCell::new(Some(notified_rx)));
    // IMAPSIM_TRACE_SIZES=1 diagnostics: commands each session sent on its idle connection up to
    // IDLE (each one a turmoil segment into the server socket's channel).
    let sent_to_idle: Rc<RefCell<Vec<u64>>> = Rc::default();
    // The idle logins go in at most as many at a time as the server derives and queues keys, as a
    // client pool that backs off would: unpaced, 10,000 logins are answered NO [UNAVAILABLE] and
    // retried up to ~120 times on one connection, and each message a turmoil connection has
    // received beyond 32 keeps a second 1,056 B block of its channel until it closes (the
    // simulator's, counted on the server: +800 B per idle session at 10,000, none at 1,000).
    let limits = server::config::Limits::default();
    let logins = Rc::new(Semaphore::new(
        limits.kdf_concurrency + limits.kdf_queue_max,
    ));
    let (m, o) = (marks.clone(), outcomes.clone());
    client_host(&mut harness, n + 1, move |t| {
        let (sizes, outcomes, list) = (sizes.clone(), o.clone(), list.clone());
        let notified_tx = notified_tx.clone();
        let notified_rx = notified_rx.clone();
        let sent_to_idle = sent_to_idle.clone();
        let logins = logins.clone();
        let mut phases = m.cursor();
        async move {
            let mut outcome = ClientOutcome::default();
            if t == n {
                // The deliverer.
                phases.end_phase().await;
                if trace_sizes {
                    crate::alloc::trace_sizes(server_account);
                    if let Some(size) = std::env::var("IMAPSIM_BACKTRACE_SIZE")
                        .ok()
                        .and_then(|s| s.parse().ok())
                    {
                        crate::alloc::backtrace_size(size);
                    }
                }
                phases.end_phase().await;
                if trace_sizes {
                    // IMAPSIM_TRACE_SIZES=1: what the idle sessions hold, by block size.
                    for (size, count) in crate::alloc::live_sizes() {
                        eprintln!("idle live blocks: {count:>6} x {size:>6} B");
                    }
                    let sent = sent_to_idle.borrow();
                    let over = |k: u64| sent.iter().filter(|&&c| c >= k).count();
                    eprintln!(
                        "idle sessions: {}, max commands up to IDLE {}, sessions with >= 33: {}, >= 65: {}",
                        sent.len(),
                        sent.iter().max().copied().unwrap_or(0),
                        over(33),
                        over(65)
                    );
                    // Then what the rest of the run frees and keeps (negative: freed blocks
                    // that were live at the end of "idle").
                    crate::alloc::trace_sizes(server_account);
                }
                let mut rx = notified_rx.borrow_mut().take().expect("one deliverer");
                let result = async {
                    let mut lmtp = LmtpClient::connect().await?;
                    for (i, (user, _)) in list.iter().enumerate() {
                        let email = traces::dataset::email(dataset_seed, 100_000 + i, 4096).bytes;
                        lmtp.deliver(&[user.as_str()], &email).await?;
                        // A lost notification fails the run here instead of hanging it.
                        match tokio::time::timeout(NOTIFY_WAIT, rx.recv()).await {
                            Ok(Some(j)) if j == i => {}
                            Ok(_) => {
                                outcome.mismatches += 1;
                                outcome
                                    .notes
                                    .push(format!("{user} was not the one notified"));
                            }
                            Err(_) => {
                                outcome.mismatches += 1;
                                outcome.notes.push(format!(
                                    "{user} was not notified within {NOTIFY_WAIT:?}"
                                ));
                            }
                        }
                    }
                    lmtp.quit().await
                }
                .await;
                if let Err(e) = result {
                    outcome.stats.unexpected += 1;
                    outcome.notes.push(format!("LMTP: {e}"));
                }
                phases.end_all().await;
                if trace_sizes {
                    for (size, count) in crate::alloc::live_sizes() {
                        eprintln!("after idle: {count:>6} x {size:>6} B");
                    }
                }
                outcomes.borrow_mut().insert(t, outcome);
                return;
            }
            let (user, password) = list[t].clone();
            // Paced as the idle logins below are: unpaced, the preload's logins were refused
            // NO [UNAVAILABLE] and retried, 78 commands per session at 10,000 users, 7 at 100.
            let permit = logins
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let preloading = login(&user, &password, &mut outcome).await;
            drop(permit);
            if let Some(mut client) = preloading {
                let result = async {
                    for k in 0..dataset.len() {
                        let email = dataset.email(dataset_seed, &sizes, k);
                        client
                            .command_with_literal("APPEND INBOX", &email, Status::Ok)
                            .await?;
                    }
                    client.command("LOGOUT").await?;
                    // Like "done", "preload" ends once the server has closed every connection.
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    Ok(())
                }
                .await;
                note(&mut outcome, result);
                outcome.stats = client.into_stats();
            }
            phases.end_phase().await;
            let permit = logins
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let logged_in = login(&user, &password, &mut outcome).await;
            drop(permit);
            if let Some(mut client) = logged_in {
                let result = async {
                    client.command("SELECT INBOX").await?;
                    let (tag, _) = client.idle_start().await?;
                    if trace_sizes {
                        sent_to_idle.borrow_mut().push(client.stats().commands);
                    }
                    // "idle" ends a simulated second after the last IDLE began, when the server's
                    // storage connections beyond its pool have closed.
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    phases.end_phase().await;
                    let response = client
                        .wait_untagged("EXISTS", |r| {
                            matches!(r, Response::MailboxData(MailboxDatum::Exists(_)))
                        })
                        .await?;
                    let count = super::common::parse_exists(&response);
                    expect_eq(
                        &mut outcome,
                        "EXISTS after delivery",
                        count,
                        Some(dataset.len() as u32 + 1),
                    );
                    let _ = notified_tx.send(t);
                    phases.end_phase().await;
                    client.idle_done(&tag).await?;
                    client.command("LOGOUT").await?;
                    // "done" ends a simulated second after the last LOGOUT, when the server has
                    // closed every connection.
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    Ok(())
                }
                .await;
                note(&mut outcome, result);
                let stats = client.into_stats();
                outcome.stats.commands += stats.commands;
                outcome.stats.unexpected += stats.unexpected;
                outcome.stats.unparsable += stats.unparsable;
                outcome.stats.failures.extend(stats.failures);
            }
            phases.end_all().await;
            outcomes.borrow_mut().insert(t, outcome);
        }
    });
    let mut report = finish(
        name,
        seed,
        &mut harness,
        &marks,
        &outcomes,
        &samples,
        &["notify"],
        IDLE_SESSION_TARGET_BYTES,
        "idle",
        n,
    )?;
    // An idle session's cost is what it holds: the live bytes that go when the sessions go, measured
    // after IDLE (end of "idle") against after LOGOUT (end of "done"). Server-wide state that the
    // phase created and that stays (storage connections, the notification poller) is reported apart.
    let live_end = |name: &str| report.phase(name).map(|p| p.server_live_end_bytes);
    if let (Some(idle), Some(done), Some(before)) =
        (live_end("idle"), live_end("done"), live_end("preload"))
    {
        let per_session = idle.saturating_sub(done) / n as u64;
        report.session_base_bytes = per_session;
        report.figures.insert(
            "idle_phase_rise_per_session_bytes".into(),
            idle.saturating_sub(before) / n as u64,
        );
        report.figures.insert(
            "server_fixed_bytes_after_idle".into(),
            done.saturating_sub(before),
        );
    }
    report.per_idle_session_bytes = Some(report.session_base_bytes);
    report.figures.insert("idle_sessions".into(), n as u64);
    report
        .figures
        .insert("inbox_emails".into(), dataset.len() as u64);
    // The budgeted figure of an idle scenario is per session; the notify step is reported.
    report.target_bytes = IDLE_SESSION_TARGET_BYTES;
    drop(harness);
    Ok(report)
}

/// A small INBOX for the large idle runs: one 2 KiB email per user (100 recorded-size emails
/// for 10,000 users would be 236 GB through the simulation).
const IDLE_SMALL: Dataset = Dataset::Small {
    count: 1,
    bytes: 2048,
};

/// 16 users with the 100 emails each, in IDLE, notified one by one.
pub fn run_idle_16(seed: u64) -> Result<Report, ScenarioError> {
    run_idle("idle_16", 16, Dataset::Recorded { factor: 1 }, seed)
}

/// 10 idle users (scaling point; 1-email INBOXes).
pub fn run_idle_10(seed: u64) -> Result<Report, ScenarioError> {
    run_idle("idle_10", 10, IDLE_SMALL, seed)
}

/// 100 idle users (scaling point; 1-email INBOXes).
pub fn run_idle_100(seed: u64) -> Result<Report, ScenarioError> {
    run_idle("idle_100", 100, IDLE_SMALL, seed)
}

/// 1,000 idle users (1-email INBOXes).
pub fn run_idle_1k(seed: u64) -> Result<Report, ScenarioError> {
    run_idle("idle_1k", 1_000, IDLE_SMALL, seed)
}

/// 10,000 idle users (1-email INBOXes; report only).
pub fn run_idle_10k(seed: u64) -> Result<Report, ScenarioError> {
    run_idle("idle_10k", 10_000, IDLE_SMALL, seed)
}
