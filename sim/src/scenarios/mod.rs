//! The scenarios, as one table: each row names a scenario, says what it does, and runs either a
//! workload of the `workload` crate ([`workloads::Simulated`]) or a fault scenario of
//! [`faults`]. `imapsim list/run/report` and the tests go through it. Budgets and targets are
//! not here: budgets.toml has them, one row per scenario.

pub mod faults;
pub mod workloads;

use workload::dataset::{Dataset, X1, X10};
use workload::one_user::StepSet;

use crate::budget::Budgets;
use crate::figures::{Report, ScenarioError};
use workloads::{one_user, scaling, Simulated, Spec};

/// What a scenario runs.
#[derive(Clone, Copy)]
pub enum Body {
    /// A workload in the simulation.
    Workload(Simulated),
    /// A scenario of its own (the fault scenarios).
    Custom(fn(u64) -> Result<Report, ScenarioError>),
}

/// A registered scenario.
pub struct Scenario {
    /// Name used on the command line and in budgets.toml.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// What it runs.
    pub body: Body,
}

impl Scenario {
    /// Runs it with root seed `seed` on a fresh simulation thread ([`crate::entropy`]), then
    /// checks what every run's figures must hold ([`Report::check_accounting`]) and sets the
    /// target budgets.toml gives. A panic of the run is resumed on the caller's thread.
    pub fn run(&'static self, seed: u64) -> Result<Report, ScenarioError> {
        match self.spawn(seed).join() {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// [`Scenario::run`] without waiting: the handle of its simulation thread.
    pub fn spawn(
        &'static self,
        seed: u64,
    ) -> std::thread::JoinHandle<Result<Report, ScenarioError>> {
        let name = format!("scenario {} seed {seed}", self.name);
        crate::entropy::spawn(name, seed, move || {
            crate::alloc_log::attach();
            let report = self.body(seed);
            crate::alloc_log::detach();
            let mut report = report?;
            report.check_accounting()?;
            report.target_bytes = Budgets::builtin()
                .ok()
                .and_then(|b| b.get(self.name).ok().and_then(|row| row.target_bytes))
                .unwrap_or(0);
            Ok(report)
        })
    }

    /// Runs the body on the calling thread.
    fn body(&self, seed: u64) -> Result<Report, ScenarioError> {
        match self.body {
            Body::Workload(row) => row.run(self.name, seed),
            Body::Custom(run) => run(seed),
        }
    }
}

const fn simulated(spec: Spec, measured: &'static [&'static str]) -> Body {
    Body::Workload(Simulated { spec, measured })
}

const fn row(name: &'static str, description: &'static str, body: Body) -> Scenario {
    Scenario {
        name,
        description,
        body,
    }
}

/// An INBOX of small emails for the large idle runs: one 2 KiB email per user (100 recorded-size
/// emails for 10,000 users would be 236 GB through the simulation).
const IDLE_SMALL: Dataset = Dataset::Small {
    count: 1,
    bytes: 2048,
};

/// Parallel APPEND sessions filling a one-user INBOX.
const PRELOAD: usize = 4;

/// Every phase after the preload and the session's SELECT, for rows that measure them all.
const fn steps(set: StepSet) -> &'static [&'static str] {
    match set.phases() {
        [_, _, rest @ ..] => rest,
        _ => &[],
    }
}

const fn user_row(set: StepSet, dataset: Dataset, setup: &'static [&'static str]) -> Body {
    Body::Workload(one_user(set, dataset, PRELOAD, setup, steps(set)))
}

const fn scale_row(set: StepSet, count: usize) -> Body {
    Body::Workload(scaling(set, count, steps(set)))
}

static SCENARIOS: [Scenario; 36] = [
    row("append_fetch", "3 users APPEND the same 20 generated emails, then FETCH them back and compare bytes",
        simulated(Spec::AppendFetch { users: 3, emails: 20 }, &[])),
    row("append_seq", "16 users each APPEND the 100 emails, one user after the other",
        simulated(Spec::Append { parallel: false }, &["append"])),
    row("append_par", "16 users each APPEND the 100 emails, all at once",
        simulated(Spec::Append { parallel: true }, &["append"])),
    row("lmtp", "the 100 emails delivered by LMTP to 16 users (16 LMTP sessions at once)",
        simulated(Spec::Deliver, &["deliver"])),
    row("login", "16 concurrent logins with production argon2id parameters",
        simulated(Spec::Login, &["login"])),
    row("idle_16", "16 users (100-email INBOXes) in IDLE, one new email each by LMTP",
        simulated(Spec::Idle { users: 16, dataset: X1 }, &["notify"])),
    row("idle_10", "10 users (1-email INBOXes) in IDLE, notified one by one (scaling)",
        simulated(Spec::Idle { users: 10, dataset: IDLE_SMALL }, &["notify"])),
    row("idle_100", "100 users (1-email INBOXes) in IDLE, notified one by one (scaling)",
        simulated(Spec::Idle { users: 100, dataset: IDLE_SMALL }, &["notify"])),
    row("idle_1k", "1,000 users (1-email INBOXes) in IDLE, notified one by one",
        simulated(Spec::Idle { users: 1_000, dataset: IDLE_SMALL }, &["notify"])),
    row("idle_10k", "10,000 users (1-email INBOXes) in IDLE, notified one by one (report only)",
        simulated(Spec::Idle { users: 10_000, dataset: IDLE_SMALL }, &["notify"])),
    row("copy_move", "COPY 1k emails INBOX to Sent, then MOVE them to Archive (no body traffic)",
        Body::Workload(one_user(StepSet::CopyMove, X10, PRELOAD, &[], &["copy", "move"]))),
    row("store_flags", "STORE 1 flag on 1 email, 16 flags on 1 email, 1 flag on 1k emails",
        user_row(StepSet::StoreFlags, X10, &[])),
    row("refresh", "SELECT, NOOP, CHECK, STATUS of another mailbox, on a 1k INBOX",
        user_row(StepSet::Refresh, X10, &[])),
    row("search_meta", "the trace's 14 SEARCH commands (flags, dates, headers) on 1k emails",
        user_row(StepSet::SearchMeta, X10, &[])),
    row("search_body", "SEARCH BODY / TEXT on 1k emails",
        user_row(StepSet::SearchBody, X10, &[])),
    row("list", "LIST, LSUB, LIST RETURN (STATUS) over 5 mailboxes",
        user_row(StepSet::List, X1, &["DELETE Junk"])),
    row("fetch_all", "FETCH 1:* ALL on 1k emails", user_row(StepSet::FetchAll, X10, &[])),
    row("fetch_full", "FETCH 1:* FULL on 1k emails (no body read)",
        user_row(StepSet::FetchFull, X10, &[])),
    row("fetch_body_x1", "FETCH 1:* BODY.PEEK[] on the 100 emails (23.6 MB; test-time variant)",
        user_row(StepSet::FetchBody, X1, &[])),
    row("fetch_body", "FETCH 1:* BODY.PEEK[] on 1k emails (~236 MB sent; report only)",
        user_row(StepSet::FetchBody, X10, &[])),
    row("trace_replay", "the 4,619-command workload of the recorded trace, 4 users concurrently",
        simulated(Spec::TraceReplay, &[])),
    row("scale_select_100", "UNSELECT then SELECT INBOX on 100 2 KiB emails; index bytes per email (scaling)",
        Body::Workload(scaling(StepSet::Select, 100, &["select"]))),
    row("scale_select_1k", "UNSELECT then SELECT INBOX on 1,000 2 KiB emails; index bytes per email (scaling)",
        Body::Workload(scaling(StepSet::Select, 1_000, &["select"]))),
    row("scale_select_10k", "UNSELECT then SELECT INBOX on 10,000 2 KiB emails; index bytes per email (scaling)",
        Body::Workload(scaling(StepSet::Select, 10_000, &["select"]))),
    row("scale_fetch_full_100", "FETCH 1:* FULL on 100 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleFetchFull, 100)),
    row("scale_fetch_full_1k", "FETCH 1:* FULL on 1,000 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleFetchFull, 1_000)),
    row("scale_fetch_full_10k", "FETCH 1:* FULL on 10,000 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleFetchFull, 10_000)),
    row("scale_search_100", "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 100 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleSearch, 100)),
    row("scale_search_1k", "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 1,000 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleSearch, 1_000)),
    row("scale_search_10k", "SEARCH UNSEEN, then SEARCH TEXT of an absent word, on 10,000 2 KiB emails (scaling)",
        scale_row(StepSet::ScaleSearch, 10_000)),
    // Fault scenarios: seeded faults, invariants checked by a fresh session at the end.
    row("fault_storage", "half of the trace workload (2 users) while the store fails 5% of requests of every kind and delays the rest; answers checked against the workload's model",
        Body::Custom(faults::storage::run)),
    row("fault_lost_response", "APPEND, LMTP, FETCH, STORE, COPY while 15% of storage requests are applied but answered 500",
        Body::Custom(faults::lost_response::run)),
    row("fault_partition", "server and store partitioned in the middle of an APPEND, an LMTP delivery, a COPY, a MOVE and a STORE, then repaired",
        Body::Custom(faults::partition::run)),
    row("fault_crash", "the server crashes and restarts in the middle of a large APPEND, an LMTP delivery, a 1k-message STORE and two checkpoints",
        Body::Custom(faults::crash::run)),
    row("fault_disconnect", "clients go away in the middle of an APPEND literal, of an LMTP DATA, of a FETCH answer and in IDLE",
        Body::Custom(faults::disconnect::run)),
    row("fault_two_servers", "two servers on one store serve one user at once (APPEND, STORE, EXPUNGE, MOVE), one cut off the store for a while; both must show the same mailboxes",
        Body::Custom(faults::two_servers::run)),
];

/// Every scenario, in the order the report shows them.
pub fn all() -> &'static [Scenario] {
    &SCENARIOS
}

/// The scenario named `name`.
pub fn find(name: &str) -> Result<&'static Scenario, ScenarioError> {
    all()
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ScenarioError::Unknown(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_one_budget_row_and_no_budget_is_looser_than_its_target() {
        let budgets = Budgets::builtin().expect("budgets.toml parses");
        let mut names = std::collections::BTreeSet::new();
        for scenario in all() {
            assert!(names.insert(scenario.name), "{} twice", scenario.name);
            let row = budgets.get(scenario.name).expect("a budget row");
            if let Some(target) = row.target_bytes {
                for max in [row.above_baseline_bytes_max, row.per_idle_session_bytes_max] {
                    assert!(
                        max.is_none_or(|max| max <= target),
                        "{}: budget {max:?} looser than target {target}",
                        scenario.name
                    );
                }
            }
        }
        assert_eq!(budgets.scenarios.len(), all().len());
    }

    #[test]
    fn every_scaling_point_is_registered_on_its_mailbox_size() {
        for prefix in ["scale_select", "scale_fetch_full", "scale_search"] {
            for (count, suffix) in [(100, "100"), (1_000, "1k"), (10_000, "10k")] {
                let name = format!("{prefix}_{suffix}");
                let scenario = find(&name).expect("registered");
                let Body::Workload(Simulated {
                    spec: Spec::OneUser(one),
                    ..
                }) = scenario.body
                else {
                    panic!("{name} is not a one-user workload");
                };
                assert_eq!(one.dataset.len(), count, "{name}");
            }
        }
    }

    #[test]
    fn select_on_100_emails_measures_an_index_and_its_target_comes_from_budgets() {
        let report = find("scale_select_100")
            .expect("registered")
            .run(1)
            .expect("the scenario completes");
        assert!(report.is_clean(), "{:?}", report.failures);
        assert_eq!(report.figures["emails"], 100);
        assert_eq!(
            report.figures["index_bytes"],
            workloads::index_bytes(&report)
        );
        assert_eq!(
            report.figures["index_bytes_per_email"],
            report.figures["index_bytes"] / 100
        );
        assert_eq!(report.target_bytes, 1 << 20);
        assert_eq!(report.measured_phases, vec!["select".to_string()]);
    }
}
