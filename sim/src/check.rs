//! `imapsim run NAME --seed N --check`: the run twice, each in a fresh process, and when they
//! differ, the first allocation that differs: its host, its number among that host's
//! allocations, its size in both runs and where the second run made it.
//!
//! The first child logs every allocation of its simulation ([`crate::alloc_log`]); the second
//! compares each of its own with that log as it goes and takes a backtrace at the first that
//! differs, so the backtrace is of the very allocation, not of a third run that may differ again.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The options a `run` child gets to log its allocations (hidden on the command line).
pub const LOG_FLAG: &str = "--alloc-log";
/// The option that gives a child the first run's log to compare with.
pub const COMPARE_FLAG: &str = "--alloc-compare";

/// What a logged child leaves beside its log: the divergence it found, as text.
fn divergence_path(log: &Path) -> PathBuf {
    log.with_extension("divergence")
}

/// In a `run` child: writes the log of the run that just ended to `log` and, when it was
/// compared with a reference, what differed first.
pub fn save_log(log: &Path) -> std::io::Result<()> {
    let (bytes, divergence, _) = crate::alloc_log::finish();
    std::fs::write(log, bytes)?;
    let text = match divergence {
        None => String::new(),
        Some(d) => {
            let host = crate::alloc_log::account_name(d.account);
            let before = match d.reference {
                Some((account, size)) => format!(
                    "{size} B on {} in the first run",
                    crate::alloc_log::account_name(account)
                ),
                None => "none in the first run, which had ended".to_string(),
            };
            format!(
                "first allocation that differs: host {host}, its allocation #{} (#{} of the run): \
                 {} B here, {before}\nwhere the second run made it:\n{}",
                d.account_seq, d.index, d.size, d.backtrace
            )
        }
    };
    std::fs::write(divergence_path(log), text)
}

/// Runs `name` with `seed` in two fresh processes of this binary and compares them; prints what
/// it found and returns whether the runs were identical.
pub fn run_twice(name: &str, seed: u64) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let dir = std::env::temp_dir().join(format!("imapsim-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let first_log = dir.join("first.log");
    let second_log = dir.join("second.log");
    let child = |log: &Path, reference: Option<&Path>| -> Result<String, String> {
        let mut command = Command::new(&exe);
        command.args(["run", name, "--seed", &seed.to_string(), "--json", LOG_FLAG]);
        command.arg(log);
        if let Some(reference) = reference {
            command.arg(COMPARE_FLAG).arg(reference);
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let json = String::from_utf8_lossy(&output.stdout).into_owned();
        if !json.trim_start().starts_with('{') {
            return Err(format!(
                "the run printed no figures:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(json)
    };
    let first = child(&first_log, None)?;
    let second = child(&second_log, Some(&first_log))?;
    let divergence = std::fs::read_to_string(divergence_path(&second_log)).unwrap_or_default();
    let allocations = std::fs::metadata(&first_log).map_or(0, |m| m.len() / 8);
    let _ = std::fs::remove_dir_all(&dir);
    let same = first == second && divergence.is_empty();
    if same {
        println!(
            "{name} seed {seed}: two fresh processes gave the same figures and the same \
             {allocations} allocations, in the same order"
        );
    } else {
        if first != second {
            println!("{name} seed {seed}: two fresh processes gave different figures");
        }
        if divergence.is_empty() {
            println!("the allocations were the same, in the same order");
        } else {
            println!("{divergence}");
        }
    }
    Ok(same)
}
