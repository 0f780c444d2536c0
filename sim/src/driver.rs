//! The simulation's [`workload::Driver`]: connections over turmoil to the server host, a phase
//! boundary records the server host's heap figures (and resets its peak), the store's request
//! counters come from the fake.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;

use fakes3::Op;
use workload::{Driver, StoreRequests};

use crate::alloc::{self, Account};
use crate::figures::Phase;
use crate::harness::{Harness, IMAP_HOST, IMAP_PORT, LMTP_PORT};

/// Simulated milliseconds since the run began (0 outside a host's tick).
pub fn sim_now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A hook run at the end of a phase, after its figures are taken (diagnostics).
pub type PhaseHook = Box<dyn Fn(&'static str)>;

/// The driver of one simulation.
pub struct SimDriver {
    server: u16,
    fake: fakes3::FakeS3,
    dataset_seed: u64,
    phases: RefCell<Vec<Phase>>,
    allocs_at_start: Cell<u64>,
    live_at_start: Cell<u64>,
    ms_at_start: Cell<u64>,
    hook: Option<PhaseHook>,
}

impl SimDriver {
    /// A driver of `harness`'s clients, measuring its server host.
    pub fn new(harness: &Harness) -> SimDriver {
        SimDriver::measuring(harness, &harness.accounts().imap)
    }

    /// A driver whose phases measure `server`.
    pub fn measuring(harness: &Harness, server: &Account) -> SimDriver {
        let figures = server.figures();
        SimDriver {
            server: server.id(),
            fake: harness.fake().clone(),
            dataset_seed: harness.seeds().dataset,
            phases: RefCell::default(),
            allocs_at_start: Cell::new(figures.allocs),
            live_at_start: Cell::new(figures.live_bytes),
            ms_at_start: Cell::new(0),
            hook: None,
        }
    }

    /// Runs `hook` after each phase's figures are taken.
    pub fn with_hook(mut self, hook: PhaseHook) -> SimDriver {
        self.hook = Some(hook);
        self
    }

    /// The phases recorded so far.
    pub fn phases(&self) -> Vec<Phase> {
        self.phases.borrow().clone()
    }
}

impl Driver for SimDriver {
    type Stream = turmoil::net::TcpStream;

    fn dial_imap(&self) -> impl Future<Output = io::Result<Self::Stream>> {
        turmoil::net::TcpStream::connect((IMAP_HOST, IMAP_PORT))
    }

    fn dial_lmtp(&self) -> Option<impl Future<Output = io::Result<Self::Stream>>> {
        Some(turmoil::net::TcpStream::connect((IMAP_HOST, LMTP_PORT)))
    }

    fn phase_ended(&self, name: &'static str) {
        let figures = alloc::figures_of(self.server);
        let now_ms = sim_now_ms();
        self.phases.borrow_mut().push(Phase {
            name: name.to_string(),
            server_peak_bytes: figures.peak_bytes,
            server_live_end_bytes: figures.live_bytes,
            server_allocs: figures.allocs - self.allocs_at_start.replace(figures.allocs),
            server_live_start_bytes: self.live_at_start.replace(figures.live_bytes),
            start_ms: self.ms_at_start.replace(now_ms),
            end_ms: now_ms,
        });
        alloc::reset_peak(self.server);
        if let Some(hook) = &self.hook {
            hook(name);
        }
    }

    fn store_requests(&self) -> Option<StoreRequests> {
        let r = self.fake.stats().requests;
        Some(StoreRequests {
            get_object: r[&Op::GetObject],
            put_object: r[&Op::PutObject],
            copy_object: r[&Op::CopyObject],
        })
    }

    fn store_is_fresh(&self) -> bool {
        true
    }

    fn dataset_seed(&self) -> u64 {
        self.dataset_seed
    }
}
