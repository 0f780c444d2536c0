//! The server's integration tests' names for the shared test kit (`testkit`): the loopback fixture
//! with user alice / alice-pw unless a test says otherwise, and the line-oriented test client.

// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;

use server::config::Limits;
use server::env::Clock;
pub use testkit::{checkpoints, tagged, Client, Setup, Started, TestClock};

/// Starts fakes3 and the server with user alice/alice-pw on a [`TestClock`] at 2024-02-15.
pub async fn start_alice_on_test_clock() -> (Started, Arc<TestClock>) {
    let clock = Arc::new(TestClock::at(1_707_955_200_000));
    let started = start_with(Limits::default(), Some(clock.clone()), &[ALICE]).await;
    (started, clock)
}

/// The default user.
const ALICE: (&str, &str) = ("alice", "alice-pw");

/// Starts fakes3 and the server with `users`, `limits` and, if given, `clock`.
pub async fn start_with(
    limits: Limits,
    clock: Option<Arc<dyn Clock>>,
    users: &[(&str, &str)],
) -> Started {
    let setup = Setup::new().users(users).limits(limits);
    match clock {
        Some(clock) => setup.clock(clock),
        None => setup,
    }
    .start()
    .await
}

/// Another server instance on the store of `started` (its own node id, from `seed`), with the
/// default limits: its IMAP address.
pub async fn another_instance(started: &Started, users: &[(&str, &str)], seed: u64) -> SocketAddr {
    let setup = Setup::new().users(users).seed(seed);
    setup.serve_on(&started.fake).await.0
}

/// Starts with the default user alice / alice-pw.
pub async fn start(limits: Limits) -> Started {
    start_with(limits, None, &[ALICE]).await
}
