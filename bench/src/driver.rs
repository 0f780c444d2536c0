//! The benchmark's [`workload::Driver`]: real TCP connections to the server under test, and at
//! each phase boundary a wall-clock mark with, given the server's pid, a reading of its process
//! tree's RSS. The wall clock is read here and in [`crate::load::rss`], nowhere in the simulation.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpStream;
use workload::Driver;

use crate::load::rss::Sampler;

/// The driver of one benchmark run.
pub struct TcpDriver {
    imap: SocketAddr,
    lmtp: Option<SocketAddr>,
    dataset_seed: u64,
    sampler: Option<Sampler>,
    started: Instant,
    marks: RefCell<Vec<(String, u64)>>,
    phases: &'static [&'static str],
    measured: &'static [&'static str],
}

/// Connects with Nagle's algorithm off (a command and its literal go out at once).
async fn dial(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl TcpDriver {
    /// A driver of a workload with phases `phases`, of which `measured` are the measured window
    /// (marked `measure_start` before the first and `measure_end` after the last).
    pub fn new(
        imap: SocketAddr,
        lmtp: Option<SocketAddr>,
        dataset_seed: u64,
        sampler: Option<Sampler>,
        phases: &'static [&'static str],
        measured: &'static [&'static str],
    ) -> TcpDriver {
        TcpDriver {
            imap,
            lmtp,
            dataset_seed,
            sampler,
            started: Instant::now(),
            marks: RefCell::default(),
            phases,
            measured,
        }
    }

    /// Marks a point of the run (an RSS reading is taken when sampling).
    pub fn mark(&self, name: &str) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(sampler) = &self.sampler {
            // The server may have exited: the mark keeps its time anyway.
            let _ = sampler.mark(name);
        }
        self.marks.borrow_mut().push((name.to_string(), ms));
    }

    /// Milliseconds since the start at mark `name`, if it was set.
    pub fn mark_ms(&self, name: &str) -> Option<u64> {
        self.marks
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ms)| *ms)
    }

    /// The marks so far, in order.
    pub fn marks(&self) -> Vec<String> {
        self.marks.borrow().iter().map(|(n, _)| n.clone()).collect()
    }

    /// The sampler, if memory is sampled.
    pub fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }

    /// Marks the start of the run (and of the measured window when it starts with the run).
    pub fn start(&self) {
        self.mark("start");
        if self.phases.first() == self.measured.first() {
            self.mark("measure_start");
        }
    }
}

impl Driver for TcpDriver {
    type Stream = TcpStream;

    fn dial_imap(&self) -> impl Future<Output = io::Result<Self::Stream>> {
        dial(self.imap)
    }

    fn dial_lmtp(&self) -> Option<impl Future<Output = io::Result<Self::Stream>>> {
        self.lmtp.map(dial)
    }

    fn phase_ended(&self, name: &'static str) {
        self.mark(name);
        let next = self
            .phases
            .iter()
            .position(|p| *p == name)
            .and_then(|i| self.phases.get(i + 1));
        if next.is_some() && next == self.measured.first() {
            self.mark("measure_start");
        }
        if self.measured.last() == Some(&name) {
            self.mark("measure_end");
        }
    }

    fn store_is_fresh(&self) -> bool {
        false
    }

    fn dataset_seed(&self) -> u64 {
        self.dataset_seed
    }
}
