//! The figures of one run ([`Report`]: the `imapsim run --json` object and the report's table
//! row), its phases, and why a run could not complete or did not pass its budget.

use std::collections::BTreeMap;

use blake2::{Blake2b512, Digest};
use serde::{Deserialize, Serialize};
use workload::client::Failure;
use workload::ClientOutcome;

use crate::alloc;
use crate::budget::{self, Budgets, Measured, OverBudget};
use crate::harness::{HarnessError, RunFigures};

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

impl From<crate::entropy::EntropyError> for ScenarioError {
    fn from(error: crate::entropy::EntropyError) -> Self {
        ScenarioError::Harness(error.into())
    }
}

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
        outcomes: &BTreeMap<usize, ClientOutcome>,
        phases: Vec<Phase>,
    ) -> Report {
        let mut latency = workload::client::latency_histogram();
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
        let quantile = |q: f64| workload::client::quantile_us(&latency, q);
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
    pub fn measure_steps(&mut self, steps: &[&str]) {
        self.above_baseline_bytes = self
            .phases
            .iter()
            .filter(|p| steps.contains(&p.name.as_str()))
            .map(Phase::above_baseline_bytes)
            .max()
            .unwrap_or(0);
        self.measured_phases = steps.iter().map(|s| s.to_string()).collect();
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
