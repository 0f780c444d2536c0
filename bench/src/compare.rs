//! `imapsim compare`: for each workload, starts `imapsim serve` (embedded in-memory store) and a
//! private Dovecot (fresh ones each time, so every run starts from the same empty state), drives
//! both with the load driver while sampling their process trees, and writes a Markdown table,
//! `figures.json` and one memory plot per workload (both servers on one chart) under
//! `target/imapsim/compare/`.
//!
//! Also home of [`ServeChild`], an `imapsim serve` child process on ports it picks, which the
//! Garage tests use too.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod ready_line;

use ready_line::ready_addresses;

use crate::dovecot::{Dovecot, DovecotError, DovecotOptions};
use crate::load::{self, LoadError, LoadOptions, LoadRun, Workload};

/// How long `imapsim serve` may take to print its ready line.
const SERVE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What can stop a comparison (wrong answers are in the reports instead).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The imapsim binary could not be found or built.
    #[error("imapsim binary: {0}")]
    Binary(String),
    /// `imapsim serve` did not start.
    #[error("imapsim serve: {0}")]
    Serve(String),
    /// Dovecot did not start.
    #[error("dovecot: {0}")]
    Dovecot(#[from] DovecotError),
    /// A load run could not start, or results could not be written.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An `imapsim serve` child process on loopback ports it picked; killed when dropped.
pub struct ServeChild {
    child: Child,
    /// The IMAP address from its ready line.
    pub imap: String,
    /// The LMTP address from its ready line.
    pub lmtp: String,
}

impl ServeChild {
    /// Starts `binary serve --imap 127.0.0.1:0 --lmtp 127.0.0.1:0 [--config FILE] --user ...`,
    /// its standard error appended to `log`, and waits for its ready line.
    pub fn start(
        binary: &Path,
        config: Option<&Path>,
        users: &[(String, String)],
        log: &Path,
    ) -> Result<ServeChild, CompareError> {
        let err = |e: std::io::Error| CompareError::Serve(format!("{}: {e}", binary.display()));
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(err)?;
        let mut command = Command::new(binary);
        command.args(["serve", "--imap", "127.0.0.1:0", "--lmtp", "127.0.0.1:0"]);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        for (name, password) in users {
            command.arg("--user").arg(format!("{name}:{password}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(err)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CompareError::Serve("no stdout pipe".into()))?;
        // A thread reads the child's output for its whole life (a full pipe would stall it) and
        // hands over the ready line.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addresses) = ready_addresses(&line) {
                    if let Some(tx) = tx.take() {
                        // The parent may have given up waiting: nothing to tell then.
                        let _ = tx.send(addresses);
                    }
                }
            }
        });
        let ready = rx.recv_timeout(SERVE_READY_TIMEOUT);
        let mut serve = ServeChild {
            child,
            imap: String::new(),
            lmtp: String::new(),
        };
        match ready {
            Ok((imap, lmtp)) => {
                serve.imap = imap;
                serve.lmtp = lmtp;
                Ok(serve)
            }
            Err(_) => {
                let status = serve.child.try_wait().ok().flatten();
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(10).collect::<Vec<_>>().join("\n");
                Err(CompareError::Serve(format!(
                    "no ready line within {SERVE_READY_TIMEOUT:?} (exit status {status:?}); log {}:\n{tail}",
                    log.display()
                )))
            }
        }
    }

    /// The process id (the server is one process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        // Already exited is fine; the in-memory store goes with the process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `imapsim` binary to start `serve` from: `$IMAPSIM_BIN`, else this process if it is
/// `imapsim`, else the workspace's release build, brought up to date with
/// `cargo build --release -p sim --bin imapsim` (tests).
pub fn imapsim_binary() -> Result<PathBuf, CompareError> {
    if let Some(bin) = std::env::var_os("IMAPSIM_BIN") {
        return Ok(PathBuf::from(bin));
    }
    if let Ok(me) = std::env::current_exe() {
        if me.file_stem().is_some_and(|s| s == "imapsim") {
            return Ok(me);
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", "sim", "--bin", "imapsim"])
        .output()
        .map_err(|e| CompareError::Binary(format!("{}: {e}", cargo.to_string_lossy())))?;
    if !output.status.success() {
        return Err(CompareError::Binary(format!(
            "cargo build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("release").join("imapsim");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(CompareError::Binary(format!(
            "{} missing after the build",
            bin.display()
        )))
    }
}

/// What to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareOptions {
    /// The imapsim binary `serve` is started from. Default [`imapsim_binary`].
    pub imapsim: PathBuf,
    /// The workloads, in order. Default all ([`Workload::ALL`]).
    pub workloads: Vec<Workload>,
    /// Users, `user1@imapsim.test` ... with passwords `password-1` ... Default 4.
    pub users: usize,
    /// Sessions of the idle workload. Default 100.
    pub connections: usize,
    /// Emails per mailbox. Default per workload ([`Workload::default_emails`]).
    pub emails: Option<usize>,
    /// Trace commands replayed at most. Default all.
    pub trace_commands_max: Option<usize>,
    /// Root seed. Default 1.
    pub seed: u64,
    /// Longest one load run may take, in seconds. Default 900.
    pub max_seconds: u64,
    /// Where results go. Default `target/imapsim/compare`.
    pub out: PathBuf,
}

impl CompareOptions {
    /// Defaults, with the binary found by [`imapsim_binary`].
    pub fn with_binary(imapsim: PathBuf) -> CompareOptions {
        CompareOptions {
            imapsim,
            workloads: Workload::ALL.to_vec(),
            users: 4,
            connections: 100,
            emails: None,
            trace_commands_max: None,
            seed: 1,
            max_seconds: 900,
            out: output_dir(),
        }
    }
}

/// Where `imapsim compare` writes by default.
pub fn output_dir() -> PathBuf {
    load::output_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target/imapsim"), Path::to_path_buf)
        .join("compare")
}

/// Both servers' runs of one workload.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The workload.
    pub workload: Workload,
    /// `imapsim serve`'s run.
    pub imapsim: LoadRun,
    /// Dovecot's run.
    pub dovecot: LoadRun,
}

/// The users of a comparison.
pub fn users(n: usize) -> Vec<(String, String)> {
    (1..=n.max(1))
        .map(|i| (format!("user{i}@imapsim.test"), format!("password-{i}")))
        .collect()
}

fn load_options(options: &CompareOptions, workload: Workload, label: &str) -> LoadOptions {
    LoadOptions {
        workload,
        users: users(options.users),
        seed: options.seed,
        connections: options.connections,
        emails: options.emails,
        trace_commands_max: options.trace_commands_max,
        max_seconds: options.max_seconds,
        label: label.to_string(),
        ..LoadOptions::default()
    }
}

/// Runs every workload against both servers, writing results as it goes; returns the pairs.
pub fn run(options: &CompareOptions) -> Result<Vec<Pair>, CompareError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompareError::Write { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(write_err(&options.out))?;
    let mut pairs = Vec::new();
    for (i, &workload) in options.workloads.iter().enumerate() {
        eprintln!(
            "[{}/{}] {workload}: imapsim serve",
            i + 1,
            options.workloads.len()
        );
        let imapsim = {
            let log = options.out.join(format!("serve-{workload}.log"));
            let serve = ServeChild::start(&options.imapsim, None, &users(options.users), &log)?;
            let load = LoadOptions {
                imap: serve.imap.clone(),
                lmtp: Some(serve.lmtp.clone()),
                pid: Some(serve.pid()),
                ..load_options(options, workload, "imapsim")
            };
            load::run_blocking(&load)?
        };
        eprintln!(
            "[{}/{}] {workload}: dovecot",
            i + 1,
            options.workloads.len()
        );
        let dovecot = {
            let instance = Dovecot::start(&DovecotOptions {
                name: format!("compare-{workload}"),
                users: users(options.users),
                lmtp: true,
                process_limit: (2 * options.connections + 100).max(1_000),
            })?;
            let load = LoadOptions {
                imap: instance.imap.to_string(),
                lmtp: instance.lmtp.map(|a| a.to_string()),
                pid: Some(instance.pid()),
                ..load_options(options, workload, "dovecot")
            };
            load::run_blocking(&load)?
        };
        for run in [&imapsim, &dovecot] {
            eprint!("{}", load::summary(&run.report));
        }
        let svg = options.out.join(format!("memory-{workload}.svg"));
        load::plot::memory_svg(
            &svg,
            &format!("{workload}: resident memory, imapsim vs Dovecot"),
            &[&imapsim, &dovecot],
        )?;
        pairs.push(Pair {
            workload,
            imapsim,
            dovecot,
        });
        write_results(&options.out, &pairs)?;
    }
    Ok(pairs)
}

/// Writes `compare.md` and `figures.json` for the pairs so far; returns their paths.
pub fn write_results(dir: &Path, pairs: &[Pair]) -> Result<(PathBuf, PathBuf), CompareError> {
    let md = dir.join("compare.md");
    std::fs::write(&md, markdown(pairs)).map_err(|source| CompareError::Write {
        path: md.clone(),
        source,
    })?;
    let json = dir.join("figures.json");
    let runs: Vec<&LoadRun> = pairs
        .iter()
        .flat_map(|p| [&p.imapsim, &p.dovecot])
        .collect();
    std::fs::write(&json, load::figures_json(&runs) + "\n").map_err(|source| {
        CompareError::Write {
            path: json.clone(),
            source,
        }
    })?;
    Ok((md, json))
}

/// The comparison table, in Markdown.
pub fn markdown(pairs: &[Pair]) -> String {
    let mib = |b: u64| format!("{:.1}", b as f64 / workload::MIB as f64);
    let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
    let mut out = String::from(
        "# imapsim compare: imapsim serve (in-memory store) vs Dovecot 2.3\n\n\
         Resident memory of each server's process tree (VmRSS summed over the process and its \
         descendants, sampled every 50 ms; Dovecot forks a process per connection, so shared \
         pages count once per process; the PSS column splits them between their processes). \
         Baseline: just before the measured phase; peak and CPU: during it. Per idle session: \
         (memory with every session in IDLE - baseline) / sessions. Latencies are client-side, \
         wall clock.\n\n",
    );
    let header = [
        "workload",
        "server",
        "commands",
        "answered",
        "unexpected",
        "baseline MiB",
        "peak MiB",
        "peak above baseline MiB",
        "per idle session KiB (RSS)",
        "per idle session KiB (PSS)",
        "CPU s (measured)",
        "p50 ms",
        "p99 ms",
        "measured s",
    ];
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for pair in pairs {
        for run in [&pair.imapsim, &pair.dovecot] {
            let r = &run.report;
            let kib =
                |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1024.0));
            let cells = [
                r.scenario.clone(),
                r.server.clone(),
                r.commands.to_string(),
                r.answered.to_string(),
                r.unexpected.to_string(),
                mib(r.baseline_bytes),
                mib(r.server_peak_bytes),
                mib(r.above_baseline_bytes),
                kib(r.per_idle_session_bytes),
                kib(r.per_idle_session_pss_bytes),
                format!("{:.2}", r.measured_cpu_ms as f64 / 1000.0),
                ms(r.p50_us),
                ms(r.p99_us),
                format!("{:.1}", r.measured_ms as f64 / 1000.0),
            ];
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    for pair in pairs {
        for run in [&pair.imapsim, &pair.dovecot] {
            if run.report.failures.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n## Failures: {} on {}\n",
                run.report.scenario, run.report.server
            );
            for failure in &run.report.failures {
                let _ = writeln!(out, "- {failure}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_numbered_from_one_with_a_domain() {
        assert_eq!(
            users(2),
            vec![
                ("user1@imapsim.test".to_string(), "password-1".to_string()),
                ("user2@imapsim.test".to_string(), "password-2".to_string())
            ]
        );
        assert_eq!(users(0).len(), 1, "at least one user");
    }

    #[test]
    fn compare_output_sits_next_to_the_report() {
        let report = crate::output_root().join("report");
        assert_eq!(output_dir().parent(), report.parent());
        assert!(output_dir().ends_with("imapsim/compare"));
    }
}
