//! The recorded summary (`data/imap_commands_summary.csv`): per command name, how many commands
//! of the trace carry it and how many distinct variants.

use super::command::CommandName;

/// The embedded `count,command,aggregation` table.
pub const RECORDED_SUMMARY: &str = include_str!("../../data/imap_commands_summary.csv");

/// How a summary row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aggregation {
    /// Occurrences of the command among the 4,619 recorded.
    Raw,
    /// Distinct variants of the command among them.
    Unique,
}

/// One row of `imap_commands_summary.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRow {
    pub count: u64,
    pub command: CommandName,
    pub aggregation: Aggregation,
}

/// A summary row that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("summary line {line}: {reason}: {text:?}")]
pub struct SummaryError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Parses a `count,command,aggregation` table (with its header line).
pub fn parse_summary(text: &str) -> Result<Vec<SummaryRow>, SummaryError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "count,command,aggregation")) => {}
        other => {
            return Err(SummaryError {
                line: 1,
                reason: "missing header",
                text: other.map(|(_, t)| t.to_owned()).unwrap_or_default(),
            })
        }
    }
    lines
        .map(|(i, l)| {
            let err = |reason| SummaryError {
                line: i + 1,
                reason,
                text: l.to_owned(),
            };
            let cols: Vec<&str> = l.split(',').collect();
            let [count, command, aggregation] = cols[..] else {
                return Err(err("not three columns"));
            };
            Ok(SummaryRow {
                count: count.parse().map_err(|_| err("bad count"))?,
                command: CommandName::parse(command).ok_or_else(|| err("unknown command"))?,
                aggregation: match aggregation {
                    "Raw" => Aggregation::Raw,
                    "Unique" => Aggregation::Unique,
                    _ => return Err(err("unknown aggregation")),
                },
            })
        })
        .collect()
}

/// The embedded summary.
pub fn summary() -> Vec<SummaryRow> {
    parse_summary(RECORDED_SUMMARY).expect("the embedded summary parses (tested)")
}
