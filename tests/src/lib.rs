//! Shared helpers of imapsim's integration tests (tests/tests/*.rs): each test binary declares
//! the counting allocator with `sim::counting_allocator!();`.

use std::sync::{Mutex, MutexGuard};

use sim::scenario::{self, Report};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises simulations within one test binary, so that process-wide lazy initialisations
/// made by one run never land in the middle of another's figures.
pub fn serial() -> MutexGuard<'static, ()> {
    // A test that panicked while holding the lock leaves nothing inconsistent behind.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs scenario `name` with `seed`, failing the test with the replay command if it cannot run.
pub fn run_scenario(name: &str, seed: u64) -> Report {
    let scenario = scenario::find(name).expect("scenario is registered");
    match (scenario.run)(seed) {
        Ok(report) => report,
        Err(e) => panic!(
            "{name} seed {seed} did not complete: {e}\nreproduce: {}",
            sim::budget::reproduce_command(name, seed)
        ),
    }
}

/// Fails the test unless every response was parsable and as expected.
pub fn assert_clean(report: &Report) {
    assert!(
        report.is_clean(),
        "{} seed {}: {} unexpected, {} unparsable, {} mismatches:\n{}\nreproduce: {}",
        report.scenario,
        report.seed,
        report.unexpected,
        report.unparsable,
        report.mismatches,
        report.failures.join("\n"),
        sim::budget::reproduce_command(&report.scenario, report.seed)
    );
}
