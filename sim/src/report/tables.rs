//! The table of every run's figures (the text table of `imapsim report` and the report's first
//! table).

use std::fmt::Write as _;

use super::entry::Entry;

pub(super) const TABLE_HEADER: [&str; 12] = [
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

pub(super) fn table_row(entry: &Entry) -> Vec<String> {
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
