//! Regressions below the budget: the committed root file `figures.json` holds every budgeted
//! scenario's current figures; a figure more than 5% above its recorded value is a regression.
//! `imapsim record` rewrites the file, `imapsim diff OLD NEW` compares two of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::figures::Report;

/// A figure may rise this many percent above its recorded value.
pub const TOLERANCE_PERCENT: u64 = 5;

/// Figures by scenario, then by figure name.
pub type Recorded = BTreeMap<String, BTreeMap<String, u64>>;

/// Errors reading or writing a figures file.
#[derive(Debug, thiserror::Error)]
pub enum RegressionError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a JSON object of objects of integers.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Names another figures file than the committed one (tests plant a regression with it).
pub const FIGURES_VARIABLE: &str = "IMAPSIM_FIGURES_JSON";

/// The committed file: `figures.json` at the workspace root (or the file [`FIGURES_VARIABLE`]
/// names).
pub fn committed_path() -> PathBuf {
    if let Some(path) = std::env::var_os(FIGURES_VARIABLE) {
        return PathBuf::from(path);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).join("figures.json")
}

/// The figures of a report that are tracked for regressions.
pub fn tracked(report: &Report) -> BTreeMap<String, u64> {
    let mut figures = BTreeMap::from([
        ("server_peak_bytes".to_string(), report.server_peak_bytes),
        (
            "server_live_end_bytes".to_string(),
            report.server_live_end_bytes,
        ),
        (
            "above_baseline_bytes".to_string(),
            report.above_baseline_bytes,
        ),
        ("session_base_bytes".to_string(), report.session_base_bytes),
    ]);
    if let Some(bytes) = report.per_idle_session_bytes {
        figures.insert("per_idle_session_bytes".to_string(), bytes);
    }
    figures
}

/// Reads a figures file.
pub fn load(path: &Path) -> Result<Recorded, RegressionError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegressionError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RegressionError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a figures file.
pub fn save(path: &Path, recorded: &Recorded) -> Result<(), RegressionError> {
    let text = serde_json::to_string_pretty(recorded).expect("maps of integers serialise");
    std::fs::write(path, text + "\n").map_err(|source| RegressionError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The lines describing each tracked figure of `report` that rose more than the tolerance above
/// `recorded` (empty: no regression; a scenario missing from the file is one line).
pub fn regressions(recorded: &Recorded, report: &Report) -> Vec<String> {
    let Some(old) = recorded.get(&report.scenario) else {
        return vec![format!(
            "figures.json has no figures for {} (run `cargo run --release -p sim -- record`)",
            report.scenario
        )];
    };
    let mut lines = Vec::new();
    for (name, value) in tracked(report) {
        let Some(&before) = old.get(&name) else {
            continue;
        };
        if value * 100 > before * (100 + TOLERANCE_PERCENT) {
            lines.push(format!(
                "{} seed {}: {name} rose from {before} to {value} (+{:.1}%, more than {TOLERANCE_PERCENT}%)\nreproduce: {}",
                report.scenario,
                report.seed,
                percent(before, value),
                crate::budget::reproduce_command(&report.scenario, report.seed)
            ));
        }
    }
    lines
}

fn percent(before: u64, after: u64) -> f64 {
    if before == 0 {
        if after == 0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (after as f64 - before as f64) * 100.0 / before as f64
    }
}

/// Each scenario's change between two figures files, one line per figure.
pub fn diff(old: &Recorded, new: &Recorded) -> String {
    let mut out = String::new();
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) => {
                let _ = writeln!(out, "{name}");
                let figures: std::collections::BTreeSet<&String> =
                    a.keys().chain(b.keys()).collect();
                for figure in figures {
                    match (a.get(figure), b.get(figure)) {
                        (Some(&x), Some(&y)) => {
                            let _ = writeln!(
                                out,
                                "  {figure:<26} {x:>14} -> {y:>14}  {:+.1}%",
                                percent(x, y)
                            );
                        }
                        (Some(&x), None) => {
                            let _ = writeln!(out, "  {figure:<26} {x:>14} -> (gone)");
                        }
                        (None, Some(&y)) => {
                            let _ = writeln!(out, "  {figure:<26} (new) -> {y:>14}");
                        }
                        (None, None) => {}
                    }
                }
            }
            (Some(_), None) => {
                let _ = writeln!(out, "{name}: removed");
            }
            (None, Some(_)) => {
                let _ = writeln!(out, "{name}: new");
            }
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(scenario: &str, peak: u64) -> Recorded {
        BTreeMap::from([(
            scenario.to_string(),
            BTreeMap::from([("server_peak_bytes".to_string(), peak)]),
        )])
    }

    #[test]
    fn diff_prints_each_scenarios_change_in_percent() {
        let text = diff(&file("a", 100), &file("a", 110));
        assert!(text.contains("server_peak_bytes"), "{text}");
        assert!(text.contains("+10.0%"), "{text}");
        assert!(diff(&file("a", 1), &file("b", 1)).contains("a: removed"));
    }

    #[test]
    fn percent_of_a_zero_figure_is_zero_or_infinite() {
        assert_eq!(percent(0, 0), 0.0);
        assert!(percent(0, 1).is_infinite());
        assert_eq!(percent(200, 100), -50.0);
    }
}
