//! What a workload's parties bring back: each one's protocol counters and the content checks that
//! failed, and the workload's own figures.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::client::{ClientError, ClientStats};

/// What one client (a party of a workload) brings back.
#[derive(Debug, Default)]
pub struct ClientOutcome {
    /// Its protocol counters, latencies and hash.
    pub stats: ClientStats,
    /// Checks of content that failed (e.g. a fetched body differing from the appended one).
    pub mismatches: u64,
    /// Descriptions of those failures, and of errors that ended the session early.
    pub notes: Vec<String>,
}

impl ClientOutcome {
    /// Adds a mismatch unless `actual == expected`.
    pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        actual: T,
        expected: T,
    ) {
        if actual != expected {
            self.mismatch(format!("{what}: got {actual:?}, expected {expected:?}"));
        }
    }

    /// Counts a failed content check.
    pub fn mismatch(&mut self, note: String) {
        self.mismatches += 1;
        self.notes.push(note);
    }

    /// Notes the error that ended a session early, if any.
    pub fn note_end(&mut self, result: Result<(), ClientError>) {
        if let Err(e) = result {
            self.notes.push(format!("session ended early: {e}"));
        }
    }

    /// Ends a session: its counters, and the error that ended it early, if any.
    pub fn end_session(&mut self, stats: ClientStats, result: Result<(), ClientError>) {
        self.note_end(result);
        self.stats = stats;
    }

    /// Adds a later session's counters to this client's (a party that logs in twice).
    pub fn absorb(&mut self, stats: ClientStats) {
        self.stats.commands += stats.commands;
        self.stats.unexpected += stats.unexpected;
        self.stats.unparsable += stats.unparsable;
        self.stats.failures.extend(stats.failures);
    }
}

/// Where a workload's parties leave their outcomes, by party index (one thread).
pub type Outcomes = Rc<RefCell<BTreeMap<usize, ClientOutcome>>>;

/// Figures a workload measures besides the clients' counters, by name.
pub type Figures = Rc<RefCell<BTreeMap<String, u64>>>;

/// What a finished workload hands its driver.
#[derive(Debug, Default)]
pub struct WorkloadRun {
    /// Each party's outcome, by index.
    pub outcomes: BTreeMap<usize, ClientOutcome>,
    /// The workload's figures (store requests, bytes sent, hits...).
    pub figures: BTreeMap<String, u64>,
}
