//! Scenarios: plain functions of a seed that build a simulation, run it and return a [`Report`];
//! the registry that `imapsim list/run/report` and the tests go through.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use blake2::{Blake2b512, Digest};
use serde::{Deserialize, Serialize};

use crate::alloc::{self, Account};
use crate::budget::{self, Budgets, Measured, OverBudget};
use crate::client::{ClientStats, Failure};
use crate::harness::{HarnessError, RunFigures};
use crate::scenarios;

/// How many failure descriptions a report keeps.
const REPORT_FAILURES_MAX: usize = 20;

/// Scenario errors (a run that could not complete; wrong answers are counted in the report).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The harness or the simulation failed.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The run's figures are not all on its accounts (see [`Report::check_accounting`]).
    #[error("{scenario} seed {seed}: {problem}; reproduce: {}", crate::budget::reproduce_command(scenario, *seed))]
    Accounting {
        /// The scenario.
        scenario: String,
        /// Its seed.
        seed: u64,
        /// What did not hold.
        problem: String,
    },
    /// No scenario has this name.
    #[error("no scenario named {0} (see `imapsim list`)")]
    Unknown(String),
}

/// A registered scenario.
pub struct Scenario {
    /// Name used on the command line and in budgets.toml.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Builds and runs the simulation with a root seed, on the calling thread (see [`Scenario::run`]).
    pub(crate) body: fn(u64) -> Result<Report, ScenarioError>,
}

impl Scenario {
    /// Runs it with root seed `seed` on a fresh simulation thread ([`crate::entropy`]), then
    /// checks what every run's figures must hold ([`Report::check_accounting`]). A panic of the
    /// run is resumed on the caller's thread.
    pub fn run(&'static self, seed: u64) -> Result<Report, ScenarioError> {
        match self.spawn(seed).join() {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// [`Scenario::run`] without waiting: the handle of its simulation thread.
    pub fn spawn(
        &'static self,
        seed: u64,
    ) -> std::thread::JoinHandle<Result<Report, ScenarioError>> {
        let body = self.body;
        let name = format!("scenario {} seed {seed}", self.name);
        crate::entropy::spawn(name, seed, move || {
            crate::alloc_log::attach();
            let report = body(seed);
            crate::alloc_log::detach();
            let report = report?;
            report.check_accounting()?;
            Ok(report)
        })
    }
}

impl From<crate::entropy::EntropyError> for ScenarioError {
    fn from(error: crate::entropy::EntropyError) -> Self {
        ScenarioError::Harness(error.into())
    }
}

/// Every scenario, in the order the report shows them.
pub fn all() -> &'static [Scenario] {
    &[Scenario {
        name: "append_fetch",
        description:
            "3 users APPEND the same 20 generated emails, then FETCH them back and compare bytes",
        body: scenarios::append_fetch::run,
    },
    Scenario {
        name: "append_seq",
        description: "16 users each APPEND the 100 emails, one user after the other",
        body: scenarios::users::run_append_seq,
    },
    Scenario {
        name: "append_par",
        description: "16 users each APPEND the 100 emails, all at once",
        body: scenarios::users::run_append_par,
    },
    Scenario {
        name: "lmtp",
        description: "the 100 emails delivered by LMTP to 16 users (16 LMTP sessions at once)",
        body: scenarios::users::run_lmtp,
    },
    Scenario {
        name: "login",
        description: "16 concurrent logins with production argon2id parameters",
        body: scenarios::users::run_login,
    },
    Scenario {
        name: "idle_16",
        description: "16 users (100-email INBOXes) in IDLE, one new email each by LMTP",
        body: scenarios::users::run_idle_16,
    },
    Scenario {
        name: "idle_10",
        description: "10 users (1-email INBOXes) in IDLE, notified one by one (scaling)",
        body: scenarios::users::run_idle_10,
    },
    Scenario {
        name: "idle_100",
        description: "100 users (1-email INBOXes) in IDLE, notified one by one (scaling)",
        body: scenarios::users::run_idle_100,
    },
    Scenario {
        name: "idle_1k",
        description: "1,000 users (1-email INBOXes) in IDLE, notified one by one",
        body: scenarios::users::run_idle_1k,
    },
    Scenario {
        name: "idle_10k",
        description: "10,000 users (1-email INBOXes) in IDLE, notified one by one (report only)",
        body: scenarios::users::run_idle_10k,
    },
    Scenario {
        name: "copy_move",
        description: "COPY 1k emails INBOX to Sent, then MOVE them to Archive (no body traffic)",
        body: scenarios::mailbox_ops::run_copy_move,
    },
    Scenario {
        name: "store_flags",
        description: "STORE 1 flag on 1 email, 16 flags on 1 email, 1 flag on 1k emails",
        body: scenarios::mailbox_ops::run_store_flags,
    },
    Scenario {
        name: "refresh",
        description: "SELECT, NOOP, CHECK, STATUS of another mailbox, on a 1k INBOX",
        body: scenarios::mailbox_ops::run_refresh,
    },
    Scenario {
        name: "search_meta",
        description: "the trace's 14 SEARCH commands (flags, dates, headers) on 1k emails",
        body: scenarios::mailbox_ops::run_search_meta,
    },
    Scenario {
        name: "search_body",
        description: "SEARCH BODY / TEXT on 1k emails",
        body: scenarios::mailbox_ops::run_search_body,
    },
    Scenario {
        name: "list",
        description: "LIST, LSUB, LIST RETURN (STATUS) over 5 mailboxes",
        body: scenarios::mailbox_ops::run_list,
    },
    Scenario {
        name: "fetch_all",
        description: "FETCH 1:* ALL on 1k emails",
        body: scenarios::fetch::run_all,
    },
    Scenario {
        name: "fetch_full",
        description: "FETCH 1:* FULL on 1k emails (no body read)",
        body: scenarios::fetch::run_full,
    },
    Scenario {
        name: "fetch_body_x1",
        description: "FETCH 1:* BODY.PEEK[] on the 100 emails (23.6 MB; test-time variant)",
        body: scenarios::fetch::run_body_x1,
    },
    Scenario {
        name: "fetch_body",
        description: "FETCH 1:* BODY.PEEK[] on 1k emails (~236 MB sent; report only)",
        body: scenarios::fetch::run_body,
    },
    Scenario {
        name: "trace_replay",
        description: "the 4,619-command workload of the recorded trace, 4 users concurrently",
        body: scenarios::trace_replay::run,
    },
    Scenario {
        name: "scale_select_100",
        description: "UNSELECT then SELECT INBOX on 100 2 KiB emails; index bytes per email (scaling)",
        body: scenarios::scaling::run_select_100,
    },
    Scenario {
        name: "scale_select_1k",
        description: "UNSELECT then SELECT INBOX on 1,000 2 KiB emails; index bytes per email (scaling)",
        body: scenarios::scaling::run_select_1k,
    },
    Scenario {
        name: "scale_select_10k",
        description: "UNSELECT then SELECT INBOX on 10,000 2 KiB emails; index bytes per email (scaling)",
        body: scenarios::scaling::run_select_10k,
    },
    Scenario {
        name: "scale_fetch_full_100",
        description: "FETCH 1:* FULL on 100 2 KiB emails (scaling)",
        body: scenarios::scaling::run_fetch_full_100,
    },
    Scenario {
        name: "scale_fetch_full_1k",
        description: "FETCH 1:* FULL on 1,000 2 KiB emails (scaling)",
        body: scenarios::scaling::run_fetch_full_1k,
    },
    Scenario {
        name: "scale_fetch_full_10k",
        description: "FETCH 1:* FULL on 10,000 2 KiB emails (scaling)",
        body: scenarios::scaling::run_fetch_full_10k,
    },
    Scenario {
        name: "scale_search_100",
        description: "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 100 2 KiB emails (scaling)",
        body: scenarios::scaling::run_search_100,
    },
    Scenario {
        name: "scale_search_1k",
        description: "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 1,000 2 KiB emails (scaling)",
        body: scenarios::scaling::run_search_1k,
    },
    Scenario {
        name: "scale_search_10k",
        description: "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 10,000 2 KiB emails (scaling)",
        body: scenarios::scaling::run_search_10k,
    },
    // Fault scenarios (issue #6): seeded faults, invariants checked by a fresh session at the end.
    Scenario {
        name: "fault_storage",
        description: "half of the trace workload (2 users) while the store fails 5% of requests of every kind and delays the rest; answers checked against the workload's model",
        body: scenarios::faults::storage::run,
    },
    Scenario {
        name: "fault_lost_response",
        description: "APPEND, LMTP, FETCH, STORE, COPY while 15% of storage requests are applied but answered 500",
        body: scenarios::faults::lost_response::run,
    },
    Scenario {
        name: "fault_partition",
        description: "server and store partitioned in the middle of an APPEND, an LMTP delivery, a COPY, a MOVE and a STORE, then repaired",
        body: scenarios::faults::partition::run,
    },
    Scenario {
        name: "fault_crash",
        description: "the server crashes and restarts in the middle of a large APPEND, an LMTP delivery, a 1k-message STORE and two checkpoints",
        body: scenarios::faults::crash::run,
    },
    Scenario {
        name: "fault_disconnect",
        description: "clients go away in the middle of an APPEND literal, of an LMTP DATA, of a FETCH answer and in IDLE",
        body: scenarios::faults::disconnect::run,
    },
    Scenario {
        name: "fault_two_servers",
        description: "two servers on one store serve one user at once (APPEND, STORE, EXPUNGE, MOVE), one cut off the store for a while; both must show the same mailboxes",
        body: scenarios::faults::two_servers::run,
    },
]
}

/// The scenario named `name`.
pub fn find(name: &str) -> Result<&'static Scenario, ScenarioError> {
    all()
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ScenarioError::Unknown(name.to_string()))
}

/// What one simulated client brings back.
#[derive(Debug, Default)]
pub struct ClientOutcome {
    /// Its protocol counters, latencies and hash.
    pub stats: ClientStats,
    /// Checks of content that failed (e.g. a fetched body differing from the appended one).
    pub mismatches: u64,
    /// Descriptions of those failures, and of errors that ended the session early.
    pub notes: Vec<String>,
}

/// Where client hosts leave their outcomes, by client index (the simulation is single-threaded).
pub type Outcomes = Rc<RefCell<BTreeMap<usize, ClientOutcome>>>;

/// The figures of one run: the `--json` object (plus `budget_ok`) and the report's table row.
/// Field names are a stable interface for CI tools; new fields go at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Root seed.
    pub seed: u64,
    /// Peak live heap bytes of the server host.
    pub server_peak_bytes: u64,
    /// Live heap bytes of the server host when the clients were done.
    pub server_live_end_bytes: u64,
    /// Allocations by the server host.
    pub server_allocs: u64,
    /// Bytes allocated by the server host.
    pub server_alloc_bytes: u64,
    /// Tagged commands the clients sent.
    pub commands: u64,
    /// Commands that did not complete with the expected status.
    pub unexpected: u64,
    /// Median command latency, in simulated microseconds.
    pub p50_us: u64,
    /// 99th percentile command latency, in simulated microseconds.
    pub p99_us: u64,
    /// Responses imap-proto could not parse.
    pub unparsable: u64,
    /// Content checks that failed.
    pub mismatches: u64,
    /// Slowest command, in simulated microseconds.
    pub max_us: u64,
    /// Peak live heap bytes of the fake store host.
    pub fakes3_peak_bytes: u64,
    /// Live heap bytes of the fake store host at the end.
    pub fakes3_live_end_bytes: u64,
    /// Peak live heap bytes of all clients together.
    pub clients_peak_bytes: u64,
    /// Allocations by the harness outside any host during the run.
    pub harness_allocs: u64,
    /// Simulated duration of the run, in milliseconds.
    pub sim_elapsed_ms: u64,
    /// Allocations stats_alloc saw that no account of this run saw (0 when run alone).
    pub unaccounted_allocs: i64,
    /// Whether the counting allocator is installed (all heap figures are 0 otherwise).
    pub counting_alloc_installed: bool,
    /// blake2b-512 (hex) of every byte the server sent to the clients, client by client.
    pub received_hash: String,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// The server's figures phase by phase (its peak is reset at each phase's start).
    pub phases: Vec<Phase>,
    /// The budgeted figure: the highest of the measured steps' peak minus the live bytes just
    /// before the step (for `login`: the login step's absolute peak; 0 when not set).
    pub above_baseline_bytes: u64,
    /// The target for `above_baseline_bytes` (0 when the scenario has none).
    pub target_bytes: u64,
    /// Live server bytes of one authenticated, selected, idle session (0 when not measured).
    pub session_base_bytes: u64,
    /// Live server bytes per session in IDLE (idle scenarios only).
    pub per_idle_session_bytes: Option<u64>,
    /// Scenario-specific figures (storage request counts, sizes...), by name.
    pub figures: BTreeMap<String, u64>,
    /// The phases the budget measures.
    pub measured_phases: Vec<String>,
    /// Invariant violations a fault scenario found (0 elsewhere); any fails the run.
    pub violations: u64,
    /// Faults injected in a fault scenario: storage errors, lost responses, delays, crashes,
    /// partitions and client disconnects (0 elsewhere).
    pub faults_injected: u64,
    /// The server's live bytes sampled on a fixed simulated-time period: (ms, bytes).
    #[serde(skip)]
    pub samples: Vec<(u64, u64)>,
}

/// One phase of a scenario, on the server's account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// What the clients did in it.
    pub name: String,
    /// Peak live bytes of the server during the phase.
    pub server_peak_bytes: u64,
    /// Live bytes of the server at the phase's end.
    pub server_live_end_bytes: u64,
    /// Allocations by the server during the phase.
    pub server_allocs: u64,
    /// Live bytes of the server when the phase started (its baseline).
    pub server_live_start_bytes: u64,
    /// Simulated time at the phase's start, in milliseconds since the run began.
    pub start_ms: u64,
    /// Simulated time at the phase's end, in milliseconds since the run began.
    pub end_ms: u64,
}

impl Phase {
    /// Peak during the phase minus the live bytes just before it.
    pub fn above_baseline_bytes(&self) -> u64 {
        self.server_peak_bytes
            .saturating_sub(self.server_live_start_bytes)
    }
}

/// A barrier for the client tasks of one simulation (one thread) that releases its waiters in the
/// order they arrived, so that the clients' next commands leave in an order the seed fixes.
///
/// Not `tokio::sync::Barrier`: it is built on `tokio::sync::watch`, whose receivers each wait on
/// one of 8 `Notify`s picked with tokio's thread RNG, and that RNG is seeded from the OS (turmoil
/// seeds it only under `--cfg tokio_unstable`). Clients released by it resumed in a random order,
/// so sessions entered IDLE (or sent their next command) in a different order from run to run:
/// same bytes on the wire, but e.g. the server's watch map split its B-tree nodes differently,
/// one 280 B allocation more or less.
struct PhaseBarrier {
    parties: usize,
    arrived: Cell<usize>,
    generation: Cell<u64>,
    released: tokio::sync::Notify,
}

impl PhaseBarrier {
    fn new(parties: usize) -> PhaseBarrier {
        PhaseBarrier {
            parties: parties.max(1),
            arrived: Cell::new(0),
            generation: Cell::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    /// Waits until `parties` tasks have called it; true for the last one, which returns at once.
    /// `Notify::notify_waiters` wakes its waiters first come, first woken.
    async fn wait(&self) -> bool {
        let generation = self.generation.get();
        let arrived = self.arrived.get() + 1;
        if arrived >= self.parties {
            self.arrived.set(0);
            self.generation.set(generation.wrapping_add(1));
            self.released.notify_waiters();
            return true;
        }
        self.arrived.set(arrived);
        let released = self.released.notified();
        tokio::pin!(released);
        // Registered now, so that this waiter's place in the wake order is its arrival.
        released.as_mut().enable();
        while self.generation.get() == generation {
            released.as_mut().await;
            released.set(self.released.notified());
            released.as_mut().enable();
        }
        false
    }
}

/// Phase boundaries shared by a run's clients: every client waits at each boundary, and the
/// last one to arrive records the server's phase figures and resets its peak.
#[derive(Clone)]
pub struct PhaseMarks {
    server: u16,
    names: &'static [&'static str],
    barrier: Rc<PhaseBarrier>,
    phases: Rc<RefCell<Vec<Phase>>>,
    allocs_at_start: Rc<Cell<u64>>,
    live_at_start: Rc<Cell<u64>>,
    ms_at_start: Rc<Cell<u64>>,
}

/// Simulated milliseconds since the run began (0 outside a host's tick).
pub fn sim_now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl PhaseMarks {
    /// Marks for `clients` clients going through phases `names`, measured on `server`.
    pub fn new(server: &Account, clients: usize, names: &'static [&'static str]) -> PhaseMarks {
        PhaseMarks {
            server: server.id(),
            names,
            barrier: Rc::new(PhaseBarrier::new(clients)),
            phases: Rc::default(),
            allocs_at_start: Rc::new(Cell::new(server.figures().allocs)),
            live_at_start: Rc::new(Cell::new(server.figures().live_bytes)),
            ms_at_start: Rc::new(Cell::new(0)),
        }
    }

    /// One client's way through the phases.
    pub fn cursor(&self) -> PhaseCursor {
        PhaseCursor {
            marks: self.clone(),
            next: 0,
        }
    }

    /// The phases recorded so far.
    pub fn phases(&self) -> Vec<Phase> {
        self.phases.borrow().clone()
    }

    async fn end(&self, index: usize) {
        if self.barrier.wait().await {
            let figures = alloc::figures_of(self.server);
            let now_ms = sim_now_ms();
            self.phases.borrow_mut().push(Phase {
                name: self.names[index].to_string(),
                server_peak_bytes: figures.peak_bytes,
                server_live_end_bytes: figures.live_bytes,
                server_allocs: figures.allocs - self.allocs_at_start.replace(figures.allocs),
                server_live_start_bytes: self.live_at_start.replace(figures.live_bytes),
                start_ms: self.ms_at_start.replace(now_ms),
                end_ms: now_ms,
            });
            alloc::reset_peak(self.server);
        }
    }
}

/// A client's position in the phases.
pub struct PhaseCursor {
    marks: PhaseMarks,
    next: usize,
}

impl PhaseCursor {
    /// Ends the current phase (waits for every client to end it).
    pub async fn end_phase(&mut self) {
        if self.next < self.marks.names.len() {
            self.marks.end(self.next).await;
            self.next += 1;
        }
    }

    /// Passes every remaining boundary (a client that stopped early must not block the others).
    pub async fn end_all(&mut self) {
        while self.next < self.marks.names.len() {
            self.end_phase().await;
        }
    }
}

/// A report plus its budget verdict: the `imapsim run --json` object.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    /// The figures.
    #[serde(flatten)]
    pub report: &'a Report,
    /// Whether the scenario's budget held.
    pub budget_ok: bool,
}

impl Report {
    /// Assembles a report from the run's account figures and the clients' outcomes.
    /// The server's peak is the highest of its phases' and of the run's end.
    pub fn build(
        scenario: &str,
        seed: u64,
        run: &RunFigures,
        outcomes: &Outcomes,
        phases: Vec<Phase>,
    ) -> Report {
        let outcomes = outcomes.borrow();
        let mut latency = crate::client::latency_histogram();
        let mut hasher = Blake2b512::new();
        let (mut commands, mut unexpected, mut unparsable, mut mismatches) = (0, 0, 0, 0);
        let mut failures = Vec::new();
        for (index, outcome) in outcomes.iter() {
            let stats = &outcome.stats;
            commands += stats.commands;
            unexpected += stats.unexpected;
            unparsable += stats.unparsable;
            mismatches += outcome.mismatches;
            latency
                .add(&stats.latency_us)
                .expect("histograms of the same precision add");
            hasher.update(stats.received_hash());
            failures.extend(
                stats
                    .failures
                    .iter()
                    .map(|f| format!("client{index}: {}", describe(f))),
            );
            failures.extend(outcome.notes.iter().map(|n| format!("client{index}: {n}")));
        }
        failures.truncate(REPORT_FAILURES_MAX);
        let quantile = |q: f64| crate::client::quantile_us(&latency, q);
        Report {
            scenario: scenario.to_string(),
            seed,
            server_peak_bytes: phases
                .iter()
                .map(|p| p.server_peak_bytes)
                .fold(run.server.peak_bytes, u64::max),
            server_live_end_bytes: run.server.live_bytes,
            server_allocs: run.server.allocs,
            server_alloc_bytes: run.server.alloc_bytes,
            commands,
            unexpected,
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
            unparsable,
            mismatches,
            max_us: latency.lowest_equivalent(latency.max()),
            fakes3_peak_bytes: run.fakes3.peak_bytes,
            fakes3_live_end_bytes: run.fakes3.live_bytes,
            clients_peak_bytes: run.clients.peak_bytes,
            harness_allocs: run.harness.allocs,
            sim_elapsed_ms: u64::try_from(run.sim_elapsed.as_millis()).unwrap_or(u64::MAX),
            unaccounted_allocs: run.unaccounted_allocs,
            counting_alloc_installed: alloc::installed(),
            received_hash: hex::encode(hasher.finalize()),
            failures,
            phases,
            above_baseline_bytes: 0,
            target_bytes: 0,
            session_base_bytes: 0,
            per_idle_session_bytes: None,
            figures: BTreeMap::new(),
            measured_phases: Vec::new(),
            violations: 0,
            faults_injected: 0,
            samples: Vec::new(),
        }
    }

    /// Sets the budgeted figure from the phases named `steps`: the highest above-baseline peak.
    pub fn measure_steps(&mut self, steps: &[&str], target_bytes: u64) {
        self.above_baseline_bytes = self
            .phases
            .iter()
            .filter(|p| steps.contains(&p.name.as_str()))
            .map(Phase::above_baseline_bytes)
            .max()
            .unwrap_or(0);
        self.measured_phases = steps.iter().map(|s| s.to_string()).collect();
        self.target_bytes = target_bytes;
    }

    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Whether every response parsed, had the expected status, every content check held and no
    /// invariant was violated.
    pub fn is_clean(&self) -> bool {
        self.unexpected == 0 && self.unparsable == 0 && self.mismatches == 0 && self.violations == 0
    }

    /// The figures a budget is checked against.
    pub fn measured(&self) -> Measured {
        Measured {
            server_peak_bytes: self.server_peak_bytes,
            server_live_end_bytes: self.server_live_end_bytes,
            above_baseline_bytes: self.above_baseline_bytes,
            per_idle_session_bytes: self.per_idle_session_bytes,
        }
    }

    /// Checks this report against its row in `budgets`.
    pub fn check_budget(&self, budgets: &Budgets) -> Result<(), BudgetVerdict> {
        if !self.counting_alloc_installed {
            return Err(BudgetVerdict::NotMeasured);
        }
        let budget = budgets
            .get(&self.scenario)
            .map_err(|e| BudgetVerdict::NoBudget(e.to_string()))?;
        budget::check(budget, self.seed, self.measured()).map_err(BudgetVerdict::Over)
    }

    /// Fails unless the figures are all there: every allocation of the run on one of its
    /// accounts, the server charged in every measured phase (a tracing cache or a lost span
    /// would leave it at 0 and every budget passing).
    pub fn check_accounting(&self) -> Result<(), ScenarioError> {
        let problem = |problem: String| ScenarioError::Accounting {
            scenario: self.scenario.clone(),
            seed: self.seed,
            problem,
        };
        if !self.counting_alloc_installed {
            return Ok(());
        }
        if self.unaccounted_allocs != 0 {
            return Err(problem(format!(
                "{} allocations of the simulation thread were on no account of the run",
                self.unaccounted_allocs
            )));
        }
        if self.server_allocs == 0 {
            return Err(problem("the server host was charged nothing".into()));
        }
        for name in &self.measured_phases {
            match self.phase(name) {
                Some(phase) if phase.server_allocs > 0 => {}
                Some(_) => {
                    return Err(problem(format!(
                        "measured phase {name} charged the server nothing"
                    )))
                }
                None => return Err(problem(format!("measured phase {name} was not recorded"))),
            }
        }
        Ok(())
    }

    /// The figures that one seed determines, as a string: everything but `unaccounted_allocs`
    /// (it counts other threads' allocations too) and `harness_allocs` (the first run in a
    /// process also pays once-per-process initialisations outside any host, such as registering
    /// turmoil's `node` tracing callsite). Equal for two runs with one seed.
    pub fn deterministic_figures(&self) -> String {
        let mut copy = self.clone();
        copy.unaccounted_allocs = 0;
        copy.harness_allocs = 0;
        serde_json::to_string(&copy).expect("a report serialises")
    }
}

/// Why a budget check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum BudgetVerdict {
    /// Over budget.
    #[error("{0}")]
    Over(OverBudget),
    /// budgets.toml has no row for the scenario.
    #[error("{0}")]
    NoBudget(String),
    /// The counting allocator is not the global allocator: nothing was measured.
    #[error(
        "the counting allocator is not installed: add `sim::simulation_binary!();` to the binary"
    )]
    NotMeasured,
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Unparsable { command, bytes } => {
            format!(
                "{command}: imap-proto cannot parse {:?}",
                String::from_utf8_lossy(bytes)
            )
        }
        Failure::Unexpected {
            command,
            expected,
            line,
        } => format!("{command}: expected {expected}, got {line:?}"),
        Failure::Broken { command, error } => format!("{command}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per round: the tasks in the order they arrived, and in the order they were released.
    type Rounds = Vec<(Vec<usize>, Vec<(usize, bool)>)>;

    #[test]
    fn phase_barrier_releases_waiters_in_arrival_order_after_the_last_one_leads() {
        const TASKS: usize = 4;
        const ROUNDS: usize = 3;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds");
        let local = tokio::task::LocalSet::new();
        let barrier = Rc::new(PhaseBarrier::new(TASKS));
        let rounds: Rc<RefCell<Rounds>> =
            Rc::new(RefCell::new(vec![(Vec::new(), Vec::new()); ROUNDS]));
        local.block_on(&rt, async {
            let mut tasks = Vec::new();
            for i in 0..TASKS {
                let (barrier, rounds) = (barrier.clone(), rounds.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    for round in 0..ROUNDS {
                        rounds.borrow_mut()[round].0.push(i);
                        let leader = barrier.wait().await;
                        rounds.borrow_mut()[round].1.push((i, leader));
                    }
                }));
            }
            for task in tasks {
                task.await.expect("the task completes");
            }
        });
        for (arrived, released) in rounds.borrow().iter() {
            assert_eq!(arrived.len(), TASKS);
            let last = *arrived.last().expect("tasks arrived");
            let mut expected = vec![(last, true)];
            expected.extend(arrived[..TASKS - 1].iter().map(|&i| (i, false)));
            assert_eq!(released, &expected, "arrived in order {arrived:?}");
        }
    }
}
