//! `imapsim load`: drives any IMAP server (ours, Dovecot, ...) over real TCP with the workloads
//! the simulation runs (the `workload` crate, over [`TcpDriver`]), checks every response with
//! imap-proto, and, given the server's pid, samples the resident memory and CPU time of its
//! process tree.
//!
//! Results are written as `figures.json` (the report's shape: an array of flat objects with the
//! report's stable keys, RSS standing for the heap figures) and `memory.svg`.

pub mod plot;
pub mod rss;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use workload::client::{latency_histogram, quantile_us, Failure};
use workload::dataset::Dataset;
use workload::idle::Idle;
use workload::one_user::{OneUser, StepSet};
use workload::trace_replay::TraceReplay;
use workload::WorkloadRun;

use crate::driver::TcpDriver;
use rss::{Sampler, Series};

/// Most connections a run may open at once.
pub const CONNECTIONS_MAX: usize = 10_000;
/// Most emails a workload may append per mailbox.
pub const EMAILS_MAX: usize = 100_000;
/// Most users a run may name.
pub const USERS_MAX: usize = 1_000;
/// Longest run allowed, in seconds (one day).
pub const MAX_SECONDS_MAX: u64 = 86_400;
/// How many failure descriptions a report keeps.
const FAILURES_KEPT_MAX: usize = 20;

/// The workloads, as the simulation's scenarios of the same names run them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// The trace's sessions (`traces::workload`), users concurrently, then every message fetched
    /// back and compared byte for byte with the workload's model.
    TraceReplay,
    /// Each user APPENDs the emails, one user after the other.
    AppendSeq,
    /// Each user APPENDs the emails, all users at once.
    AppendPar,
    /// `connections` sessions in IDLE, then one new email per user, each session notified.
    Idle,
    /// FETCH 1:* ALL.
    FetchAll,
    /// FETCH 1:* FULL.
    FetchFull,
    /// FETCH 1:* BODY.PEEK[], bodies compared byte for byte.
    FetchBody,
    /// SEARCH BODY / TEXT.
    SearchBody,
    /// COPY 1:* to Sent, then MOVE 1:* from Sent to Archive.
    CopyMove,
    /// STORE 1 flag on 1 email, 16 flags on 1 email, 1 flag on all.
    StoreFlags,
}

impl Workload {
    /// Every workload, in the order `compare` runs them.
    pub const ALL: [Workload; 10] = [
        Workload::AppendSeq,
        Workload::AppendPar,
        Workload::Idle,
        Workload::FetchAll,
        Workload::FetchFull,
        Workload::FetchBody,
        Workload::SearchBody,
        Workload::CopyMove,
        Workload::StoreFlags,
        Workload::TraceReplay,
    ];

    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::TraceReplay => "trace_replay",
            Workload::AppendSeq => "append_seq",
            Workload::AppendPar => "append_par",
            Workload::Idle => "idle",
            Workload::FetchAll => "fetch_all",
            Workload::FetchFull => "fetch_full",
            Workload::FetchBody => "fetch_body",
            Workload::SearchBody => "search_body",
            Workload::CopyMove => "copy_move",
            Workload::StoreFlags => "store_flags",
        }
    }

    /// The workload named `name`.
    pub fn parse(name: &str) -> Result<Workload, LoadError> {
        Workload::ALL
            .into_iter()
            .find(|w| w.as_str() == name)
            .ok_or_else(|| LoadError::UnknownWorkload(name.to_string()))
    }

    /// Emails per mailbox when `--emails` is not given: 100 per user for the APPEND runs, 1 per
    /// user for idle, 1,000 for the one-user runs (as the simulation's scenarios).
    pub fn default_emails(self) -> usize {
        match self {
            Workload::AppendSeq | Workload::AppendPar => 100,
            Workload::Idle => 1,
            Workload::TraceReplay => 0,
            _ => 1_000,
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to drive and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// IMAP server, HOST:PORT. No default.
    pub imap: String,
    /// LMTP server, HOST:PORT. Default none: idle's new emails arrive by APPEND.
    pub lmtp: Option<String>,
    /// Users as (login, password), each with an empty or absent INBOX (trace_replay: fresh users,
    /// one per workload user). No default; at least one.
    pub users: Vec<(String, String)>,
    /// The workload. Default trace_replay.
    pub workload: Workload,
    /// The server's process id, to sample its process tree's memory and CPU. Default none.
    pub pid: Option<u32>,
    /// Root seed of the emails and the trace workload. Default 1.
    pub seed: u64,
    /// Sessions of the idle workload. Default 16.
    pub connections: usize,
    /// Emails per mailbox (see [`Workload::default_emails`]). Default per workload.
    pub emails: Option<usize>,
    /// The trace's sessions are replayed up to this many commands. Default all (4,619).
    pub trace_commands_max: Option<usize>,
    /// How long a replayed IDLE waits before DONE, in milliseconds. Default 200.
    pub idle_wait_ms: u64,
    /// The run stops after this many seconds, counted as a failure. Default 600.
    pub max_seconds: u64,
    /// Allows non-loopback addresses. Default false.
    pub allow_remote: bool,
    /// Names the server in reports and plots. Default "server".
    pub label: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            imap: String::new(),
            lmtp: None,
            users: Vec::new(),
            workload: Workload::TraceReplay,
            pid: None,
            seed: 1,
            connections: 16,
            emails: None,
            trace_commands_max: None,
            idle_wait_ms: 200,
            max_seconds: 600,
            allow_remote: false,
            label: "server".to_string(),
        }
    }
}

/// Why a run could not start or complete (wrong answers are counted in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No workload has this name.
    #[error("no workload named {0:?} (one of: {names})", names = Workload::ALL.map(Workload::as_str).join(", "))]
    UnknownWorkload(String),
    /// An address does not resolve.
    #[error("cannot resolve {addr}: {reason}")]
    Resolve {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// An address is not on loopback and `allow_remote` is off.
    #[error("{0} is not a loopback address (pass --allow-remote to drive a remote server)")]
    Remote(SocketAddr),
    /// An option is out of its bounds.
    #[error("{0}")]
    Bounds(String),
    /// The process to sample does not exist.
    #[error(transparent)]
    Rss(#[from] rss::RssError),
    /// The tokio runtime could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// Results could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plot could not be drawn.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The figures of one run: the report's stable keys (`server_peak_bytes` and
/// `server_live_end_bytes` are resident memory here), then the load driver's own.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Workload name.
    pub scenario: String,
    /// Root seed.
    pub seed: u64,
    /// Peak RSS of the server's process tree during the measured phase, in bytes (0 without pid).
    pub server_peak_bytes: u64,
    /// RSS of the tree at the end of the measured phase, in bytes.
    pub server_live_end_bytes: u64,
    /// Not measurable from outside the process: 0.
    pub server_allocs: u64,
    /// Not measurable from outside the process: 0.
    pub server_alloc_bytes: u64,
    /// Tagged commands sent.
    pub commands: u64,
    /// Commands that did not complete with the expected status (broken ones included).
    pub unexpected: u64,
    /// Median command latency, wall-clock microseconds.
    pub p50_us: u64,
    /// 99th percentile command latency, microseconds.
    pub p99_us: u64,
    /// Responses imap-proto could not parse.
    pub unparsable: u64,
    /// Content checks that failed.
    pub mismatches: u64,
    /// Slowest command, microseconds.
    pub max_us: u64,
    /// Peak minus baseline of the measured phase, in bytes.
    pub above_baseline_bytes: u64,
    /// RSS per session in IDLE: (RSS with every session idle − baseline) / sessions (idle only).
    pub per_idle_session_bytes: Option<u64>,
    /// No budget applies to a load run: true when every command answered as expected.
    pub budget_ok: bool,
    /// Which server (the `label` option).
    pub server: String,
    /// RSS just before the measured phase, in bytes.
    pub baseline_bytes: u64,
    /// Proportional set size (shared pages split between the processes sharing them) just
    /// before the measured phase, in bytes.
    pub baseline_pss_bytes: u64,
    /// As `per_idle_session_bytes`, from the proportional set size (idle only).
    pub per_idle_session_pss_bytes: Option<u64>,
    /// 90th percentile command latency, microseconds.
    pub p90_us: u64,
    /// CPU time of the server's tree over the whole run, milliseconds.
    pub cpu_ms: u64,
    /// CPU time of the server's tree during the measured phase, milliseconds.
    pub measured_cpu_ms: u64,
    /// Commands that got a tagged answer (`commands` minus those cut by a broken connection).
    pub answered: u64,
    /// Sessions that ended on a broken or closed connection, or a refused login.
    pub broken: u64,
    /// Wall-clock duration of the run, milliseconds.
    pub elapsed_ms: u64,
    /// Wall-clock duration of the measured phase, milliseconds.
    pub measured_ms: u64,
    /// Most processes seen in the server's tree.
    pub processes_max: u32,
    /// Whether `max_seconds` stopped the run.
    pub timed_out: bool,
    /// Whether memory was sampled (a pid was given and existed).
    pub sampled: bool,
    /// Workload-specific figures (emails, bytes, per-command latencies...), by name.
    pub figures: BTreeMap<String, u64>,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// The measured phase's marks, in order.
    pub measured_phases: Vec<String>,
}

impl LoadReport {
    /// Whether every command answered as expected and every check held.
    pub fn is_clean(&self) -> bool {
        self.unexpected == 0 && self.unparsable == 0 && self.mismatches == 0 && self.broken == 0
    }
}

/// A finished run: its figures and its memory series.
#[derive(Clone, Debug)]
pub struct LoadRun {
    /// The figures.
    pub report: LoadReport,
    /// RSS readings (empty without a pid).
    pub series: Series,
}

/// Resolves `addr`, refusing a non-loopback address unless `allow_remote`.
pub async fn resolve(addr: &str, allow_remote: bool) -> Result<SocketAddr, LoadError> {
    let mut found = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| LoadError::Resolve {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let first = found.next().ok_or_else(|| LoadError::Resolve {
        addr: addr.to_string(),
        reason: "no address".into(),
    })?;
    if !allow_remote && !first.ip().is_loopback() {
        return Err(LoadError::Remote(first));
    }
    Ok(first)
}

fn check_bounds(options: &LoadOptions) -> Result<(), LoadError> {
    let bad = |s: String| Err(LoadError::Bounds(s));
    if options.users.is_empty() {
        return bad("at least one --user NAME:PASSWORD is needed".into());
    }
    if options.users.len() > USERS_MAX {
        return bad(format!("at most {USERS_MAX} users"));
    }
    if options.connections == 0 || options.connections > CONNECTIONS_MAX {
        return bad(format!(
            "--connections must be within 1..={CONNECTIONS_MAX}"
        ));
    }
    if options.emails.is_some_and(|e| e > EMAILS_MAX) {
        return bad(format!("--emails must be at most {EMAILS_MAX}"));
    }
    if options.max_seconds == 0 || options.max_seconds > MAX_SECONDS_MAX {
        return bad(format!(
            "--max-seconds must be within 1..={MAX_SECONDS_MAX}"
        ));
    }
    let emails = options
        .emails
        .unwrap_or_else(|| options.workload.default_emails());
    if options.workload == Workload::StoreFlags && emails < 2 {
        return bad("store_flags needs at least 2 emails".into());
    }
    let needs_emails = !matches!(options.workload, Workload::TraceReplay);
    if needs_emails && emails == 0 {
        return bad(format!("{} needs at least 1 email", options.workload));
    }
    Ok(())
}

/// Logins in flight at once in the idle workload: servers queue (ours refuses beyond a bound)
/// key derivations.
const LOGINS_IN_FLIGHT_MAX: usize = 8;

/// Parallel sessions filling a one-user workload's INBOX (as the simulation's preload).
const PRELOAD_SESSIONS: usize = 4;

impl Workload {
    /// Its phases and the measured ones.
    fn phases(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.steps() {
            Some(steps) => (steps.phases(), &steps.phases()[2..]),
            None => match self {
                Workload::TraceReplay => (&["setup", "replay", "verify"], &["replay"]),
                Workload::Idle => (workload::idle::PHASES, &["idle", "notify"]),
                _ => (&["login", "append", "logout"], &["append"]),
            },
        }
    }

    /// The measured commands of a one-user workload.
    fn steps(self) -> Option<StepSet> {
        Some(match self {
            Workload::FetchAll => StepSet::FetchAll,
            Workload::FetchFull => StepSet::FetchFull,
            Workload::FetchBody => StepSet::FetchBody,
            Workload::SearchBody => StepSet::SearchBody,
            Workload::CopyMove => StepSet::CopyMove,
            Workload::StoreFlags => StepSet::StoreFlags,
            Workload::TraceReplay | Workload::AppendSeq | Workload::AppendPar | Workload::Idle => {
                return None
            }
        })
    }
}

/// Runs `options.workload` over `driver`; errors only when the trace workload cannot be made.
async fn drive(options: &LoadOptions, driver: Rc<TcpDriver>) -> Result<WorkloadRun, String> {
    let users = options.users.clone();
    let dataset = Dataset::Recorded {
        count: options
            .emails
            .unwrap_or_else(|| options.workload.default_emails()),
    };
    if let Some(steps) = options.workload.steps() {
        let one_user = OneUser {
            dataset,
            preload_sessions: PRELOAD_SESSIONS,
            setup: &[],
            steps,
        };
        return Ok(one_user.run(driver, users[0].clone()).await);
    }
    Ok(match options.workload {
        Workload::TraceReplay => {
            let trace = workload::trace_replay::generated(
                options.seed,
                users.len(),
                options.trace_commands_max,
            )
            .map_err(|e| format!("trace workload: {e}"))?;
            let replay = TraceReplay {
                workload: Rc::new(trace),
                users,
                idle_wait: Duration::from_millis(options.idle_wait_ms),
                verify: true,
            };
            replay.run(driver).await
        }
        Workload::Idle => {
            let idle = Idle {
                sessions: options.connections,
                dataset,
                logins_in_flight: LOGINS_IN_FLIGHT_MAX,
            };
            idle.run(driver, users).await
        }
        append => {
            let parallel = append == Workload::AppendPar;
            workload::users::append(driver, users, dataset, parallel).await
        }
    })
}

/// Runs one workload against a server, on the calling thread (its sessions are local tasks of
/// one current-thread runtime). Errors only when it cannot start; everything that went wrong
/// afterwards is in the report (`failures`, `broken`, `timed_out`).
pub fn run_blocking(options: &LoadOptions) -> Result<LoadRun, LoadError> {
    check_bounds(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(options))
}

async fn run(options: &LoadOptions) -> Result<LoadRun, LoadError> {
    let imap = resolve(&options.imap, options.allow_remote).await?;
    let lmtp = match &options.lmtp {
        Some(addr) => Some(resolve(addr, options.allow_remote).await?),
        None => None,
    };
    let sampler = match options.pid {
        Some(pid) => Some(Sampler::start(pid, rss::SAMPLE_PERIOD)?),
        None => None,
    };
    let dataset_seed = {
        use rand::{RngCore as _, SeedableRng as _};
        rand_chacha::ChaCha8Rng::seed_from_u64(options.seed).next_u64()
    };
    let (phases, measured) = options.workload.phases();
    let driver = Rc::new(TcpDriver::new(
        imap,
        lmtp,
        dataset_seed,
        sampler,
        phases,
        measured,
    ));
    driver.start();
    let limit = Duration::from_secs(options.max_seconds);
    let result = tokio::time::timeout(limit, drive(options, driver.clone())).await;
    let mut notes = Vec::new();
    let (timed_out, workload_run) = match result {
        Ok(Ok(run)) => (false, run),
        Ok(Err(e)) => {
            notes.push(format!("{}: {e}", options.workload));
            (false, WorkloadRun::default())
        }
        Err(_) => {
            notes.push(format!(
                "{}: stopped after --max-seconds {}",
                options.workload, options.max_seconds
            ));
            (true, WorkloadRun::default())
        }
    };
    for name in ["measure_start", "measure_end"] {
        if driver.mark_ms(name).is_none() {
            driver.mark(name);
        }
    }
    driver.mark("end");
    Ok(build(options, &driver, workload_run, timed_out, notes))
}

/// Whether an outcome's session ended on a broken or closed connection or a refused login, and
/// how many of its commands were cut without an answer.
fn broken(outcome: &workload::ClientOutcome) -> (bool, u64) {
    const ENDINGS: [&str; 6] = [
        "connect failed",
        "no greeting",
        "LOGIN ",
        "session ended early",
        "steps ended early",
        "preload ended early",
    ];
    let cut = outcome
        .stats
        .failures
        .iter()
        .filter(|f| matches!(f, Failure::Broken { .. }))
        .count() as u64;
    let ended = outcome
        .notes
        .iter()
        .any(|n| ENDINGS.iter().any(|p| n.starts_with(p)));
    (cut > 0 || ended, cut)
}

/// Assembles the report from the context's outcomes, marks and samples.
fn build(
    options: &LoadOptions,
    driver: &TcpDriver,
    run: WorkloadRun,
    timed_out: bool,
    notes: Vec<String>,
) -> LoadRun {
    let series = driver
        .sampler()
        .map_or_else(Series::default, Sampler::snapshot);
    let outcomes: Vec<_> = run.outcomes.into_values().collect();
    let mut latency = latency_histogram();
    let (mut commands, mut unexpected, mut unparsable, mut mismatches) = (0, 0, 0, 0);
    let mut failures = notes;
    for outcome in outcomes.iter() {
        let stats = &outcome.stats;
        commands += stats.commands;
        unexpected += stats.unexpected;
        unparsable += stats.unparsable;
        mismatches += outcome.mismatches;
        latency
            .add(&stats.latency_us)
            .expect("histograms of the same precision add");
        failures.extend(stats.failures.iter().map(describe));
        failures.extend(outcome.notes.iter().cloned());
    }
    failures.truncate(FAILURES_KEPT_MAX);
    let (broken, cut) = outcomes
        .iter()
        .map(broken)
        .fold((0, 0), |(b, c), (is, cut)| (b + u64::from(is), c + cut));
    let at = |name: &str| series.mark(name).copied();
    let start = at("measure_start").unwrap_or_default();
    let end = at("measure_end").unwrap_or_default();
    let peak = series.peak_between(start.ms, end.ms);
    let sessions = options.connections.max(1) as u64;
    let idle = options.workload == Workload::Idle && driver.sampler().is_some();
    let per_idle = idle
        .then(|| at("idle"))
        .flatten()
        .map(|idle| idle.rss_bytes.saturating_sub(start.rss_bytes) / sessions);
    let baseline_pss = series.mark_pss("measure_start").unwrap_or(0);
    let per_idle_pss = idle
        .then(|| series.mark_pss("idle"))
        .flatten()
        .map(|pss| pss.saturating_sub(baseline_pss) / sessions);
    let figures = run.figures;
    let ms = |name: &str| driver.mark_ms(name).unwrap_or(0);
    let first = series.samples.first().copied().unwrap_or_default();
    let last = at("end").unwrap_or_default();
    let ticks_to_ms = |t: u64| t * 1000 / rss::CLOCK_TICKS_PER_SECOND;
    let quantile = |q: f64| quantile_us(&latency, q);
    let report = LoadReport {
        scenario: options.workload.as_str().to_string(),
        seed: options.seed,
        server_peak_bytes: peak,
        server_live_end_bytes: end.rss_bytes,
        server_allocs: 0,
        server_alloc_bytes: 0,
        commands,
        unexpected,
        p50_us: quantile(0.5),
        p99_us: quantile(0.99),
        unparsable,
        mismatches,
        max_us: if latency.is_empty() {
            0
        } else {
            latency.lowest_equivalent(latency.max())
        },
        above_baseline_bytes: peak.saturating_sub(start.rss_bytes),
        per_idle_session_bytes: per_idle,
        budget_ok: false,
        server: options.label.clone(),
        baseline_bytes: start.rss_bytes,
        baseline_pss_bytes: baseline_pss,
        per_idle_session_pss_bytes: per_idle_pss,
        p90_us: quantile(0.9),
        cpu_ms: ticks_to_ms(last.cpu_ticks.saturating_sub(first.cpu_ticks)),
        measured_cpu_ms: ticks_to_ms(end.cpu_ticks.saturating_sub(start.cpu_ticks)),
        answered: commands.saturating_sub(cut),
        broken,
        elapsed_ms: ms("end"),
        measured_ms: ms("measure_end").saturating_sub(ms("measure_start")),
        processes_max: series.processes_max(),
        timed_out,
        sampled: driver.sampler().is_some(),
        figures,
        failures,
        measured_phases: driver
            .marks()
            .into_iter()
            .filter(|n| n != "start" && n != "end")
            .collect(),
    };
    let mut report = report;
    report.budget_ok = report.is_clean() && !timed_out;
    LoadRun { report, series }
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Unparsable { command, bytes } => format!(
            "{command}: imap-proto cannot parse {:?}",
            String::from_utf8_lossy(bytes)
        ),
        Failure::Unexpected {
            command,
            expected,
            line,
        } => format!("{command}: expected {expected}, got {line:?}"),
        Failure::Broken { command, error } => format!("{command}: {error}"),
    }
}

/// Where `imapsim load` writes by default: `$CARGO_TARGET_DIR/imapsim/load`, else the
/// workspace's `target/imapsim/load`.
pub fn output_dir() -> PathBuf {
    crate::output_root().join("load")
}

/// The `figures.json` text of some runs: an array of their reports.
pub fn figures_json(runs: &[&LoadRun]) -> String {
    let reports: Vec<&LoadReport> = runs.iter().map(|r| &r.report).collect();
    serde_json::to_string_pretty(&reports).expect("load reports serialise")
}

/// Writes `figures.json` and `memory.svg` (when memory was sampled) into `dir`; returns the
/// files written.
pub fn write(dir: &Path, runs: &[&LoadRun]) -> Result<Vec<PathBuf>, LoadError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let json = dir.join("figures.json");
    std::fs::write(&json, figures_json(runs) + "\n").map_err(write_err(&json))?;
    let mut written = vec![json];
    if runs.iter().any(|r| !r.series.samples.is_empty()) {
        let svg = dir.join("memory.svg");
        let title = runs
            .first()
            .map(|r| format!("{}: resident memory", r.report.scenario))
            .unwrap_or_default();
        plot::memory_svg(&svg, &title, runs)?;
        written.push(svg);
    }
    Ok(written)
}

/// The run's figures as text lines for the terminal.
pub fn summary(report: &LoadReport) -> String {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / workload::MIB as f64);
    let mut lines = vec![
        format!("workload                  {}", report.scenario),
        format!("server                    {}", report.server),
        format!("seed                      {}", report.seed),
        format!(
            "commands                  {} ({} answered)",
            report.commands, report.answered
        ),
        format!("unexpected                {}", report.unexpected),
        format!("unparsable                {}", report.unparsable),
        format!("content mismatches        {}", report.mismatches),
        format!("broken sessions           {}", report.broken),
        format!(
            "latency p50/p90/p99/max   {} / {} / {} / {} us",
            report.p50_us, report.p90_us, report.p99_us, report.max_us
        ),
        format!("elapsed                   {} ms", report.elapsed_ms),
        format!("measured phase            {} ms", report.measured_ms),
    ];
    if report.sampled {
        lines.extend([
            format!("RSS baseline              {}", mib(report.baseline_bytes)),
            format!(
                "RSS peak                  {}",
                mib(report.server_peak_bytes)
            ),
            format!(
                "RSS end                   {}",
                mib(report.server_live_end_bytes)
            ),
            format!(
                "peak above baseline       {}",
                mib(report.above_baseline_bytes)
            ),
            format!(
                "CPU                       {:.2} s ({:.2} s measured)",
                report.cpu_ms as f64 / 1000.0,
                report.measured_cpu_ms as f64 / 1000.0
            ),
            format!("processes (max)           {}", report.processes_max),
        ]);
        lines.push(format!(
            "PSS baseline              {}",
            mib(report.baseline_pss_bytes)
        ));
        if let Some(per_idle) = report.per_idle_session_bytes {
            lines.push(format!("per idle session (RSS)    {per_idle} B"));
        }
        if let Some(per_idle) = report.per_idle_session_pss_bytes {
            lines.push(format!("per idle session (PSS)    {per_idle} B"));
        }
    }
    for (name, value) in &report.figures {
        lines.push(format!("{name:<25} {value}"));
    }
    for failure in &report.failures {
        lines.push(format!("failure: {failure}"));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests;
