//! `fetch_all`, `fetch_full`, `fetch_body`, `fetch_body_x1`: FETCH 1:* of every message of a
//! preloaded INBOX, one item set per scenario; each checks that every message answered and, for
//! the bodies, that the bytes sent add up to the dataset.

use fakes3::Op;
use imap_proto::{AttributeValue, Response};

use super::common::{expect_eq, fetch_count, Dataset, OneUser, Steps, StepsFuture};
use crate::report::MIB;
use crate::scenario::{Report, ScenarioError};

/// The measured step of every fetch scenario.
const STEP: &[&str] = &["fetch"];

fn body_reads(s: &Steps) -> u64 {
    s.fake.stats().requests[&Op::GetObject]
}

/// FETCH 1:* `items`, checking one response per message; records the body reads it caused.
async fn fetch(s: &mut Steps, items: &str) -> Result<u64, crate::client::ClientError> {
    let reads_before = body_reads(s);
    let received_before = s.client.stats().bytes_received;
    let reply = s.client.command(&format!("FETCH 1:* {items}")).await?;
    s.phases.end_phase().await;
    let reads = body_reads(s) - reads_before;
    s.figures.insert("body_get_objects".into(), reads);
    s.figures.insert(
        "bytes_sent".into(),
        s.client.stats().bytes_received - received_before,
    );
    expect_eq(
        &mut s.outcome,
        "FETCH responses",
        fetch_count(&reply),
        s.emails,
    );
    let body_bytes: u64 = reply
        .parsed()
        .filter_map(|r| match r {
            Response::Fetch(_, attributes) => Some(
                attributes
                    .iter()
                    .map(|a| match a {
                        AttributeValue::BodySection { data: Some(d), .. } => d.len() as u64,
                        _ => 0,
                    })
                    .sum::<u64>(),
            ),
            _ => None,
        })
        .sum();
    Ok(body_bytes)
}

fn steps_all(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        fetch(s, "ALL").await?;
        Ok(())
    })
}

fn steps_full(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        fetch(s, "FULL").await?;
        let reads = s.figures["body_get_objects"];
        expect_eq(&mut s.outcome, "body GetObject during FETCH FULL", reads, 0);
        Ok(())
    })
}

fn steps_body(s: &mut Steps) -> StepsFuture<'_> {
    Box::pin(async move {
        let bytes = fetch(s, "BODY.PEEK[]").await?;
        s.figures.insert("body_bytes".into(), bytes);
        Ok(())
    })
}

const fn scenario(
    name: &'static str,
    dataset: Dataset,
    steps: for<'a> fn(&'a mut Steps) -> StepsFuture<'a>,
) -> OneUser {
    OneUser {
        name,
        dataset,
        preload_sessions: 4,
        setup: &[],
        phases: STEP,
        measured: STEP,
        target_bytes: 2 * MIB,
        steps,
    }
}

const X10: Dataset = Dataset::Recorded { factor: 10 };

/// FETCH 1:* ALL on 1k emails.
pub fn run_all(seed: u64) -> Result<Report, ScenarioError> {
    scenario("fetch_all", X10, steps_all).run(seed)
}

/// FETCH 1:* FULL on 1k emails; no body may be read.
pub fn run_full(seed: u64) -> Result<Report, ScenarioError> {
    scenario("fetch_full", X10, steps_full).run(seed)
}

/// FETCH 1:* BODY.PEEK[] on 1k emails (~236 MB sent).
pub fn run_body(seed: u64) -> Result<Report, ScenarioError> {
    let mut report = scenario("fetch_body", X10, steps_body).run(seed)?;
    check_body_bytes(&mut report);
    Ok(report)
}

/// FETCH 1:* BODY.PEEK[] on the 100 emails (23.6 MB): the test-time variant of `fetch_body`.
pub fn run_body_x1(seed: u64) -> Result<Report, ScenarioError> {
    let mut report =
        scenario("fetch_body_x1", Dataset::Recorded { factor: 1 }, steps_body).run(seed)?;
    check_body_bytes(&mut report);
    Ok(report)
}

fn check_body_bytes(report: &mut Report) {
    let sent = report.figures.get("body_bytes").copied().unwrap_or(0);
    let expected = report.figures.get("dataset_bytes").copied().unwrap_or(0);
    if sent != expected {
        report.mismatches += 1;
        report
            .failures
            .push(format!("BODY[] bytes sent {sent}, dataset {expected}"));
    }
}
