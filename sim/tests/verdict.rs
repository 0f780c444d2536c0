//! `imapsim run` gives the verdict the tests give: a figure that rose more than figures.json's
//! tolerance fails the run (exit 1) and is printed beside its recorded value, with the command
//! that reproduces it; the table shows every budgeted figure beside figures.json and the budget.

mod common;

use std::process::Command;

use common::EXE;

fn run_idle_10(figures: Option<&std::path::Path>) -> (bool, String, String) {
    let mut command = Command::new(EXE);
    command.args(["run", "idle_10", "--seed", "1"]);
    if let Some(path) = figures {
        command.env(sim::regression::FIGURES_VARIABLE, path);
    }
    let output = command.output().expect("imapsim run starts");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn run_shows_every_budgeted_figure_beside_figures_json_and_the_budget() {
    let (ok, out, err) = run_idle_10(None);
    assert!(ok, "{out}\n{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("per_idle_session_bytes"))
        .unwrap_or_else(|| panic!("the table has the idle figure:\n{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.len(), 4, "{row}");
    let recorded = sim::regression::load(&sim::regression::committed_path())
        .expect("figures.json parses")["idle_10"]["per_idle_session_bytes"];
    assert_eq!(cells[2], recorded.to_string(), "{row}");
    assert_eq!(cells[3], "4096", "the budget row's limit: {row}");
    assert!(out.contains("above_baseline_bytes"), "{out}");
}

#[test]
fn a_figure_over_figures_json_tolerance_fails_the_run_and_says_which() {
    let mut recorded =
        sim::regression::load(&sim::regression::committed_path()).expect("figures.json parses");
    let figures = recorded.get_mut("idle_10").expect("idle_10 is recorded");
    let measured = figures["per_idle_session_bytes"];
    // As if a change had made each idle session 20% bigger than what was recorded.
    figures.insert("per_idle_session_bytes".into(), measured * 100 / 120);
    let planted = std::env::temp_dir().join(format!("imapsim-figures-{}.json", std::process::id()));
    sim::regression::save(&planted, &recorded).expect("write the planted figures");
    let (ok, out, err) = run_idle_10(Some(&planted));
    let _ = std::fs::remove_file(&planted);
    assert!(!ok, "the run must fail:\n{out}\n{err}");
    assert!(
        err.contains(&format!(
            "per_idle_session_bytes rose from {} to {measured}",
            measured * 100 / 120
        )),
        "{err}"
    );
    assert!(
        err.contains("reproduce: cargo run --release -p sim -- run idle_10 --seed 1"),
        "{err}"
    );
}
