//! The trace workload replayed in the simulation: all 4,619 commands answered with the status the
//! workload expects, identically for one seed; and property tests that draw sessions from the
//! trace's variant pool and shrink a failure to a minimal session.

sim::simulation_binary!();

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use traces::workload::{session_strategy, Workload, WorkloadConfig};

/// (Determinism and the budget of this scenario are checked in sim/tests/budgets.rs.)
#[test]
fn the_whole_workload_replays_with_every_status_as_expected() {
    let _serial = tests::serial();
    let report = tests::run_scenario("trace_replay", 2);
    tests::assert_clean(&report);
    assert!(report.commands >= 4_619, "{} commands", report.commands);
    assert_eq!(report.figures.get("login_count"), Some(&244));
    assert_eq!(report.figures.get("fetch_count"), Some(&1_187));
    assert_eq!(report.figures.get("search_count"), Some(&658));
}

/// A small setup, so that each drawn session runs in a fraction of a second.
fn small_config() -> WorkloadConfig {
    WorkloadConfig {
        users: 1,
        emails_per_mailbox: vec![6, 3, 2, 2, 3],
        email_sizes: vec![2_000, 5_000, 12_000, 700, 40_000],
        ..WorkloadConfig::with_seed(7)
    }
}

#[test]
fn drawn_sessions_get_every_expected_status() {
    let _serial = tests::serial();
    let config = small_config();
    let strategy = session_strategy(&config, 40).expect("the small config generates");
    // Fixed seed: the cases are the same on every run; a failure names the session it shrank to.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]),
    );
    let result = runner.run(&strategy, |session| {
        let mut workload = Workload::setup_only(&config).expect("setup generates");
        workload.sessions = vec![session];
        // Each case on a fresh simulation thread, its entropy seeded.
        let report = sim::entropy::run(5, move || sim::scenarios::workloads::replay(5, workload))
            .map_err(|e| TestCaseError::fail(format!("did not run: {e}")))?;
        prop_assert!(
            report.is_clean(),
            "{} unexpected, {} unparsable:\n{}",
            report.unexpected,
            report.unparsable,
            report.failures.join("\n")
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("seed [42; 32] (ChaCha), shrunk to: {e}");
    }
}
