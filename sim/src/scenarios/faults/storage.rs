//! `fault_storage`: half of the trace workload (the recorded command mix, each count divided by
//! [`SHARE`], over [`USERS`] users with 26 emails each to start with; 2,829 commands with the
//! retries at seed 1) replayed
//! while the store fails [`faults`] a share of the requests of every kind (500 or 503, not
//! applied) and delays the others.
//!
//! The workload's model predicts every answer; each client follows it step by step. A command
//! answered NO where the model says OK is sent again, as a client would (after a NO, SELECT and
//! CLOSE leave the session without a mailbox: it is selected again first), and a connection the
//! server closes on purpose (a FETCH body it can no longer complete, an IDLE it can no longer
//! follow) is opened again. Any other answer that differs from the model's is a violation, and
//! so is any FETCH answer that is wrong for the model's state: a UID, a size, the bytes of a
//! `BODY[]` or flags other than the message's. When the faults are off, a fresh session lists
//! every mailbox of both users and checks it against the model's final state (UIDs, flags,
//! bytes), and the server's idle heap is checked.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use imap_proto::Status;
use traces::trace::{CommandName, TraceCommand};
use traces::workload::{
    recorded_counts, EmailRef, Expect, Model, SessionState, SetupStep, Step, StepCommand, Workload,
    WorkloadConfig,
};

use super::connect::{login, open, Session};
use super::heap::{check_idle, idle_before};
use super::link::back_off;
use super::run::{Ctx, FaultRun};
use super::setup::warm;
use crate::figures::{Report, ScenarioError};
use crate::harness::{HarnessError, Seeds, IMAP_HOST};
use workload::client::{ClientError, Reply};
use workload::ledger::{digest, Ack, Digest, FlagState, Ledger};
use workload::responses::fetched;
use workload::trace_replay::one_line;

/// Scenario name.
pub const NAME: &str = "fault_storage";
/// Each command count of the recorded trace is divided by this.
pub const SHARE: usize = 2;
/// Users the workload spreads over.
pub const USERS: usize = 2;
/// How long a replayed IDLE waits before DONE.
const IDLE_WAIT: Duration = Duration::from_secs(2);
/// Mailboxes every user of this server has from the start.
const DEFAULT_MAILBOXES: [&str; 6] = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"];

/// The store's faults during the replay: 5% of requests of every kind answered 500 or 503
/// without being applied, each request delayed by up to 20 ms.
pub fn faults() -> fakes3::Faults {
    fakes3::Faults {
        error_probability: 0.05,
        latency_ms_min: 0,
        latency_ms_max: 20,
        ..fakes3::Faults::default()
    }
}

/// The workload of root seed `seed`: the recorded mix, each count divided by [`SHARE`] (rounded
/// up), over [`USERS`] users whose mailboxes start with 12, 4, 2, 2 and 6 emails of the recorded
/// sizes up to 200 KB.
pub fn workload(seed: u64) -> Result<Workload, traces::workload::WorkloadError> {
    let config = WorkloadConfig {
        seed: Seeds::derive(seed).clients,
        users: USERS,
        emails_per_mailbox: vec![12, 4, 2, 2, 6],
        email_sizes: traces::dataset::recorded_sizes()
            .into_iter()
            .filter(|s| *s <= 200_000)
            .collect(),
        counts: recorded_counts()
            .into_iter()
            .map(|(name, n)| (name, n.div_ceil(SHARE)))
            .collect(),
        ..WorkloadConfig::default()
    };
    Workload::generate(&config)
}

fn invalid(what: &str, e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Harness(HarnessError::InvalidConfig(format!("{what}: {e}")))
}

/// Runs the scenario with root seed `seed`.
pub fn run(seed: u64) -> Result<Report, ScenarioError> {
    let workload = workload(seed).map_err(|e| invalid("workload", e))?;
    let model = workload
        .setup_model()
        .map_err(|e| invalid("workload setup", e))?;
    let users: Vec<(String, String)> = workload
        .users
        .iter()
        .map(|u| (u.name.clone(), u.password.clone()))
        .collect();
    let mut run = FaultRun::with_users(NAME, seed, users)?;
    let ctx = run.ctx();
    let imap = run.harness.accounts().imap.id();
    let workload = Rc::new(workload);
    let model = Rc::new(RefCell::new(model));
    run.harness.client("driver", async move {
        let mailboxes: Vec<String> = model.borrow().users[0].mailboxes.keys().cloned().collect();
        let mailboxes: Vec<&str> = mailboxes.iter().map(String::as_str).collect();
        let setup_result = async {
            for u in 0..USERS {
                setup(&ctx, &workload, u).await?;
            }
            warm(IMAP_HOST, &ctx, 1, &mailboxes).await
        };
        let Some(before) = idle_before(&ctx, imap, setup_result.await, " with faults off").await
        else {
            return Ok(());
        };
        ctx.set_faults(faults());
        let mut set = tokio::task::JoinSet::new();
        for u in 0..USERS {
            let (ctx, workload, model) = (ctx.clone(), workload.clone(), model.clone());
            set.spawn_local(async move {
                let mut digests = Digests::default();
                for (n, session) in workload.sessions.iter().filter(|s| s.user == u).enumerate() {
                    let mut replay = Replay {
                        ctx: &ctx,
                        model: &model,
                        user: u,
                        state: SessionState::new(u),
                        session: None,
                        digests: &mut digests,
                        label: format!("user {u} session {n}"),
                    };
                    if let Err(e) = replay.steps(&session.commands).await {
                        ctx.violation(format!("user {u} session {n}: the connection broke: {e}"));
                    }
                    replay.close();
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            if let Err(e) = joined {
                ctx.violation(format!("a replay task failed: {e}"));
            }
        }
        ctx.set_faults(fakes3::Faults::default());
        tokio::time::sleep(Duration::from_secs(1)).await;
        for u in 0..USERS {
            final_check(&ctx, &model.borrow(), u).await;
        }
        check_idle(&ctx, IMAP_HOST, imap, before, &mailboxes).await;
        Ok(())
    });
    run.finish(&[])
}

/// Fills user `u`'s mailboxes as the workload's setup says, faults off.
async fn setup(ctx: &Ctx, workload: &Workload, u: usize) -> Result<(), ClientError> {
    let mut session = login(IMAP_HOST, ctx, u + 1).await?;
    for step in &workload.setup {
        match step {
            SetupStep::Create { user, mailbox } if *user == u => {
                if !DEFAULT_MAILBOXES
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(mailbox))
                {
                    session.retry(&format!("CREATE \"{mailbox}\"")).await?;
                }
            }
            SetupStep::Deliver {
                user,
                mailbox,
                flags,
                email,
            } if *user == u => {
                let bytes = email
                    .email()
                    .map_err(|e| ClientError::Io(std::io::Error::other(e.to_string())))?
                    .bytes;
                let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                let command = format!("APPEND \"{mailbox}\" ({})", flags.join(" "));
                session.retry_literal(&command, &bytes).await?;
            }
            _ => {}
        }
    }
    session.logout().await
}

/// Digests of the dataset emails, computed once each.
#[derive(Default)]
struct Digests(BTreeMap<EmailRef, (Digest, u64)>);

impl Digests {
    fn of(&mut self, email: &EmailRef) -> Option<(Digest, u64)> {
        if let Some(d) = self.0.get(email) {
            return Some(*d);
        }
        let bytes = email.email().ok()?.bytes;
        let entry = (digest(&bytes), bytes.len() as u64);
        self.0.insert(*email, entry);
        Some(entry)
    }
}

/// One replayed session: its model state and its connection.
struct Replay<'a> {
    ctx: &'a Ctx,
    model: &'a Rc<RefCell<Model>>,
    user: usize,
    state: SessionState,
    session: Option<Session>,
    digests: &'a mut Digests,
    label: String,
}

/// Whether a command changes the store (its retries are worth a note).
fn is_write(name: CommandName) -> bool {
    use CommandName as C;
    matches!(
        name,
        C::Append | C::Move | C::Store | C::Expunge | C::Close | C::Create | C::Subscribe
    )
}

/// Whether the tagged answer of `reply` carries `[ALREADYEXISTS]`.
fn says_already_exists(reply: &Reply) -> bool {
    reply
        .responses
        .last()
        .is_some_and(|r| r.windows(15).any(|w| w == b"[ALREADYEXISTS]"))
}

fn status(expect: Expect) -> Status {
    match expect {
        Expect::Ok => Status::Ok,
        Expect::No => Status::No,
        Expect::Bad => Status::Bad,
    }
}

/// What one step sends.
enum Send {
    Line(String),
    Literal(String, Vec<u8>),
    Idle,
}

impl Replay<'_> {
    fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.end();
        }
    }

    fn violation(&self, text: String) {
        self.ctx.violation(format!("{}: {text}", self.label));
    }

    /// The connection, opened again if the server closed it: logged in and with the mailbox the
    /// model says is selected (`before`, the state ahead of the step being retried).
    async fn reconnect(&mut self, before: &SessionState) -> Result<(), ClientError> {
        self.ctx.counts.add("reconnects", 1);
        let mut session = open(IMAP_HOST, self.ctx).await?;
        if before.authenticated {
            let (name, password) = self.ctx.user(self.user + 1);
            session
                .retry(&format!("LOGIN \"{name}\" \"{password}\""))
                .await?;
            if let Some(selected) = &before.selected {
                let verb = if selected.read_only {
                    "EXAMINE"
                } else {
                    "SELECT"
                };
                session
                    .retry(&format!("{verb} \"{}\"", selected.mailbox))
                    .await?;
            }
        }
        self.session = Some(session);
        Ok(())
    }

    async fn steps(&mut self, steps: &[Step]) -> Result<(), ClientError> {
        self.session = Some(open(IMAP_HOST, self.ctx).await?);
        for step in steps {
            let before = self.state.clone();
            let expect = match self.model.borrow_mut().apply(&mut self.state, step) {
                Ok(expect) => expect,
                Err(e) => {
                    self.violation(format!("the model refuses {:?}: {e}", step.name));
                    return Ok(());
                }
            };
            let send = match &step.command {
                _ if step.name == CommandName::Idle => Send::Idle,
                StepCommand::Append(append) => {
                    let head = workload::trace_replay::append_head(append);
                    match append.email.email() {
                        Ok(email) => Send::Literal(head, email.bytes),
                        Err(e) => {
                            self.violation(format!("dataset email {:?}: {e}", append.email));
                            continue;
                        }
                    }
                }
                StepCommand::Trace(command) => {
                    let wire = match command {
                        TraceCommand::Codec(c) => {
                            TraceCommand::Codec(c.clone()).wire_with_tag(&c.tag)
                        }
                        TraceCommand::Raw { wire, .. } => wire.clone(),
                    };
                    match one_line(&wire) {
                        Some(text) => Send::Line(text),
                        None => {
                            self.violation(format!("{:?} is not a one-line command", step.name));
                            continue;
                        }
                    }
                }
            };
            self.step(step, &send, status(expect), &before).await?;
        }
        if let Some(session) = self.session.take() {
            session.end();
        }
        Ok(())
    }

    /// Sends one step until it gets the model's answer (a NO where OK is due is retried).
    async fn step(
        &mut self,
        step: &Step,
        send: &Send,
        expected: Status,
        before: &SessionState,
    ) -> Result<(), ClientError> {
        let mut pause = workload::tolerant::RETRY_PAUSE;
        for attempt in 0..=self.ctx.retries_max {
            if self.session.is_none() {
                self.reconnect(before).await?;
            }
            let session = self.session.as_mut().expect("connected just above");
            let result = match send {
                Send::Line(text) => session.cmd(text).await,
                Send::Literal(text, bytes) => session.cmd_literal(text, bytes).await,
                Send::Idle => {
                    let client = session.client();
                    match client.idle_start().await {
                        Ok((tag, reply)) if reply.status.is_none() => {
                            tokio::time::sleep(IDLE_WAIT).await;
                            client.idle_done(&tag).await
                        }
                        Ok((_, reply)) => Ok(reply),
                        Err(e) => Err(e),
                    }
                }
            };
            let reply = match result {
                Ok(reply) => reply,
                Err(ClientError::Closed { .. })
                    if matches!(step.name, CommandName::Fetch | CommandName::Idle) =>
                {
                    // The server closes a connection whose FETCH body it cannot complete, and
                    // one whose IDLE it can no longer follow (BYE): connect again and go on.
                    self.ctx.counts.add(
                        &format!("sessions_closed_by_server_{:?}", step.name).to_lowercase(),
                        1,
                    );
                    if let Some(mut session) = self.session.take() {
                        session.tolerate_break(&format!("{:?}", step.name).to_uppercase());
                        session.end();
                    }
                    if step.name == CommandName::Idle {
                        return Ok(());
                    }
                    back_off(&mut pause, self.ctx).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.check_fetches(step, &reply);
            if reply.status.as_ref() == Some(&expected) {
                if attempt > 0 && is_write(step.name) {
                    // Retried writes are where a refused command that took effect shows up.
                    self.ctx
                        .counts
                        .add(&format!("retried_{:?}", step.name).to_lowercase(), 1);
                    if let Some(session) = self.session.as_mut() {
                        session.note(format!(
                            "{}: {:?} answered NO {attempt} times, then OK",
                            self.label, step.name
                        ));
                    }
                }
                return Ok(());
            }
            if attempt > 0 && step.name == CommandName::Create && says_already_exists(&reply) {
                self.violation(
                    "CREATE answered NO, yet the mailbox exists: the retry gets [ALREADYEXISTS]"
                        .to_string(),
                );
                return Ok(());
            }
            if reply.status != Some(Status::No) || expected != Status::Ok {
                self.violation(format!(
                    "{:?} (try {}): expected {expected:?}, got {:?}",
                    step.name,
                    attempt + 1,
                    reply.status
                ));
                return Ok(());
            }
            // NO where OK is due: a storage failure. Retry; after a NO, SELECT and EXAMINE leave
            // the session with nothing selected, and so does CLOSE.
            if step.name == CommandName::Close {
                if let Some(selected) = &before.selected {
                    let session = self.session.as_mut().expect("still connected");
                    session
                        .retry(&format!("SELECT \"{}\"", selected.mailbox))
                        .await?;
                }
            }
            back_off(&mut pause, self.ctx).await;
        }
        self.ctx.counts.add("gave_up", 1);
        self.violation(format!(
            "{:?}: still NO after {} retries (the model no longer matches)",
            step.name, self.ctx.retries_max
        ));
        Ok(())
    }

    /// Checks every FETCH answer of a FETCH or STORE step against the model's state after it.
    fn check_fetches(&mut self, step: &Step, reply: &Reply) {
        if !matches!(step.name, CommandName::Fetch | CommandName::Store) {
            return;
        }
        let Some(selected) = self.state.selected.as_ref().map(|s| s.mailbox.clone()) else {
            return;
        };
        let model = self.model.borrow();
        let Some(mailbox) = model.mailbox(self.user, &selected) else {
            return;
        };
        for f in fetched(reply) {
            let Some(message) = mailbox.messages.get((f.seq as usize).wrapping_sub(1)) else {
                self.violation(format!(
                    "{selected}: FETCH answer for sequence {} of {} messages",
                    f.seq,
                    mailbox.messages.len()
                ));
                continue;
            };
            if let Some(uid) = f.uid {
                if uid != message.uid {
                    self.violation(format!(
                        "{selected}: sequence {} has UID {uid}, the model says {}",
                        f.seq, message.uid
                    ));
                }
            }
            let Some((want, size)) = self.digests.of(&message.email) else {
                continue;
            };
            if let Some(got) = f.size {
                if u64::from(got) != size {
                    self.violation(format!(
                        "{selected}: UID {} has RFC822.SIZE {got}, its email has {size} bytes",
                        message.uid
                    ));
                }
            }
            if let Some(body) = &f.body {
                if digest(body) != want {
                    self.violation(format!(
                        "{selected}: BODY[] of UID {} is {} bytes that are not its email's {size}",
                        message.uid,
                        body.len()
                    ));
                }
            }
            if let Some(flags) = &f.flags {
                // The model does not follow the \Seen a non-peek FETCH sets.
                let extra: Vec<&String> = flags
                    .difference(&message.flags)
                    .filter(|f| *f != "\\seen")
                    .collect();
                let missing: Vec<&String> = message.flags.difference(flags).collect();
                if !extra.is_empty() || !missing.is_empty() {
                    self.violation(format!(
                        "{selected}: UID {} has flags {flags:?}, the model says {:?}",
                        message.uid, message.flags
                    ));
                }
            }
        }
    }
}

/// Checks every mailbox of user `u` against the model's final state, with a fresh session.
async fn final_check(ctx: &Ctx, model: &Model, u: usize) {
    let ledger = Ledger::shared();
    let mut digests = Digests::default();
    let Some(state) = model.users.get(u) else {
        return;
    };
    for (name, mailbox) in &state.mailboxes {
        let mut l = ledger.borrow_mut();
        l.mailbox(name).removals = true;
        for message in &mailbox.messages {
            let Ok(email) = message.email.email() else {
                continue;
            };
            let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
            let what = format!("the model's UID {}", message.uid);
            l.add(
                name,
                &email.bytes,
                &flags,
                Ack::Ok,
                Some(message.uid),
                &what,
            );
            if !message.flags.contains("\\seen") {
                if let Some((d, _)) = digests.of(&message.email) {
                    l.set_flag_state(name, &d, "\\Seen", FlagState::Unknown);
                }
            }
        }
    }
    let context = format!("final check of user {u}");
    match login(IMAP_HOST, ctx, u + 1).await {
        Ok(mut session) => {
            for name in state.mailboxes.keys() {
                if let Err(e) = Ledger::verify(&ledger, session.client(), name, &context).await {
                    ctx.violation(format!("{context}: {name} could not be read: {e}"));
                    break;
                }
            }
            if let Err(e) = session.logout().await {
                ctx.violation(format!("{context}: LOGOUT failed: {e}"));
            }
        }
        Err(e) => ctx.violation(format!("{context}: login failed with faults off: {e}")),
    }
    let found = ledger.borrow();
    for v in found.violations() {
        ctx.violation(format!("user {u}: {v}"));
    }
    for _ in found.violations().len() as u64..found.violation_count() {
        ctx.violation(format!("user {u}: (one more violation)"));
    }
}
