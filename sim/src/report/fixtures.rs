//! Test fixtures of the report: reports and entries of made-up runs.

use std::collections::BTreeMap;

use super::entry::{Entry, Verdict};
use crate::alloc::Figures;
use crate::figures::{Phase, Report};
use crate::harness::RunFigures;

pub(super) fn report(name: &str, peak: u64) -> Report {
    let run = RunFigures {
        server: Figures {
            live_bytes: 10,
            peak_bytes: peak,
            allocs: 3,
            alloc_bytes: 120,
        },
        fakes3: Figures::default(),
        clients: Figures::default(),
        harness: Figures::default(),
        sim_elapsed: std::time::Duration::from_millis(5),
        unaccounted_allocs: 0,
    };
    let mut report = Report::build(name, 9, &run, &BTreeMap::new(), Vec::new());
    report.samples = vec![(10, 5), (20, peak)];
    report
}

/// An idle_N report whose N sessions hold `per` bytes each (plus 1,000 shared).
pub(super) fn idle(name: &str, n: u64, per: u64) -> Entry {
    let mut r = report(name, 1);
    r.phases.push(Phase {
        name: "idle".into(),
        server_peak_bytes: 0,
        server_live_end_bytes: 5_000 + 1_000 + n * per,
        server_allocs: 0,
        server_live_start_bytes: 5_000,
        start_ms: 0,
        end_ms: 1,
    });
    r.per_idle_session_bytes = Some((1_000 + n * per) / n);
    r.figures.insert("idle_sessions".into(), n);
    Entry::ran(r, Verdict::Ok)
}

pub(super) fn index(name: &str, emails: u64, bytes: u64) -> Entry {
    let mut r = report(name, 1);
    r.figures.insert("index_bytes".into(), bytes);
    r.figures.insert("emails".into(), emails);
    Entry::ran(r, Verdict::NoBudget)
}

pub(super) fn sample_entries() -> Vec<Entry> {
    vec![
        Entry::ran(report("demo", 100), Verdict::Ok),
        idle("idle_10", 10, 3_000),
        idle("idle_100", 100, 3_000),
        Entry {
            scenario: "idle_1k".into(),
            seed: 1,
            result: Err("simulation failed: Ran for duration <600s>".into()),
        },
        index("scale_select_1k", 1_000, 50_000),
        index("scale_select_10k", 10_000, 770_000),
    ]
}
