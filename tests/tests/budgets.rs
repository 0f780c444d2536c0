//! Every scenario stays within its row of budgets.toml, with the seed of that row.

use sim::budget::Budgets;
use sim::scenario::BudgetVerdict;

sim::counting_allocator!();

#[test]
fn append_fetch_stays_within_its_budget() {
    let _serial = tests::serial();
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    let seed = budgets
        .get("append_fetch")
        .expect("append_fetch has a budget")
        .seed;
    let report = tests::run_scenario("append_fetch", seed);
    tests::assert_clean(&report);
    match report.check_budget(&budgets) {
        Ok(()) => {}
        Err(BudgetVerdict::Over(over)) => panic!("{over}"),
        Err(other) => panic!("append_fetch seed {seed}: {other}"),
    }
}

#[test]
fn every_scenario_has_a_budget_row() {
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    for scenario in sim::scenario::all() {
        assert!(
            budgets.get(scenario.name).is_ok(),
            "budgets.toml has no row for {}",
            scenario.name
        );
    }
}
