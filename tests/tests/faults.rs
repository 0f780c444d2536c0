//! The fault scenarios (issue #6) on fixed seeds: each must end with zero invariant violations
//! (acknowledged mail present byte for byte with its flags, UIDs unique, increasing and stable,
//! UIDVALIDITY stable, MODSEQ never back, expunged mail gone, the server's idle heap back) and
//! answer nothing but OK or a tolerated NO, its faults must really have been injected, and the
//! same seed must give the same figures twice.

sim::simulation_binary!();

use sim::figures::Report;
use Figure::{Above, AtLeast, Exactly};

/// Runs `name` with `seed` and checks it: clean, no violation, faults injected.
fn clean_run(name: &str, seed: u64) -> Report {
    let report = tests::run_scenario(name, seed);
    assert_eq!(
        report.violations,
        0,
        "{name} seed {seed}: {} invariant violations:\n{}\nreproduce: {}",
        report.violations,
        report.failures.join("\n"),
        sim::budget::reproduce_command(name, seed)
    );
    tests::assert_clean(&report);
    assert!(
        report.faults_injected > 0,
        "{name} seed {seed}: no fault was injected"
    );
    report
}

/// Runs `name` on each of `seeds` (the first one twice): every run clean, the repeated one
/// identical to the byte.
fn check(name: &str, seeds: &[u64]) -> Vec<Report> {
    let _serial = tests::serial();
    let reports: Vec<Report> = seeds.iter().map(|&seed| clean_run(name, seed)).collect();
    let again = tests::run_scenario(name, seeds[0]);
    assert_eq!(
        reports[0].deterministic_figures(),
        again.deterministic_figures(),
        "{name} seed {}: two runs gave different figures\nreproduce: {}",
        seeds[0],
        sim::budget::reproduce_command(name, seeds[0])
    );
    reports
}

/// What a figure of a fault run must be.
#[derive(Debug, Clone, Copy)]
enum Figure {
    Above(u64),
    AtLeast(u64),
    Exactly(u64),
}

impl Figure {
    fn holds(self, value: u64) -> bool {
        match self {
            Figure::Above(n) => value > n,
            Figure::AtLeast(n) => value >= n,
            Figure::Exactly(n) => value == n,
        }
    }
}

/// The checked runs of one fault scenario, to assert figures on.
struct Runs {
    name: &'static str,
    reports: Vec<Report>,
}

/// Runs `name` on `seeds` (see [`check`]).
fn runs(name: &'static str, seeds: &[u64]) -> Runs {
    Runs {
        name,
        reports: check(name, seeds),
    }
}

impl Runs {
    /// Asserts that `figure` of every run is as `want` says (a figure a report lacks counts as 0).
    fn figure(self, figure: &str, want: Figure) -> Runs {
        for report in &self.reports {
            let value = report.figures.get(figure).copied().unwrap_or(0);
            assert!(
                want.holds(value),
                "{} seed {}: {figure} is {value}, wanted {want:?}; figures {:?}",
                self.name,
                report.seed,
                report.figures
            );
        }
        self
    }
}

#[test]
fn trace_workload_under_storage_errors_gets_only_right_answers() {
    let checked = runs("fault_storage", &[1, 2, 3])
        .figure("faults_storage_errors", Above(100))
        .figure("faults_delays", Above(1_000));
    for report in checked.reports {
        assert!(report.commands > 2_000, "{} commands", report.commands);
    }
}

#[test]
fn lost_responses_leave_no_duplicate_and_no_uid_gap() {
    runs("fault_lost_response", &[1, 2, 3]).figure("faults_lost_responses", Above(50));
}

#[test]
fn partitions_from_the_store_lose_nothing_acknowledged() {
    runs("fault_partition", &[1, 2])
        .figure("faults_partitions", Exactly(5))
        .figure("faults_not_reached", Exactly(0));
}

#[test]
fn server_crashes_mid_append_lmtp_store_and_checkpoint_lose_nothing_acknowledged() {
    runs("fault_crash", &[1, 2])
        .figure("faults_crashes", Exactly(5))
        .figure("crash_points_hit", Exactly(5))
        .figure("checkpoints_stored", AtLeast(1));
}

#[test]
fn client_disconnects_leave_nothing_behind() {
    runs("fault_disconnect", &[1, 2, 3]).figure("disconnects", Exactly(9));
}

#[test]
fn two_servers_on_one_store_converge_after_a_partition() {
    runs("fault_two_servers", &[1, 2, 3])
        .figure("faults_partitions", Exactly(1))
        .figure("imap2_peak_bytes", Above(0));
}

// The seeds on which the fault scenarios found duplicates: COPY and MOVE committed their copies
// in batches of 128 and MOVE expunged the originals afterwards, so a storage error or a request
// lost in a partition after the first batch answered NO with copies already in the destination,
// and the client's retry copied them again. They now commit in one request
// (server/src/mail/transaction.rs).
const FOUND_DUPLICATES: [(&str, u64); 3] = [
    ("fault_storage", 62),
    ("fault_partition", 17),
    ("fault_two_servers", 66),
];

#[test]
fn a_refused_copy_or_move_leaves_no_duplicate_once_retried() {
    let _serial = tests::serial();
    for (scenario, seed) in FOUND_DUPLICATES {
        let report = tests::run_scenario(scenario, seed);
        assert_eq!(
            report.violations,
            0,
            "{scenario} seed {seed}:\n{}",
            report.failures.join("\n")
        );
    }
}
