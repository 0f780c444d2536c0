//! `append_fetch`: 3 users each APPEND the same 20 generated emails (the first 20 recorded
//! sizes), then FETCH them back and compare every byte; with CAPABILITY, LOGIN, CREATE, SELECT,
//! FETCH (UID FLAGS RFC822.SIZE), NOOP and LOGOUT around it.

use std::rc::Rc;

use imap_proto::{AttributeValue, MailboxDatum, Response, Status};
use turmoil::net::TcpStream;

use crate::client::{ClientError, ImapClient};
use crate::harness::{Harness, SimConfig, IMAP_HOST, IMAP_PORT};
use crate::scenario::{ClientOutcome, Outcomes, PhaseCursor, PhaseMarks, Report, ScenarioError};

/// Scenario name.
pub const NAME: &str = "append_fetch";
/// Users, each on its own client host.
pub const USERS: usize = 3;
/// Emails each user appends.
pub const EMAILS: usize = 20;
/// The phases every client goes through together; the server's peak is reset at each.
pub const PHASES: &[&str] = &["login", "append", "fetch", "logout"];

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let users: Vec<(String, String)> = (1..=USERS)
        .map(|i| (format!("user{i}"), format!("password-{i}")))
        .collect();
    let config = SimConfig {
        seed,
        users: users.clone(),
        ..SimConfig::default()
    };
    let mut harness = Harness::new(config)?;
    let emails: Rc<Vec<Vec<u8>>> = {
        let _harness = harness.accounts().harness.enter();
        let sizes: Vec<u64> = traces::dataset::recorded_sizes()
            .into_iter()
            .take(EMAILS)
            .collect();
        Rc::new(
            traces::dataset::generate(harness.seeds().dataset, &sizes)
                .into_iter()
                .map(|e| e.bytes)
                .collect(),
        )
    };
    let outcomes = Outcomes::default();
    let marks = PhaseMarks::new(&harness.accounts().imap, USERS, PHASES);
    for (index, (user, password)) in users.into_iter().enumerate() {
        let emails = emails.clone();
        let outcomes = outcomes.clone();
        let mut phases = marks.cursor();
        harness.client(&format!("client{index}"), async move {
            let outcome = session(&user, &password, &emails, &mut phases).await;
            phases.end_all().await;
            outcomes.borrow_mut().insert(index, outcome);
            Ok(())
        });
    }
    let figures = harness.run()?;
    let report = Report::build(NAME, seed, &figures, &outcomes, marks.phases());
    drop(harness);
    Ok(report)
}

/// One user's session; every failure is counted in the outcome, never raised.
async fn session(
    user: &str,
    password: &str,
    emails: &[Vec<u8>],
    phases: &mut PhaseCursor,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let stream = match TcpStream::connect((IMAP_HOST, IMAP_PORT)).await {
        Ok(stream) => stream,
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome
                .notes
                .push(format!("connect to {IMAP_HOST}:{IMAP_PORT} failed: {e}"));
            return outcome;
        }
    };
    let mut client = match ImapClient::connect(stream).await {
        Ok((client, _greeting)) => client,
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome.notes.push(format!("no greeting: {e}"));
            return outcome;
        }
    };
    if let Err(e) = steps(&mut client, user, password, emails, phases, &mut outcome).await {
        outcome.notes.push(format!("session ended early: {e}"));
    }
    outcome.stats = client.into_stats();
    outcome
}

async fn steps(
    client: &mut ImapClient<TcpStream>,
    user: &str,
    password: &str,
    emails: &[Vec<u8>],
    phases: &mut PhaseCursor,
    outcome: &mut ClientOutcome,
) -> Result<(), ClientError> {
    client.command("CAPABILITY").await?;
    client
        .command(&format!("LOGIN {user} \"{password}\""))
        .await?;
    client.command("CREATE Projects").await?;
    phases.end_phase().await;
    for email in emails {
        client
            .command_with_literal("APPEND INBOX", email, Status::Ok)
            .await?;
    }
    phases.end_phase().await;
    let select = client.command("SELECT INBOX").await?;
    let exists = select.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Exists(n)) => Some(n),
        _ => None,
    });
    if exists != Some(emails.len() as u32) {
        outcome.mismatches += 1;
        outcome.notes.push(format!(
            "SELECT INBOX: EXISTS {exists:?}, expected {}",
            emails.len()
        ));
    }

    let sizes = client.command("FETCH 1:* (UID FLAGS RFC822.SIZE)").await?;
    let mut seen = 0;
    for response in sizes.parsed() {
        let Response::Fetch(seq, attributes) = response else {
            continue;
        };
        seen += 1;
        let size = attributes.iter().find_map(|a| match a {
            AttributeValue::Rfc822Size(size) => Some(*size as usize),
            _ => None,
        });
        let expected = emails.get(seq as usize - 1).map(Vec::len);
        if size.is_none() || size != expected {
            outcome.mismatches += 1;
            outcome.notes.push(format!(
                "FETCH {seq} RFC822.SIZE {size:?}, expected {expected:?}"
            ));
        }
    }
    if seen != emails.len() {
        outcome.mismatches += 1;
        outcome.notes.push(format!(
            "FETCH (UID FLAGS RFC822.SIZE): {seen} messages, expected {}",
            emails.len()
        ));
    }

    let bodies = client.command("FETCH 1:* BODY[]").await?;
    let mut seen = 0;
    for response in bodies.parsed() {
        let Response::Fetch(seq, attributes) = response else {
            continue;
        };
        seen += 1;
        let body = attributes.into_iter().find_map(|a| match a {
            AttributeValue::BodySection { data, .. } => data,
            _ => None,
        });
        let expected = emails.get((seq as usize).wrapping_sub(1));
        if body.as_deref() != expected.map(Vec::as_slice) {
            outcome.mismatches += 1;
            outcome.notes.push(format!(
                "FETCH {seq} BODY[]: {} bytes differ from the {} appended",
                body.map_or(0, |b| b.len()),
                expected.map_or(0, Vec::len)
            ));
        }
    }
    if seen != emails.len() {
        outcome.mismatches += 1;
        outcome.notes.push(format!(
            "FETCH BODY[]: {seen} messages, expected {}",
            emails.len()
        ));
    }

    phases.end_phase().await;
    client.command("NOOP").await?;
    client.command("LOGOUT").await?;
    phases.end_phase().await;
    Ok(())
}
