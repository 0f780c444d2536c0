//! One workload, two transports: the `fetch_body_x1` scenario's workload (the `workload` crate's
//! one-user FETCH 1:* BODY.PEEK[] on the 100 emails) run in the simulation and, by the benchmark
//! driver, over real TCP against `imapsim serve`. Both check every answer; they send the same
//! commands but for the preparation a real server needs (its INBOX may hold an earlier run's
//! mail: SELECT and CLOSE of the empty INBOX), and they fetch the same bytes.

mod common;

sim::simulation_binary!();

#[test]
fn fetch_body_runs_the_same_workload_in_the_simulation_and_over_tcp() {
    let simulated = sim::scenarios::find("fetch_body_x1")
        .expect("registered")
        .run(1)
        .expect("the simulation completes");
    assert!(simulated.is_clean(), "{:?}", simulated.failures);

    let serve = common::serve();
    let options = bench::load::LoadOptions {
        imap: serve.imap.clone(),
        users: vec![("carol".into(), "carol-password".into())],
        workload: bench::load::Workload::FetchBody,
        emails: Some(100),
        seed: 1,
        ..bench::load::LoadOptions::default()
    };
    let run = bench::load::run_blocking(&options).expect("the load driver starts");
    drop(serve);
    let real = &run.report;
    assert!(real.is_clean(), "{:?}", real.failures);

    const PREPARATION_COMMANDS: u64 = 2;
    assert_eq!(real.commands, simulated.commands + PREPARATION_COMMANDS);
    for figure in ["emails", "dataset_bytes", "body_bytes"] {
        assert_eq!(
            real.figures.get(figure),
            simulated.figures.get(figure),
            "{figure}: over TCP vs simulated"
        );
    }
    assert_eq!(real.figures["body_bytes"], real.figures["dataset_bytes"]);
    // The same phases, marked with RSS readings; the measured window is the FETCH.
    assert_eq!(
        real.measured_phases,
        [
            "preload",
            "session",
            "measure_start",
            "fetch",
            "measure_end"
        ]
    );
    let phases: Vec<&str> = simulated.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["preload", "session", "fetch"]);
}
