//! The cross-check: stats_alloc's global counters see no allocation of a run that the run's
//! accounts did not see. Alone in its binary, so no other test thread allocates meanwhile.

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
