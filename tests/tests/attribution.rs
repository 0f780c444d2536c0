//! Per-host attribution: what a host (or a task it spawned) allocates is charged to that host's
//! account, and to no other.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use sim::alloc::{Account, Figures};
use sim::attribution::{run_attributed, HostAccounts};

sim::simulation_binary!();

const KNOWN_BYTES: usize = 1_000_000;

/// Live bytes of each account measured around the known allocation, inside the spawned task.
#[derive(Default)]
struct Seen {
    alpha_before: Cell<u64>,
    alpha_after: Cell<u64>,
    beta_before: Cell<u64>,
    beta_after: Cell<u64>,
    client_before: Cell<u64>,
    client_after: Cell<u64>,
}

#[test]
fn allocation_in_a_spawned_task_is_charged_to_its_host_only() {
    // One at a time: a simulation run without our subscriber on another thread can register
    // turmoil's `node` span callsite while this run's dispatcher is being set up, and tracing then
    // caches that callsite as disabled (seen once in CI: nothing charged to the host).
    let _serial = tests::serial();
    let alpha = Account::new("alpha").expect("accounts available");
    let beta = Account::new("beta").expect("accounts available");
    let client = Account::new("client").expect("accounts available");
    let hosts = HostAccounts::new();
    hosts.register("alpha", &alpha);
    hosts.register("beta", &beta);
    hosts.register("client", &client);
    let ids = (alpha.id(), beta.id(), client.id());
    let seen = Rc::new(Seen::default());

    let mut sim = turmoil::Builder::new().rng_seed(5).build();
    let host_seen = seen.clone();
    sim.host("alpha", move || {
        let seen = host_seen.clone();
        async move {
            tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let live = |id| sim::alloc::figures_of(id).live_bytes;
                seen.alpha_before.set(live(ids.0));
                seen.beta_before.set(live(ids.1));
                seen.client_before.set(live(ids.2));
                let block = std::hint::black_box(vec![1u8; KNOWN_BYTES]);
                seen.alpha_after.set(live(ids.0));
                seen.beta_after.set(live(ids.1));
                seen.client_after.set(live(ids.2));
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(block);
            });
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    sim.host("beta", || async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    sim.client("client", async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    });
    run_attributed(&mut sim, &hosts).expect("the simulation completes");

    assert_eq!(
        seen.alpha_after.get() - seen.alpha_before.get(),
        KNOWN_BYTES as u64
    );
    assert_eq!(seen.beta_after.get(), seen.beta_before.get());
    assert_eq!(seen.client_after.get(), seen.client_before.get());
    let peak = |a: &Account| a.figures().peak_bytes;
    assert!(
        peak(&alpha) >= KNOWN_BYTES as u64,
        "alpha {:?}",
        alpha.figures()
    );
    assert!(
        peak(&beta) < KNOWN_BYTES as u64 / 10,
        "beta {:?}",
        beta.figures()
    );
    assert!(
        peak(&client) < KNOWN_BYTES as u64 / 10,
        "client {:?}",
        client.figures()
    );
    drop(sim);
    // Freed inside alpha's tick: credited back to alpha, which the others never saw.
    let after: Figures = alpha.figures();
    assert!(
        after.live_bytes < KNOWN_BYTES as u64,
        "alpha still holds the block: {after:?}"
    );
}

#[test]
fn attribution_is_off_outside_the_attributed_run() {
    let _serial = tests::serial();
    let account = Account::new("outside").expect("accounts available");
    let hosts = HostAccounts::new();
    hosts.register("quiet", &account);
    let mut sim = turmoil::Builder::new().rng_seed(5).build();
    sim.host("quiet", || async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    sim.client("client", async {
        let _block = std::hint::black_box(vec![0u8; 4096]);
        Ok(())
    });
    // Without run_attributed, turmoil's `node` span reaches no layer of ours.
    sim.run().expect("the simulation completes");
    assert_eq!(account.figures(), Figures::default());
}

#[test]
fn peaks_reset_to_live_between_phases() {
    let _serial = tests::serial();
    let account = Account::new("phases").expect("accounts available");
    {
        let _in = account.enter();
        let block = std::hint::black_box(vec![0u8; 100_000]);
        drop(block);
    }
    assert!(account.figures().peak_bytes >= 100_000);
    account.reset_peak();
    let figures = account.figures();
    assert_eq!(figures.peak_bytes, figures.live_bytes);
}
