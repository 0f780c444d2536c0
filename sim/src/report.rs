//! The report (`imapsim report`): runs every scenario, each on its own thread under a wall-time
//! bound, and writes under `target/imapsim/report/` a table of every scenario's figures against
//! its budget and target beside the reference servers' published figures (`report.md`,
//! `index.html`), the scaling curves with their least-squares slopes, `figures.json` (one object
//! per scenario run) and SVG plots (`plots/`).
//!
//! Everything written is a function of the scenarios' reports: no wall clock reaches the files
//! (the wall time of each run is printed on the progress lines only).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::budget::{reproduce_command, Budgets};
use crate::figures::{BudgetVerdict, JsonReport, Report};
use crate::plots::{self, Curve};
use crate::scenarios::workloads::SCALE_EMAIL_BYTES;
use crate::scenarios::Scenario;

/// Default wall-time bound of one scenario run in `imapsim report`, in seconds.
pub const RUN_BOUND_S_DEFAULT: u64 = 600;

/// Where `imapsim report` writes: `$CARGO_TARGET_DIR/imapsim/report`, else the workspace's
/// `target/imapsim/report`.
pub fn output_dir() -> PathBuf {
    bench::output_root().join("report")
}

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder of the report could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A run's budget verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within its budgets.toml row.
    Ok,
    /// Over budget: the failure message.
    Over(String),
    /// budgets.toml has no row for the scenario.
    NoBudget,
    /// The counting allocator was not installed: nothing was measured.
    NotMeasured,
}

impl Verdict {
    /// The verdict of `report` against `budgets`.
    pub fn of(report: &Report, budgets: &Budgets) -> Verdict {
        match report.check_budget(budgets) {
            Ok(()) => Verdict::Ok,
            Err(BudgetVerdict::Over(over)) => Verdict::Over(over.to_string()),
            Err(BudgetVerdict::NoBudget(_)) => Verdict::NoBudget,
            Err(BudgetVerdict::NotMeasured) => Verdict::NotMeasured,
        }
    }

    /// Whether the budget held (the `budget_ok` of `run --json`).
    pub fn budget_ok(&self) -> bool {
        *self == Verdict::Ok
    }

    fn cell(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Over(_) => "OVER",
            Verdict::NoBudget => "none",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One scenario's run in the report: its figures and verdict, or why it has none.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Scenario name.
    pub scenario: String,
    /// Root seed.
    pub seed: u64,
    /// The report and its budget verdict, or the error that ended the run.
    pub result: Result<(Report, Verdict), String>,
}

impl Entry {
    /// The entry of a completed run.
    pub fn ran(report: Report, verdict: Verdict) -> Entry {
        Entry {
            scenario: report.scenario.clone(),
            seed: report.seed,
            result: Ok((report, verdict)),
        }
    }

    /// The report, if the run completed.
    pub fn report(&self) -> Option<&Report> {
        self.result.as_ref().ok().map(|(r, _)| r)
    }

    /// Whether the run completed within budget with every answer right.
    pub fn is_ok(&self) -> bool {
        match &self.result {
            Ok((report, verdict)) => {
                report.is_clean() && matches!(verdict, Verdict::Ok | Verdict::NoBudget)
            }
            Err(_) => false,
        }
    }

    /// One word on the outcome: ok, OVER BUDGET, WRONG ANSWERS or FAILED.
    pub fn status(&self) -> &'static str {
        match &self.result {
            Err(_) => "FAILED",
            Ok((report, _)) if !report.is_clean() => "WRONG ANSWERS",
            Ok((_, Verdict::Over(_))) => "OVER BUDGET",
            Ok(_) => "ok",
        }
    }
}

/// The seed a scenario runs with in the report: its budget row's, else 1.
pub fn seed_of(budgets: &Budgets, scenario: &str) -> u64 {
    budgets.get(scenario).map_or(1, |b| b.seed)
}

/// Runs `scenario` with `seed` on a thread of its own and waits at most `bound` of wall time.
/// A run that panics or outlives the bound is an error (an outlived run's thread is left to
/// finish on its own: a simulation cannot be stopped from outside; its accounts are its own).
pub fn run_bounded(
    scenario: &'static Scenario,
    seed: u64,
    bound: Duration,
) -> Result<Report, String> {
    let name = scenario.name;
    let (tx, rx) = std::sync::mpsc::channel();
    let simulation = scenario.spawn(seed);
    // A watcher joins the simulation thread, so that its panic reaches us as a message. The
    // receiver is gone only when the run outlived its bound.
    std::thread::spawn(move || {
        let _ = tx.send(simulation.join());
    });
    let reproduce = reproduce_command(name, seed);
    match rx.recv_timeout(bound) {
        Ok(Ok(result)) => result.map_err(|e| format!("{e}; reproduce: {reproduce}")),
        Ok(Err(payload)) => {
            let cause = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(format!("panicked: {cause}; reproduce: {reproduce}"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "did not complete within the report's bound of {} s of wall time; reproduce: {reproduce}",
            bound.as_secs()
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(format!(
            "the run ended without a result; reproduce: {reproduce}"
        )),
    }
}

/// Runs `scenarios` one after the other, each bounded by `bound`, writing a progress line per
/// scenario to `progress` (with its wall time: that goes nowhere else).
pub fn run_all(
    scenarios: &'static [Scenario],
    budgets: &Budgets,
    bound: Duration,
    progress: &mut dyn std::io::Write,
) -> Vec<Entry> {
    let total = scenarios.len();
    let mut entries = Vec::with_capacity(total);
    for (i, scenario) in scenarios.iter().enumerate() {
        let seed = seed_of(budgets, scenario.name);
        let _ = write!(
            progress,
            "[{}/{total}] {} seed {seed}: ",
            i + 1,
            scenario.name
        );
        let _ = progress.flush();
        // Wall time for the progress line only; nothing inside the simulation reads it.
        let started = std::time::Instant::now();
        let entry = match run_bounded(scenario, seed, bound) {
            Ok(report) => {
                let verdict = Verdict::of(&report, budgets);
                Entry {
                    scenario: scenario.name.to_string(),
                    seed,
                    result: Ok((report, verdict)),
                }
            }
            Err(error) => Entry {
                scenario: scenario.name.to_string(),
                seed,
                result: Err(error),
            },
        };
        let detail = match &entry.result {
            Err(error) => format!(": {error}"),
            Ok((_, Verdict::NoBudget)) => " (no budget row)".to_string(),
            Ok(_) => String::new(),
        };
        let _ = writeln!(
            progress,
            "{}{detail} ({:.1} s)",
            entry.status(),
            started.elapsed().as_secs_f64()
        );
        entries.push(entry);
    }
    entries
}

/// A least-squares line through points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Bytes per unit of x.
    pub slope: f64,
    /// Bytes at x = 0.
    pub intercept: f64,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// A scaling series: which scenarios are its points and which figure of theirs it follows.
pub struct SeriesSpec {
    /// Key in figures.json's `slopes` (`idle_bytes_per_session`...).
    pub name: &'static str,
    /// What it measures, for the report.
    pub title: &'static str,
    /// Unit of x, singular (`session`, `email`).
    pub unit: &'static str,
    /// Its points: (scenario, x).
    pub points: Vec<(&'static str, u64)>,
    /// The figure, in bytes, from a point's report.
    pub value: fn(&Report) -> Option<u64>,
    /// The target, in bytes per unit of x, if there is one.
    pub target_per_unit: Option<u64>,
}

/// Bytes held by the idle sessions of an idle scenario: the server's live bytes after its
/// "idle" phase (every session logged in, INBOX selected, in IDLE) minus before it.
pub fn idle_bytes(report: &Report) -> Option<u64> {
    let sessions = report.figures.get("idle_sessions").copied();
    match (
        report.phase("idle"),
        sessions,
        report.per_idle_session_bytes,
    ) {
        (Some(phase), _, _) => Some(
            phase
                .server_live_end_bytes
                .saturating_sub(phase.server_live_start_bytes),
        ),
        (None, Some(n), Some(per)) => Some(n * per),
        _ => None,
    }
}

fn figure(report: &Report, name: &str) -> Option<u64> {
    report.figures.get(name).copied()
}

/// The points of a scaling series: `{prefix}_100`, `_1k` and `_10k` on that many emails.
fn mailbox_points(prefix: &str) -> Vec<(&'static str, u64)> {
    [(100, "100"), (1_000, "1k"), (10_000, "10k")]
        .iter()
        .filter_map(|&(n, suffix)| {
            let name = format!("{prefix}_{suffix}");
            let scenario = crate::scenarios::find(&name).ok()?;
            Some((scenario.name, n))
        })
        .collect()
}

/// A target of budgets.toml: `pick` of the row of `scenario`.
fn budget_target(scenario: &str, pick: fn(&crate::budget::Budget) -> Option<u64>) -> Option<u64> {
    Budgets::builtin().ok()?.get(scenario).ok().and_then(pick)
}

/// The report's scaling series (issue #5, item 5).
pub fn series_specs() -> Vec<SeriesSpec> {
    vec![
        SeriesSpec {
            name: "idle_bytes_per_session",
            title: "live bytes of N sessions in IDLE (1-email INBOXes)",
            unit: "session",
            points: vec![
                ("idle_10", 10),
                ("idle_100", 100),
                ("idle_1k", 1_000),
                ("idle_10k", 10_000),
            ],
            value: idle_bytes,
            target_per_unit: budget_target("idle_1k", |b| b.target_bytes),
        },
        SeriesSpec {
            name: "select_peak_bytes_per_email",
            title: "SELECT INBOX: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_select"),
            value: |r| figure(r, "select_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "fetch_full_peak_bytes_per_email",
            title: "FETCH 1:* FULL: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_fetch_full"),
            value: |r| figure(r, "fetch_full_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "search_meta_peak_bytes_per_email",
            title: "SEARCH 1:* UNSEEN: peak above baseline",
            unit: "email",
            points: mailbox_points("scale_search"),
            value: |r| figure(r, "search_meta_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "search_body_peak_bytes_per_email",
            title: "SEARCH TEXT (every body read): peak above baseline",
            unit: "email",
            points: mailbox_points("scale_search"),
            value: |r| figure(r, "search_body_above_baseline_bytes"),
            target_per_unit: None,
        },
        SeriesSpec {
            name: "index_bytes_per_email",
            title: "index of the selected mailbox (live bytes selected minus unselected)",
            unit: "email",
            points: mailbox_points("scale_select"),
            value: |r| figure(r, "index_bytes"),
            target_per_unit: budget_target("scale_select_1k", |b| b.index_bytes_per_email_target),
        },
    ]
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its scenario.
    pub scenario: &'static str,
    /// x: sessions or emails.
    pub n: u64,
    /// The figure, or why there is none.
    pub bytes: Result<u64, String>,
}

/// A series as measured.
pub struct Series {
    /// Its definition.
    pub spec: SeriesSpec,
    /// Its points, in x order.
    pub points: Vec<Point>,
    /// The least-squares line through the measured points.
    pub fit: Option<Fit>,
}

/// The scaling series of `entries` (points whose scenario is absent say so).
pub fn scaling_series(entries: &[Entry]) -> Vec<Series> {
    series_specs()
        .into_iter()
        .map(|spec| {
            let points: Vec<Point> = spec
                .points
                .iter()
                .map(|&(scenario, n)| {
                    let bytes = match entries.iter().find(|e| e.scenario == scenario) {
                        None => Err("not run".to_string()),
                        Some(Entry { result: Err(e), .. }) => Err(format!("failed: {e}")),
                        Some(Entry {
                            result: Ok((report, _)),
                            ..
                        }) => (spec.value)(report).ok_or_else(|| "not measured".to_string()),
                    };
                    Point { scenario, n, bytes }
                })
                .collect();
            let measured: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| p.bytes.as_ref().ok().map(|&b| (p.n as f64, b as f64)))
                .collect();
            Series {
                fit: least_squares(&measured),
                spec,
                points,
            }
        })
        .collect()
}

/// Rounds to two decimals (the slopes as figures.json and the tables show them).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One object of figures.json: the `run --json` keys, then the report's.
#[derive(Serialize)]
struct FigureObject<'a> {
    #[serde(flatten)]
    json: JsonReport<'a>,
    /// Idle scenarios: sessions in IDLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<u64>,
    /// Slopes of the scaling series this run is a point of, in bytes per unit, by series.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    slopes: BTreeMap<&'static str, f64>,
}

/// figures.json's object for a run that did not complete.
#[derive(Serialize)]
struct FailedObject<'a> {
    scenario: &'a str,
    seed: u64,
    error: &'a str,
}

/// Either object, serialised as itself (fields in declaration order).
#[derive(Serialize)]
#[serde(untagged)]
enum Object<'a> {
    Ran(FigureObject<'a>),
    Failed(FailedObject<'a>),
}

/// The `figures.json` array: one object per scenario run, with the keys of `imapsim run --json`
/// (among them `above_baseline_bytes`, `target_bytes`, `per_idle_session_bytes`), `sessions` for
/// idle scenarios and `slopes` for the points of scaling series; a run that did not complete is
/// `{scenario, seed, error}`.
pub fn figures_json(entries: &[Entry]) -> String {
    let series = scaling_series(entries);
    let objects: Vec<Object<'_>> = entries
        .iter()
        .map(|entry| match &entry.result {
            Ok((report, verdict)) => Object::Ran(FigureObject {
                json: JsonReport {
                    report,
                    budget_ok: verdict.budget_ok(),
                },
                sessions: report.figures.get("idle_sessions").copied(),
                slopes: series
                    .iter()
                    .filter(|s| s.points.iter().any(|p| p.scenario == entry.scenario))
                    .filter_map(|s| s.fit.map(|f| (s.spec.name, round2(f.slope))))
                    .collect(),
            }),
            Err(error) => Object::Failed(FailedObject {
                scenario: &entry.scenario,
                seed: entry.seed,
                error,
            }),
        })
        .collect();
    serde_json::to_string_pretty(&objects).expect("reports serialise")
}

/// A piece of the report, rendered as Markdown or HTML.
enum Block {
    Heading(u8, String),
    Paragraph(String),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    List(Vec<String>),
    /// (text, address).
    Links(Vec<(String, String)>),
    /// (path relative to the report, caption).
    Image(String, String),
}

fn bytes_cell(bytes: u64) -> String {
    if bytes == 0 {
        "-".to_string()
    } else {
        format!("{bytes} ({})", plots::human_bytes(bytes as f64))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

const TABLE_HEADER: [&str; 12] = [
    "scenario",
    "seed",
    "server peak B",
    "above baseline B",
    "target B",
    "per idle session B",
    "live at end B",
    "commands",
    "unexpected",
    "p99 us",
    "budget",
    "status",
];

fn table_row(entry: &Entry) -> Vec<String> {
    match &entry.result {
        Ok((r, verdict)) => vec![
            entry.scenario.clone(),
            r.seed.to_string(),
            r.server_peak_bytes.to_string(),
            r.above_baseline_bytes.to_string(),
            r.target_bytes.to_string(),
            r.per_idle_session_bytes
                .map_or("-".to_string(), |b| b.to_string()),
            r.server_live_end_bytes.to_string(),
            r.commands.to_string(),
            r.unexpected.to_string(),
            r.p99_us.to_string(),
            verdict.cell().to_string(),
            entry.status().to_string(),
        ],
        Err(_) => {
            let mut row = vec![entry.scenario.clone(), entry.seed.to_string()];
            row.extend((2..TABLE_HEADER.len() - 1).map(|_| "-".to_string()));
            row.push(entry.status().to_string());
            row
        }
    }
}

/// The figures as an aligned text table, for the terminal.
pub fn text_table(entries: &[Entry]) -> String {
    let all: Vec<Vec<String>> = std::iter::once(TABLE_HEADER.map(String::from).to_vec())
        .chain(entries.iter().map(table_row))
        .collect();
    let widths: Vec<usize> = (0..TABLE_HEADER.len())
        .map(|c| all.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &all {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// A comparison with the reference servers' published figures.
struct Reference {
    experiment: &'static str,
    scenario: &'static str,
    /// Which figure of the scenario is compared.
    figure: &'static str,
    aerogramme: &'static str,
    dovecot: &'static str,
}

const REFERENCES: [Reference; 7] = [
    Reference {
        experiment: "IDLE: memory per idle user / connection",
        scenario: "idle_16",
        figure: "per idle session",
        aerogramme: "~2 MB RSS per user, linear in users (16 users in IDLE; \"1k users = 2 GB\") [1]; IDLE still keeps the whole user profile in memory after the rework [2]",
        dovecot: "~5 MB RSS per connection (one imap process each); 5-13 KiB per hibernated IDLE connection (imap-hibernate) [3]",
    },
    Reference {
        experiment: "FETCH 1:* FULL on 1k emails",
        scenario: "fetch_full",
        figure: "above baseline",
        aerogramme: "300 MB spike: the whole mailbox fetched before answering, and >1024 file descriptors [1]; ~40 MB after streaming, capped by the biggest email (25 MB x a small constant) [2]",
        dovecot: "-",
    },
    Reference {
        experiment: "SEARCH on body text, 1k emails",
        scenario: "search_body",
        figure: "above baseline",
        aerogramme: "same profile as FETCH FULL (~300 MB) [1]; ~40 MB after streaming [2]",
        dovecot: "-",
    },
    Reference {
        experiment: "SEARCH on metadata (the trace's SEARCH commands), 1k emails",
        scenario: "search_meta",
        figure: "above baseline",
        aerogramme: "~10 MB loaded for the request [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "APPEND 100 emails x 16 users in parallel",
        scenario: "append_par",
        figure: "above baseline",
        aerogramme: "400 MB peak [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "APPEND 100 emails x 16 users one after the other",
        scenario: "append_seq",
        figure: "above baseline",
        aerogramme: "spikes ~50 MB, ~25 MB between, ~18 MB at the end [1]",
        dovecot: "-",
    },
    Reference {
        experiment: "COPY then MOVE of 1k emails",
        scenario: "copy_move",
        figure: "above baseline",
        aerogramme: "< 25 MB (~40 s of CPU) [1]",
        dovecot: "-",
    },
];

const REFERENCE_LINKS: [(&str, &str); 3] = [
    (
        "[1] Aerogramme, \"Does Aerogramme use too much memory?\" (2024-02-15): RSS of the Aerogramme process (psrecord), single-node Garage; the figures as summarised in shared/traces/SOURCE.md, whose dataset and trace imapsim replays",
        "https://aerogramme.deuxfleurs.fr/blog/2024-ram-usage-encryption-s3/",
    ),
    (
        "[2] Aerogramme's follow-up post on predictability (2024; source: git.deuxfleurs.fr/Deuxfleurs/aerogramme.deuxfleurs.fr, content/blog/2024-predictability-and-correctness/index.md): FETCH and SEARCH reworked to stream, \"used up to 40MB of RAM\"; IDLE keeps the whole user profile (shared/FACTS.md, \"The reference server\")",
        "https://aerogramme.deuxfleurs.fr/blog/2024-predictability-and-correctness/",
    ),
    (
        "[3] Dovecot: the figures issue #5 quotes; no published measurement of them is in shared/ and none was found, so read them as indicative. Dovecot's documentation of hibernation describes the mechanism, without figures",
        "https://doc.dovecot.org/configuration_manual/hibernation/",
    ),
];

fn reference_rows(entries: &[Entry], series: &[Series]) -> Vec<Vec<String>> {
    REFERENCES
        .iter()
        .map(|reference| {
            let report = entries
                .iter()
                .find(|e| e.scenario == reference.scenario)
                .and_then(Entry::report);
            let measured = match report {
                None => format!(
                    "{}: not measured (run failed or absent)",
                    reference.scenario
                ),
                Some(r) => {
                    let bytes = if reference.figure == "per idle session" {
                        r.per_idle_session_bytes.unwrap_or(0)
                    } else {
                        r.above_baseline_bytes
                    };
                    let mut text = format!(
                        "{}: {} {} (heap)",
                        reference.scenario,
                        plots::human_bytes(bytes as f64),
                        reference.figure
                    );
                    if reference.scenario == "idle_16" {
                        if let Some(fit) = series
                            .iter()
                            .find(|s| s.spec.name == "idle_bytes_per_session")
                            .and_then(|s| s.fit)
                        {
                            let _ = write!(
                                text,
                                "; slope over idle_N: {} per session",
                                plots::human_bytes(fit.slope)
                            );
                        }
                    }
                    text
                }
            };
            let target = report.map_or("-".to_string(), |r| {
                plots::human_bytes(r.target_bytes as f64)
            });
            vec![
                reference.experiment.to_string(),
                measured,
                target,
                reference.aerogramme.to_string(),
                reference.dovecot.to_string(),
            ]
        })
        .collect()
}

fn series_blocks(series: &[Series], blocks: &mut Vec<Block>) {
    for s in series {
        blocks.push(Block::Heading(
            3,
            format!("{} ({})", s.spec.title, s.spec.name),
        ));
        let slope = match s.fit {
            Some(fit) => format!(
                "Least-squares slope: **{:.2} B per {}** (intercept {:.0} B), over the {} measured points.",
                fit.slope,
                s.spec.unit,
                fit.intercept,
                s.points.iter().filter(|p| p.bytes.is_ok()).count()
            ),
            None => {
                "Slope: not computed (fewer than two measured points; a slope needs two N).".to_string()
            }
        };
        let target = s.spec.target_per_unit.map_or(String::new(), |t| {
            format!(" Target: {t} B per {}.", s.spec.unit)
        });
        blocks.push(Block::Paragraph(format!("{slope}{target}")));
        blocks.push(Block::Table {
            header: vec![
                format!("{}s", s.spec.unit),
                "scenario".into(),
                "bytes".into(),
                format!("bytes per {}", s.spec.unit),
            ],
            rows: s
                .points
                .iter()
                .map(|p| match &p.bytes {
                    Ok(bytes) => vec![
                        p.n.to_string(),
                        p.scenario.to_string(),
                        bytes_cell(*bytes),
                        format!("{:.1}", *bytes as f64 / p.n.max(1) as f64),
                    ],
                    Err(why) => vec![
                        p.n.to_string(),
                        p.scenario.to_string(),
                        one_line(why),
                        "-".into(),
                    ],
                })
                .collect(),
        });
    }
}

/// Where a scenario's heap plot is written, relative to the report folder.
pub fn heap_plot_path(scenario: &str) -> String {
    format!("plots/heap_{scenario}.svg")
}

/// The scaling charts: (path relative to the report folder, caption, names of their series).
const SCALING_CHARTS: [(&str, &str, &[&str]); 3] = [
    (
        "plots/scaling_idle.svg",
        "Live bytes of N idle sessions against N (log-log), with the 4 KiB per session target",
        &["idle_bytes_per_session"],
    ),
    (
        "plots/scaling_mailbox.svg",
        "Peaks above baseline of SELECT, FETCH FULL and SEARCH against the mailbox's emails (log-log)",
        &[
            "select_peak_bytes_per_email",
            "fetch_full_peak_bytes_per_email",
            "search_meta_peak_bytes_per_email",
            "search_body_peak_bytes_per_email",
        ],
    ),
    (
        "plots/scaling_index.svg",
        "Index bytes of a selected mailbox against its emails (log-log), with the 64 B per email target",
        &["index_bytes_per_email"],
    ),
];

fn document(entries: &[Entry], plot_notes: &[String]) -> Vec<Block> {
    let series = scaling_series(entries);
    let mut blocks = vec![
        Block::Heading(1, "imapsim report".into()),
        Block::Paragraph(format!(
            "{} scenario runs: {} ok, {} over budget or with wrong answers, {} failed. Figures are the \
             server host's heap in bytes, counted by the allocator, one seed each (a seed replays its run; a few \
             scenarios still differ by some bytes of peak between runs); latencies in simulated microseconds. \"above baseline\" is the highest peak of \
             the scenario's measured steps minus the live bytes just before the step; \"target\" is the \
             issue's target for it; \"budget\" is the scenario's row in budgets.toml (none: no row).",
            entries.len(),
            entries.iter().filter(|e| e.is_ok()).count(),
            entries.iter().filter(|e| e.result.is_ok() && !e.is_ok()).count(),
            entries.iter().filter(|e| e.result.is_err()).count(),
        )),
        Block::Heading(2, "Figures against budgets and targets".into()),
        Block::Table {
            header: TABLE_HEADER.map(String::from).to_vec(),
            rows: entries.iter().map(table_row).collect(),
        },
        Block::Heading(2, "Beside the reference servers' published figures".into()),
        Block::Paragraph(
            "The reference figures are process RSS (resident memory of the whole process, binary and \
             allocator slack included) measured on a real machine; imapsim's are heap bytes of the server \
             host above the live bytes before the step, counted exactly in a simulation. They are not the \
             same measure: compare orders of magnitude."
                .into(),
        ),
        Block::Table {
            header: vec![
                "experiment".into(),
                "imapsim (measured)".into(),
                "imapsim target".into(),
                "Aerogramme (published)".into(),
                "Dovecot".into(),
            ],
            rows: reference_rows(entries, &series),
        },
        Block::Links(
            REFERENCE_LINKS
                .iter()
                .map(|(text, url)| (text.to_string(), url.to_string()))
                .collect(),
        ),
        Block::Heading(2, "Scaling".into()),
        Block::Paragraph(format!(
            "How cost grows: idle sessions for N in {{10, 100, 1k, 10k}}; SELECT, FETCH FULL and SEARCH \
             on INBOXes of 100, 1k and 10k emails of {} B each; and the index of a selected mailbox (live \
             bytes with INBOX selected minus unselected). Each slope is the least-squares line through the \
             measured points (bytes per session or per email); figures.json gives it as `slopes` on each \
             point's object.",
            SCALE_EMAIL_BYTES
        )),
    ];
    for (path, caption, _) in SCALING_CHARTS {
        blocks.push(Block::Image(path.to_string(), caption.to_string()));
    }
    series_blocks(&series, &mut blocks);
    blocks.push(Block::Heading(2, "Heap over simulated time".into()));
    blocks.push(Block::Paragraph(
        "Each scenario's server live heap, sampled every 10 ms of simulated time, with its phases \
         marked (a labelled line at each start; the red segments are each phase's exact peak; measured \
         phases shaded). A long preload gets a second panel on what follows it."
            .into(),
    ));
    let mut without = Vec::new();
    for entry in entries {
        match entry.report() {
            Some(r) if !r.samples.is_empty() => blocks.push(Block::Image(
                heap_plot_path(&entry.scenario),
                format!("{} (seed {})", entry.scenario, entry.seed),
            )),
            Some(_) => without.push(entry.scenario.clone()),
            None => {}
        }
    }
    if !without.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "No heap sampler in: {}.",
            without.join(", ")
        )));
    }
    let mut problems = Vec::new();
    for entry in entries {
        match &entry.result {
            Err(error) => problems.push(format!(
                "{} (seed {}): FAILED: {}",
                entry.scenario,
                entry.seed,
                one_line(error)
            )),
            Ok((report, verdict)) => {
                let name = &entry.scenario;
                if report.scenario != *name {
                    problems.push(format!(
                        "{name}: its report names another scenario, {}",
                        report.scenario
                    ));
                }
                if let Verdict::Over(message) = verdict {
                    problems.push(format!("{name}: {}", one_line(message)));
                }
                for failure in &report.failures {
                    problems.push(format!("{name}: {}", one_line(failure)));
                }
            }
        }
    }
    problems.extend(plot_notes.iter().cloned());
    if !problems.is_empty() {
        blocks.push(Block::Heading(2, "Failures".into()));
        blocks.push(Block::List(problems));
    }
    blocks
}

fn markdown_cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn render_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Table { header, rows } => {
                let _ = writeln!(
                    out,
                    "| {} |",
                    header
                        .iter()
                        .map(|h| markdown_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        row.iter()
                            .map(|c| markdown_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                out.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", one_line(item));
                }
                out.push('\n');
            }
            Block::Links(links) => {
                for (text, url) in links {
                    let _ = writeln!(out, "- {text}: <{url}>");
                }
                out.push('\n');
            }
            Block::Image(path, caption) => {
                let _ = writeln!(out, "![{caption}]({path})\n");
            }
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// HTML of a paragraph: escaped, with Markdown's `**bold**` and `` `code` `` kept.
fn html_inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in html_escape(text).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            for (j, piece) in part.split('`').enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<code>{piece}</code>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;\
text-align:right;vertical-align:top}td:first-child,th:first-child{text-align:left}\
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}";

fn render_html(blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>imapsim report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", html_escape(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", html_inline(text));
            }
            Block::Table { header, rows } => {
                out.push_str("<table>\n<tr>");
                for h in header {
                    let _ = write!(out, "<th>{}</th>", html_escape(h));
                }
                out.push_str("</tr>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", html_escape(cell));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", html_escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Links(links) => {
                out.push_str("<ul>\n");
                for (text, url) in links {
                    let url = html_escape(url);
                    let _ = writeln!(
                        out,
                        "<li>{}: <a href=\"{url}\">{url}</a></li>",
                        html_escape(text)
                    );
                }
                out.push_str("</ul>\n");
            }
            Block::Image(path, caption) => {
                let (path, caption) = (html_escape(path), html_escape(caption));
                let _ = writeln!(
                    out,
                    "<figure><a href=\"{path}\"><img src=\"{path}\" alt=\"{caption}\" loading=\"lazy\"></a><figcaption>{caption}</figcaption></figure>"
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The report as Markdown (`report.md`).
pub fn markdown(entries: &[Entry]) -> String {
    render_markdown(&document(entries, &[]))
}

/// The report as HTML (`index.html`), the plots embedded from `plots/`.
pub fn html(entries: &[Entry]) -> String {
    render_html(&document(entries, &[]))
}

/// Every plot of the report: (path relative to the report folder, SVG text), and a note for each
/// plot that could not be drawn.
pub fn svg_plots(entries: &[Entry]) -> (Vec<(String, String)>, Vec<String>) {
    let mut plots_out = Vec::new();
    let mut notes = Vec::new();
    for entry in entries {
        let Some(report) = entry.report() else {
            continue;
        };
        match plots::heap_over_time(report) {
            Ok(Some(svg)) => plots_out.push((heap_plot_path(&entry.scenario), svg)),
            Ok(None) => {}
            Err(e) => notes.push(format!("plot of {}: {e}", entry.scenario)),
        }
    }
    let series = scaling_series(entries);
    for (path, caption, names) in SCALING_CHARTS {
        let mut curves = Vec::new();
        for s in series.iter().filter(|s| names.contains(&s.spec.name)) {
            let measured: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| p.bytes.as_ref().ok().map(|&b| (p.n as f64, b as f64)))
                .collect();
            let slope = s.fit.map_or(String::new(), |f| {
                format!(", slope {:.1} B/{}", f.slope, s.spec.unit)
            });
            let missing: Vec<&str> = s
                .points
                .iter()
                .filter(|p| p.bytes.is_err())
                .map(|p| p.scenario)
                .collect();
            let missing = if missing.is_empty() {
                String::new()
            } else {
                format!(" (no figure: {})", missing.join(", "))
            };
            curves.push(Curve {
                label: format!("{}{slope}{missing}", s.spec.title),
                points: measured,
                reference: false,
            });
            if let Some(target) = s.spec.target_per_unit {
                curves.push(Curve {
                    label: format!("target: {target} B per {}", s.spec.unit),
                    points: s
                        .points
                        .iter()
                        .map(|p| (p.n as f64, (p.n * target) as f64))
                        .collect(),
                    reference: true,
                });
            }
        }
        let x_desc = if path.contains("idle") {
            "sessions in IDLE"
        } else {
            "emails in INBOX"
        };
        match plots::scaling_chart(caption, x_desc, "bytes", &curves) {
            Ok(svg) => plots_out.push((path.to_string(), svg)),
            Err(e) => notes.push(format!("plot {path}: {e}")),
        }
    }
    (plots_out, notes)
}

/// The files of a written report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// `index.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `figures.json`.
    pub figures: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `index.html`, `report.md`, `figures.json` and `plots/*.svg` into `dir` (SVGs left
/// there by an earlier report are removed first).
pub fn write(dir: &Path, entries: &[Entry]) -> Result<Written, ReportError> {
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(io_error(&plots_dir))?;
    for old in std::fs::read_dir(&plots_dir).map_err(io_error(&plots_dir))? {
        let path = old.map_err(io_error(&plots_dir))?.path();
        if path.extension().is_some_and(|e| e == "svg") {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    let (svgs, notes) = svg_plots(entries);
    let mut plots_written = Vec::new();
    for (relative, svg) in svgs {
        let path = dir.join(relative);
        std::fs::write(&path, svg).map_err(io_error(&path))?;
        plots_written.push(path);
    }
    let blocks = document(entries, &notes);
    let written = Written {
        html: dir.join("index.html"),
        markdown: dir.join("report.md"),
        figures: dir.join("figures.json"),
        plots: plots_written,
    };
    std::fs::write(&written.html, render_html(&blocks)).map_err(io_error(&written.html))?;
    std::fs::write(&written.markdown, render_markdown(&blocks))
        .map_err(io_error(&written.markdown))?;
    std::fs::write(&written.figures, figures_json(entries) + "\n")
        .map_err(io_error(&written.figures))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::Figures;
    use crate::figures::Phase;
    use crate::harness::RunFigures;
    use std::collections::BTreeMap;

    fn report(name: &str, peak: u64) -> Report {
        let run = RunFigures {
            server: Figures {
                live_bytes: 10,
                peak_bytes: peak,
                allocs: 3,
                alloc_bytes: 120,
            },
            fakes3: Figures::default(),
            clients: Figures::default(),
            harness: Figures::default(),
            sim_elapsed: std::time::Duration::from_millis(5),
            unaccounted_allocs: 0,
        };
        let mut report = Report::build(name, 9, &run, &BTreeMap::new(), Vec::new());
        report.samples = vec![(10, 5), (20, peak)];
        report
    }

    /// An idle_N report whose N sessions hold `per` bytes each (plus 1,000 shared).
    fn idle(name: &str, n: u64, per: u64) -> Entry {
        let mut r = report(name, 1);
        r.phases.push(Phase {
            name: "idle".into(),
            server_peak_bytes: 0,
            server_live_end_bytes: 5_000 + 1_000 + n * per,
            server_allocs: 0,
            server_live_start_bytes: 5_000,
            start_ms: 0,
            end_ms: 1,
        });
        r.per_idle_session_bytes = Some((1_000 + n * per) / n);
        r.figures.insert("idle_sessions".into(), n);
        Entry::ran(r, Verdict::Ok)
    }

    fn index(name: &str, emails: u64, bytes: u64) -> Entry {
        let mut r = report(name, 1);
        r.figures.insert("index_bytes".into(), bytes);
        r.figures.insert("emails".into(), emails);
        Entry::ran(r, Verdict::NoBudget)
    }

    fn sample_entries() -> Vec<Entry> {
        vec![
            Entry::ran(report("demo", 100), Verdict::Ok),
            idle("idle_10", 10, 3_000),
            idle("idle_100", 100, 3_000),
            Entry {
                scenario: "idle_1k".into(),
                seed: 1,
                result: Err("simulation failed: Ran for duration <600s>".into()),
            },
            index("scale_select_1k", 1_000, 50_000),
            index("scale_select_10k", 10_000, 770_000),
        ]
    }

    #[test]
    fn least_squares_finds_the_slope_of_a_line_and_needs_two_distinct_x() {
        let fit = least_squares(&[(10.0, 1_030.0), (100.0, 10_030.0), (1_000.0, 100_030.0)])
            .expect("three points");
        assert!((fit.slope - 100.0).abs() < 1e-9, "{fit:?}");
        assert!((fit.intercept - 30.0).abs() < 1e-6, "{fit:?}");
        assert_eq!(least_squares(&[(1.0, 2.0)]), None);
        assert_eq!(least_squares(&[(5.0, 2.0), (5.0, 3.0)]), None);
        let noisy = least_squares(&[(0.0, 0.0), (1.0, 2.0), (2.0, 2.0), (3.0, 4.0)]).expect("fit");
        assert!((noisy.slope - 1.2).abs() < 1e-9, "{noisy:?}");
    }

    #[test]
    fn scaling_series_fit_measured_points_and_name_the_failed_ones() {
        let series = scaling_series(&sample_entries());
        let idle = series
            .iter()
            .find(|s| s.spec.name == "idle_bytes_per_session")
            .expect("idle series");
        let fit = idle.fit.expect("two measured points");
        assert!((fit.slope - 3_000.0).abs() < 1e-6, "{fit:?}");
        let failed = idle
            .points
            .iter()
            .find(|p| p.scenario == "idle_1k")
            .expect("idle_1k point");
        assert!(matches!(&failed.bytes, Err(e) if e.contains("Ran for duration")));
        let absent = idle.points.iter().find(|p| p.scenario == "idle_10k");
        assert_eq!(absent.map(|p| p.bytes.clone()), Some(Err("not run".into())));
        let index = series
            .iter()
            .find(|s| s.spec.name == "index_bytes_per_email")
            .expect("index series");
        assert!((index.fit.expect("two points").slope - 80.0).abs() < 1e-9);
    }

    #[test]
    fn figures_json_has_one_object_per_run_with_the_run_json_keys_and_the_report_keys() {
        let text = figures_json(&sample_entries());
        assert!(
            text.starts_with("[\n  {\n    \"scenario\": \"demo\",\n    \"seed\": 9,"),
            "the keys keep run --json's order: {text}"
        );
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let objects = json.as_array().expect("an array");
        assert_eq!(objects.len(), sample_entries().len());
        let demo = objects[0].as_object().expect("an object");
        for key in [
            "scenario",
            "seed",
            "server_peak_bytes",
            "server_live_end_bytes",
            "server_allocs",
            "server_alloc_bytes",
            "commands",
            "unexpected",
            "p50_us",
            "p99_us",
            "budget_ok",
            "above_baseline_bytes",
            "target_bytes",
            "per_idle_session_bytes",
        ] {
            assert!(demo.contains_key(key), "missing key {key}");
        }
        assert_eq!(demo["server_peak_bytes"], 100);
        assert_eq!(demo["budget_ok"], true);
        assert!(!demo.contains_key("sessions") && !demo.contains_key("slopes"));
        let idle = objects[1].as_object().expect("an object");
        assert_eq!(idle["sessions"], 10);
        assert_eq!(idle["per_idle_session_bytes"], 3_100);
        assert_eq!(idle["slopes"]["idle_bytes_per_session"], 3_000.0);
        assert_eq!(objects[3]["scenario"], "idle_1k");
        assert!(objects[3]["error"]
            .as_str()
            .expect("an error")
            .contains("Ran for duration"));
        assert_eq!(objects[4]["budget_ok"], false);
        assert_eq!(objects[4]["slopes"]["index_bytes_per_email"], 80.0);
    }

    #[test]
    fn markdown_and_html_show_every_run_the_references_and_the_slopes() {
        let entries = sample_entries();
        let md = markdown(&entries);
        assert!(md.contains("| demo | 9 | 100 |"), "{md}");
        assert!(md.contains("| idle_1k | 1 | - |"), "{md}");
        assert!(md.contains("FAILED"), "{md}");
        assert!(md.contains("**3000.00 B per session**"), "{md}");
        assert!(md.contains("**80.00 B per email**"), "{md}");
        assert!(md.contains("~2 MB RSS per user"), "{md}");
        assert!(md.contains("5-13 KiB per hibernated"), "{md}");
        assert!(md.contains("300 MB spike"), "{md}");
        assert!(md.contains("(plots/heap_demo.svg)"), "{md}");
        let page = html(&entries);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(
            page.contains("<img src=\"plots/scaling_idle.svg\""),
            "{page}"
        );
        assert!(page.contains("<img src=\"plots/heap_demo.svg\""), "{page}");
        assert!(
            page.contains("<strong>3000.00 B per session</strong>"),
            "{page}"
        );
        assert!(
            page.contains("<td>demo</td><td>9</td><td>100</td>"),
            "{page}"
        );
    }

    #[test]
    fn entries_are_named_by_the_registry_even_when_a_report_says_otherwise() {
        let entry = Entry {
            scenario: "fault_x".into(),
            seed: 2,
            result: Ok((report("demo", 5), Verdict::NoBudget)),
        };
        let md = markdown(std::slice::from_ref(&entry));
        assert!(md.contains("| fault_x | 9 | 5 |"), "{md}");
        assert!(md.contains("(plots/heap_fault_x.svg)"), "{md}");
        assert!(
            md.contains("fault_x: its report names another scenario, demo"),
            "{md}"
        );
        let (plots, notes) = svg_plots(&[entry]);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(plots
            .iter()
            .any(|(path, _)| path == "plots/heap_fault_x.svg"));
    }

    #[test]
    fn html_escapes_what_the_runs_report() {
        let mut r = report("demo", 1);
        r.failures
            .push("client0: expected <OK>, got \"NO & BAD\"".into());
        let page = html(&[Entry::ran(r, Verdict::Ok)]);
        assert!(
            page.contains("expected &lt;OK&gt;, got &quot;NO &amp; BAD&quot;"),
            "{page}"
        );
        assert!(!page.contains("<OK>"));
    }

    #[test]
    fn write_puts_every_file_and_plot_in_the_folder_and_is_deterministic() {
        let dir = std::env::temp_dir().join(format!("imapsim-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("plots")).expect("temp dir");
        std::fs::write(dir.join("plots/heap_stale.svg"), "old").expect("stale plot");
        let entries = sample_entries();
        let written = write(&dir, &entries).expect("written");
        assert!(
            !dir.join("plots/heap_stale.svg").exists(),
            "stale plots removed"
        );
        for path in [&written.html, &written.markdown, &written.figures] {
            assert!(path.exists(), "{}", path.display());
        }
        let names: Vec<String> = written
            .plots
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for name in [
            "heap_demo.svg",
            "heap_idle_10.svg",
            "scaling_idle.svg",
            "scaling_mailbox.svg",
            "scaling_index.svg",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        for plot in &written.plots {
            let svg = std::fs::read_to_string(plot).expect("readable");
            crate::plots::tests::well_formed_texts(&svg);
        }
        let first = std::fs::read(&written.html).expect("html");
        write(&dir, &entries).expect("written again");
        assert_eq!(std::fs::read(&written.html).expect("html"), first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_that_outlives_its_bound_or_panics_is_an_error_not_an_abort() {
        fn slow(_: u64) -> Result<Report, crate::figures::ScenarioError> {
            std::thread::sleep(Duration::from_millis(500));
            Err(crate::figures::ScenarioError::Unknown("late".into()))
        }
        fn panics(_: u64) -> Result<Report, crate::figures::ScenarioError> {
            panic!("boom in a scenario")
        }
        static SLOW: Scenario = Scenario {
            name: "slow",
            description: "sleeps",
            body: crate::scenarios::Body::Custom(slow),
        };
        static PANICS: Scenario = Scenario {
            name: "panics",
            description: "panics",
            body: crate::scenarios::Body::Custom(panics),
        };
        let late = run_bounded(&SLOW, 4, Duration::from_millis(20)).expect_err("bounded");
        assert!(late.contains("did not complete within"), "{late}");
        assert!(late.contains("run slow --seed 4"), "{late}");
        let panicked = run_bounded(&PANICS, 1, Duration::from_secs(30)).expect_err("panicked");
        assert!(panicked.contains("boom in a scenario"), "{panicked}");
    }
}
