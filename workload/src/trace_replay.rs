//! The trace workload (`traces::workload`): each user's mailboxes created and filled as its setup
//! says, then one client per user replays that user's sessions one after the other (their
//! sequence numbers and UIDs assume that order), the users concurrently. Every response is
//! checked against the status the workload expects; each command's latency goes into a histogram
//! per command name. Optionally, every message the workload's model says each mailbox holds is
//! then fetched back and compared byte for byte, UIDs included.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use imap_proto::{AttributeValue, Response, Status, StatusAttribute};
use traces::trace::{CommandName, TraceCommand};
use traces::workload::{
    AppendStep, EmailRef, Expect, Model, SetupStep, Step, StepCommand, Workload, WorkloadConfig,
};

use crate::client::{latency_histogram, quantile_us, ClientError};
use crate::driver::{Driver, Phases};
use crate::outcome::{ClientOutcome, Outcomes, WorkloadRun};
use crate::responses::{exists, status_attribute, status_messages};
use crate::session::{astring, connect, ensure_mailbox, login, quote};

/// Mailboxes every user of this server has from the start (CREATE of them is skipped in setup).
const DEFAULT_MAILBOXES: [&str; 6] = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"];

/// Latency per command name, shared by the user clients.
type PerCommand = Rc<RefCell<BTreeMap<String, Histogram<u64>>>>;

/// The generated trace workload for `users` users with root seed `seed`, cut after
/// `commands_max` commands (whole sessions, in order: each user's sessions stay a valid prefix).
pub fn generated(
    seed: u64,
    users: usize,
    commands_max: Option<usize>,
) -> Result<Workload, traces::workload::WorkloadError> {
    let config = WorkloadConfig {
        seed,
        users,
        ..WorkloadConfig::default()
    };
    let mut workload = Workload::generate(&config)?;
    if let Some(max) = commands_max {
        let mut total = 0;
        workload.sessions.retain(|s| {
            total += s.commands.len();
            total <= max
        });
    }
    Ok(workload)
}

/// How a trace is replayed.
#[derive(Clone, Debug)]
pub struct TraceReplay {
    /// The workload.
    pub workload: Rc<Workload>,
    /// Who replays workload user `i`: `users[i]` (its LOGINs are rewritten to name them).
    pub users: Vec<(String, String)>,
    /// How long a replayed IDLE waits before DONE.
    pub idle_wait: Duration,
    /// Whether every message is fetched back and checked against the workload's model.
    pub verify: bool,
}

impl TraceReplay {
    /// Runs it. Phases: setup, replay (and verify).
    pub async fn run<D: Driver>(self, driver: Rc<D>) -> WorkloadRun {
        let mut figures = BTreeMap::new();
        let model = match self.workload.check() {
            Ok(model) => Some(Rc::new(model)),
            Err(e) if self.verify => {
                let mut outcome = ClientOutcome::default();
                outcome.mismatch(format!("the trace workload does not check: {e}"));
                return WorkloadRun {
                    outcomes: [(0, outcome)].into(),
                    figures,
                };
            }
            Err(_) => None,
        };
        figures.insert("trace_sessions".into(), self.workload.sessions.len() as u64);
        figures.insert(
            "trace_commands".into(),
            self.workload.command_count() as u64,
        );
        let names: &'static [&'static str] = if self.verify {
            &["setup", "replay", "verify"]
        } else {
            &["setup", "replay"]
        };
        let phases = Phases::new(&driver, self.users.len(), names);
        let outcomes = Outcomes::default();
        let per_command = PerCommand::default();
        let this = Rc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..this.users.len() {
            let (this, driver, outcomes, per_command, model) = (
                this.clone(),
                driver.clone(),
                outcomes.clone(),
                per_command.clone(),
                model.clone(),
            );
            let mut cursor = phases.cursor();
            tasks.spawn_local(async move {
                // One outcome per connection, keyed user-major so the report's order is stable.
                let key = |n: usize| index * 100_000 + n;
                let mut outcome = ClientOutcome::default();
                if let Err(e) = this.setup(&*driver, index, &mut outcome).await {
                    outcome
                        .notes
                        .push(format!("setup of user {index} failed: {e}"));
                }
                outcomes.borrow_mut().insert(key(0), outcome);
                cursor.end_phase().await;
                let sessions = this.workload.sessions.iter().filter(|s| s.user == index);
                for (n, session) in sessions.enumerate() {
                    let mut outcome = ClientOutcome::default();
                    let replayed = this
                        .replay(
                            &*driver,
                            index,
                            &session.commands,
                            &per_command,
                            &mut outcome,
                        )
                        .await;
                    if let Err(e) = replayed {
                        outcome
                            .notes
                            .push(format!("user {index} session {n}: ended early: {e}"));
                    }
                    outcomes.borrow_mut().insert(key(n + 1), outcome);
                }
                cursor.end_phase().await;
                if let (true, Some(model)) = (this.verify, model) {
                    let mut outcome = ClientOutcome::default();
                    if let Err(e) = this.verify(&*driver, &model, index, &mut outcome).await {
                        outcome.notes.push(format!("verify of user {index}: {e}"));
                    }
                    outcomes.borrow_mut().insert(key(99_999), outcome);
                }
                cursor.end_all().await;
            });
        }
        while tasks.join_next().await.is_some() {}
        for (name, h) in per_command.borrow().iter() {
            figures.insert(format!("{name}_count"), h.len());
            figures.insert(format!("{name}_p50_us"), quantile_us(h, 0.5));
            figures.insert(format!("{name}_p99_us"), quantile_us(h, 0.99));
        }
        let outcomes = outcomes.take();
        let verified: u64 = outcomes
            .iter()
            .filter(|(k, _)| *k % 100_000 == 99_999)
            .map(|(_, o)| o.stats.commands)
            .sum();
        if this.verify {
            figures.insert("verify_commands".into(), verified);
        }
        WorkloadRun { outcomes, figures }
    }

    /// The LOGIN command of user `index`.
    fn login_command(&self, index: usize) -> String {
        let (name, password) = &self.users[index];
        format!("LOGIN {} {}", quote(name), quote(password))
    }

    /// Whether the replaying user is the workload's own (its LOGINs are replayed as recorded).
    fn own_user(&self, index: usize) -> bool {
        let (name, password) = &self.users[index];
        self.workload
            .users
            .get(index)
            .is_some_and(|u| &u.name == name && &u.password == password)
    }

    /// Fills the user's mailboxes as the workload's setup says, by APPEND; on a store that is not
    /// fresh, the mailboxes must be new (UIDs start at 1).
    async fn setup<D: Driver>(
        &self,
        driver: &D,
        user: usize,
        outcome: &mut ClientOutcome,
    ) -> Result<(), ClientError> {
        let Some(mut client) = connect(driver, outcome).await else {
            return Ok(());
        };
        let result = async {
            client.command(&self.login_command(user)).await?;
            if !driver.store_is_fresh() {
                self.check_fresh(&mut client, user, outcome).await?;
            }
            for step in &self.workload.setup {
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
                        let Some(bytes) = email_bytes(&email, outcome) else {
                            continue;
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
        outcome.stats = client.into_stats();
        result
    }

    /// Creates the user's setup mailboxes that the server lacks, and notes a mismatch for each
    /// one that holds messages or has used UIDs already (a real server's user left over from an
    /// earlier run).
    async fn check_fresh<S>(
        &self,
        client: &mut crate::client::ImapClient<S>,
        user: usize,
        outcome: &mut ClientOutcome,
    ) -> Result<(), ClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut names = BTreeSet::from(["INBOX".to_string()]);
        for step in &self.workload.setup {
            let (SetupStep::Create { user: u, mailbox }
            | SetupStep::Deliver {
                user: u, mailbox, ..
            }) = step;
            if *u == user {
                names.insert(mailbox.clone());
            }
        }
        for mailbox in names {
            ensure_mailbox(client, &mailbox).await?;
            let status = client
                .command_ok_or_no(&format!("STATUS {} (MESSAGES UIDNEXT)", quote(&mailbox)))
                .await?;
            let messages = status_messages(&status).unwrap_or(0);
            let uid_next = status_attribute(&status, |a| match a {
                StatusAttribute::UidNext(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(1);
            if messages > 0 || uid_next > 1 {
                outcome.mismatch(format!(
                    "the trace needs fresh users: {} has {mailbox} with {messages} messages, UIDNEXT {uid_next}",
                    self.users[user].0
                ));
            }
        }
        Ok(())
    }

    /// Replays one session; a session without LOGOUT just drops its connection.
    async fn replay<D: Driver>(
        &self,
        driver: &D,
        user: usize,
        steps: &[Step],
        per_command: &PerCommand,
        outcome: &mut ClientOutcome,
    ) -> Result<(), ClientError> {
        let Some(mut client) = connect(driver, outcome).await else {
            return Ok(());
        };
        let result = async {
            for step in steps {
                let started = tokio::time::Instant::now();
                let expected = status(step.expect);
                match (&step.command, step.name) {
                    (_, CommandName::Login) if !self.own_user(user) => {
                        client
                            .command_expect(&self.login_command(user), expected)
                            .await?;
                    }
                    (_, CommandName::Idle) => {
                        let (tag, reply) = client.idle_start().await?;
                        // A server that refused IDLE completed it already: nothing to end.
                        if reply.status.is_none() {
                            tokio::time::sleep(self.idle_wait).await;
                            client.idle_done(&tag).await?;
                        }
                    }
                    (StepCommand::Append(append), _) => {
                        let head = append_head(append);
                        let Some(bytes) = email_bytes(&append.email, outcome) else {
                            continue;
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
                                outcome.mismatch(format!(
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
        outcome.stats = client.into_stats();
        result
    }

    /// Fetches every message of every mailbox of `user` and compares UIDs and bytes with the model.
    async fn verify<D: Driver>(
        &self,
        driver: &D,
        model: &Model,
        user: usize,
        outcome: &mut ClientOutcome,
    ) -> Result<(), ClientError> {
        let (name, password) = &self.users[user];
        let Some(mut client) = login(driver, name, password, outcome).await else {
            return Ok(());
        };
        let result = async {
            let Some(state) = model.users.get(user) else {
                return Ok(());
            };
            for (mailbox, expected) in &state.mailboxes {
                let examine = client
                    .command(&format!("EXAMINE {}", astring(mailbox)))
                    .await?;
                let count = exists(&examine).unwrap_or(0) as usize;
                outcome.expect_eq(
                    &format!("{mailbox}: messages after the trace"),
                    count,
                    expected.messages.len(),
                );
                if count == 0 {
                    continue;
                }
                let fetch = client.command("UID FETCH 1:* (UID BODY.PEEK[])").await?;
                let mut got: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
                for response in fetch.parsed() {
                    if let Response::Fetch(_, attributes) = response {
                        let uid = attributes.iter().find_map(|a| match a {
                            AttributeValue::Uid(u) => Some(*u),
                            _ => None,
                        });
                        let body = attributes.iter().find_map(|a| match a {
                            AttributeValue::BodySection { data: Some(d), .. } => Some(d.to_vec()),
                            _ => None,
                        });
                        if let (Some(uid), Some(body)) = (uid, body) {
                            got.insert(uid, body);
                        }
                    }
                }
                for message in &expected.messages {
                    let Some(bytes) = email_bytes(&message.email, outcome) else {
                        continue;
                    };
                    match got.remove(&message.uid) {
                        Some(body) if body == bytes => {}
                        Some(body) => outcome.mismatch(format!(
                            "{mailbox} UID {}: {} bytes fetched, {} appended, contents differ",
                            message.uid,
                            body.len(),
                            bytes.len()
                        )),
                        None => outcome.mismatch(format!("{mailbox} UID {}: missing", message.uid)),
                    }
                }
                for uid in got.keys() {
                    outcome.mismatch(format!("{mailbox} UID {uid}: not in the workload's model"));
                }
            }
            client.command("LOGOUT").await?;
            Ok(())
        }
        .await;
        outcome.absorb(client.into_stats());
        result
    }
}

/// The bytes of a dataset email; one that cannot be made is noted in `outcome`.
fn email_bytes(email: &EmailRef, outcome: &mut ClientOutcome) -> Option<Vec<u8>> {
    match email.email() {
        Ok(email) => Some(email.bytes),
        Err(e) => {
            outcome.notes.push(format!("dataset email {email:?}: {e}"));
            None
        }
    }
}

fn status(expect: Expect) -> Status {
    match expect {
        Expect::Ok => Status::Ok,
        Expect::No => Status::No,
        Expect::Bad => Status::Bad,
    }
}

/// An APPEND step's command without its tag and literal size: `APPEND "Sent" (\Seen)`.
pub fn append_head(append: &AppendStep) -> String {
    let text = one_line(&append.wire_prefix_with_tag(&append.tag)).unwrap_or_default();
    text.rsplit_once(' ')
        .map(|(head, _)| head.to_string())
        .unwrap_or(text)
}

/// The command text after the tag, without the final CRLF, for a one-line command.
pub fn one_line(wire: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(wire).ok()?;
    let body = text.strip_suffix("\r\n")?;
    if body.contains('\n') {
        return None;
    }
    Some(body.split_once(' ')?.1.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_trace_keeps_whole_sessions_in_order_and_checks() {
        let full = generated(1, 2, None).expect("generates");
        let cut = generated(1, 2, Some(300)).expect("generates");
        assert!(cut.command_count() <= 300 && cut.command_count() > 0);
        assert_eq!(cut.sessions[..], full.sessions[..cut.sessions.len()]);
        cut.check()
            .expect("a prefix of the sessions is a valid workload");
    }

    #[test]
    fn one_line_strips_the_tag_and_refuses_literals() {
        assert_eq!(one_line(b"A1 NOOP\r\n"), Some("NOOP".to_string()));
        assert_eq!(one_line(b"A1 APPEND x {3}\r\nabc\r\n"), None);
    }

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(astring("user1@imapsim.test"), "user1@imapsim.test");
        assert_eq!(astring("a b"), "\"a b\"");
    }
}
