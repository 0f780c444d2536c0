//! `imapsim`: list and run the simulation scenarios, write the report, serve the real server
//! on loopback with an embedded in-memory store, drive any IMAP server with a workload (`load`),
//! or compare imapsim with Dovecot (`compare`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sim::budget::{reproduce_command, Budgets};
use sim::figures::{JsonReport, Report};
use sim::regression::Recorded;
use sim::scenarios;
use sim::verdict::RunVerdict;

sim::simulation_binary!();

#[derive(Parser)]
#[command(
    name = "imapsim",
    about = "Deterministic memory simulation of an IMAP server over S3 + K2V"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios and their budgets.
    List,
    /// Runs one scenario and prints its figures; exit status 1 if over budget or any answer was wrong.
    Run {
        /// Scenario name (see `imapsim list`).
        scenario: String,
        /// Root seed (default: the seed of the scenario's budget).
        #[arg(long)]
        seed: Option<u64>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Runs it twice, each in a fresh process, and names the first allocation that differs.
        #[arg(long)]
        check: bool,
        /// Writes every allocation of the run to this file (for --check).
        #[arg(long = "alloc-log", hide = true)]
        alloc_log: Option<PathBuf>,
        /// Compares every allocation with this earlier run's log (for --check).
        #[arg(long = "alloc-compare", hide = true, requires = "alloc_log")]
        alloc_compare: Option<PathBuf>,
    },
    /// Serves IMAP and LMTP on loopback with an in-process fakes3 store, until Ctrl-C.
    Serve {
        /// IMAP listen address [default: 127.0.0.1:1143].
        #[arg(long)]
        imap: Option<String>,
        /// LMTP listen address [default: 127.0.0.1:1024].
        #[arg(long)]
        lmtp: Option<String>,
        /// A user, NAME:PASSWORD (repeatable; default alice:alice-password and bob:bob-password).
        #[arg(long = "user")]
        users: Vec<String>,
        /// A TOML file with `imap`, `lmtp` and `[[users]]` (name, password).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs every scenario (each bounded in wall time), prints the table, writes
    /// target/imapsim/report/{index.html,report.md,figures.json,plots/*.svg}.
    Report {
        /// Wall-time bound of each scenario run, in seconds: a run past it is recorded as failed.
        #[arg(long, default_value_t = sim::report::RUN_BOUND_S_DEFAULT)]
        bound_s: u64,
    },
    /// Runs a scenario with K seeds (FIRST..FIRST+K) and prints the worst seed of each figure;
    /// for a fault scenario also the faults injected and every seed that broke an invariant.
    Explore {
        /// Scenario name.
        scenario: String,
        /// How many seeds.
        #[arg(long, default_value_t = 8)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        first: u64,
    },
    /// Runs every scenario and rewrites the root figures.json.
    Record {
        /// Takes the figures of the runs in this report figures.json (`report` writes it under
        /// target/imapsim/report/) instead of running the scenarios again.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Prints each scenario's change between two figures files.
    Diff {
        /// The old figures.json.
        old: PathBuf,
        /// The new figures.json.
        new: PathBuf,
    },
    /// Drives any IMAP server over real TCP with a workload; with --pid, samples its memory.
    Load(LoadArgs),
    /// Runs each workload against `imapsim serve` and a private Dovecot; writes a table and plots.
    Compare(CompareArgs),
}

/// `imapsim load` options.
#[derive(clap::Args)]
struct LoadArgs {
    /// IMAP server, HOST:PORT.
    #[arg(long)]
    imap: String,
    /// LMTP server, HOST:PORT (idle's new emails; without it they arrive by APPEND).
    #[arg(long)]
    lmtp: Option<String>,
    /// A user, NAME:PASSWORD (repeatable; at least one).
    #[arg(long = "user", required = true)]
    users: Vec<String>,
    /// Workload: trace_replay, append_seq, append_par, idle, fetch_all, fetch_full, fetch_body,
    /// search_body, copy_move, store_flags.
    #[arg(long)]
    workload: String,
    /// The server's process id: samples VmRSS and CPU of it and its descendants every 50 ms.
    #[arg(long)]
    pid: Option<u32>,
    /// Root seed of the emails and the trace workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sessions of the idle workload.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Emails per mailbox [default: 100 per user for append_*, 1 for idle, 1,000 otherwise].
    #[arg(long)]
    emails: Option<usize>,
    /// Replay the trace's sessions up to this many commands [default: all].
    #[arg(long)]
    trace_commands: Option<usize>,
    /// How long a replayed IDLE waits before DONE, in milliseconds.
    #[arg(long, default_value_t = 200)]
    idle_wait_ms: u64,
    /// Stop (and fail) after this many seconds.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Allow non-loopback addresses.
    #[arg(long)]
    allow_remote: bool,
    /// Server name in the figures and plot.
    #[arg(long, default_value = "server")]
    label: String,
    /// Output folder for figures.json and memory.svg [default: target/imapsim/load].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `imapsim compare` options.
#[derive(clap::Args)]
struct CompareArgs {
    /// Workloads, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Users (user1@imapsim.test ...).
    #[arg(long, default_value_t = 4)]
    users: usize,
    /// Sessions of the idle workload.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Emails per mailbox [default: per workload, as `load`].
    #[arg(long)]
    emails: Option<usize>,
    /// Replay the trace's sessions up to this many commands [default: all].
    #[arg(long)]
    trace_commands: Option<usize>,
    /// Root seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Longest one run may take, in seconds.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// Output folder [default: target/imapsim/compare].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let budgets = match Budgets::builtin() {
        Ok(budgets) => budgets,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::List => list(&budgets),
        Command::Run {
            scenario,
            seed,
            json,
            check,
            alloc_log,
            alloc_compare,
        } => {
            if check {
                let seed = seed.unwrap_or_else(|| default_seed(&budgets, &scenario));
                return match sim::check::run_twice(&scenario, seed) {
                    Ok(true) => ExitCode::SUCCESS,
                    Ok(false) => ExitCode::FAILURE,
                    Err(e) => {
                        eprintln!("imapsim: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            if let Some(log) = &alloc_log {
                let reference = match alloc_compare.map(std::fs::read).transpose() {
                    Ok(reference) => reference,
                    Err(e) => {
                        eprintln!("imapsim: cannot read the log to compare with: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                sim::alloc_log::start(reference);
                let code = run(&budgets, &scenario, seed, json);
                if let Err(e) = sim::check::save_log(log) {
                    eprintln!("imapsim: cannot write {}: {e}", log.display());
                    return ExitCode::FAILURE;
                }
                return code;
            }
            run(&budgets, &scenario, seed, json)
        }
        Command::Serve {
            imap,
            lmtp,
            users,
            config,
        } => serve(imap, lmtp, &users, config),
        Command::Report { bound_s } => report(&budgets, bound_s),
        Command::Explore {
            scenario,
            seeds,
            first,
        } => explore(&scenario, first, seeds),
        Command::Record { from: None } => record(&budgets),
        Command::Record { from: Some(path) } => record_from(&path),
        Command::Diff { old, new } => diff(&old, &new),
        Command::Load(args) => load(args),
        Command::Compare(args) => compare(args),
    }
}

fn list(budgets: &Budgets) -> ExitCode {
    println!(
        "{:<16} {:>6} {:>16} {:>18}  description",
        "scenario", "seed", "above base max B", "per idle max B"
    );
    let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for s in scenarios::all() {
        match budgets.get(s.name) {
            Ok(b) => println!(
                "{:<16} {:>6} {:>16} {:>18}  {}",
                s.name,
                b.seed,
                show(b.above_baseline_bytes_max.or(b.server_peak_bytes_max)),
                show(b.per_idle_session_bytes_max),
                s.description
            ),
            Err(_) => println!(
                "{:<16} {:>6} {:>16} {:>18}  {}",
                s.name, "-", "(no budget)", "-", s.description
            ),
        }
    }
    ExitCode::SUCCESS
}

fn default_seed(budgets: &Budgets, scenario: &str) -> u64 {
    budgets.get(scenario).map(|b| b.seed).unwrap_or(1)
}

/// Runs a scenario and judges it as the tests do; `Err` carries the message when it could not
/// complete.
fn run_one(
    budgets: &Budgets,
    name: &str,
    seed: u64,
) -> Result<(Report, RunVerdict, Option<Recorded>), String> {
    let scenario = scenarios::find(name).map_err(|e| e.to_string())?;
    let report = scenario
        .run(seed)
        .map_err(|e| format!("{e}\nreproduce: {}", reproduce_command(name, seed)))?;
    let recorded = sim::regression::load(&sim::regression::committed_path()).ok();
    let verdict = RunVerdict::of(&report, budgets, recorded.as_ref());
    Ok((report, verdict, recorded))
}

fn run(budgets: &Budgets, name: &str, seed: Option<u64>, json: bool) -> ExitCode {
    let seed = seed.unwrap_or_else(|| default_seed(budgets, name));
    let preamble = format!("SEED={seed} scenario={name} json={json}");
    if json {
        eprintln!("{preamble}");
    } else {
        println!("{preamble}");
    }
    let (report, verdict, recorded) = match run_one(budgets, name, seed) {
        Ok(result) => result,
        Err(message) => {
            eprintln!("imapsim: {message}");
            return ExitCode::FAILURE;
        }
    };
    let budget_ok = verdict.budget.is_none();
    if json {
        let object = JsonReport {
            report: &report,
            budget_ok,
        };
        println!(
            "{}",
            serde_json::to_string(&object).expect("reports serialise")
        );
    } else {
        print_figures(&report, budget_ok);
        println!(
            "\n{}",
            sim::verdict::figure_table(&report, budgets.get(name).ok(), recorded.as_ref())
        );
        if let Some(why) = &verdict.not_compared {
            println!("not compared with figures.json: {why}");
        }
    }
    for failure in verdict.failures() {
        eprintln!("{failure}");
    }
    if !report.is_clean() {
        for failure in &report.failures {
            eprintln!("failure: {failure}");
        }
        eprintln!("reproduce: {}", reproduce_command(name, seed));
    }
    if verdict.ok() && report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_figures(r: &Report, budget_ok: bool) {
    let rows: [(&str, String); 18] = [
        ("scenario", r.scenario.clone()),
        ("seed", r.seed.to_string()),
        ("server peak bytes", r.server_peak_bytes.to_string()),
        (
            "server live bytes at end",
            r.server_live_end_bytes.to_string(),
        ),
        ("server allocations", r.server_allocs.to_string()),
        ("server bytes allocated", r.server_alloc_bytes.to_string()),
        ("commands", r.commands.to_string()),
        ("unexpected responses", r.unexpected.to_string()),
        ("unparsable responses", r.unparsable.to_string()),
        ("content mismatches", r.mismatches.to_string()),
        ("latency p50 (sim us)", r.p50_us.to_string()),
        ("latency p99 (sim us)", r.p99_us.to_string()),
        ("fakes3 peak bytes", r.fakes3_peak_bytes.to_string()),
        ("clients peak bytes", r.clients_peak_bytes.to_string()),
        ("simulated time (ms)", r.sim_elapsed_ms.to_string()),
        ("unaccounted allocations", r.unaccounted_allocs.to_string()),
        (
            "received bytes blake2b",
            r.received_hash[..32].to_string() + "…",
        ),
        (
            "budget",
            if budget_ok {
                "ok".to_string()
            } else {
                "OVER".to_string()
            },
        ),
    ];
    for (label, value) in rows {
        println!("{label:<26} {value}");
    }
    // Per-command figures (trace_replay): NAME_count, NAME_p50_us, NAME_p99_us.
    let commands: Vec<&str> = r
        .figures
        .keys()
        .filter_map(|k| k.strip_suffix("_count"))
        .collect();
    if !commands.is_empty() {
        println!(
            "\n{:<12} {:>7} {:>12} {:>12}",
            "command", "count", "p50 us", "p99 us"
        );
        for name in commands {
            let get = |suffix: &str| {
                r.figures
                    .get(&format!("{name}{suffix}"))
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "{name:<12} {:>7} {:>12} {:>12}",
                get("_count"),
                get("_p50_us"),
                get("_p99_us")
            );
        }
    }
}

fn serve(
    imap: Option<String>,
    lmtp: Option<String>,
    users: &[String],
    config: Option<PathBuf>,
) -> ExitCode {
    server::listener::return_large_blocks_to_the_system();
    let options = match sim::serve::resolve(imap, lmtp, users, config.as_deref()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("imapsim: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(sim::serve::serve(options));
    // Sessions still open are cancelled; give them a moment to close their sockets.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imapsim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(budgets: &Budgets, bound_s: u64) -> ExitCode {
    // Wall time for stderr only: nothing written to the report reads it.
    let started = std::time::Instant::now();
    let entries = sim::report::run_all(
        scenarios::all(),
        budgets,
        std::time::Duration::from_secs(bound_s),
        &mut std::io::stderr(),
    );
    print!("{}", sim::report::text_table(&entries));
    let dir = sim::report::output_dir();
    match sim::report::write(&dir, &entries) {
        Ok(written) => println!(
            "wrote {}, {}, {} and {} plots in {}",
            written.html.display(),
            written.markdown.display(),
            written.figures.display(),
            written.plots.len(),
            dir.join("plots").display()
        ),
        Err(e) => {
            eprintln!("imapsim: cannot write the report: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "report: {} scenario runs in {:.1} s of wall time",
        entries.len(),
        started.elapsed().as_secs_f64()
    );
    if entries.iter().all(sim::report::Entry::is_ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn explore(name: &str, first: u64, seeds: u64) -> ExitCode {
    let scenario = match scenarios::find(name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Worst (highest) value of each tracked figure, with its seed.
    let mut worst: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    // Seeds that failed, with why: the hand-over to whoever fixes it.
    let mut failed: Vec<(u64, String)> = Vec::new();
    let (mut faults, mut violations) = (0, 0);
    for seed in first..first.saturating_add(seeds) {
        match scenario.run(seed) {
            Ok(report) => {
                let fault_note = if report.faults_injected > 0 || report.violations > 0 {
                    format!(
                        ", {} faults injected, {} violations",
                        report.faults_injected, report.violations
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "seed {seed}: above baseline {} B, peak {} B{fault_note}{}",
                    report.above_baseline_bytes,
                    report.server_peak_bytes,
                    if report.is_clean() { "" } else { " (WRONG)" }
                );
                faults += report.faults_injected;
                violations += report.violations;
                if !report.is_clean() {
                    let why = report.failures.first().cloned().unwrap_or_default();
                    failed.push((seed, why));
                }
                for (figure, value) in sim::regression::tracked(&report) {
                    let entry = worst.entry(figure).or_insert((value, seed));
                    if value > entry.0 {
                        *entry = (value, seed);
                    }
                }
            }
            Err(e) => {
                eprintln!("seed {seed}: FAILED: {e}");
                failed.push((seed, e.to_string()));
            }
        }
    }
    println!("{:<26} {:>14} {:>6}", "figure", "worst B", "seed");
    for (figure, (value, seed)) in worst {
        println!("{figure:<26} {value:>14} {seed:>6}");
    }
    println!(
        "{seeds} seeds from {first}: {faults} faults injected, {violations} invariant violations, {} seeds failed",
        failed.len()
    );
    for (seed, why) in &failed {
        println!(
            "seed {seed}: {why}\n  reproduce: {}",
            reproduce_command(name, *seed)
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn record(budgets: &Budgets) -> ExitCode {
    let mut recorded = sim::regression::Recorded::new();
    // Every scenario, the report-only ones included: `cargo test --release -- --ignored` checks
    // them against figures.json too.
    for s in scenarios::all() {
        let seed = default_seed(budgets, s.name);
        match s.run(seed) {
            Ok(report) => {
                eprintln!("{} seed {seed}: recorded", s.name);
                recorded.insert(s.name.to_string(), sim::regression::tracked(&report));
            }
            Err(e) => eprintln!("{} seed {seed}: FAILED, not recorded: {e}", s.name),
        }
    }
    save_recorded(&recorded)
}

/// Writes `recorded` to the root figures.json (both `record` forms end here).
fn save_recorded(recorded: &sim::regression::Recorded) -> ExitCode {
    let path = sim::regression::committed_path();
    match sim::regression::save(&path, recorded) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imapsim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `record --from`: the tracked figures of every run a report wrote (a failed run is left out).
fn record_from(path: &std::path::Path) -> ExitCode {
    let entries: Vec<serde_json::Value> = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("imapsim: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut recorded = sim::regression::Recorded::new();
    for entry in entries {
        match serde_json::from_value::<Report>(entry.clone()) {
            Ok(report) => {
                eprintln!("{} seed {}: recorded", report.scenario, report.seed);
                recorded.insert(report.scenario.clone(), sim::regression::tracked(&report));
            }
            Err(_) => eprintln!("not recorded (a failed run): {entry}"),
        }
    }
    save_recorded(&recorded)
}

fn diff(old: &std::path::Path, new: &std::path::Path) -> ExitCode {
    match (sim::regression::load(old), sim::regression::load(new)) {
        (Ok(a), Ok(b)) => {
            print!("{}", sim::regression::diff(&a, &b));
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("imapsim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: LoadArgs) -> ExitCode {
    let workload = match bench::load::Workload::parse(&args.workload) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let users = match args
        .users
        .iter()
        .map(|u| sim::serve::parse_user(u))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(users) => users,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = bench::load::LoadOptions {
        imap: args.imap,
        lmtp: args.lmtp,
        users,
        workload,
        pid: args.pid,
        seed: args.seed,
        connections: args.connections,
        emails: args.emails,
        trace_commands_max: args.trace_commands,
        idle_wait_ms: args.idle_wait_ms,
        max_seconds: args.max_seconds,
        allow_remote: args.allow_remote,
        label: args.label,
    };
    println!(
        "SEED={} workload={} imap={} pid={:?} label={}",
        options.seed, options.workload, options.imap, options.pid, options.label
    );
    let run = match bench::load::run_blocking(&options) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", bench::load::summary(&run.report));
    let dir = args.out.unwrap_or_else(bench::load::output_dir);
    match bench::load::write(&dir, &[&run]) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
        }
        Err(e) => {
            eprintln!("imapsim: {e}");
            return ExitCode::FAILURE;
        }
    }
    if run.report.budget_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn compare(args: CompareArgs) -> ExitCode {
    let workloads = if args.workloads.is_empty() {
        bench::load::Workload::ALL.to_vec()
    } else {
        match args
            .workloads
            .iter()
            .map(|w| bench::load::Workload::parse(w))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(w) => w,
            Err(e) => {
                eprintln!("imapsim: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    // `serve` is started from this very binary, whatever its file is called.
    let binary = match std::env::current_exe() {
        Ok(binary) => binary,
        Err(e) => {
            eprintln!("imapsim: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = bench::compare::CompareOptions {
        workloads,
        users: args.users,
        connections: args.connections,
        emails: args.emails,
        trace_commands_max: args.trace_commands,
        seed: args.seed,
        max_seconds: args.max_seconds,
        out: args.out.unwrap_or_else(bench::compare::output_dir),
        ..bench::compare::CompareOptions::with_binary(binary)
    };
    println!(
        "SEED={} workloads={} users={} connections={} emails={:?}",
        options.seed,
        options
            .workloads
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()
            .join(","),
        options.users,
        options.connections,
        options.emails
    );
    match bench::compare::run(&options) {
        Ok(pairs) => {
            print!("{}", bench::compare::markdown(&pairs));
            println!(
                "wrote {} (compare.md, figures.json, memory-*.svg)",
                options.out.display()
            );
            let clean = pairs
                .iter()
                .all(|p| p.imapsim.report.broken == 0 && p.dovecot.report.broken == 0);
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("imapsim: {e}");
            ExitCode::FAILURE
        }
    }
}
