//! The workload scenarios: a [`Simulated`] row says which workload of the `workload` crate runs,
//! on what users and dataset, and which phases its budget measures. The runner builds the
//! simulation, runs the workload in one client host over the [`SimDriver`], samples the server's
//! heap, and derives the row's figures from the phases.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use workload::dataset::{users, Dataset};
use workload::idle::Idle;
use workload::one_user::{OneUser, StepSet};
use workload::trace_replay::TraceReplay;
use workload::WorkloadRun;

use crate::alloc;
use crate::driver::{sim_now_ms, SimDriver};
use crate::figures::{Report, ScenarioError};
use crate::harness::{cheap_kdf, Harness, HarnessError, SimConfig};

/// Period of the heap sampler, in simulated milliseconds.
pub const SAMPLE_PERIOD_MS: u64 = 10;

/// Users of the append, lmtp and login scenarios.
pub const USERS: usize = 16;

/// How long a replayed IDLE waits before DONE, in simulated time.
const TRACE_IDLE_WAIT: Duration = Duration::from_secs(2);

/// Which workload a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `users` users APPEND `emails` generated emails, then FETCH them back.
    AppendFetch {
        /// Users.
        users: usize,
        /// Emails each.
        emails: usize,
    },
    /// [`USERS`] users APPEND the 100 emails, one after the other or all at once.
    Append {
        /// All at once.
        parallel: bool,
    },
    /// The 100 emails delivered by LMTP to [`USERS`] users.
    Deliver,
    /// [`USERS`] concurrent logins with production argon2id parameters.
    Login,
    /// `users` users in IDLE on INBOXes of `dataset`, notified one by one.
    Idle {
        /// Users, one session each.
        users: usize,
        /// Each INBOX.
        dataset: Dataset,
    },
    /// One user's preloaded INBOX and measured commands.
    OneUser(OneUser),
    /// The trace workload generated from the recorded trace.
    TraceReplay,
}

/// A workload scenario's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Simulated {
    /// The workload.
    pub spec: Spec,
    /// The phases the budget measures.
    pub measured: &'static [&'static str],
}

/// A one-user row: INBOX filled with `dataset` by `preload_sessions` sessions.
pub const fn one_user(
    steps: StepSet,
    dataset: Dataset,
    preload_sessions: usize,
    setup: &'static [&'static str],
    measured: &'static [&'static str],
) -> Simulated {
    Simulated {
        spec: Spec::OneUser(OneUser {
            dataset,
            preload_sessions,
            setup,
            steps,
        }),
        measured,
    }
}

/// Size of each email of a scaling INBOX, in bytes: these runs measure how the index and the
/// per-message work grow with the number of messages, not the bodies.
pub const SCALE_EMAIL_BYTES: u64 = 2 * 1024;

/// A scaling row on `count` emails. One preload session with INBOX selected: its APPENDs refresh
/// the selected index incrementally (an APPEND to a mailbox that is not selected loads the whole
/// index to answer APPENDUID, a cost that grows with the mailbox).
pub const fn scaling(steps: StepSet, count: usize, measured: &'static [&'static str]) -> Simulated {
    let dataset = Dataset::Small {
        count,
        bytes: SCALE_EMAIL_BYTES,
    };
    one_user(steps, dataset, 1, &["SELECT INBOX"], measured)
}

/// The simulation options of a row (`trace`: the trace workload, for [`Spec::TraceReplay`]).
fn config(spec: &Spec, seed: u64, trace: Option<&traces::workload::Workload>) -> SimConfig {
    let cheap = |users: Vec<(String, String)>| SimConfig {
        seed,
        users,
        kdf: cheap_kdf(),
        duration_s: 3600,
        ..SimConfig::default()
    };
    match *spec {
        Spec::AppendFetch { users: n, .. } => SimConfig {
            seed,
            users: users(n),
            ..SimConfig::default()
        },
        Spec::Append { .. } | Spec::Deliver => cheap(users(USERS)),
        Spec::Login => SimConfig {
            kdf: server::config::KdfParams::default(),
            ..cheap(users(USERS))
        },
        Spec::Idle { users: n, .. } => SimConfig {
            // Every session connects at once: the listener's backlog must hold them all.
            tcp_capacity: n.max(64) + 1,
            // Logins queue at the key-derivation bound and notifications come one by one: the
            // simulated time grows with the users.
            duration_s: 600 + n as u64 / 4,
            ..cheap(users(n))
        },
        Spec::OneUser(_) => cheap(users(1)),
        Spec::TraceReplay => SimConfig {
            seed,
            users: trace.map_or_else(Vec::new, |w| {
                w.users
                    .iter()
                    .map(|u| (u.name.clone(), u.password.clone()))
                    .collect()
            }),
            duration_s: 3_600,
            ..SimConfig::default()
        },
    }
}

/// The recorded trace's workload for root seed `seed` (its seed is the clients' one).
pub fn trace_workload(seed: u64) -> Result<traces::workload::Workload, ScenarioError> {
    let workload_seed = crate::harness::Seeds::derive(seed).clients;
    traces::workload::Workload::recorded(workload_seed)
        .map_err(|e| ScenarioError::Harness(HarnessError::InvalidConfig(format!("workload: {e}"))))
}

/// Adds a host that samples the server's live bytes every [`SAMPLE_PERIOD_MS`] of simulated time
/// (charged to the clients' account; it sends nothing, so the schedule is the same without it).
fn add_sampler(harness: &mut Harness) -> Rc<RefCell<Vec<(u64, u64)>>> {
    let samples: Rc<RefCell<Vec<(u64, u64)>>> = Rc::default();
    let server = harness.accounts().imap.id();
    let series = samples.clone();
    harness.client_host("sampler", move || {
        let series = series.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(SAMPLE_PERIOD_MS)).await;
                let live = alloc::figures_of(server).live_bytes;
                series.borrow_mut().push((sim_now_ms(), live));
            }
        }
    });
    samples
}

/// IMAPSIM_TRACE_SIZES=1 diagnostics of the idle scenarios: the server's live blocks by size at
/// the end of "idle" (what the idle sessions hold) and after the run (IMAPSIM_BACKTRACE_SIZE=N:
/// backtraces of the blocks of N bytes).
fn idle_diagnostics(server: u16) -> Box<dyn Fn(&'static str)> {
    Box::new(move |phase| match phase {
        "preload" => {
            alloc::trace_sizes(server);
            if let Some(size) = std::env::var("IMAPSIM_BACKTRACE_SIZE")
                .ok()
                .and_then(|s| s.parse().ok())
            {
                alloc::backtrace_size(size);
            }
        }
        "idle" | "done" => {
            for (size, count) in alloc::live_sizes() {
                eprintln!("{phase} live blocks: {count:>6} x {size:>6} B");
            }
            alloc::trace_sizes(server);
        }
        _ => {}
    })
}

impl Simulated {
    /// Runs the row as scenario `name` with root seed `seed`.
    pub fn run(&self, name: &str, seed: u64) -> Result<Report, ScenarioError> {
        let trace = match self.spec {
            Spec::TraceReplay => Some(trace_workload(seed)?),
            _ => None,
        };
        self.simulate(name, seed, trace)
    }

    /// Runs the row; `trace` is the workload a [`Spec::TraceReplay`] row replays.
    fn simulate(
        &self,
        name: &str,
        seed: u64,
        trace: Option<traces::workload::Workload>,
    ) -> Result<Report, ScenarioError> {
        let mut harness = Harness::new(config(&self.spec, seed, trace.as_ref()))?;
        let users = harness.config().users.clone();
        let samples = add_sampler(&mut harness);
        let mut driver = SimDriver::new(&harness);
        if matches!(self.spec, Spec::Idle { .. })
            && std::env::var_os("IMAPSIM_TRACE_SIZES").is_some()
        {
            driver = driver.with_hook(idle_diagnostics(harness.accounts().imap.id()));
        }
        let driver = Rc::new(driver);
        let trace = trace.map(Rc::new);
        let done: Rc<RefCell<Option<WorkloadRun>>> = Rc::default();
        let (spec, d, out) = (self.spec, driver.clone(), done.clone());
        harness.client("clients", async move {
            let run = match spec {
                Spec::AppendFetch { emails, .. } => {
                    workload::append_fetch::run(d, users, emails).await
                }
                Spec::Append { parallel } => {
                    workload::users::append(d, users, workload::dataset::X1, parallel).await
                }
                Spec::Deliver => workload::users::deliver(d, users, workload::dataset::X1).await,
                Spec::Login => workload::users::logins(d, users).await,
                Spec::Idle { users: n, dataset } => {
                    let limits = server::config::Limits::default();
                    let idle = Idle {
                        sessions: n,
                        dataset,
                        // As many at a time as the server derives and queues keys.
                        logins_in_flight: limits.kdf_concurrency + limits.kdf_queue_max,
                    };
                    idle.run(d, users).await
                }
                Spec::OneUser(one) => {
                    let user = users.into_iter().next().expect("one user");
                    one.run(d, user).await
                }
                Spec::TraceReplay => {
                    let replay = TraceReplay {
                        workload: trace.expect("made above"),
                        users,
                        idle_wait: TRACE_IDLE_WAIT,
                        verify: false,
                    };
                    replay.run(d).await
                }
            };
            *out.borrow_mut() = Some(run);
            Ok(())
        });
        let figures = harness.run()?;
        let run = done.take().unwrap_or_default();
        let mut report = Report::build(name, seed, &figures, &run.outcomes, driver.phases());
        report.figures = run.figures;
        report.samples = samples.take();
        report.measure_steps(self.measured);
        self.derive(&mut report);
        drop(harness);
        Ok(report)
    }

    /// The figures a row derives from its phases.
    fn derive(&self, report: &mut Report) {
        let live_end =
            |report: &Report, name: &str| report.phase(name).map(|p| p.server_live_end_bytes);
        let rise = |report: &Report, name: &str| {
            report.phase(name).map_or(0, |p| {
                p.server_live_end_bytes
                    .saturating_sub(p.server_live_start_bytes)
            })
        };
        match self.spec {
            Spec::Append { .. } | Spec::Deliver | Spec::Login => {
                report.session_base_bytes = rise(report, "login") / USERS as u64;
                if self.spec == Spec::Login {
                    // The login target bounds the absolute peak, not the rise above the baseline.
                    report.above_baseline_bytes =
                        report.phase("login").map_or(0, |p| p.server_peak_bytes);
                }
                if self.spec == Spec::Deliver {
                    let bytes = report
                        .phase("import")
                        .map_or(0, |p| p.above_baseline_bytes());
                    report
                        .figures
                        .insert("import_above_baseline_bytes".into(), bytes);
                }
            }
            Spec::Idle { users: n, .. } => {
                // An idle session's cost is what it holds: the live bytes that go when the sessions
                // go, measured after IDLE (end of "idle") against after LOGOUT (end of "done").
                // Server-wide state that the phase created and that stays (storage connections,
                // the notification poller) is reported apart.
                let n = n.max(1) as u64;
                if let (Some(idle), Some(done), Some(before)) = (
                    live_end(report, "idle"),
                    live_end(report, "done"),
                    live_end(report, "preload"),
                ) {
                    report.session_base_bytes = idle.saturating_sub(done) / n;
                    report.figures.insert(
                        "idle_phase_rise_per_session_bytes".into(),
                        idle.saturating_sub(before) / n,
                    );
                    report.figures.insert(
                        "server_fixed_bytes_after_idle".into(),
                        done.saturating_sub(before),
                    );
                }
                report.per_idle_session_bytes = Some(report.session_base_bytes);
            }
            Spec::OneUser(one) => {
                report.session_base_bytes = rise(report, "session");
                if one.steps == StepSet::FetchBody {
                    let sent = report.figures.get("body_bytes").copied().unwrap_or(0);
                    let expected = report.figures.get("dataset_bytes").copied().unwrap_or(0);
                    if sent != expected {
                        report.mismatches += 1;
                        report
                            .failures
                            .push(format!("BODY[] bytes sent {sent}, dataset {expected}"));
                    }
                }
                if let Dataset::Small { count, bytes } = one.dataset {
                    report.figures.insert("email_bytes".into(), bytes);
                    for phase in self.measured {
                        let bytes = report.phase(phase).map_or(0, |p| p.above_baseline_bytes());
                        report
                            .figures
                            .insert(format!("{phase}_above_baseline_bytes"), bytes);
                    }
                    if one.steps == StepSet::Select {
                        let bytes = index_bytes(report);
                        report.figures.insert("index_bytes".into(), bytes);
                        report
                            .figures
                            .insert("index_bytes_per_email".into(), bytes / count.max(1) as u64);
                    }
                }
            }
            Spec::AppendFetch { .. } | Spec::TraceReplay => {}
        }
    }
}

/// Live bytes of the index of a selected mailbox: the server's live bytes once `SELECT INBOX`
/// completed minus once `UNSELECT` completed (0 when a phase is missing or the index is smaller).
pub fn index_bytes(report: &Report) -> u64 {
    match (report.phase("unselect"), report.phase("select")) {
        (Some(unselected), Some(selected)) => selected
            .server_live_end_bytes
            .saturating_sub(unselected.server_live_end_bytes),
        _ => 0,
    }
}

/// Runs any trace workload (e.g. a user's capture read with `Workload::read_from`) as scenario
/// `trace_replay` runs the recorded one.
pub fn replay(seed: u64, workload: traces::workload::Workload) -> Result<Report, ScenarioError> {
    let row = Simulated {
        spec: Spec::TraceReplay,
        measured: &[],
    };
    row.simulate("trace_replay", seed, Some(workload))
}
