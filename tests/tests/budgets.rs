//! Every scenario stays within its row of budgets.toml, with the seed of that row; every budgeted
//! scenario gives identical figures on two runs, and no tracked figure rose more than 5% above the
//! committed figures.json.

use sim::budget::Budgets;
use sim::scenario::BudgetVerdict;

sim::simulation_binary!();

/// Runs `name` with its budget's seed: clean answers, within budget, and no regression against
/// figures.json.
fn check_row(name: &str) {
    let _serial = tests::serial();
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    let seed = budgets.get(name).expect("the scenario has a budget").seed;
    let report = tests::run_scenario(name, seed);
    tests::assert_clean(&report);
    match report.check_budget(&budgets) {
        Ok(()) => {}
        Err(BudgetVerdict::Over(over)) => panic!("{over}"),
        Err(other) => panic!("{name} seed {seed}: {other}"),
    }
    let recorded = sim::regression::load(&sim::regression::committed_path())
        .expect("figures.json at the workspace root parses");
    let regressions = sim::regression::regressions(&recorded, &report);
    assert!(regressions.is_empty(), "{}", regressions.join("\n"));
}

/// Runs `name` twice with its budget's seed: every figure and every byte sent identical.
fn check_deterministic(name: &str) {
    let _serial = tests::serial();
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    let seed = budgets.get(name).expect("the scenario has a budget").seed;
    let report = tests::run_scenario(name, seed);
    let again = tests::run_scenario(name, seed);
    assert_eq!(
        report.deterministic_figures(),
        again.deterministic_figures(),
        "{name} seed {seed}: two runs gave different figures\nreproduce: {}",
        sim::budget::reproduce_command(name, seed)
    );
}

macro_rules! budget_rows {
    ($($test:ident, $twice:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_row($name);
            }

            #[test]
            fn $twice() {
                check_deterministic($name);
            }
        )*
    };
}

// A determinism check that is known to fail now and then, ignored until its cause is fixed
// (never loosened); the scenario's budget is still checked by its `_stays_within_its_budget` row.
macro_rules! known_nondeterministic {
    ($($twice:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            #[ignore = "open bug: turmoil 0.7.2's socket tables (IndexMaps with std's random hash keys) grow at hash-dependent moments, so a run now and then makes one allocation more or less on a host's account"]
            fn $twice() {
                check_deterministic($name);
            }
        )*
    };
}

macro_rules! budget_only_rows {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_row($name);
            }
        )*
    };
}

// append_par, lmtp, login, trace_replay, idle_10, idle_16 and idle_1k used to differ by one
// allocation from run to run: their clients, tasks of one host, were released from each phase
// boundary by tokio's `Barrier` in a random order (fixed: sim/src/scenario.rs, `PhaseBarrier`).
// One cause is left, outside this workspace: turmoil 0.7.2 keeps each host's sockets and each
// socket's out-of-order segments in IndexMaps hashed with std's random per-process keys, so
// whether a removal leaves a tombstone, and so when such a table grows (one 592 B, 1,168 B or
// 2,320 B block on the host's account), changes from process to process. Any check below can fail
// now and then for that reason (seen: append_seq's fakes3 peak +288 B) until turmoil hashes them
// with fixed keys; a turmoil patched so made every determinism check of this file pass.
budget_rows! {
    append_fetch_stays_within_its_budget, append_fetch_is_deterministic => "append_fetch",
    append_seq_stays_within_its_budget, append_seq_is_deterministic => "append_seq",
    login_stays_within_its_budget, login_is_deterministic => "login",
    trace_replay_stays_within_its_budget, trace_replay_is_deterministic => "trace_replay",
    idle_1k_stays_within_its_budget, idle_1k_is_deterministic => "idle_1k",
    copy_move_stays_within_its_budget, copy_move_is_deterministic => "copy_move",
    store_flags_stays_within_its_budget, store_flags_is_deterministic => "store_flags",
    refresh_stays_within_its_budget, refresh_is_deterministic => "refresh",
    search_meta_stays_within_its_budget, search_meta_is_deterministic => "search_meta",
    search_body_stays_within_its_budget, search_body_is_deterministic => "search_body",
    list_stays_within_its_budget, list_is_deterministic => "list",
    fetch_all_stays_within_its_budget, fetch_all_is_deterministic => "fetch_all",
    fetch_full_stays_within_its_budget, fetch_full_is_deterministic => "fetch_full",
    fetch_body_x1_stays_within_its_budget, fetch_body_x1_is_deterministic => "fetch_body_x1",
    scale_select_100_stays_within_its_budget, scale_select_100_is_deterministic => "scale_select_100",
    scale_select_1k_stays_within_its_budget, scale_select_1k_is_deterministic => "scale_select_1k",
    scale_fetch_full_100_stays_within_its_budget, scale_fetch_full_100_is_deterministic => "scale_fetch_full_100",
    scale_fetch_full_1k_stays_within_its_budget, scale_fetch_full_1k_is_deterministic => "scale_fetch_full_1k",
    scale_search_100_stays_within_its_budget, scale_search_100_is_deterministic => "scale_search_100",
    scale_search_1k_stays_within_its_budget, scale_search_1k_is_deterministic => "scale_search_1k",
}

// These hit the turmoil cause above often (runs of two in one process that differed: idle_10 9 in
// 10, append_par and lmtp 1 in 4, idle_16 about 1 in 20; fault_crash in tests/tests/faults.rs 1 in
// 2), and none with the patched turmoil: their determinism checks wait for it.
budget_only_rows! {
    append_par_stays_within_its_budget => "append_par",
    lmtp_stays_within_its_budget => "lmtp",
    idle_10_stays_within_its_budget => "idle_10",
    idle_16_stays_within_its_budget => "idle_16",
    // 3,843 B per idle session (was 4,139 while the storage pool closed connections between the
    // two measuring points; it no longer does: `server_fixed_bytes_after_idle` is 0). Its two runs
    // differ in 1 process of 4 (the turmoil cause above).
    idle_100_stays_within_its_budget => "idle_100",
}

known_nondeterministic! {
    append_par_is_deterministic => "append_par",
    lmtp_is_deterministic => "lmtp",
    idle_10_is_deterministic => "idle_10",
    idle_16_is_deterministic => "idle_16",
}

#[test]
#[ignore = "report only: ~236 MB through the simulation; `cargo run --release -p sim -- run fetch_body`"]
fn fetch_body_stays_within_its_budget() {
    check_row("fetch_body");
}

#[test]
#[ignore = "report only (3.3 min): 10,000 sessions, 3,745 B per idle session against 4,096; `cargo run --release -p sim -- run idle_10k`"]
fn idle_10k_stays_within_its_budget() {
    check_row("idle_10k");
}

#[test]
#[ignore = "report only: 10,000-email mailboxes; `cargo run --release -p sim -- run scale_select_10k`"]
fn scale_10k_points_stay_within_their_budgets() {
    for name in [
        "scale_select_10k",
        "scale_fetch_full_10k",
        "scale_search_10k",
    ] {
        check_row(name);
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
