//! The verdict on one run, the same in `imapsim run` and in `cargo test --release`: its row of
//! budgets.toml and, with the row's seed, the tolerance against figures.json; and the table that
//! shows each budgeted and tracked figure beside its recorded value and its budget.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::budget::{Budget, Budgets};
use crate::figures::{BudgetVerdict, Report};
use crate::regression::Recorded;

/// What failed, if anything.
#[derive(Debug, Default)]
pub struct RunVerdict {
    /// Over budget, or no row (None: within the row).
    pub budget: Option<String>,
    /// Tracked figures that rose more than the tolerance above figures.json (the row's seed only).
    pub regressions: Vec<String>,
    /// Why figures.json was not compared (another seed than the row's, or no file).
    pub not_compared: Option<String>,
}

impl RunVerdict {
    /// Checks `report` against its row in `budgets` and, when it ran with the row's seed, against
    /// `recorded` (figures.json).
    pub fn of(report: &Report, budgets: &Budgets, recorded: Option<&Recorded>) -> RunVerdict {
        let budget = report.check_budget(budgets).err().map(|e| match e {
            BudgetVerdict::Over(over) => over.to_string(),
            other => format!("{} seed {}: {other}", report.scenario, report.seed),
        });
        let row_seed = budgets.get(&report.scenario).map(|b| b.seed).ok();
        let (regressions, not_compared) = match (recorded, row_seed) {
            (Some(recorded), Some(seed)) if seed == report.seed => {
                (crate::regression::regressions(recorded, report), None)
            }
            (Some(_), Some(seed)) => (
                Vec::new(),
                Some(format!("figures.json holds seed {seed}'s figures")),
            ),
            (None, _) => (Vec::new(), Some("no figures.json to compare with".into())),
            (Some(_), None) => (Vec::new(), None),
        };
        RunVerdict {
            budget,
            regressions,
            not_compared,
        }
    }

    /// Whether the run passes.
    pub fn ok(&self) -> bool {
        self.budget.is_none() && self.regressions.is_empty()
    }

    /// Every failure, one paragraph each.
    pub fn failures(&self) -> Vec<String> {
        self.budget
            .iter()
            .cloned()
            .chain(self.regressions.iter().cloned())
            .collect()
    }
}

/// The budgeted and tracked figures of `report`: measured, recorded in figures.json (for the
/// row's seed) and the budget, one line each.
pub fn figure_table(
    report: &Report,
    budget: Option<&Budget>,
    recorded: Option<&Recorded>,
) -> String {
    let recorded: Option<&BTreeMap<String, u64>> = recorded
        .filter(|_| budget.is_some_and(|b| b.seed == report.seed))
        .and_then(|r| r.get(&report.scenario));
    let tracked = crate::regression::tracked(report);
    let limits = [
        (
            "server_peak_bytes",
            budget.and_then(|b| b.server_peak_bytes_max),
        ),
        (
            "server_live_end_bytes",
            budget.and_then(|b| b.server_live_end_bytes_max),
        ),
        (
            "above_baseline_bytes",
            budget.and_then(|b| b.above_baseline_bytes_max),
        ),
        (
            "per_idle_session_bytes",
            budget.and_then(|b| b.per_idle_session_bytes_max),
        ),
        ("session_base_bytes", None),
    ];
    let mut out = format!(
        "{:<26} {:>14} {:>14} {:>14}\n",
        "figure", "measured", "figures.json", "budget"
    );
    let or_dash = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (name, limit) in limits {
        let Some(&measured) = tracked.get(name) else {
            continue;
        };
        let before = recorded.and_then(|r| r.get(name).copied());
        let _ = writeln!(
            out,
            "{name:<26} {measured:>14} {:>14} {:>14}",
            or_dash(before),
            or_dash(limit)
        );
    }
    out
}
