//! Shared helpers of imapsim's integration tests (tests/tests/*.rs): each test binary declares
//! the counting allocator with `sim::simulation_binary!();`.

use std::sync::{Mutex, MutexGuard};

use sim::figures::Report;

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises simulations within one test binary, so that process-wide lazy initialisations
/// made by one run never land in the middle of another's figures.
pub fn serial() -> MutexGuard<'static, ()> {
    // A test that panicked while holding the lock leaves nothing inconsistent behind.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs scenario `name` with `seed`, failing the test with the replay command if it cannot run.
pub fn run_scenario(name: &str, seed: u64) -> Report {
    let scenario = sim::scenarios::find(name).expect("scenario is registered");
    match scenario.run(seed) {
        Ok(report) => report,
        Err(e) => panic!(
            "{name} seed {seed} did not complete: {e}\nreproduce: {}",
            sim::budget::reproduce_command(name, seed)
        ),
    }
}

/// Fails the test unless every response was parsable and as expected.
pub fn assert_clean(report: &Report) {
    assert!(
        report.is_clean(),
        "{} seed {}: {} unexpected, {} unparsable, {} mismatches:\n{}\nreproduce: {}",
        report.scenario,
        report.seed,
        report.unexpected,
        report.unparsable,
        report.mismatches,
        report.failures.join("\n"),
        sim::budget::reproduce_command(&report.scenario, report.seed)
    );
}

/// The server and its fakes3 on loopback TCP, for tests that drive them with real clients.
pub mod loopback {
    use server::config::Limits;

    /// Where a started server listens (and its store).
    pub use testkit::Started as Loopback;

    /// Starts fakes3 and a server knowing `user` / `password` on ports the OS picks, with cheap key
    /// derivation (tests log in often) and entropy seeded with 1.
    pub async fn start(user: &str, password: &str, limits: Limits, hostname: &str) -> Loopback {
        let setup = testkit::Setup::new().user(user, password).limits(limits);
        setup.hostname(hostname).start().await
    }
}
