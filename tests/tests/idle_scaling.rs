//! The work of one idle session does not grow with the number of sessions: the commands each
//! sends (preload and idle) are the same at 100 and at 1,000 sessions (and at 10,000, report only).
//! Unpaced logins once made it 7 per session at 100 and 78 at 10,000 (retries at the server's
//! key-derivation bound), and the simulation's cost grew with it.

sim::simulation_binary!();

fn commands_per_session(name: &str) -> f64 {
    let report = tests::run_scenario(name, 1);
    tests::assert_clean(&report);
    let sessions = report.figures["idle_sessions"];
    report.commands as f64 / sessions as f64
}

fn assert_within_5_percent(small: &str, large: &str) {
    let (a, b) = (commands_per_session(small), commands_per_session(large));
    assert!(
        (b - a).abs() <= a * 0.05,
        "commands per idle session: {a:.2} in {small}, {b:.2} in {large} (more than 5% apart)"
    );
}

#[test]
fn an_idle_session_sends_as_many_commands_among_1000_as_among_100() {
    assert_within_5_percent("idle_100", "idle_1k");
}

#[test]
#[ignore = "report only (idle_10k): `cargo test --release -p tests --test idle_scaling -- --ignored`"]
fn an_idle_session_sends_as_many_commands_among_10000_as_among_100() {
    assert_within_5_percent("idle_100", "idle_10k");
}
