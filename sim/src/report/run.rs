//! Running the scenarios for the report: each on a thread of its own under a wall-time bound.

use std::time::Duration;

use super::entry::{Entry, Verdict};
use crate::budget::{reproduce_command, Budgets};
use crate::figures::Report;
use crate::scenarios::Scenario;

/// Default wall-time bound of one scenario run in `imapsim report`, in seconds.
pub const RUN_BOUND_S_DEFAULT: u64 = 600;

/// The seed a scenario runs with in the report: its budget row's, else 1.
pub fn seed_of(budgets: &Budgets, scenario: &str) -> u64 {
    budgets.get(scenario).map_or(1, |b| b.seed)
}

/// Runs `scenario` with `seed` on a thread of its own and waits at most `bound` of wall time.
/// A run that panics or outlives the bound is an error (an outlived run's thread is left to
/// finish on its own: a simulation cannot be stopped from outside; its accounts are its own).
pub fn run_bounded(
    scenario: &'static Scenario,
    seed: u64,
    bound: Duration,
) -> Result<Report, String> {
    let name = scenario.name;
    let (tx, rx) = std::sync::mpsc::channel();
    let simulation = scenario.spawn(seed);
    // A watcher joins the simulation thread, so that its panic reaches us as a message. The
    // receiver is gone only when the run outlived its bound.
    std::thread::spawn(move || {
        let _ = tx.send(simulation.join());
    });
    let reproduce = reproduce_command(name, seed);
    match rx.recv_timeout(bound) {
        Ok(Ok(result)) => result.map_err(|e| format!("{e}; reproduce: {reproduce}")),
        Ok(Err(payload)) => {
            let cause = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(format!("panicked: {cause}; reproduce: {reproduce}"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "did not complete within the report's bound of {} s of wall time; reproduce: {reproduce}",
            bound.as_secs()
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(format!(
            "the run ended without a result; reproduce: {reproduce}"
        )),
    }
}

/// Runs `scenarios` one after the other, each bounded by `bound`, writing a progress line per
/// scenario to `progress` (with its wall time: that goes nowhere else).
pub fn run_all(
    scenarios: &'static [Scenario],
    budgets: &Budgets,
    bound: Duration,
    progress: &mut dyn std::io::Write,
) -> Vec<Entry> {
    let total = scenarios.len();
    let mut entries = Vec::with_capacity(total);
    for (i, scenario) in scenarios.iter().enumerate() {
        let seed = seed_of(budgets, scenario.name);
        let _ = write!(
            progress,
            "[{}/{total}] {} seed {seed}: ",
            i + 1,
            scenario.name
        );
        let _ = progress.flush();
        // Wall time for the progress line only; nothing inside the simulation reads it.
        let started = std::time::Instant::now();
        let entry = match run_bounded(scenario, seed, bound) {
            Ok(report) => {
                let verdict = Verdict::of(&report, budgets);
                Entry {
                    scenario: scenario.name.to_string(),
                    seed,
                    result: Ok((report, verdict)),
                }
            }
            Err(error) => Entry {
                scenario: scenario.name.to_string(),
                seed,
                result: Err(error),
            },
        };
        let detail = match &entry.result {
            Err(error) => format!(": {error}"),
            Ok((_, Verdict::NoBudget)) => " (no budget row)".to_string(),
            Ok(_) => String::new(),
        };
        let _ = writeln!(
            progress,
            "{}{detail} ({:.1} s)",
            entry.status(),
            started.elapsed().as_secs_f64()
        );
        entries.push(entry);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_outlives_its_bound_or_panics_is_an_error_not_an_abort() {
        fn slow(_: u64) -> Result<Report, crate::figures::ScenarioError> {
            std::thread::sleep(Duration::from_millis(500));
            Err(crate::figures::ScenarioError::Unknown("late".into()))
        }
        fn panics(_: u64) -> Result<Report, crate::figures::ScenarioError> {
            panic!("boom in a scenario")
        }
        static SLOW: Scenario = Scenario {
            name: "slow",
            description: "sleeps",
            body: crate::scenarios::Body::Custom(slow),
        };
        static PANICS: Scenario = Scenario {
            name: "panics",
            description: "panics",
            body: crate::scenarios::Body::Custom(panics),
        };
        let late = run_bounded(&SLOW, 4, Duration::from_millis(20)).expect_err("bounded");
        assert!(late.contains("did not complete within"), "{late}");
        assert!(late.contains("run slow --seed 4"), "{late}");
        let panicked = run_bounded(&PANICS, 1, Duration::from_secs(30)).expect_err("panicked");
        assert!(panicked.contains("boom in a scenario"), "{panicked}");
    }
}
