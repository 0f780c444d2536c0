//! The load driver's workloads over real TCP, as the simulation's scenarios of the same names run
//! them: each prepares the server (empties or creates its mailboxes, preloads emails in parallel
//! sessions), marks `measure_start`, runs the measured commands, marks `measure_end`, then checks
//! the answers (message counts, bodies byte for byte). Every session's counters end up in the
//! context, whatever happened to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blake2::{Blake2b512, Digest};
use hdrhistogram::Histogram;
use imap_proto::{AttributeValue, MailboxDatum, Response, StatusAttribute};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use traces::log::{CommandName, TraceCommand};
use traces::workload::{Expect, Model, SetupStep, Step, StepCommand, WorkloadConfig};

use super::lmtp::{LmtpClient, LmtpError};
use super::{lock, Ctx, Workload};
use crate::client::{latency_histogram, quantile_us, ClientError, ImapClient, Reply};
use crate::scenario::ClientOutcome;
use crate::scenarios::common::{exists, expect_eq, fetch_count, parse_exists};

/// The driver's IMAP client.
pub type Client = ImapClient<TcpStream>;

/// Parallel sessions appending a preloaded mailbox (as the simulation's preload).
const PRELOAD_SESSIONS: usize = 4;
/// Logins in flight at once: servers queue (ours refuses beyond a bound) key derivations.
const LOGINS_IN_FLIGHT_MAX: usize = 8;
/// How long an idle session waits for its new-mail notification.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between the last session entering IDLE and the idle reading: forked processes settle.
const IDLE_SETTLE: Duration = Duration::from_millis(500);
/// Index of the first email delivered to idle sessions (apart from the preloaded ones).
const NEW_EMAIL_INDEX: usize = 100_000;
/// The 16 flags of store_flags' second step.
const SIXTEEN_FLAGS: &str =
    "\\Seen \\Answered \\Flagged \\Draft $Forwarded $Junk $NotJunk $MDNSent \
                             $Label1 $Label2 $Label3 $Label4 $Label5 work personal todo";

/// What ends a session or a workload early.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The IMAP connection failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An LMTP delivery failed.
    #[error("LMTP: {0}")]
    Lmtp(#[from] LmtpError),
    /// A command the workload cannot go on without was refused.
    #[error("{command:?} answered {line:?}")]
    Refused {
        /// The command.
        command: String,
        /// The tagged answer.
        line: String,
    },
    /// The server is not in the state the workload needs.
    #[error("{0}")]
    State(String),
    /// The trace workload could not be generated or checked.
    #[error("trace workload: {0}")]
    Trace(String),
    /// A task panicked or was cancelled.
    #[error("a session task failed: {0}")]
    Join(String),
}

/// Quotes an IMAP string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One IMAP session and what its checks found.
pub struct Session {
    /// The connection.
    pub client: Client,
    /// Its content checks and notes.
    pub outcome: ClientOutcome,
}

impl Session {
    /// Connects and reads the greeting (not logged in).
    pub async fn open(ctx: &Ctx) -> Result<Session, WorkError> {
        let connected = async {
            let stream = TcpStream::connect(ctx.imap).await?;
            stream.set_nodelay(true)?;
            Ok::<_, ClientError>(ImapClient::connect(stream).await?.0)
        }
        .await;
        match connected {
            Ok(client) => Ok(Session {
                client,
                outcome: ClientOutcome::default(),
            }),
            Err(e) => {
                let outcome = ClientOutcome {
                    notes: vec![format!("connect to {}: {e}", ctx.imap)],
                    ..ClientOutcome::default()
                };
                ctx.keep(outcome, true, false);
                Err(e.into())
            }
        }
    }

    /// Connects and logs in as user `user`.
    pub async fn login(ctx: &Ctx, user: usize) -> Result<Session, WorkError> {
        let mut s = Session::open(ctx).await?;
        let (name, password) = &ctx.users[user % ctx.users.len()];
        let command = format!("LOGIN {} {}", quote(name), quote(password));
        match s.client.command(&command).await {
            Ok(reply) if reply.is_ok() => Ok(s),
            Ok(reply) => {
                let e = refused(&format!("LOGIN {name}"), &reply);
                s.close(ctx, Err(e))
            }
            Err(e) => s.close(ctx, Err(e.into())),
        }
    }

    /// Ends the session: its counters go to the context; an error is noted and passed on.
    pub fn close<T>(self, ctx: &Ctx, result: Result<T, WorkError>) -> Result<T, WorkError> {
        let Session {
            client,
            mut outcome,
        } = self;
        outcome.stats = client.into_stats();
        match &result {
            Ok(_) => ctx.keep(outcome, false, false),
            Err(e) => {
                outcome.notes.push(format!("session ended early: {e}"));
                // A connection error cut the command in flight; other errors end between commands.
                let cut = matches!(e, WorkError::Client(_));
                ctx.keep(outcome, true, cut);
            }
        }
        result
    }

    /// Runs `command`, which must answer OK for the workload to go on.
    pub async fn ok(&mut self, command: &str) -> Result<Reply, WorkError> {
        let reply = self.client.command(command).await?;
        if reply.is_ok() {
            Ok(reply)
        } else {
            Err(refused(command, &reply))
        }
    }

    /// APPENDs `email` to `mailbox`, which must answer OK.
    pub async fn append(&mut self, mailbox: &str, email: &[u8]) -> Result<(), WorkError> {
        let command = format!("APPEND {}", quote(mailbox));
        let reply = self
            .client
            .command_with_literal(&command, email, imap_proto::Status::Ok)
            .await?;
        if reply.is_ok() {
            Ok(())
        } else {
            Err(refused(&command, &reply))
        }
    }

    /// Creates `mailbox` if LIST does not show it, then empties it (STORE \Deleted, EXPUNGE).
    pub async fn ensure_empty(&mut self, mailbox: &str) -> Result<(), WorkError> {
        self.ensure_exists(mailbox).await?;
        let select = self.ok(&format!("SELECT {}", quote(mailbox))).await?;
        if exists(&select).unwrap_or(0) > 0 {
            self.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)").await?;
            self.ok("EXPUNGE").await?;
        }
        self.ok("CLOSE").await?;
        Ok(())
    }

    /// Creates `mailbox` unless LIST shows it (INBOX always exists).
    pub async fn ensure_exists(&mut self, mailbox: &str) -> Result<(), WorkError> {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return Ok(());
        }
        let list = self.ok(&format!("LIST \"\" {}", quote(mailbox))).await?;
        let listed = list
            .parsed()
            .any(|r| matches!(r, Response::MailboxData(MailboxDatum::List { .. })));
        if !listed {
            self.ok(&format!("CREATE {}", quote(mailbox))).await?;
        }
        Ok(())
    }
}

fn refused(command: &str, reply: &Reply) -> WorkError {
    WorkError::Refused {
        command: command.to_string(),
        line: reply
            .responses
            .last()
            .map(|r| String::from_utf8_lossy(r).trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// Waits for every task; the first error, if any, after all have ended.
async fn join_all<T: 'static>(set: JoinSet<Result<T, WorkError>>) -> Result<Vec<T>, WorkError> {
    let (out, first) = join_each(set).await;
    first.map_or(Ok(out), Err)
}

/// Waits for every task: the values of those that succeeded, and the first error.
async fn join_each<T: 'static>(
    mut set: JoinSet<Result<T, WorkError>>,
) -> (Vec<T>, Option<WorkError>) {
    let mut out = Vec::new();
    let mut first = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(value)) => out.push(value),
            Ok(Err(e)) => {
                first.get_or_insert(e);
            }
            Err(e) => {
                first.get_or_insert(WorkError::Join(e.to_string()));
            }
        }
    }
    (out, first)
}

/// Runs `workload` in `ctx`.
pub async fn run(workload: Workload, ctx: Arc<Ctx>) -> Result<(), WorkError> {
    match workload {
        Workload::TraceReplay => trace_replay(ctx).await,
        Workload::AppendSeq => append(ctx, false).await,
        Workload::AppendPar => append(ctx, true).await,
        Workload::Idle => idle(ctx).await,
        one_user => one_user_run(one_user, ctx).await,
    }
}

/// Appends emails `0..count` to `mailbox` of `user` in parallel sessions.
async fn preload(
    ctx: &Arc<Ctx>,
    user: usize,
    mailbox: &str,
    count: usize,
) -> Result<(), WorkError> {
    let sessions = PRELOAD_SESSIONS.min(count).max(1);
    let mut set = JoinSet::new();
    for p in 0..sessions {
        let ctx = ctx.clone();
        let mailbox = mailbox.to_string();
        set.spawn(async move {
            let mut s = Session::login(&ctx, user).await?;
            let result = async {
                for k in (p..count).step_by(sessions) {
                    s.append(&mailbox, &ctx.email(k)).await?;
                }
                s.client.command("LOGOUT").await?;
                Ok(())
            }
            .await;
            s.close(&ctx, result)
        });
    }
    join_all(set).await.map(drop)
}

/// `append_seq` / `append_par`: every user empties INBOX and logs in; then (measured) each
/// APPENDs the emails, one user after the other or all at once; then each INBOX is counted.
async fn append(ctx: Arc<Ctx>, parallel: bool) -> Result<(), WorkError> {
    let mut sessions = Vec::new();
    for user in 0..ctx.users.len() {
        let mut s = Session::login(&ctx, user).await?;
        let result = async {
            s.ensure_empty("INBOX").await?;
            s.ok("SELECT INBOX").await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // The sessions already open still count.
            for other in sessions {
                Session::close(other, &ctx, Ok(()))?;
            }
            return s.close(&ctx, Err(e));
        }
        sessions.push(s);
    }
    ctx.mark("measure_start");
    let (appended, error) = if parallel {
        let mut set = JoinSet::new();
        for s in sessions {
            let ctx = ctx.clone();
            set.spawn(async move { append_all(&ctx, s).await });
        }
        join_each(set).await
    } else {
        let mut done = Vec::new();
        let mut error = None;
        for s in sessions {
            if error.is_some() {
                // Its user's turn never came: only its counters are kept.
                s.close(&ctx, Ok(()))?;
                continue;
            }
            match append_all(&ctx, s).await {
                Ok(s) => done.push(s),
                Err(e) => error = Some(e),
            }
        }
        (done, error)
    };
    ctx.mark("measure_end");
    let mut first_error = error.map(|e| e.to_string());
    for mut s in appended {
        let result = async {
            let select = s.ok("SELECT INBOX").await?;
            let emails = ctx.emails as u32;
            expect_eq(
                &mut s.outcome,
                "INBOX EXISTS after APPEND",
                exists(&select),
                Some(emails),
            );
            s.client.command("LOGOUT").await?;
            Ok(())
        }
        .await;
        if let Err(e) = s.close(&ctx, result) {
            first_error.get_or_insert(e.to_string());
        }
    }
    ctx.figure("users", ctx.users.len() as u64);
    ctx.figure("emails_per_user", ctx.emails as u64);
    first_error.map_or(Ok(()), |e| Err(WorkError::State(e)))
}

/// One user's measured APPENDs; the session comes back for the checks.
async fn append_all(ctx: &Arc<Ctx>, mut s: Session) -> Result<Session, WorkError> {
    let result = async {
        for k in 0..ctx.emails {
            s.append("INBOX", &ctx.email(k)).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(s),
        Err(e) => s.close(ctx, Err(e)),
    }
}

/// Sends `true`/`false` once on a channel (the coordinator counts every session once).
struct Signal {
    tx: mpsc::UnboundedSender<bool>,
    sent: bool,
}

impl Signal {
    fn new(tx: &mpsc::UnboundedSender<bool>) -> Signal {
        Signal {
            tx: tx.clone(),
            sent: false,
        }
    }

    fn send(&mut self, ok: bool) {
        if !self.sent {
            self.sent = true;
            // The coordinator outlives the sessions; a closed channel only means it gave up.
            let _ = self.tx.send(ok);
        }
    }
}

/// Receives `n` values; how many were `true`.
async fn count_true(rx: &mut mpsc::UnboundedReceiver<bool>, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        match rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => {}
            None => break,
        }
    }
    ok
}

/// `idle`: each user's INBOX emptied and preloaded; a warm-up round (`connections` sessions log
/// in, SELECT INBOX, IDLE, marked `warmup_idle_all`, then DONE and LOGOUT: the server's allocator
/// and caches reach their working size); then (measured) the same sessions again (mark
/// `idle_all`), one new email per user (LMTP, else APPEND), every session waiting for its EXISTS
/// (mark `notified`), DONE, LOGOUT.
async fn idle(ctx: Arc<Ctx>) -> Result<(), WorkError> {
    for user in 0..ctx.users.len() {
        let mut s = Session::login(&ctx, user).await?;
        let result = async {
            s.ensure_empty("INBOX").await?;
            s.client.command("LOGOUT").await?;
            Ok(())
        }
        .await;
        s.close(&ctx, result)?;
        preload(&ctx, user, "INBOX", ctx.emails).await?;
    }
    ctx.mark("warmup_start");
    idle_round(&ctx, false).await?;
    ctx.mark("measure_start");
    let measured = idle_round(&ctx, true).await;
    ctx.mark("measure_end");
    ctx.figure("idle_sessions", ctx.connections as u64);
    ctx.figure("emails_per_user", ctx.emails as u64);
    measured
}

/// One round of `connections` sessions in IDLE (marked `idle_all`, or `warmup_idle_all` without
/// `notify`); with `notify`, a new email for each user and every session's EXISTS awaited.
async fn idle_round(ctx: &Arc<Ctx>, notify: bool) -> Result<(), WorkError> {
    let n = ctx.connections;
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (notified_tx, mut notified_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = watch::channel(false);
    let logins = Arc::new(Semaphore::new(LOGINS_IN_FLIGHT_MAX));
    let mut set = JoinSet::new();
    for c in 0..n {
        let (ctx, logins, mut done_rx) = (ctx.clone(), logins.clone(), done_rx.clone());
        let (mut ready, mut notified) = (Signal::new(&ready_tx), Signal::new(&notified_tx));
        set.spawn(async move {
            let permit = logins.acquire_owned().await;
            let session = Session::login(&ctx, c).await;
            drop(permit);
            let mut s = match session {
                Ok(s) => s,
                Err(e) => {
                    ready.send(false);
                    notified.send(false);
                    return Err(e);
                }
            };
            let result = async {
                let select = s.ok("SELECT INBOX").await?;
                let expected = exists(&select).unwrap_or(0) + 1;
                let (tag, reply) = s.client.idle_start().await?;
                if reply.status.is_some() {
                    return Err(refused("IDLE", &reply));
                }
                ready.send(true);
                if notify {
                    let wanted = move |r: &Response<'_>| {
                        matches!(r, Response::MailboxData(MailboxDatum::Exists(k)) if *k >= expected)
                    };
                    let waited = tokio::time::timeout(
                        NOTIFY_TIMEOUT,
                        s.client.wait_untagged("EXISTS", wanted),
                    )
                    .await;
                    let Ok(response) = waited else {
                        return Err(WorkError::State(format!(
                            "no EXISTS within {NOTIFY_TIMEOUT:?} of IDLE"
                        )));
                    };
                    let count = parse_exists(&response?);
                    expect_eq(&mut s.outcome, "EXISTS in IDLE", count, Some(expected));
                    notified.send(true);
                }
                // The coordinator ends every IDLE at once; a dropped sender also ends it.
                let _ = done_rx.wait_for(|done| *done).await;
                s.client.idle_done(&tag).await?;
                s.client.command("LOGOUT").await?;
                Ok(())
            }
            .await;
            ready.send(false);
            notified.send(false);
            s.close(&ctx, result)
        });
    }
    drop((ready_tx, notified_tx));
    let idle_ok = count_true(&mut ready_rx, n).await;
    tokio::time::sleep(IDLE_SETTLE).await;
    let delivered = if notify {
        ctx.mark("idle_all");
        ctx.figure("idle_sessions_in_idle", idle_ok as u64);
        let delivered = deliver_one_each(ctx).await;
        let notified_ok = count_true(&mut notified_rx, n).await;
        ctx.mark("notified");
        ctx.figure("idle_sessions_notified", notified_ok as u64);
        delivered
    } else {
        ctx.mark("warmup_idle_all");
        ctx.figure("warmup_sessions_in_idle", idle_ok as u64);
        Ok(())
    };
    // Sessions still waiting get DONE too.
    let _ = done_tx.send(true);
    let joined = join_all(set).await;
    delivered?;
    joined.map(drop)
}

/// One new email for each user: by LMTP when the context has an LMTP address, else by APPEND.
async fn deliver_one_each(ctx: &Arc<Ctx>) -> Result<(), WorkError> {
    if let Some(lmtp) = ctx.lmtp {
        let stream = TcpStream::connect(lmtp).await.map_err(LmtpError::from)?;
        let mut client = LmtpClient::connect(stream).await?;
        for (user, (name, _)) in ctx.users.iter().enumerate() {
            client
                .deliver(&[name.as_str()], &ctx.email(NEW_EMAIL_INDEX + user))
                .await?;
        }
        client.quit().await?;
        ctx.figure("delivered_by_lmtp", ctx.users.len() as u64);
        return Ok(());
    }
    for user in 0..ctx.users.len() {
        let mut s = Session::login(ctx, user).await?;
        let result = async {
            s.append("INBOX", &ctx.email(NEW_EMAIL_INDEX + user))
                .await?;
            s.client.command("LOGOUT").await?;
            Ok(())
        }
        .await;
        s.close(ctx, result)?;
    }
    ctx.figure("delivered_by_append", ctx.users.len() as u64);
    Ok(())
}

/// The one-user workloads: user 0's INBOX (and Sent, Archive for copy_move) emptied, INBOX
/// preloaded, then the measured session's commands.
async fn one_user_run(workload: Workload, ctx: Arc<Ctx>) -> Result<(), WorkError> {
    let mailboxes: &[&str] = if workload == Workload::CopyMove {
        &["INBOX", "Sent", "Archive"]
    } else {
        &["INBOX"]
    };
    let mut s = Session::login(&ctx, 0).await?;
    let result = async {
        for mailbox in mailboxes {
            s.ensure_empty(mailbox).await?;
        }
        s.client.command("LOGOUT").await?;
        Ok(())
    }
    .await;
    s.close(&ctx, result)?;
    preload(&ctx, 0, "INBOX", ctx.emails).await?;
    let mut s = Session::login(&ctx, 0).await?;
    let result = async {
        let select = s.ok("SELECT INBOX").await?;
        let n = ctx.emails;
        expect_eq(
            &mut s.outcome,
            "SELECT INBOX EXISTS",
            exists(&select),
            Some(n as u32),
        );
        ctx.figure("emails", n as u64);
        ctx.mark("measure_start");
        measured_steps(workload, &ctx, &mut s).await?;
        ctx.mark("measure_end");
        after_checks(workload, &ctx, &mut s).await?;
        s.client.command("LOGOUT").await?;
        Ok(())
    }
    .await;
    s.close(&ctx, result)
}

/// The measured commands of a one-user workload, with the checks of their own answers.
async fn measured_steps(workload: Workload, ctx: &Ctx, s: &mut Session) -> Result<(), WorkError> {
    let n = ctx.emails;
    match workload {
        Workload::FetchAll | Workload::FetchFull | Workload::FetchBody => {
            let items = match workload {
                Workload::FetchAll => "ALL",
                Workload::FetchFull => "FULL",
                _ => "BODY.PEEK[]",
            };
            let before = s.client.stats().bytes_received;
            let reply = s.client.command(&format!("FETCH 1:* {items}")).await?;
            ctx.figure("bytes_sent", s.client.stats().bytes_received - before);
            expect_eq(&mut s.outcome, "FETCH responses", fetch_count(&reply), n);
            if workload == Workload::FetchBody {
                check_bodies(ctx, s, &reply);
            }
        }
        Workload::SearchBody => {
            let body = s.client.command("SEARCH BODY \"the\"").await?;
            let text = s.client.command("SEARCH TEXT \"zqxjkvbw\"").await?;
            ctx.figure("body_hits", search_hits(&body) as u64);
            expect_eq(
                &mut s.outcome,
                "SEARCH TEXT of an absent word",
                search_hits(&text),
                0,
            );
            if search_hits(&body) == 0 {
                s.outcome.mismatches += 1;
                s.outcome
                    .notes
                    .push("SEARCH BODY \"the\" found nothing".into());
            }
        }
        Workload::CopyMove => {
            s.client.command("COPY 1:* Sent").await?;
            let select = s.client.command("SELECT Sent").await?;
            expect_eq(
                &mut s.outcome,
                "Sent EXISTS after COPY",
                exists(&select),
                Some(n as u32),
            );
            s.client.command("MOVE 1:* Archive").await?;
        }
        Workload::StoreFlags => {
            let one = s.client.command("STORE 1 +FLAGS (\\Flagged)").await?;
            expect_eq(
                &mut s.outcome,
                "STORE 1 FETCH responses",
                fetch_count(&one),
                1,
            );
            let sixteen = s
                .client
                .command(&format!("STORE 2 +FLAGS ({SIXTEEN_FLAGS})"))
                .await?;
            expect_eq(
                &mut s.outcome,
                "STORE 16 flags FETCH responses",
                fetch_count(&sixteen),
                1,
            );
            let all = s.client.command("STORE 1:* +FLAGS (\\Seen)").await?;
            // Message 2 has \Seen already: a server may leave its FETCH out.
            let count = fetch_count(&all);
            if count + 1 < n || count > n {
                expect_eq(&mut s.outcome, "STORE 1:* FETCH responses", count, n);
            }
        }
        other => {
            return Err(WorkError::State(format!(
                "{other} is not a one-user workload"
            )));
        }
    }
    Ok(())
}

/// Checks after the measured phase (they send commands of their own).
async fn after_checks(workload: Workload, ctx: &Ctx, s: &mut Session) -> Result<(), WorkError> {
    if workload != Workload::CopyMove {
        return Ok(());
    }
    let n = ctx.emails as u32;
    for (mailbox, expected) in [("Archive", n), ("INBOX", n)] {
        let reply = s.ok(&format!("STATUS {mailbox} (MESSAGES)")).await?;
        expect_eq(
            &mut s.outcome,
            &format!("{mailbox} MESSAGES after COPY and MOVE"),
            status_messages(&reply),
            Some(expected),
        );
    }
    Ok(())
}

/// Compares the FETCHed bodies with the preloaded emails, as multisets of digests (parallel
/// preload sessions append in any order).
fn check_bodies(ctx: &Ctx, s: &mut Session, reply: &Reply) {
    fn digest(bytes: &[u8]) -> [u8; 64] {
        Blake2b512::digest(bytes).into()
    }
    let mut expected: Vec<[u8; 64]> = (0..ctx.emails).map(|k| digest(&ctx.email(k))).collect();
    let mut got: Vec<[u8; 64]> = Vec::new();
    let mut bytes = 0u64;
    for response in reply.parsed() {
        if let Response::Fetch(_, attributes) = response {
            for attribute in attributes {
                if let AttributeValue::BodySection { data: Some(d), .. } = attribute {
                    bytes += d.len() as u64;
                    got.push(digest(d.as_ref()));
                }
            }
        }
    }
    expected.sort_unstable();
    got.sort_unstable();
    let differing = expected
        .iter()
        .filter(|e| got.binary_search(e).is_err())
        .count();
    ctx.figure("body_bytes", bytes);
    ctx.figure("bodies_differing", differing as u64);
    expect_eq(
        &mut s.outcome,
        "FETCH BODY[] bodies byte-exact",
        (differing, got.len()),
        (0, ctx.emails),
    );
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

/// An attribute of a STATUS answer.
fn status_attribute(reply: &Reply, pick: fn(&StatusAttribute) -> Option<u32>) -> Option<u32> {
    reply.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Status { status, .. }) => status.iter().find_map(pick),
        _ => None,
    })
}

/// The MESSAGES count of a STATUS answer.
fn status_messages(reply: &Reply) -> Option<u32> {
    status_attribute(reply, |a| match a {
        StatusAttribute::Messages(n) => Some(*n),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// trace_replay

/// Latency per command name, shared by the user tasks.
type PerCommand = Arc<Mutex<BTreeMap<String, Histogram<u64>>>>;

/// The trace workload for `users` users with root seed `seed`, cut after `commands_max`
/// commands (whole sessions, in order: each user's sessions stay a valid prefix).
pub fn trace_workload(
    seed: u64,
    users: usize,
    commands_max: Option<usize>,
) -> Result<traces::workload::Workload, WorkError> {
    let config = WorkloadConfig {
        seed,
        users,
        ..WorkloadConfig::default()
    };
    let mut workload = traces::workload::Workload::generate(&config)
        .map_err(|e| WorkError::Trace(e.to_string()))?;
    if let Some(max) = commands_max {
        let mut total = 0;
        workload.sessions.retain(|s| {
            total += s.commands.len();
            total <= max
        });
    }
    Ok(workload)
}

/// `trace_replay`: each user's mailboxes created and filled as the workload's setup says (the
/// users must be fresh: UIDs start at 1), then (measured) each user's sessions in order, users
/// concurrently, LOGIN naming the driver's user; then every message the workload's model says
/// each mailbox holds is fetched back and compared byte for byte, UIDs included.
async fn trace_replay(ctx: Arc<Ctx>) -> Result<(), WorkError> {
    let workload = trace_workload(ctx.seed, ctx.users.len(), ctx.trace_commands_max)?;
    let model = workload
        .check()
        .map_err(|e| WorkError::Trace(e.to_string()))?;
    ctx.figure("trace_sessions", workload.sessions.len() as u64);
    ctx.figure("trace_commands", workload.command_count() as u64);
    let workload = Arc::new(workload);
    let mut set = JoinSet::new();
    for user in 0..ctx.users.len() {
        let (ctx, workload) = (ctx.clone(), workload.clone());
        set.spawn(async move { trace_setup(&ctx, &workload, user).await });
    }
    join_all(set).await?;
    ctx.mark("measure_start");
    let per_command = PerCommand::default();
    let mut set = JoinSet::new();
    for user in 0..ctx.users.len() {
        let (ctx, workload, per_command) = (ctx.clone(), workload.clone(), per_command.clone());
        set.spawn(async move {
            let mut first = None;
            for (n, session) in workload
                .sessions
                .iter()
                .filter(|s| s.user == user)
                .enumerate()
            {
                if let Err(e) = replay(&ctx, &session.commands, user, &per_command).await {
                    first.get_or_insert(WorkError::State(format!("user {user} session {n}: {e}")));
                }
            }
            first.map_or(Ok(()), Err)
        });
    }
    let replayed = join_all(set).await;
    ctx.mark("measure_end");
    for (name, h) in lock(&per_command).iter() {
        ctx.figure(&format!("{name}_count"), h.len());
        ctx.figure(&format!("{name}_p50_us"), quantile_us(h, 0.5));
        ctx.figure(&format!("{name}_p99_us"), quantile_us(h, 0.99));
    }
    let model = Arc::new(model);
    let mut set = JoinSet::new();
    for user in 0..ctx.users.len() {
        let (ctx, model) = (ctx.clone(), model.clone());
        set.spawn(async move { verify(&ctx, &model, user).await });
    }
    let verified = join_all(set).await;
    replayed?;
    verified.map(drop)
}

/// The mailboxes of `user` that the setup names, and INBOX.
fn setup_mailboxes(workload: &traces::workload::Workload, user: usize) -> BTreeSet<String> {
    let mut names = BTreeSet::from(["INBOX".to_string()]);
    for step in &workload.setup {
        match step {
            SetupStep::Create { user: u, mailbox }
            | SetupStep::Deliver {
                user: u, mailbox, ..
            } if *u == user => {
                names.insert(mailbox.clone());
            }
            _ => {}
        }
    }
    names
}

/// Creates and fills one user's mailboxes, after checking they are fresh.
async fn trace_setup(
    ctx: &Ctx,
    workload: &traces::workload::Workload,
    user: usize,
) -> Result<(), WorkError> {
    let mut s = Session::login(ctx, user).await?;
    let result = async {
        for mailbox in setup_mailboxes(workload, user) {
            s.ensure_exists(&mailbox).await?;
            let status = s
                .ok(&format!("STATUS {} (MESSAGES UIDNEXT)", quote(&mailbox)))
                .await?;
            let messages = status_messages(&status).unwrap_or(0);
            let uid_next = status_attribute(&status, |a| match a {
                StatusAttribute::UidNext(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(1);
            if messages > 0 || uid_next > 1 {
                return Err(WorkError::State(format!(
                    "trace_replay needs fresh users: {} has {mailbox} with {messages} messages, UIDNEXT {uid_next}",
                    ctx.users[user].0
                )));
            }
        }
        for step in &workload.setup {
            if let SetupStep::Deliver {
                user: u,
                mailbox,
                flags,
                email,
            } = step
            {
                if *u != user {
                    continue;
                }
                let bytes = email
                    .email()
                    .map_err(|e| WorkError::Trace(format!("dataset email {email:?}: {e}")))?
                    .bytes;
                let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                let command = format!("APPEND {} ({})", quote(mailbox), flags.join(" "));
                let reply = s
                    .client
                    .command_with_literal(&command, &bytes, imap_proto::Status::Ok)
                    .await?;
                if !reply.is_ok() {
                    return Err(refused(&command, &reply));
                }
                ctx.add_figure("setup_emails", 1);
            }
        }
        s.client.command("LOGOUT").await?;
        Ok(())
    }
    .await;
    s.close(ctx, result)
}

fn status(expect: Expect) -> imap_proto::Status {
    match expect {
        Expect::Ok => imap_proto::Status::Ok,
        Expect::No => imap_proto::Status::No,
        Expect::Bad => imap_proto::Status::Bad,
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

/// Replays one session; LOGIN names the driver's user `user`; a session without LOGOUT just
/// drops its connection.
async fn replay(
    ctx: &Ctx,
    steps: &[Step],
    user: usize,
    per_command: &PerCommand,
) -> Result<(), WorkError> {
    let mut s = Session::open(ctx).await?;
    let (name, password) = &ctx.users[user];
    let result = async {
        for step in steps {
            let started = Instant::now();
            let expected = status(step.expect);
            match (&step.command, step.name) {
                (_, CommandName::Login) => {
                    let login = format!("LOGIN {} {}", quote(name), quote(password));
                    s.client.command_expect(&login, expected).await?;
                }
                (_, CommandName::Idle) => {
                    let (tag, reply) = s.client.idle_start().await?;
                    // A server that refused IDLE completed it already: nothing to end.
                    if reply.status.is_none() {
                        tokio::time::sleep(ctx.idle_wait).await;
                        s.client.idle_done(&tag).await?;
                    }
                }
                (StepCommand::Append(append), _) => {
                    let prefix = append.wire_prefix_with_tag(&append.tag);
                    let text = one_line(&prefix).unwrap_or_default();
                    let head = text
                        .rsplit_once(' ')
                        .map(|(h, _)| h.to_string())
                        .unwrap_or(text);
                    let bytes = append
                        .email
                        .email()
                        .map_err(|e| {
                            WorkError::Trace(format!("dataset email {:?}: {e}", append.email))
                        })?
                        .bytes;
                    s.client
                        .command_with_literal(&head, &bytes, expected)
                        .await?;
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
                            s.client.command_expect(&text, expected).await?;
                        }
                        None => {
                            s.outcome.mismatches += 1;
                            s.outcome.notes.push(format!(
                                "{:?}: not a one-line command, not replayed",
                                step.name
                            ));
                            continue;
                        }
                    }
                }
            }
            let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            lock(per_command)
                .entry(format!("{:?}", step.name).to_ascii_lowercase())
                .or_insert_with(latency_histogram)
                .saturating_record(elapsed);
        }
        Ok(())
    }
    .await;
    s.close(ctx, result)
}

/// Fetches every message of every mailbox of `user` and compares UIDs and bytes with the model.
async fn verify(ctx: &Ctx, model: &Model, user: usize) -> Result<(), WorkError> {
    let mut s = Session::login(ctx, user).await?;
    let result = async {
        let Some(state) = model.users.get(user) else {
            return Ok(());
        };
        for (mailbox, expected) in &state.mailboxes {
            let examine = s.ok(&format!("EXAMINE {}", quote(mailbox))).await?;
            let count = exists(&examine).unwrap_or(0) as usize;
            expect_eq(
                &mut s.outcome,
                &format!("{mailbox}: messages after the trace"),
                count,
                expected.messages.len(),
            );
            if count == 0 {
                continue;
            }
            let fetch = s.ok("UID FETCH 1:* (UID BODY.PEEK[])").await?;
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
                let bytes = message
                    .email
                    .email()
                    .map_err(|e| {
                        WorkError::Trace(format!("dataset email {:?}: {e}", message.email))
                    })?
                    .bytes;
                match got.remove(&message.uid) {
                    Some(body) if body == bytes => ctx.add_figure("verified_messages", 1),
                    Some(body) => {
                        s.outcome.mismatches += 1;
                        s.outcome.notes.push(format!(
                            "{mailbox} UID {}: {} bytes fetched, {} appended, contents differ",
                            message.uid,
                            body.len(),
                            bytes.len()
                        ));
                    }
                    None => {
                        s.outcome.mismatches += 1;
                        s.outcome
                            .notes
                            .push(format!("{mailbox} UID {}: missing", message.uid));
                    }
                }
            }
            for uid in got.keys() {
                s.outcome.mismatches += 1;
                s.outcome
                    .notes
                    .push(format!("{mailbox} UID {uid}: not in the workload's model"));
            }
        }
        s.client.command("LOGOUT").await?;
        Ok(())
    }
    .await;
    s.close(ctx, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("user1@imapsim.test"), "\"user1@imapsim.test\"");
    }

    #[test]
    fn a_cut_trace_keeps_whole_sessions_in_order_and_checks() {
        let full = trace_workload(1, 2, None).expect("generates");
        let cut = trace_workload(1, 2, Some(300)).expect("generates");
        assert!(cut.command_count() <= 300 && cut.command_count() > 0);
        assert_eq!(cut.sessions[..], full.sessions[..cut.sessions.len()]);
        cut.check()
            .expect("a prefix of the sessions is a valid workload");
        assert!(setup_mailboxes(&full, 0).contains("INBOX"));
    }

    #[test]
    fn one_line_strips_the_tag_and_refuses_literals() {
        assert_eq!(one_line(b"A1 NOOP\r\n"), Some("NOOP".to_string()));
        assert_eq!(one_line(b"A1 APPEND x {3}\r\nabc\r\n"), None);
    }
}
