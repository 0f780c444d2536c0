//! One seed, one run: figures and every byte the server sent are identical across runs with the
//! same seed, and another seed changes the schedule.

sim::simulation_binary!();

use sim::figures::Report;

/// `append_fetch` with seed `a`, then with seed `b`, with no other simulation in between.
fn append_fetch_runs(a: u64, b: u64) -> (Report, Report) {
    let _serial = tests::serial();
    let first = tests::run_scenario("append_fetch", a);
    (first, tests::run_scenario("append_fetch", b))
}

#[test]
fn same_seed_gives_identical_figures_and_server_bytes() {
    let (first, second) = append_fetch_runs(11, 11);
    tests::assert_clean(&first);
    assert_eq!(
        first.received_hash, second.received_hash,
        "bytes the server sent differ"
    );
    assert_eq!(
        first.deterministic_figures(),
        second.deterministic_figures()
    );
    assert!(
        first.server_peak_bytes > 0,
        "the server's account saw its allocations"
    );
}

#[test]
fn another_seed_changes_the_schedule() {
    let (a, b) = append_fetch_runs(11, 12);
    tests::assert_clean(&b);
    assert!(
        a.received_hash != b.received_hash
            || (a.p50_us, a.p99_us, a.max_us) != (b.p50_us, b.p99_us, b.max_us),
        "seeds 11 and 12 gave the same bytes and latencies"
    );
}

#[test]
fn concurrent_simulations_on_other_threads_do_not_mix_their_figures() {
    let alone = {
        let _serial = tests::serial();
        tests::run_scenario("append_fetch", 11).deterministic_figures()
    };
    let runs: Vec<_> = [11, 12, 11]
        .into_iter()
        .map(|seed| {
            std::thread::spawn(move || {
                tests::run_scenario("append_fetch", seed).deterministic_figures()
            })
        })
        .collect();
    let together: Vec<String> = runs
        .into_iter()
        .map(|run| run.join().expect("the run's thread completes"))
        .collect();
    assert_eq!(together[0], alone);
    assert_eq!(together[2], alone);
    assert_ne!(together[1], alone);
}
