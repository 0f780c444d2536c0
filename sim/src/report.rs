//! The report: a table of every scenario's figures, as text for the terminal and Markdown for
//! `target/imapsim/report/report.md`, and the `figures.json` array of `run --json` objects.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::scenario::{JsonReport, Report};

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// One kibibyte.
pub const KIB: u64 = 1024;

/// Where `imapsim report` writes: `$CARGO_TARGET_DIR/imapsim/report`, else the workspace's
/// `target/imapsim/report`.
pub fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        });
    target.join("imapsim").join("report")
}

const HEADER: [&str; 11] = [
    "scenario",
    "seed",
    "server peak B",
    "server live end B",
    "server allocs",
    "server alloc B",
    "commands",
    "unexpected",
    "p50 us",
    "p99 us",
    "budget",
];

fn cells(report: &Report, budget_ok: bool) -> [String; 11] {
    [
        report.scenario.clone(),
        report.seed.to_string(),
        report.server_peak_bytes.to_string(),
        report.server_live_end_bytes.to_string(),
        report.server_allocs.to_string(),
        report.server_alloc_bytes.to_string(),
        report.commands.to_string(),
        report.unexpected.to_string(),
        report.p50_us.to_string(),
        report.p99_us.to_string(),
        if budget_ok {
            "ok".into()
        } else {
            "OVER".into()
        },
    ]
}

/// The figures as an aligned text table.
pub fn text_table(rows: &[(Report, bool)]) -> String {
    let all: Vec<[String; 11]> = std::iter::once(HEADER.map(String::from))
        .chain(rows.iter().map(|(r, ok)| cells(r, *ok)))
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
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

/// The report as Markdown.
pub fn markdown(rows: &[(Report, bool)]) -> String {
    let mut out = String::from("# imapsim report\n\nServer-host heap figures per scenario (bytes; latencies in simulated microseconds).\n\n");
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(HEADER.len()));
    for (report, ok) in rows {
        let _ = writeln!(out, "| {} |", cells(report, *ok).join(" | "));
    }
    for (report, _) in rows.iter().filter(|(r, _)| !r.failures.is_empty()) {
        let _ = writeln!(
            out,
            "\n## Failures in {} (seed {})\n",
            report.scenario, report.seed
        );
        for failure in &report.failures {
            let _ = writeln!(out, "- {failure}");
        }
    }
    out
}

/// The `figures.json` array.
pub fn figures_json(rows: &[(Report, bool)]) -> String {
    let objects: Vec<JsonReport<'_>> = rows
        .iter()
        .map(|(report, ok)| JsonReport {
            report,
            budget_ok: *ok,
        })
        .collect();
    serde_json::to_string_pretty(&objects).expect("reports serialise")
}

/// Writes `report.md` and `figures.json` into `dir`, returning their paths.
pub fn write(dir: &Path, rows: &[(Report, bool)]) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let md = dir.join("report.md");
    let json = dir.join("figures.json");
    std::fs::write(&md, markdown(rows))?;
    std::fs::write(&json, figures_json(rows) + "\n")?;
    Ok((md, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::Figures;
    use crate::harness::RunFigures;
    use crate::scenario::Outcomes;

    fn sample() -> Report {
        let run = RunFigures {
            server: Figures {
                live_bytes: 10,
                peak_bytes: 100,
                allocs: 3,
                alloc_bytes: 120,
            },
            fakes3: Figures::default(),
            clients: Figures::default(),
            harness: Figures::default(),
            sim_elapsed: std::time::Duration::from_millis(5),
            unaccounted_allocs: 0,
        };
        Report::build("demo", 9, &run, &Outcomes::default(), Vec::new())
    }

    #[test]
    fn figures_json_is_an_array_of_run_objects_with_the_stable_keys() {
        let json: serde_json::Value =
            serde_json::from_str(&figures_json(&[(sample(), true)])).expect("valid JSON");
        let object = json[0].as_object().expect("an array of objects");
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
        ] {
            assert!(object.contains_key(key), "missing key {key}");
        }
        assert_eq!(object["server_peak_bytes"], 100);
        assert_eq!(object["budget_ok"], true);
    }

    #[test]
    fn tables_show_one_row_per_scenario_and_the_verdict() {
        let rows = [(sample(), false)];
        let text = text_table(&rows);
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).expect("a row").ends_with("OVER"));
        let md = markdown(&rows);
        assert!(md.contains("| demo | 9 | 100 | 10 | 3 | 120 |"), "{md}");
    }
}
