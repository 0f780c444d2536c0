//! The cross-check: the simulation thread made no allocation that the run's accounts did not see
//! (`unaccounted_allocs` counts that thread's own allocations; `Scenario::run` also fails a run
//! where it is not 0, this test shows it through the public figures).

sim::simulation_binary!();

#[test]
fn every_allocation_of_a_run_is_attributed_to_one_of_its_accounts() {
    let report = tests::run_scenario("append_fetch", 3);
    assert!(report.counting_alloc_installed);
    assert_eq!(
        report.unaccounted_allocs, 0,
        "allocations outside the run's accounts: {report:?}"
    );
}
