//! The scaling scenarios of the report (issue #5, item 5): SELECT, FETCH 1:* FULL and SEARCH on
//! INBOXes of 100, 1k and 10k small emails (`scale_select_N`, `scale_fetch_full_N`,
//! `scale_search_N`), and the bytes per email of a selected mailbox's index, measured by
//! `scale_select_N` as the live bytes of the session with INBOX selected minus unselected.
//!
//! The emails are [`EMAIL_BYTES`] each ([`Dataset::Small`]): these runs measure how the cost of
//! the index and of the per-message work grows with the number of messages, not the bodies.

use fakes3::Op;
use imap_proto::{MailboxDatum, Response};

use super::common::{exists, expect_eq, fetch_count, Dataset, OneUser, Steps, StepsFuture};
use crate::client::Reply;
use crate::report::MIB;
use crate::scenario::{Report, ScenarioError};

/// Size of each email of a scaling INBOX, in bytes.
pub const EMAIL_BYTES: u64 = 2 * 1024;

/// The mailbox sizes of the scaling runs, in emails, with the suffix of their scenario names.
pub const MAILBOX_SIZES: [(usize, &str); 3] = [(100, "100"), (1_000, "1k"), (10_000, "10k")];

/// APPEND sessions filling INBOX. One session with INBOX selected: its APPENDs refresh the
/// selected index incrementally. An APPEND to a mailbox that is not selected loads the whole
/// index to answer APPENDUID (a cost that grows with the mailbox: 10k emails took minutes).
/// 8 sessions once ended with 9,992 of 10,000, acknowledged APPENDs lost: concurrent loads wrote
/// checkpoints from folds missing the rows another load's checkpoint had deleted meanwhile.
/// Fixed in the server (`server/tests/concurrent_appends.rs`): 8 sessions now give 10,000 on
/// seed 1 (94 s of simulated time, 5 min of wall time).
const PRELOAD_SESSIONS: usize = 1;

/// What the preload session runs before appending.
const PRELOAD_SETUP: &[&str] = &["SELECT INBOX"];

/// The target for the index of a selected mailbox, in bytes per email.
pub const INDEX_TARGET_BYTES_PER_EMAIL: u64 = 64;

/// Target for the SELECT step's peak above baseline (as `refresh`), in bytes.
pub const SELECT_TARGET_BYTES: u64 = MIB;

/// Target for the FETCH FULL and SEARCH steps' peaks above baseline (as `fetch_full`), in bytes.
pub const STEP_TARGET_BYTES: u64 = 2 * MIB;

/// The measured command of a scaling scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// UNSELECT, then SELECT INBOX (the select step; the index bytes from the two).
    Select,
    /// FETCH 1:* FULL (no body may be read).
    FetchFull,
    /// SEARCH on flags (every message hits), then SEARCH TEXT of an absent word (every body read).
    Search,
}

impl Measure {
    /// The scenario name's prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Measure::Select => "scale_select",
            Measure::FetchFull => "scale_fetch_full",
            Measure::Search => "scale_search",
        }
    }

    fn phases(self) -> &'static [&'static str] {
        match self {
            Measure::Select => &["unselect", "select"],
            Measure::FetchFull => &["fetch_full"],
            Measure::Search => &["search_meta", "search_body"],
        }
    }

    fn measured(self) -> &'static [&'static str] {
        match self {
            Measure::Select => &["select"],
            Measure::FetchFull => &["fetch_full"],
            Measure::Search => &["search_meta", "search_body"],
        }
    }

    fn target_bytes(self) -> u64 {
        match self {
            Measure::Select => SELECT_TARGET_BYTES,
            Measure::FetchFull | Measure::Search => STEP_TARGET_BYTES,
        }
    }

    fn steps(self) -> for<'a> fn(&'a mut Steps) -> StepsFuture<'a> {
        match self {
            Measure::Select => select_steps,
            Measure::FetchFull => fetch_full_steps,
            Measure::Search => search_steps,
        }
    }
}

/// The scenario name of `measure` on `emails` emails (`scale_select_10k`), if it is a scaling point.
pub fn name(measure: Measure, emails: usize) -> Option<&'static str> {
    const NAMES: [[&str; 3]; 3] = [
        ["scale_select_100", "scale_select_1k", "scale_select_10k"],
        [
            "scale_fetch_full_100",
            "scale_fetch_full_1k",
            "scale_fetch_full_10k",
        ],
        ["scale_search_100", "scale_search_1k", "scale_search_10k"],
    ];
    let row = match measure {
        Measure::Select => 0,
        Measure::FetchFull => 1,
        Measure::Search => 2,
    };
    let column = MAILBOX_SIZES.iter().position(|&(n, _)| n == emails)?;
    Some(NAMES[row][column])
}

/// GetObject requests the store has served so far (body reads).
fn body_reads(s: &Steps) -> u64 {
    s.fake.stats().requests[&Op::GetObject]
}

/// The numbers of a SEARCH answer.
fn search_hits(reply: &Reply) -> usize {
    reply
        .parsed()
        .map(|r| match r {
            Response::MailboxData(MailboxDatum::Search(ids)) => ids.len(),
            _ => 0,
        })
        .sum()
}

fn select_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        s.client.command("UNSELECT").await?;
        s.phases.end_phase().await;
        let reply = s.client.command("SELECT INBOX").await?;
        s.phases.end_phase().await;
        expect_eq(
            &mut s.outcome,
            "SELECT INBOX EXISTS",
            exists(&reply),
            Some(s.emails as u32),
        );
        Ok(())
    })
}

fn fetch_full_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let reads_before = body_reads(s);
        let reply = s.client.command("FETCH 1:* FULL").await?;
        s.phases.end_phase().await;
        let reads = body_reads(s) - reads_before;
        s.figures.insert("body_get_objects".into(), reads);
        expect_eq(
            &mut s.outcome,
            "FETCH FULL responses",
            fetch_count(&reply),
            s.emails,
        );
        expect_eq(&mut s.outcome, "body GetObject during FETCH FULL", reads, 0);
        Ok(())
    })
}

fn search_steps(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let unseen = s.client.command("SEARCH 1:* UNSEEN").await?;
        s.phases.end_phase().await;
        let reads_before = body_reads(s);
        let text = s.client.command("SEARCH TEXT \"zqxjkvbw\"").await?;
        s.phases.end_phase().await;
        let reads = body_reads(s) - reads_before;
        s.figures.insert("body_get_objects".into(), reads);
        // Every message is unseen; the word appears in none of the generated emails.
        expect_eq(
            &mut s.outcome,
            "SEARCH UNSEEN hits",
            search_hits(&unseen),
            s.emails,
        );
        expect_eq(
            &mut s.outcome,
            "SEARCH TEXT of an absent word",
            search_hits(&text),
            0,
        );
        Ok(())
    })
}

/// Live bytes of the index of a selected mailbox: the server's live bytes once `SELECT INBOX`
/// completed minus once `UNSELECT` completed (0 when a phase is missing or the index is smaller).
pub fn index_bytes(report: &Report) -> u64 {
    match (report.phase("unselect"), report.phase("select")) {
        (Some(unselected), Some(selected)) => selected
            .server_live_end_bytes
            .saturating_sub(unselected.server_live_end_bytes),
        _ => 0,
    }
}

/// Runs `measure` on an INBOX of `emails` emails of [`EMAIL_BYTES`].
///
/// Figures added to the report: `emails`, `email_bytes`, each measured phase's
/// `PHASE_above_baseline_bytes`, and for [`Measure::Select`] `index_bytes`,
/// `index_bytes_per_email` and `index_target_bytes_per_email`.
pub fn run(measure: Measure, emails: usize, seed: u64) -> Result<Report, ScenarioError> {
    let name = name(measure, emails).unwrap_or(measure.prefix());
    let mut report = OneUser {
        name,
        dataset: Dataset::Small {
            count: emails,
            bytes: EMAIL_BYTES,
        },
        preload_sessions: PRELOAD_SESSIONS,
        setup: PRELOAD_SETUP,
        phases: measure.phases(),
        measured: measure.measured(),
        target_bytes: measure.target_bytes(),
        steps: measure.steps(),
    }
    .run(seed)?;
    report.figures.insert("email_bytes".into(), EMAIL_BYTES);
    for phase in measure.measured() {
        let bytes = report.phase(phase).map_or(0, |p| p.above_baseline_bytes());
        report
            .figures
            .insert(format!("{phase}_above_baseline_bytes"), bytes);
    }
    if measure == Measure::Select {
        let bytes = index_bytes(&report);
        report.figures.insert("index_bytes".into(), bytes);
        report
            .figures
            .insert("index_bytes_per_email".into(), bytes / emails.max(1) as u64);
        report.figures.insert(
            "index_target_bytes_per_email".into(),
            INDEX_TARGET_BYTES_PER_EMAIL,
        );
    }
    Ok(report)
}

/// SELECT on 100 emails.
pub fn run_select_100(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Select, 100, seed)
}

/// SELECT on 1k emails.
pub fn run_select_1k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Select, 1_000, seed)
}

/// SELECT on 10k emails.
pub fn run_select_10k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Select, 10_000, seed)
}

/// FETCH 1:* FULL on 100 emails.
pub fn run_fetch_full_100(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::FetchFull, 100, seed)
}

/// FETCH 1:* FULL on 1k emails.
pub fn run_fetch_full_1k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::FetchFull, 1_000, seed)
}

/// FETCH 1:* FULL on 10k emails.
pub fn run_fetch_full_10k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::FetchFull, 10_000, seed)
}

/// SEARCH on 100 emails.
pub fn run_search_100(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Search, 100, seed)
}

/// SEARCH on 1k emails.
pub fn run_search_1k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Search, 1_000, seed)
}

/// SEARCH on 10k emails.
pub fn run_search_10k(seed: u64) -> Result<Report, ScenarioError> {
    run(Measure::Search, 10_000, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measure_and_mailbox_size_has_a_registered_scenario() {
        for measure in [Measure::Select, Measure::FetchFull, Measure::Search] {
            for (emails, suffix) in MAILBOX_SIZES {
                let name = name(measure, emails).expect("a scaling point");
                assert_eq!(name, format!("{}_{suffix}", measure.prefix()));
                assert!(
                    crate::scenario::find(name).is_ok(),
                    "{name} is not in the registry"
                );
            }
        }
        assert_eq!(name(Measure::Select, 7), None);
    }

    #[test]
    fn select_on_100_emails_measures_an_index_and_reads_back_every_message() {
        let report = crate::scenario::find("scale_select_100")
            .expect("registered")
            .run(1)
            .expect("the scenario completes");
        assert!(report.is_clean(), "{:?}", report.failures);
        assert_eq!(report.figures["emails"], 100);
        assert!(report.phase("unselect").is_some() && report.phase("select").is_some());
        assert_eq!(report.figures["index_bytes"], index_bytes(&report));
        assert_eq!(
            report.figures["index_bytes_per_email"],
            report.figures["index_bytes"] / 100
        );
        assert_eq!(report.target_bytes, SELECT_TARGET_BYTES);
        assert_eq!(report.measured_phases, vec!["select".to_string()]);
    }
}
