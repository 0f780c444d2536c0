//! Every row of budgets.toml, as CI gates on it: the scenario runs in two fresh `imapsim` processes
//! for each of two seeds (its row's and another), and the complete `run --json` objects (server,
//! fakes3 and client accounts, phases, figures, received hash) must be equal; every run answers as
//! expected; the row's seed stays within its budget and no tracked figure rose more than 5% above
//! the committed figures.json. A process starts with its own OS entropy, address layout and wall
//! clock, so these are the figures `imapsim run` reproduces anywhere.

use std::process::Command;

use serde_json::Value;
use sim::budget::Budgets;
use sim::figures::Report;
use sim::verdict::RunVerdict;

/// The second seed each scenario runs with, beside its budget row's.
const OTHER_SEED: u64 = 7;

/// `imapsim run NAME --seed SEED --json` in a fresh process: its standard output.
fn run_in_a_fresh_process(name: &str, seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_imapsim"))
        .args(["run", name, "--seed", &seed.to_string(), "--json"])
        .output()
        .expect("the imapsim binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.trim_start().starts_with('{'),
        "{name} seed {seed}: no JSON (exit {:?}):\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The path and the two values of the first place where `a` and `b` differ.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                let here = format!("{path}.{key}");
                match y.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(&here, value, other) {
                            return Some(found);
                        }
                    }
                    None => return Some(format!("{here}: only in the first run")),
                }
            }
            y.keys()
                .find(|key| !x.contains_key(*key))
                .map(|key| format!("{path}.{key}: only in the second run"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(&format!("{path}[{i}]"), v, w)),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// Runs `name` with `seed` in two fresh processes at once: the figures, equal in both.
fn repeated_in_two_processes(name: &str, seed: u64) -> Report {
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| run_in_a_fresh_process(name, seed));
        let second = run_in_a_fresh_process(name, seed);
        (
            first.join().expect("the first run's thread completes"),
            second,
        )
    });
    let parse = |s: &str| serde_json::from_str::<Value>(s).expect("run --json prints JSON");
    if first != second {
        let difference = first_difference("", &parse(&first), &parse(&second))
            .unwrap_or_else(|| "the same values, printed differently".to_string());
        panic!(
            "{name} seed {seed}: two fresh processes gave different figures; first difference \
             {difference}\nfind the allocation that differs: cargo run --release -p sim -- run \
             {name} --seed {seed} --check"
        );
    }
    let report: Report = serde_json::from_str(&first).expect("run --json is a report");
    assert!(
        report.is_clean(),
        "{name} seed {seed}: {} unexpected, {} unparsable, {} mismatches, {} violations:\n{}\nreproduce: {}",
        report.unexpected,
        report.unparsable,
        report.mismatches,
        report.violations,
        report.failures.join("\n"),
        sim::budget::reproduce_command(name, seed)
    );
    report
}

/// Checks row `name`: its seed and [`OTHER_SEED`] repeat across processes and answer cleanly, its
/// seed's figures are within the row and within 5% of figures.json.
fn check(name: &str) {
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    let row_seed = budgets
        .get(name)
        .expect("the scenario has a budget row")
        .seed;
    let other = if row_seed == OTHER_SEED {
        OTHER_SEED + 1
    } else {
        OTHER_SEED
    };
    let report = repeated_in_two_processes(name, row_seed);
    // The verdict `imapsim run` gives: the budget row, then the figures.json tolerance.
    let recorded = sim::regression::load(&sim::regression::committed_path())
        .expect("figures.json at the workspace root parses");
    let verdict = RunVerdict::of(&report, &budgets, Some(&recorded));
    assert!(verdict.ok(), "{}", verdict.failures().join("\n"));
    repeated_in_two_processes(name, other);
}

macro_rules! in_two_processes {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*
        /// The scenarios checked by a test of this file that runs in `cargo test --release`.
        const CHECKED: &[&str] = &[$($name),*];
    };
}

in_two_processes! {
    append_fetch_holds_its_budget_row => "append_fetch",
    append_seq_holds_its_budget_row => "append_seq",
    append_par_holds_its_budget_row => "append_par",
    lmtp_holds_its_budget_row => "lmtp",
    login_holds_its_budget_row => "login",
    idle_16_holds_its_budget_row => "idle_16",
    idle_10_holds_its_budget_row => "idle_10",
    idle_100_holds_its_budget_row => "idle_100",
    idle_1k_holds_its_budget_row => "idle_1k",
    copy_move_holds_its_budget_row => "copy_move",
    store_flags_holds_its_budget_row => "store_flags",
    refresh_holds_its_budget_row => "refresh",
    search_meta_holds_its_budget_row => "search_meta",
    search_body_holds_its_budget_row => "search_body",
    list_holds_its_budget_row => "list",
    fetch_all_holds_its_budget_row => "fetch_all",
    fetch_full_holds_its_budget_row => "fetch_full",
    fetch_body_x1_holds_its_budget_row => "fetch_body_x1",
    trace_replay_holds_its_budget_row => "trace_replay",
    scale_select_100_holds_its_budget_row => "scale_select_100",
    scale_select_1k_holds_its_budget_row => "scale_select_1k",
    scale_fetch_full_100_holds_its_budget_row => "scale_fetch_full_100",
    scale_fetch_full_1k_holds_its_budget_row => "scale_fetch_full_1k",
    scale_search_100_holds_its_budget_row => "scale_search_100",
    scale_search_1k_holds_its_budget_row => "scale_search_1k",
    fault_storage_holds_its_budget_row => "fault_storage",
    fault_lost_response_holds_its_budget_row => "fault_lost_response",
    fault_partition_holds_its_budget_row => "fault_partition",
    fault_crash_holds_its_budget_row => "fault_crash",
    fault_disconnect_holds_its_budget_row => "fault_disconnect",
    fault_two_servers_holds_its_budget_row => "fault_two_servers",
}

#[test]
#[ignore = "report only (about 15 min of runs): fetch_body, idle_10k and the 10k-email scaling points"]
fn report_only_rows_hold_their_budget_rows() {
    for name in sim::budget::REPORT_ONLY {
        check(name);
    }
}

#[test]
fn every_budget_row_is_checked() {
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    let unchecked = budgets.unchecked(CHECKED);
    assert!(
        unchecked.is_empty(),
        "rows with no test in sim/tests/budgets.rs: {unchecked:?}"
    );
}

#[test]
fn a_difference_is_named_by_its_path() {
    let a: Value = serde_json::json!({"x": 1, "phases": [{"peak": 2}, {"peak": 3}]});
    let b: Value = serde_json::json!({"x": 1, "phases": [{"peak": 2}, {"peak": 4}]});
    assert_eq!(
        first_difference("", &a, &b).as_deref(),
        Some(".phases[1].peak: 3 vs 4")
    );
    assert_eq!(first_difference("", &a, &a), None);
}

#[test]
fn every_scenario_has_a_budget_row() {
    let budgets = Budgets::builtin().expect("budgets.toml parses");
    for scenario in sim::scenarios::all() {
        assert!(
            budgets.get(scenario.name).is_ok(),
            "budgets.toml has no row for {}",
            scenario.name
        );
    }
}
