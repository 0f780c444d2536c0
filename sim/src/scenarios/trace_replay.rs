//! `trace_replay`: the 4,619-command workload generated from the recorded trace
//! (`traces::workload`), replayed by one simulated client per user, each user's sessions one after
//! the other (their sequence numbers and UIDs assume that order), the users concurrently. Every
//! response is parsed with imap-proto and checked against the status the workload expects; each
//! command's simulated latency goes into a histogram per command name.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use imap_proto::Status;
use traces::log::{CommandName, TraceCommand};
use traces::workload::{Expect, SetupStep, Step, StepCommand, Workload};
use turmoil::net::TcpStream;

use crate::client::{latency_histogram, quantile_us, ClientError, ImapClient};
use crate::harness::{Harness, HarnessError, SimConfig, IMAP_HOST, IMAP_PORT};
use crate::scenario::{ClientOutcome, Outcomes, PhaseMarks, Report, ScenarioError};

/// Scenario name.
pub const NAME: &str = "trace_replay";
/// Phases: mailboxes filled from the dataset, then the sessions.
pub const PHASES: &[&str] = &["setup", "replay"];
/// Mailboxes every user of this server has from the start (CREATE of them is skipped in setup).
const DEFAULT_MAILBOXES: [&str; 6] = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"];
/// How long a replayed IDLE waits before DONE, in simulated time.
const IDLE_WAIT: Duration = Duration::from_secs(2);

/// Latency per command name, shared by the user clients.
type PerCommand = Rc<RefCell<BTreeMap<String, Histogram<u64>>>>;

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let probe = Harness::new(SimConfig {
        seed,
        ..SimConfig::default()
    })?;
    let workload_seed = probe.seeds().clients;
    drop(probe);
    let workload = Workload::recorded(workload_seed).map_err(|e| {
        ScenarioError::Harness(HarnessError::InvalidConfig(format!("workload: {e}")))
    })?;
    run_workload(seed, workload)
}

/// Replays any workload (the generated one, or a user's capture read with `Workload::read_from`).
pub fn run_workload(seed: u64, workload: Workload) -> Result<Report, ScenarioError> {
    let users: Vec<(String, String)> = workload
        .users
        .iter()
        .map(|u| (u.name.clone(), u.password.clone()))
        .collect();
    let config = SimConfig {
        seed,
        users: users.clone(),
        duration_s: 3_600,
        ..SimConfig::default()
    };
    let mut harness = Harness::new(config)?;
    let workload = Rc::new(workload);
    let outcomes = Outcomes::default();
    let per_command: PerCommand = Rc::default();
    let marks = PhaseMarks::new(&harness.accounts().imap, users.len(), PHASES);
    for index in 0..users.len() {
        let workload = workload.clone();
        let outcomes = outcomes.clone();
        let per_command = per_command.clone();
        let mut phases = marks.cursor();
        harness.client(&format!("client{index}"), async move {
            // One outcome per connection, keyed user-major so the report's order is stable.
            let key = |n: usize| index * 100_000 + n;
            let mut outcome = ClientOutcome::default();
            if let Err(e) = setup(&workload, index, &mut outcome).await {
                outcome
                    .notes
                    .push(format!("setup of user {index} failed: {e}"));
            }
            outcomes.borrow_mut().insert(key(0), outcome);
            phases.end_phase().await;
            for (n, session) in workload
                .sessions
                .iter()
                .filter(|s| s.user == index)
                .enumerate()
            {
                let mut outcome = ClientOutcome::default();
                if let Err(e) = replay(&session.commands, &per_command, &mut outcome).await {
                    outcome
                        .notes
                        .push(format!("user {index} session {n}: ended early: {e}"));
                }
                outcomes.borrow_mut().insert(key(n + 1), outcome);
            }
            phases.end_all().await;
            Ok(())
        });
    }
    let figures = harness.run()?;
    let mut report = Report::build(NAME, seed, &figures, &outcomes, marks.phases());
    for (name, h) in per_command.borrow().iter() {
        report.figures.insert(format!("{name}_count"), h.len());
        report
            .figures
            .insert(format!("{name}_p50_us"), quantile_us(h, 0.5));
        report
            .figures
            .insert(format!("{name}_p99_us"), quantile_us(h, 0.99));
    }
    drop(harness);
    Ok(report)
}

async fn connect(outcome: &mut ClientOutcome) -> Option<ImapClient<TcpStream>> {
    let stream = match TcpStream::connect((IMAP_HOST, IMAP_PORT)).await {
        Ok(stream) => stream,
        Err(e) => {
            outcome.notes.push(format!("connect failed: {e}"));
            return None;
        }
    };
    match ImapClient::connect(stream).await {
        Ok((client, _)) => Some(client),
        Err(e) => {
            outcome.notes.push(format!("no greeting: {e}"));
            None
        }
    }
}

fn absorb(outcome: &mut ClientOutcome, client: ImapClient<TcpStream>) {
    outcome.stats = client.into_stats();
}

/// Fills the user's mailboxes as the workload's setup says, by APPEND.
async fn setup(
    workload: &Workload,
    user: usize,
    outcome: &mut ClientOutcome,
) -> Result<(), ClientError> {
    let Some(mut client) = connect(outcome).await else {
        return Ok(());
    };
    let u = &workload.users[user];
    let result = async {
        client
            .command(&format!("LOGIN \"{}\" \"{}\"", u.name, u.password))
            .await?;
        for step in &workload.setup {
            match step {
                SetupStep::Create {
                    user: owner,
                    mailbox,
                } if *owner == user => {
                    if !DEFAULT_MAILBOXES
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(mailbox))
                    {
                        client.command(&format!("CREATE \"{mailbox}\"")).await?;
                    }
                }
                SetupStep::Deliver {
                    user: owner,
                    mailbox,
                    flags,
                    email,
                } if *owner == user => {
                    let bytes = match email.email() {
                        Ok(email) => email.bytes,
                        Err(e) => {
                            outcome.notes.push(format!("dataset email {email:?}: {e}"));
                            continue;
                        }
                    };
                    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                    client
                        .command_with_literal(
                            &format!("APPEND \"{mailbox}\" ({})", flags.join(" ")),
                            &bytes,
                            Status::Ok,
                        )
                        .await?;
                }
                _ => {}
            }
        }
        client.command("LOGOUT").await?;
        Ok(())
    }
    .await;
    absorb(outcome, client);
    result
}

fn status(expect: Expect) -> Status {
    match expect {
        Expect::Ok => Status::Ok,
        Expect::No => Status::No,
        Expect::Bad => Status::Bad,
    }
}

/// The command text after the tag, without the final CRLF, for a one-line command.
fn one_line(wire: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(wire).ok()?;
    let body = text.strip_suffix("\r\n")?;
    if body.contains('\n') {
        return None;
    }
    Some(body.split_once(' ')?.1.to_string())
}

/// Replays one session; a session without LOGOUT just drops its connection.
async fn replay(
    steps: &[Step],
    per_command: &PerCommand,
    outcome: &mut ClientOutcome,
) -> Result<(), ClientError> {
    let Some(mut client) = connect(outcome).await else {
        return Ok(());
    };
    let result = async {
        for step in steps {
            let started = tokio::time::Instant::now();
            let expected = status(step.expect);
            match (&step.command, step.name) {
                (_, CommandName::Idle) => {
                    let (tag, reply) = client.idle_start().await?;
                    // A server that refused IDLE completed it already: nothing to end.
                    if reply.status.is_none() {
                        tokio::time::sleep(IDLE_WAIT).await;
                        client.idle_done(&tag).await?;
                    }
                }
                (StepCommand::Append(append), _) => {
                    let prefix = append.wire_prefix_with_tag(&append.tag);
                    let text = one_line(&prefix).unwrap_or_default();
                    let head = text
                        .rsplit_once(' ')
                        .map(|(h, _)| h.to_string())
                        .unwrap_or(text);
                    let bytes = match append.email.email() {
                        Ok(email) => email.bytes,
                        Err(e) => {
                            outcome
                                .notes
                                .push(format!("dataset email {:?}: {e}", append.email));
                            continue;
                        }
                    };
                    client.command_with_literal(&head, &bytes, expected).await?;
                }
                (StepCommand::Trace(command), _) => {
                    let wire = match command {
                        TraceCommand::Codec(c) => {
                            TraceCommand::Codec(c.clone()).wire_with_tag(&c.tag)
                        }
                        TraceCommand::Raw { wire, .. } => wire.clone(),
                    };
                    match one_line(&wire) {
                        Some(text) => {
                            client.command_expect(&text, expected).await?;
                        }
                        None => {
                            outcome.mismatches += 1;
                            outcome.notes.push(format!(
                                "{:?}: not a one-line command, not replayed",
                                step.name
                            ));
                            continue;
                        }
                    }
                }
            }
            let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            per_command
                .borrow_mut()
                .entry(format!("{:?}", step.name).to_ascii_lowercase())
                .or_insert_with(latency_histogram)
                .saturating_record(elapsed);
        }
        Ok(())
    }
    .await;
    absorb(outcome, client);
    result
}
