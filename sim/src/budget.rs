//! Allocation budgets: `budgets.toml` at the repository root, one row per scenario, and the check
//! whose failure message names the scenario, the seed, measured vs budget and the replay command.

use serde::{Deserialize, Serialize};

/// The budgets file as built into this binary (the repository's `budgets.toml`).
pub const BUDGETS_TOML: &str = include_str!("../../budgets.toml");

/// One scenario's budget.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Scenario name, as `imapsim list` shows it.
    pub name: String,
    /// The seed the budget is checked with (CI and `cargo test`).
    pub seed: u64,
    /// Largest accepted peak of the server host's live heap bytes (absent: not checked).
    #[serde(default)]
    pub server_peak_bytes_max: Option<u64>,
    /// Largest accepted server live heap bytes once the scenario's clients are done (absent: not checked).
    #[serde(default)]
    pub server_live_end_bytes_max: Option<u64>,
    /// Largest accepted peak above baseline of the scenario's measured steps (absent: not checked).
    #[serde(default)]
    pub above_baseline_bytes_max: Option<u64>,
    /// Largest accepted live bytes per idle session (absent: not checked).
    #[serde(default)]
    pub per_idle_session_bytes_max: Option<u64>,
    /// The issue's target for the budgeted figure, shown by the report; the budget is never
    /// looser (absent: none).
    #[serde(default)]
    pub target_bytes: Option<u64>,
    /// The target for a selected mailbox's index, in bytes per email (absent: none).
    #[serde(default)]
    pub index_bytes_per_email_target: Option<u64>,
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// One row per scenario.
    #[serde(rename = "scenario", default)]
    pub scenarios: Vec<Budget>,
}

/// Budget file errors.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The file is not valid TOML of the expected shape.
    #[error("budgets.toml does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// Two rows for one scenario.
    #[error("budgets.toml has two rows for scenario {0}")]
    Duplicate(String),
    /// No row for a scenario.
    #[error("budgets.toml has no row for scenario {0}")]
    Missing(String),
}

/// The rows too slow for `cargo test --release`: `report` runs them and
/// `cargo test --release -- --ignored` checks them.
pub const REPORT_ONLY: &[&str] = &[
    "fetch_body",
    "idle_10k",
    "scale_select_10k",
    "scale_fetch_full_10k",
    "scale_search_10k",
];

impl Budgets {
    /// Parses a budgets file.
    pub fn parse(text: &str) -> Result<Budgets, BudgetError> {
        let budgets: Budgets = toml::from_str(text)?;
        let mut names = std::collections::BTreeSet::new();
        for row in &budgets.scenarios {
            if !names.insert(row.name.as_str()) {
                return Err(BudgetError::Duplicate(row.name.clone()));
            }
        }
        Ok(budgets)
    }

    /// The budgets built into this binary.
    pub fn builtin() -> Result<Budgets, BudgetError> {
        Budgets::parse(BUDGETS_TOML)
    }

    /// The row for `scenario`.
    pub fn get(&self, scenario: &str) -> Result<&Budget, BudgetError> {
        self.scenarios
            .iter()
            .find(|b| b.name == scenario)
            .ok_or_else(|| BudgetError::Missing(scenario.to_string()))
    }

    /// The rows that neither `checked` nor [`REPORT_ONLY`] names: a test file that checks rows
    /// one test each asserts this is empty, so that a new row cannot go unchecked.
    pub fn unchecked(&self, checked: &[&str]) -> Vec<&str> {
        self.scenarios
            .iter()
            .map(|b| b.name.as_str())
            .filter(|name| !checked.contains(name) && !REPORT_ONLY.contains(name))
            .collect()
    }
}

/// What a budget is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    /// Server peak live bytes.
    pub server_peak_bytes: u64,
    /// Server live bytes at the end.
    pub server_live_end_bytes: u64,
    /// Peak above baseline of the measured steps.
    pub above_baseline_bytes: u64,
    /// Live bytes per idle session, for idle scenarios.
    pub per_idle_session_bytes: Option<u64>,
}

/// A budget exceeded: its `Display` is the failure message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// Scenario.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// One line per exceeded figure.
    pub lines: Vec<String>,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scenario {} seed {} is over budget (budgets.toml):",
            self.scenario, self.seed
        )?;
        for line in &self.lines {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "reproduce: {}",
            reproduce_command(&self.scenario, self.seed)
        )
    }
}

/// The exact command that replays a run.
pub fn reproduce_command(scenario: &str, seed: u64) -> String {
    format!("cargo run --release -p sim -- run {scenario} --seed {seed}")
}

/// Checks measured figures against a budget.
pub fn check(budget: &Budget, seed: u64, measured: Measured) -> Result<(), OverBudget> {
    let mut lines = Vec::new();
    let rows = [
        (
            "server peak bytes",
            measured.server_peak_bytes,
            budget.server_peak_bytes_max,
        ),
        (
            "server live bytes at the end",
            measured.server_live_end_bytes,
            budget.server_live_end_bytes_max,
        ),
    ];
    let rows = rows.into_iter().chain([
        (
            "server peak above baseline bytes",
            measured.above_baseline_bytes,
            budget.above_baseline_bytes_max,
        ),
        (
            "live bytes per idle session",
            measured.per_idle_session_bytes.unwrap_or(0),
            budget.per_idle_session_bytes_max,
        ),
    ]);
    for (what, value, max) in rows {
        let Some(max) = max else { continue };
        if value > max {
            lines.push(format!(
                "{what}: measured {value} > budget {max} (+{})",
                value - max
            ));
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(OverBudget {
            scenario: budget.name.clone(),
            seed,
            lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[scenario]]
name = "a"
seed = 7
server_peak_bytes_max = 1000
server_live_end_bytes_max = 10
"#;

    #[test]
    fn builtin_budgets_parse() {
        let budgets = Budgets::builtin().expect("budgets.toml parses");
        assert!(!budgets.scenarios.is_empty());
    }

    #[test]
    fn over_budget_message_names_scenario_seed_figures_and_replay_command() {
        let budgets = Budgets::parse(SAMPLE).expect("sample parses");
        let budget = budgets.get("a").expect("row a");
        assert!(check(
            budget,
            7,
            Measured {
                server_peak_bytes: 1000,
                server_live_end_bytes: 10,
                above_baseline_bytes: 0,
                per_idle_session_bytes: None,
            }
        )
        .is_ok());
        let err = check(
            budget,
            7,
            Measured {
                server_peak_bytes: 1500,
                server_live_end_bytes: 5,
                above_baseline_bytes: 0,
                per_idle_session_bytes: None,
            },
        )
        .expect_err("peak over budget");
        let text = err.to_string();
        assert!(text.contains("scenario a seed 7"), "{text}");
        assert!(text.contains("measured 1500 > budget 1000"), "{text}");
        assert!(
            text.contains("cargo run --release -p sim -- run a --seed 7"),
            "{text}"
        );
        assert!(!text.contains("live bytes at the end"), "{text}");
    }

    #[test]
    fn duplicate_missing_and_unknown_rows_are_errors() {
        let doubled = format!("{SAMPLE}{SAMPLE}");
        assert!(
            matches!(Budgets::parse(&doubled), Err(BudgetError::Duplicate(name)) if name == "a")
        );
        let budgets = Budgets::parse(SAMPLE).expect("sample parses");
        assert!(matches!(budgets.get("b"), Err(BudgetError::Missing(_))));
        assert!(matches!(
            Budgets::parse("[[scenario]]\nname = \"x\"\n"),
            Err(BudgetError::Parse(_))
        ));
    }
}
