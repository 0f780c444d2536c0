//! One scenario's run in the report ([`Entry`]) and its budget verdict ([`Verdict`]).

use crate::budget::Budgets;
use crate::figures::{BudgetVerdict, Report};

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

    pub(super) fn cell(&self) -> &'static str {
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
