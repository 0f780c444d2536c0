//! Fault scenarios (issue #6, simulation half): storage errors and delays under the trace
//! workload, lost responses, partitions between the server and the store, server crashes and
//! restarts, client disconnects, and two servers serving one user. Each is a plain function of a
//! seed; a driver client runs the steps, a [`Ledger`](workload::ledger::Ledger) records what the
//! clients were told, and a fresh session checks the invariants once the faults are off. A
//! violation counts in [`Report::violations`] and fails the run.
//!
//! This module holds what they share: a session that tolerates `NO` (and knows which answers it
//! tolerated, so they do not count as unexpected), retries, a raw LMTP sender that reports how
//! a delivery ended, idle-heap measurement and the report assembly.

pub mod crash;
pub mod disconnect;
pub mod lost_response;
pub mod partition;
pub mod storage;
pub mod two_servers;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use imap_proto::Status;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::TcpStream;

use crate::alloc;
use crate::figures::{Report, ScenarioError};
use crate::harness::cheap_kdf;
use crate::harness::{
    ConnectCounts, Controls, Harness, HostFault, SimConfig, Trigger, IMAP_HOST, IMAP_PORT,
    LMTP_PORT,
};
use workload::client::{ClientError, ClientStats, Failure, ImapClient, Reply};
use workload::dataset::user;
use workload::ledger::{Ack, Digest, FlagOp, Ledger, Listing, SharedLedger, View};
use workload::{ClientOutcome, Outcomes};

/// How many times a command answered `NO` is sent again before the client gives up.
pub const RETRIES_MAX: usize = 40;
/// Pause before the first retry; it doubles up to [`RETRY_PAUSE_MAX`].
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between two retries.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(2);
/// How long the server is left alone before its idle heap is read (sessions closing, pooled
/// connections settling).
pub const SETTLE: Duration = Duration::from_secs(3);
/// How many times a client tries to connect before giving up (a restarting server refuses).
pub const CONNECT_ATTEMPTS_MAX: usize = 100;
/// Pause between two connection attempts.
pub const CONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Fault and retry counters of a run, by name (they become report figures).
#[derive(Clone, Default)]
pub struct Counts(Rc<RefCell<BTreeMap<String, u64>>>);

impl Counts {
    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        *self.0.borrow_mut().entry(name.to_string()).or_insert(0) += n;
    }

    /// Sets counter `name`.
    pub fn set(&self, name: &str, n: u64) {
        self.0.borrow_mut().insert(name.to_string(), n);
    }

    /// Counter `name` (0 if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.0.borrow().get(name).copied().unwrap_or(0)
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// Where sessions leave their counters: one outcome per connection, in the order they end.
#[derive(Clone, Default)]
pub struct Recorder {
    outcomes: Outcomes,
    next: Rc<Cell<usize>>,
}

impl Recorder {
    /// Records one connection's counters and notes.
    pub fn record(&self, stats: ClientStats, notes: Vec<String>) {
        let key = self.next.get();
        self.next.set(key + 1);
        self.outcomes.borrow_mut().insert(
            key,
            ClientOutcome {
                stats,
                mismatches: 0,
                notes,
            },
        );
    }
}

/// What a scenario's driver gets: the ledger, counters, host controls, the store and recorder.
#[derive(Clone)]
pub struct Ctx {
    /// What the clients were told.
    pub ledger: SharedLedger,
    /// Fault and retry counters.
    pub counts: Counts,
    /// Host faults.
    pub controls: Controls,
    /// The fake store (faults, request counters).
    pub fake: fakes3::FakeS3,
    /// Where sessions leave their counters.
    pub recorder: Recorder,
    /// Seed of the clients' choices.
    pub clients_seed: u64,
    /// Seed of the generated emails.
    pub dataset_seed: u64,
    /// The clients' choices (where a fault hits, how long it lasts), seeded from the root seed.
    pub rng: Rc<RefCell<ChaCha8Rng>>,
    /// Each server host's outbound connection attempts.
    pub connects: BTreeMap<String, Arc<ConnectCounts>>,
    /// The users, as (name, password); user `i` (1-based) is `users[i - 1]`.
    pub users: Rc<Vec<(String, String)>>,
    /// How many times a command answered NO is sent again. Default [`RETRIES_MAX`].
    pub retries_max: usize,
    /// Longest pause between two retries. Default [`RETRY_PAUSE_MAX`].
    pub retry_pause_max: Duration,
}

impl Ctx {
    /// A violation found by a client while the faults were on.
    pub fn violation(&self, text: String) {
        self.ledger.borrow_mut().violation(text);
    }

    /// Requests of `op` the store has routed so far.
    pub fn requests(&self, op: fakes3::Op) -> u64 {
        self.fake.stats().requests.get(&op).copied().unwrap_or(0)
    }

    /// Turns the store's faults on (or off, with `Faults::default()`).
    pub fn set_faults(&self, faults: fakes3::Faults) {
        // The scenarios only pass faults checked by their own tests; a refusal is a bug here.
        self.fake
            .set_faults(faults)
            .expect("fault scenarios pass valid fault settings");
    }

    /// Name and password of user `i` (1-based).
    pub fn user(&self, i: usize) -> (String, String) {
        self.users
            .get(i.wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| user(i))
    }

    /// A number drawn uniformly in `range` from the clients' RNG.
    pub fn draw(&self, range: std::ops::RangeInclusive<u64>) -> u64 {
        self.rng.borrow_mut().gen_range(range)
    }

    /// Generated email `k` of `bytes` bytes, unique to this run and `k`.
    pub fn email(&self, k: usize, bytes: u64) -> Vec<u8> {
        traces::dataset::email(self.dataset_seed, k, bytes).bytes
    }
}

/// A fault scenario under construction: the harness, and what its driver will share.
pub struct FaultRun {
    name: &'static str,
    seed: u64,
    /// The simulation.
    pub harness: Harness,
    ctx: Ctx,
}

impl FaultRun {
    /// A simulation for `users` users named as [`user`] names them (cheap key derivation, two
    /// simulated hours at most).
    pub fn new(name: &'static str, seed: u64, users: usize) -> Result<FaultRun, ScenarioError> {
        FaultRun::with_users(name, seed, (1..=users).map(user).collect())
    }

    /// [`FaultRun::new`] for these users, as (name, password).
    pub fn with_users(
        name: &'static str,
        seed: u64,
        users: Vec<(String, String)>,
    ) -> Result<FaultRun, ScenarioError> {
        let config = SimConfig {
            seed,
            users: users.clone(),
            kdf: cheap_kdf(),
            duration_s: 7_200,
            storage_io_vectored: true,
            ..SimConfig::default()
        };
        let harness = Harness::new(config)?;
        let ctx = Ctx {
            ledger: Ledger::shared(),
            counts: Counts::default(),
            controls: harness.controls(),
            fake: harness.fake().clone(),
            recorder: Recorder::default(),
            clients_seed: harness.seeds().clients,
            dataset_seed: harness.seeds().dataset,
            rng: Rc::new(RefCell::new(ChaCha8Rng::seed_from_u64(
                harness.seeds().clients,
            ))),
            connects: harness
                .connect_counts(IMAP_HOST)
                .into_iter()
                .map(|c| (IMAP_HOST.to_string(), c))
                .collect(),
            users: Rc::new(users),
            retries_max: RETRIES_MAX,
            retry_pause_max: RETRY_PAUSE_MAX,
        };
        Ok(FaultRun {
            name,
            seed,
            harness,
            ctx,
        })
    }

    /// The driver's context.
    pub fn ctx(&self) -> Ctx {
        self.ctx.clone()
    }

    /// Sets how many times the clients send a command answered NO again, and the longest pause
    /// between two tries (a client that must outlast a long outage). Call before [`FaultRun::ctx`].
    pub fn patience(&mut self, retries: usize, pause_max: Duration) {
        self.ctx.retries_max = retries;
        self.ctx.retry_pause_max = pause_max;
    }

    /// Adds another server host on the same store (see [`Harness::add_server`]); returns its
    /// account id. Call before [`FaultRun::ctx`].
    pub fn add_server(&mut self, name: &str) -> Result<u16, ScenarioError> {
        let id = self.harness.add_server(name)?.id();
        if let Some(counts) = self.harness.connect_counts(name) {
            self.ctx.connects.insert(name.to_string(), counts);
        }
        Ok(id)
    }

    /// Runs the simulation and builds the report: the ledger's violations, fault counts (the
    /// store's injected errors, lost responses and delays, the host faults applied, and what the
    /// scenario counted), and each extra server's figures.
    pub fn finish(mut self, extra_servers: &[&str]) -> Result<Report, ScenarioError> {
        let run = self.harness.run_controlled()?;
        let mut report = Report::build(
            self.name,
            self.seed,
            &run,
            &self.ctx.recorder.outcomes.borrow(),
            Vec::new(),
        );
        let stats = self.ctx.fake.stats();
        let counts = self.ctx.counts.take();
        let host_faults = self.ctx.controls.applied();
        let bounces = host_faults
            .iter()
            .filter(|(_, f)| matches!(f, crate::harness::HostFault::Bounce(_)))
            .count() as u64;
        let repairs = host_faults
            .iter()
            .filter(|(_, f)| matches!(f, crate::harness::HostFault::Repair(..)))
            .count() as u64;
        let crashes = host_faults
            .iter()
            .filter(|(_, f)| matches!(f, crate::harness::HostFault::Crash(_)))
            .count() as u64;
        let partitions = host_faults
            .iter()
            .filter(|(_, f)| matches!(f, crate::harness::HostFault::Partition(..)))
            .count() as u64;
        let disconnects = counts.get("disconnects").copied().unwrap_or(0);
        let f = &mut report.figures;
        f.insert("faults_storage_errors".into(), stats.injected_errors);
        f.insert(
            "faults_lost_responses".into(),
            stats.injected_lost_responses,
        );
        f.insert("faults_delays".into(), stats.injected_delays);
        f.insert("faults_delay_ms".into(), stats.injected_delay_ms);
        f.insert("faults_crashes".into(), crashes);
        f.insert("faults_restarts".into(), bounces);
        f.insert("faults_partitions".into(), partitions);
        f.insert("faults_repairs".into(), repairs);
        f.insert("store_requests".into(), stats.requests_total());
        f.extend(counts);
        report.faults_injected = stats.injected_errors
            + stats.injected_lost_responses
            + stats.injected_delays
            + crashes
            + partitions
            + disconnects;
        for name in extra_servers {
            if let Some(account) = self.harness.server_account(name) {
                let figures = account.figures();
                report
                    .figures
                    .insert(format!("{name}_peak_bytes"), figures.peak_bytes);
                report
                    .figures
                    .insert(format!("{name}_live_end_bytes"), figures.live_bytes);
            }
        }
        let ledger = self.ctx.ledger.borrow();
        report.violations = ledger.violation_count();
        let room = 20usize.saturating_sub(report.failures.len()).max(8);
        report.failures.extend(
            ledger
                .violations()
                .iter()
                .take(room)
                .map(|v| format!("violation: {v}")),
        );
        drop(ledger);
        drop(self.harness);
        Ok(report)
    }
}

/// An IMAP session that tolerates `NO`: the answers it tolerated are taken out of the
/// unexpected count when it ends, so that only wrong answers (BAD, unparsable, a broken
/// connection the scenario did not cause) remain.
pub struct Session {
    client: ImapClient<TcpStream>,
    retries_max: usize,
    retry_pause_max: Duration,
    tolerated: Vec<String>,
    counts: Counts,
    recorder: Recorder,
    notes: Vec<String>,
}

impl Session {
    /// Connects to `host`, retrying while it refuses (a restarting server), and reads the greeting.
    pub async fn open(host: &str, ctx: &Ctx) -> Result<Session, ClientError> {
        let mut attempt = 0;
        let stream = loop {
            match TcpStream::connect((host, IMAP_PORT)).await {
                Ok(stream) => break stream,
                Err(e) if attempt + 1 >= CONNECT_ATTEMPTS_MAX => return Err(e.into()),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(CONNECT_PAUSE).await;
                }
            }
        };
        let (client, _greeting) = ImapClient::connect(stream).await?;
        Ok(Session {
            client,
            retries_max: ctx.retries_max,
            retry_pause_max: ctx.retry_pause_max,
            tolerated: Vec::new(),
            counts: ctx.counts.clone(),
            recorder: ctx.recorder.clone(),
            notes: Vec::new(),
        })
    }

    /// Connects to `host` and logs in as user `i` (1-based), retrying a refused login.
    pub async fn login(host: &str, ctx: &Ctx, i: usize) -> Result<Session, ClientError> {
        let mut session = Session::open(host, ctx).await?;
        let (name, password) = ctx.user(i);
        session
            .retry(&format!("LOGIN {name} \"{password}\""))
            .await?;
        Ok(session)
    }

    /// The wrapped client.
    pub fn client(&mut self) -> &mut ImapClient<TcpStream> {
        &mut self.client
    }

    /// Sends `command` expecting OK; a NO is tolerated (the caller reads the status).
    pub async fn cmd(&mut self, command: &str) -> Result<Reply, ClientError> {
        let reply = self.client.command(command).await;
        self.absorb(command, reply)
    }

    /// [`Session::cmd`] with a literal (APPEND).
    pub async fn cmd_literal(
        &mut self,
        command: &str,
        literal: &[u8],
    ) -> Result<Reply, ClientError> {
        let reply = self
            .client
            .command_with_literal(command, literal, Status::Ok)
            .await;
        self.absorb(command, reply)
    }

    fn absorb(
        &mut self,
        command: &str,
        reply: Result<Reply, ClientError>,
    ) -> Result<Reply, ClientError> {
        let reply = reply?;
        if reply.status == Some(Status::No) {
            self.tolerated.push(command.to_string());
            self.counts.add("no_answers", 1);
        }
        Ok(reply)
    }

    /// Sends `command` until it is answered OK, at most [`Ctx::retries_max`] more times; returns the
    /// last reply (NO if the client gave up) and how many times it was sent.
    pub async fn retry(&mut self, command: &str) -> Result<Reply, ClientError> {
        self.retry_with(command, None).await
    }

    /// [`Session::retry`] with a literal.
    pub async fn retry_literal(
        &mut self,
        command: &str,
        literal: &[u8],
    ) -> Result<Reply, ClientError> {
        self.retry_with(command, Some(literal)).await
    }

    async fn retry_with(
        &mut self,
        command: &str,
        literal: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let mut pause = RETRY_PAUSE;
        let mut tries = 0;
        loop {
            let reply = match literal {
                Some(bytes) => self.cmd_literal(command, bytes).await?,
                None => self.cmd(command).await?,
            };
            tries += 1;
            if reply.status != Some(Status::No) || tries > self.retries_max {
                if reply.status == Some(Status::No) {
                    self.counts.add("gave_up", 1);
                    self.notes
                        .push(format!("{command}: still NO after {tries} tries"));
                }
                return Ok(reply);
            }
            self.counts.add("retries", 1);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.retry_pause_max);
        }
    }

    /// Notes that `command` ended the connection because of a fault the scenario caused (a crash,
    /// a deliberate disconnect): not an unexpected answer.
    pub fn tolerate_break(&mut self, command: &str) {
        self.tolerated.push(command.to_string());
        self.counts.add("broken_sessions", 1);
    }

    /// Adds a note to the session's outcome.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Ends the session (without LOGOUT) and records its counters.
    pub fn end(self) {
        let Session {
            client,
            tolerated,
            recorder,
            notes,
            ..
        } = self;
        let mut stats = client.into_stats();
        for command in &tolerated {
            stats.unexpected = stats.unexpected.saturating_sub(1);
            let position = stats.failures.iter().position(|f| match f {
                Failure::Unexpected {
                    command: c, line, ..
                } => c == command && is_no(line),
                Failure::Broken { command: c, .. } => c == command,
                Failure::Unparsable { .. } => false,
            });
            if let Some(i) = position {
                stats.failures.remove(i);
            }
        }
        recorder.record(stats, notes);
    }

    /// Logs out, then ends the session.
    pub async fn logout(mut self) -> Result<(), ClientError> {
        let result = self.cmd("LOGOUT").await.map(|_| ());
        self.end();
        result
    }
}

/// Whether a tagged line's status is NO.
fn is_no(line: &str) -> bool {
    line.split(' ')
        .nth(1)
        .is_some_and(|s| s.eq_ignore_ascii_case("NO"))
}

/// How a session step ended: the session goes on, or its connection is gone.
pub fn ack_of(reply: &Result<Reply, ClientError>) -> Ack {
    match reply {
        Ok(r) if r.status == Some(Status::Ok) => Ack::Ok,
        Ok(_) => Ack::Refused,
        Err(_) => Ack::Unknown,
    }
}

/// The server's live heap once it has been left alone for [`SETTLE`].
pub async fn idle_heap(account: u16) -> u64 {
    tokio::time::sleep(SETTLE).await;
    alloc::figures_of(account).live_bytes
}

/// Runs [`warm`] on `host` again once the faults are over, then reads [`idle_level`]: the level
/// to compare with the one measured before the faults (the pool full again, its buffers grown
/// the same way).
pub async fn idle_after(
    ctx: &Ctx,
    host: &str,
    account: u16,
    user_index: usize,
    mailboxes: &[&str],
) -> u64 {
    if let Err(e) = warm(host, ctx, user_index, mailboxes).await {
        ctx.violation(format!(
            "{host}: warming up again with faults off failed: {e}"
        ));
    }
    idle_level(ctx, host, account, "idle_after").await
}

/// Checks `host`'s idle heap after the faults against `before` (see
/// [`Ledger::check_heap`](workload::ledger::Ledger::check_heap)), allowing for the sockets
/// turmoil keeps of the connection attempts the server abandoned in between.
pub fn check_heap(ctx: &Ctx, host: &str, before: u64, after: u64) {
    let abandoned = ctx
        .connects
        .get(host)
        .map_or(0, |c| c.abandoned())
        .saturating_sub(
            ctx.counts
                .get(&idle_key(host, "idle_before_abandoned_connects")),
        );
    ctx.ledger
        .borrow_mut()
        .check_heap(host, before, after, abandoned);
}

/// The figure name of `label` for server host `host` (`imap` keeps the bare label).
fn idle_key(host: &str, label: &str) -> String {
    if host == IMAP_HOST {
        label.to_string()
    } else {
        format!("{host}_{label}")
    }
}

/// [`idle_heap`] of server host `host`, also noting its open TCP connections as figure
/// `{label}_tcp_streams` (a leaked connection shows there too).
pub async fn idle_level(ctx: &Ctx, host: &str, account: u16, label: &str) -> u64 {
    let label = idle_key(host, label);
    let bytes = idle_heap(account).await;
    if let Some(counts) = ctx.connects.get(host) {
        ctx.counts
            .set(&format!("{label}_abandoned_connects"), counts.abandoned());
    }
    let streams = turmoil::established_tcp_stream_count_on(host) as u64;
    ctx.counts.set(&format!("{label}_tcp_streams"), streams);
    ctx.counts.set(
        &format!("{label}_store_tcp_streams"),
        turmoil::established_tcp_stream_count_on(crate::harness::FAKES3_HOST) as u64,
    );
    ctx.counts.set(&format!("{label}_bytes"), bytes);
    bytes
}

/// Logs in on `host`, SELECTs and lists each of `mailboxes` with a fresh session, and checks
/// each against the ledger; returns the listings. Faults must be off.
pub async fn verify(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> BTreeMap<String, Listing> {
    let mut listings = BTreeMap::new();
    let mut session = match Session::login(host, ctx, user_index).await {
        Ok(session) => session,
        Err(e) => {
            ctx.violation(format!(
                "{host}: the final check could not log in with faults off: {e}"
            ));
            return listings;
        }
    };
    for mailbox in mailboxes {
        match Ledger::verify(
            &ctx.ledger,
            session.client(),
            mailbox,
            &format!("final check on {host}"),
        )
        .await
        {
            Ok(listing) => {
                listings.insert(mailbox.to_string(), listing);
            }
            Err(e) => {
                ctx.violation(format!(
                    "{host}: the final check of {mailbox} broke with faults off: {e}"
                ));
                session.end();
                return listings;
            }
        }
    }
    if let Err(e) = session.logout().await {
        ctx.violation(format!("{host}: LOGOUT of the final check failed: {e}"));
    }
    listings
}

/// The first login of user `i` on `host`: it provisions the user's keys (concurrent first logins
/// of one user are a known problem, so it runs alone).
pub async fn provision(host: &str, ctx: &Ctx, i: usize) -> Result<(), ClientError> {
    Session::login(host, ctx, i).await?.logout().await
}

/// Waits for every client task of `set`; the last error, if any.
async fn join_clients(
    mut set: tokio::task::JoinSet<Result<(), ClientError>>,
) -> Result<(), ClientError> {
    let mut result = Ok(());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(ClientError::Io(std::io::Error::other(e.to_string()))),
        }
    }
    result
}

/// The setup of a one-user scenario, faults off: user 1 provisioned on [`IMAP_HOST`], `count`
/// emails APPENDed to INBOX (sizes by `bytes`, from `sessions` sessions at once), then warmed.
pub async fn setup_inbox(
    ctx: &Ctx,
    count: usize,
    bytes: fn(usize) -> u64,
    sessions: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    provision(IMAP_HOST, ctx, 1).await?;
    preload(ctx, IMAP_HOST, 1, "INBOX", (0, count), bytes, sessions).await?;
    warm(IMAP_HOST, ctx, 1, mailboxes).await
}

/// APPENDs emails `first..first + count` (sizes by `bytes`) to `mailbox` from `sessions`
/// sessions at once, every APPEND in the ledger with its APPENDUID.
pub async fn preload(
    ctx: &Ctx,
    host: &str,
    i: usize,
    mailbox: &str,
    (first, count): (usize, usize),
    bytes: fn(usize) -> u64,
    sessions: usize,
) -> Result<(), ClientError> {
    let mut set = tokio::task::JoinSet::new();
    for p in 0..sessions.max(1) {
        let (ctx, host, mailbox) = (ctx.clone(), host.to_string(), mailbox.to_string());
        set.spawn_local(async move {
            let mut link = Link::open(&ctx, &host, i).await?;
            for k in (first + p..first + count).step_by(sessions.max(1)) {
                let email = ctx.email(k, bytes(k));
                append_until_done(
                    &mut link,
                    &mailbox,
                    &[],
                    &email,
                    &format!("preload APPEND #{k}"),
                )
                .await?;
            }
            link.logout().await
        });
    }
    join_clients(set).await
}

/// Parallel sessions of [`warm`]: as many as the storage client keeps idle connections per
/// endpoint (the default, 4), so that the pool is full when the idle heap is first measured.
pub const WARM_SESSIONS: usize = 4;

/// Rounds of [`warm`]: pooled connections keep what the largest bursts they carried made them
/// grow (turmoil socket queues), so the first rounds still raise the idle level; from the third
/// on it no longer moves (measured: the same level, to the byte, whatever ran before).
pub const WARM_ROUNDS: usize = 3;

/// The mailbox [`warm`] APPENDs to (never checked).
pub const WARM_MAILBOX: &str = "Warmup";

/// Size of the email each [`warm`] session APPENDs: two full body chunks and a bit.
const WARM_EMAIL_BYTES: u64 = 140_000;

/// Brings the server to its steady idle level before the idle heap is measured: [`WARM_ROUNDS`]
/// times, [`WARM_SESSIONS`] sessions at once each APPEND a three-chunk email to [`WARM_MAILBOX`]
/// and read every message of it and of `mailboxes`, checking nothing. The storage client's pool
/// is then full and each pooled connection holds what it keeps after large requests and answers,
/// so that the level measured next is the one the same warm-up returns to after the faults.
pub async fn warm(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    let mut session = Session::login(host, ctx, user_index).await?;
    let listed = session.retry(&format!("LIST \"\" {WARM_MAILBOX}")).await?;
    let exists = listed.parsed().any(|r| {
        matches!(
            r,
            imap_proto::Response::MailboxData(imap_proto::MailboxDatum::List(_))
        )
    });
    if !exists {
        session.retry(&format!("CREATE {WARM_MAILBOX}")).await?;
    }
    session.logout().await?;
    for _ in 0..WARM_ROUNDS {
        warm_round(host, ctx, user_index, mailboxes).await?;
    }
    Ok(())
}

async fn warm_round(
    host: &str,
    ctx: &Ctx,
    user_index: usize,
    mailboxes: &[&str],
) -> Result<(), ClientError> {
    let round = ctx.counts.get("warm_rounds") as usize;
    ctx.counts.add("warm_rounds", 1);
    let mut set = tokio::task::JoinSet::new();
    for n in 0..WARM_SESSIONS {
        let (host, ctx) = (host.to_string(), ctx.clone());
        let mailboxes: Vec<String> = mailboxes.iter().map(|m| m.to_string()).collect();
        let k = round * WARM_SESSIONS + n;
        let email =
            traces::dataset::email(ctx.dataset_seed ^ 0x5741_524d, k, WARM_EMAIL_BYTES).bytes;
        set.spawn_local(async move {
            let mut session = Session::login(&host, &ctx, user_index).await?;
            session
                .retry_literal(&format!("APPEND {WARM_MAILBOX}"), &email)
                .await?;
            for mailbox in std::iter::once(&WARM_MAILBOX.to_string()).chain(&mailboxes) {
                let reply = session
                    .retry(&format!("SELECT \"{mailbox}\" (CONDSTORE)"))
                    .await?;
                if workload::responses::exists(&reply).unwrap_or(0) > 0 {
                    session
                        .retry("UID FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[])")
                        .await?;
                }
            }
            session.logout().await
        });
    }
    join_clients(set).await
}

/// `uids` (ascending) as an IMAP UID set, runs collapsed (`1:20,25`).
pub fn uid_set_text(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Backs off before the next retry.
pub(crate) async fn back_off(pause: &mut Duration, ctx: &Ctx) {
    ctx.counts.add("retries", 1);
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(ctx.retry_pause_max);
}

/// A user's IMAP session that comes back when the server closes it on purpose: the server
/// closes a connection whose FETCH body literal it can no longer complete (its length is
/// promised), and the client then reconnects, logs in, selects again and retries.
pub struct Link {
    ctx: Ctx,
    host: String,
    user: usize,
    session: Option<Session>,
    view: Option<View>,
    breaks_expected: bool,
}

impl Link {
    /// Connects to `host` and logs in as user `user` (1-based).
    pub async fn open(ctx: &Ctx, host: &str, user: usize) -> Result<Link, ClientError> {
        let session = Session::login(host, ctx, user).await?;
        Ok(Link {
            ctx: ctx.clone(),
            host: host.to_string(),
            user,
            session: Some(session),
            view: None,
            breaks_expected: false,
        })
    }

    /// Whether a broken connection is a fault the scenario causes (a crash, a partition of the
    /// client): the helpers then connect again and retry instead of failing.
    pub fn expect_breaks(&mut self, expected: bool) {
        self.breaks_expected = expected;
    }

    /// Sends `command` (with `literal`) once. `Ok(Err(_))`: the connection broke in a way this
    /// link tolerates (it connects again at the next command); `Err(_)`: it broke otherwise.
    async fn attempt(
        &mut self,
        command: &str,
        literal: Option<&[u8]>,
        cut_ok: bool,
    ) -> Result<Result<Reply, ClientError>, ClientError> {
        let tolerated = |e: &ClientError, breaks: bool| {
            breaks || (cut_ok && matches!(e, ClientError::Closed { .. }))
        };
        let breaks = self.breaks_expected;
        let session = match self.session().await {
            Ok(session) => session,
            Err(e) if breaks => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        let result = match literal {
            Some(bytes) => session.cmd_literal(command, bytes).await,
            None => session.cmd(command).await,
        };
        match result {
            Ok(reply) => Ok(Ok(reply)),
            Err(e) if tolerated(&e, breaks) => {
                if cut_ok && !breaks {
                    self.ctx.counts.add("fetches_cut_by_server", 1);
                }
                self.broke(command);
                Ok(Err(e))
            }
            Err(e) => Err(e),
        }
    }

    /// The session, connected again (logged in, the mailbox selected again) if it broke.
    pub async fn session(&mut self) -> Result<&mut Session, ClientError> {
        if self.session.is_none() {
            self.ctx.counts.add("reconnects", 1);
            let mut session = Session::login(&self.host, &self.ctx, self.user).await?;
            if let Some(mailbox) = self.view.as_ref().map(|v| v.mailbox().to_string()) {
                let command = format!("SELECT \"{mailbox}\" (CONDSTORE)");
                let reply = session.retry(&command).await?;
                self.view = Some(
                    self.ctx
                        .ledger
                        .borrow_mut()
                        .observe_select(&mailbox, &reply, &command),
                );
            }
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("connected just above"))
    }

    /// The session broke during `command` because the server closed it on purpose.
    pub fn broke(&mut self, command: &str) {
        if let Some(mut session) = self.session.take() {
            session.tolerate_break(command);
            session.end();
        }
    }

    /// `SELECT mailbox (CONDSTORE)` until acknowledged; the answer is checked by the ledger.
    pub async fn select(&mut self, mailbox: &str) -> Result<(), ClientError> {
        let command = format!("SELECT \"{mailbox}\" (CONDSTORE)");
        let ctx = self.ctx.clone();
        let mut pause = RETRY_PAUSE;
        for _ in 0..=ctx.retries_max {
            // A connection that breaks here comes back with this mailbox selected.
            self.view = Some(View::new(mailbox));
            if let Ok(reply) = self.attempt(&command, None, false).await? {
                if reply.status == Some(Status::Ok) {
                    self.view = Some(
                        ctx.ledger
                            .borrow_mut()
                            .observe_select(mailbox, &reply, &command),
                    );
                    return Ok(());
                }
            } else if self.session.is_none() {
                // Broken: the next session() selects again; nothing more to do here once it did.
                if self.session().await.is_ok() {
                    return Ok(());
                }
            }
            back_off(&mut pause, &ctx).await;
        }
        ctx.counts.add("gave_up", 1);
        self.note(format!(
            "{command}: gave up after {} retries",
            ctx.retries_max
        ));
        Ok(())
    }

    /// The selected mailbox's name.
    pub fn selected(&self) -> Option<&str> {
        self.view.as_ref().map(View::mailbox)
    }

    /// Checks the FETCH answers of `reply` in the session's view.
    fn observe(&mut self, reply: &Reply, context: &str) {
        if let Some(view) = self.view.as_mut() {
            self.ctx
                .ledger
                .borrow_mut()
                .observe_fetch(view, reply, context);
        }
    }

    /// Adds a note to the session's outcome.
    pub fn note(&mut self, note: String) {
        if let Some(session) = self.session.as_mut() {
            session.note(note);
        }
    }

    /// Logs out (if connected) and records the session.
    pub async fn logout(mut self) -> Result<(), ClientError> {
        match self.session.take() {
            Some(session) => session.logout().await,
            None => Ok(()),
        }
    }

    /// Records the session without LOGOUT.
    pub fn end(mut self) {
        if let Some(session) = self.session.take() {
            session.end();
        }
    }
}

/// APPENDs `email` with `flags` to `mailbox` until it is acknowledged (at most [`Ctx::retries_max`]
/// retries), recording every attempt in the ledger; returns how the last attempt ended.
pub async fn append_until_done(
    link: &mut Link,
    mailbox: &str,
    flags: &[&str],
    email: &[u8],
    what: &str,
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let command = format!("APPEND \"{mailbox}\" ({})", flags.join(" "));
    let mut pause = RETRY_PAUSE;
    for attempt in 0..=ctx.retries_max {
        let reply = link.attempt(&command, Some(email), false).await?;
        let ack = ack_of(&reply);
        let uid = reply
            .as_ref()
            .ok()
            .and_then(workload::responses::append_uid)
            .map(|(_, uid)| uid);
        let what = if attempt == 0 {
            what.to_string()
        } else {
            format!("{what} (try {})", attempt + 1)
        };
        ctx.ledger
            .borrow_mut()
            .add(mailbox, email, flags, ack, uid, &what);
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        back_off(&mut pause, &ctx).await;
    }
    ctx.counts.add("gave_up", 1);
    link.note(format!(
        "{command}: gave up after {} retries",
        ctx.retries_max
    ));
    Ok(Ack::Refused)
}

/// The digests of the messages the ledger knows by `uids` in `mailbox` (unknown UIDs skipped).
pub fn digests_of(ctx: &Ctx, mailbox: &str, uids: &[u32]) -> Vec<Digest> {
    let ledger = ctx.ledger.borrow();
    uids.iter()
        .filter_map(|u| ledger.digest_of(mailbox, *u))
        .collect()
}

/// `UID STORE uids op (flags)` in the selected mailbox until acknowledged, every attempt in the
/// ledger; the flag updates in the answers are checked.
pub async fn store_until_done(
    link: &mut Link,
    uids: &[u32],
    op: FlagOp,
    flags: &[&str],
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let sign = match op {
        FlagOp::Add => "+",
        FlagOp::Remove => "-",
        FlagOp::Replace => "",
    };
    let command = format!(
        "UID STORE {} {sign}FLAGS ({})",
        uid_set_text(uids),
        flags.join(" ")
    );
    let mailbox = link.selected().unwrap_or("INBOX").to_string();
    let targets = digests_of(&ctx, &mailbox, uids);
    let mut pause = RETRY_PAUSE;
    for _ in 0..=ctx.retries_max {
        let reply = link.attempt(&command, None, false).await?;
        let ack = ack_of(&reply);
        ctx.ledger
            .borrow_mut()
            .store(&mailbox, &targets, op, flags, ack);
        if let Ok(reply) = &reply {
            link.observe(reply, &command);
        }
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        back_off(&mut pause, &ctx).await;
    }
    ctx.counts.add("gave_up", 1);
    link.note(format!(
        "{command}: gave up after {} retries",
        ctx.retries_max
    ));
    Ok(Ack::Refused)
}

/// `UID EXPUNGE uids` in the selected mailbox until acknowledged, every attempt in the ledger.
pub async fn expunge_until_done(link: &mut Link, uids: &[u32]) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let command = format!("UID EXPUNGE {}", uid_set_text(uids));
    let mailbox = link.selected().unwrap_or("INBOX").to_string();
    let targets = digests_of(&ctx, &mailbox, uids);
    let mut pause = RETRY_PAUSE;
    for _ in 0..=ctx.retries_max {
        let reply = link.attempt(&command, None, false).await?;
        let ack = ack_of(&reply);
        ctx.ledger
            .borrow_mut()
            .expunge(&mailbox, Some(&targets), ack, &command);
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        back_off(&mut pause, &ctx).await;
    }
    ctx.counts.add("gave_up", 1);
    link.note(format!(
        "{command}: gave up after {} retries",
        ctx.retries_max
    ));
    Ok(Ack::Refused)
}

/// `UID COPY` (or `UID MOVE`) of `uids` from the selected mailbox to `to` until acknowledged,
/// every attempt in the ledger. Retrying after a NO is what a client does; a server that left
/// part of a refused COPY or MOVE behind shows up as duplicates.
pub async fn transfer_until_done(
    link: &mut Link,
    to: &str,
    uids: &[u32],
    moved: bool,
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let from = link.selected().unwrap_or("INBOX").to_string();
    let verb = if moved { "MOVE" } else { "COPY" };
    let mut pause = RETRY_PAUSE;
    let mut left: Vec<u32> = uids.to_vec();
    for attempt in 0..=ctx.retries_max {
        let command = format!("UID {verb} {} \"{to}\"", uid_set_text(&left));
        let targets = digests_of(&ctx, &from, &left);
        let reply = link.attempt(&command, None, false).await?;
        let ack = ack_of(&reply);
        let dest_uids: Option<Vec<u32>> = reply.as_ref().ok().and_then(|r| {
            let (_, src, dst) = workload::responses::copy_uid(r)?;
            let by_src: BTreeMap<u32, u32> = src.into_iter().zip(dst).collect();
            left.iter().map(|u| by_src.get(u).copied()).collect()
        });
        let what = format!("{verb} #{} of {} to {to}", attempt + 1, uid_set_text(&left));
        ctx.ledger.borrow_mut().transfer(
            &from,
            to,
            &targets,
            moved,
            ack,
            dest_uids.as_deref(),
            &what,
        );
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        if moved {
            // Retry only what is still in the source (a server may have moved part of it).
            let probe = format!("UID FETCH {} (UID)", uid_set_text(&left));
            let listed = link.attempt(&probe, None, false).await?;
            if let Some(listed) = listed.ok().filter(|l| l.status == Some(Status::Ok)) {
                let still: std::collections::BTreeSet<u32> = workload::responses::fetched(&listed)
                    .into_iter()
                    .filter_map(|f| f.uid)
                    .collect();
                left.retain(|u| still.contains(u));
                if left.is_empty() {
                    return Ok(Ack::Ok);
                }
            }
        }
        back_off(&mut pause, &ctx).await;
    }
    ctx.counts.add("gave_up", 1);
    link.note(format!(
        "UID {verb} {}: gave up after {} retries",
        uid_set_text(&left),
        ctx.retries_max
    ));
    Ok(Ack::Refused)
}

/// UIDs per FETCH of [`fetch_all`]: a client reads a large mailbox in batches.
pub const FETCH_BATCH: u32 = 8;

/// Reads every message of the selected mailbox (`UID FETCH a:b (UID FLAGS MODSEQ BODY.PEEK[])`,
/// [`FETCH_BATCH`] UIDs at a time, each batch until acknowledged): every answer, the partial
/// ones of refused or cut-off attempts included, is checked by the ledger, which learns each
/// message's UID. A connection the server closes in the middle of a body is opened again.
pub async fn fetch_all(link: &mut Link) -> Result<(), ClientError> {
    let ctx = link.ctx.clone();
    let mut pause = RETRY_PAUSE;
    let mut listed = None;
    for _ in 0..=ctx.retries_max {
        if let Ok(reply) = link.attempt("UID FETCH 1:* (UID)", None, false).await? {
            if reply.status == Some(Status::Ok) {
                listed = Some(reply);
                break;
            }
        }
        back_off(&mut pause, &ctx).await;
    }
    let Some(reply) = listed else {
        ctx.counts.add("gave_up", 1);
        link.note("UID FETCH 1:* (UID): gave up".into());
        return Ok(());
    };
    let mut uids: Vec<u32> = workload::responses::fetched(&reply)
        .into_iter()
        .filter_map(|f| f.uid)
        .collect();
    uids.sort_unstable();
    for batch in uids.chunks(FETCH_BATCH as usize) {
        let command = format!(
            "UID FETCH {} (UID FLAGS MODSEQ BODY.PEEK[])",
            uid_set_text(batch)
        );
        let mut pause = RETRY_PAUSE;
        let mut done = false;
        for _ in 0..=ctx.retries_max {
            if let Ok(reply) = link.attempt(&command, None, true).await? {
                link.observe(&reply, &command);
                if reply.status == Some(Status::Ok) {
                    done = true;
                    break;
                }
            }
            back_off(&mut pause, &ctx).await;
        }
        if !done {
            ctx.counts.add("gave_up", 1);
            link.note(format!(
                "{command}: still not answered OK after {} retries",
                ctx.retries_max
            ));
        }
    }
    Ok(())
}

/// A host fault armed on a store request count, and the task that undoes it (see [`arm`]).
pub struct Armed {
    undo: tokio::task::JoinHandle<()>,
}

/// Arms `fault` to fire once the store has routed `after` more requests of `op` (counted from
/// now); once it fired, a task waits `hold` and requests `undo` (a bounce after a crash, a repair
/// after a partition). Pass the result to [`disarm`] when the operation it targets has ended.
pub fn arm(
    ctx: &Ctx,
    op: fakes3::Op,
    after: u64,
    fault: HostFault,
    hold: Duration,
    undo: Option<HostFault>,
) -> Armed {
    let applied = ctx.controls.applied_count();
    ctx.controls.arm(Trigger {
        op,
        requests: ctx.requests(op) + after,
        fault,
    });
    let controls = ctx.controls.clone();
    let undo = tokio::task::spawn_local(async move {
        while controls.applied_count() == applied {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(undo) = undo {
            tokio::time::sleep(hold).await;
            controls.request(undo);
        }
    });
    Armed { undo }
}

/// Waits for the undo of an armed fault; a fault whose count was never reached is disarmed and
/// counted as `faults_not_reached` (the operation ended before it). Returns whether it fired.
pub async fn disarm(ctx: &Ctx, armed: Armed) -> bool {
    if ctx.controls.armed() {
        ctx.controls.disarm();
        armed.undo.abort();
        ctx.counts.add("faults_not_reached", 1);
        return false;
    }
    // The task only sleeps and requests; it cannot fail.
    let _ = armed.undo.await;
    // Let the undo be applied (it takes effect after the current step).
    tokio::time::sleep(Duration::from_millis(2)).await;
    true
}

/// How an LMTP delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The server answered this final reply to the data.
    Reply(String),
    /// The connection broke before the final reply.
    Broken(String),
}

impl Delivered {
    /// The ledger's view: 250 acknowledged, any other code refused, no answer unknown.
    pub fn ack(&self) -> Ack {
        match self {
            Delivered::Reply(line) if line.starts_with("250") => Ack::Ok,
            Delivered::Reply(_) => Ack::Refused,
            Delivered::Broken(_) => Ack::Unknown,
        }
    }
}

/// Delivers `email` to `rcpt` over LMTP on `host`; with `cut`, the client goes away once that
/// many bytes of the data are written (a delivery cut off mid-DATA).
pub async fn lmtp_deliver(host: &str, rcpt: &str, email: &[u8], cut: Option<usize>) -> Delivered {
    match tokio::time::timeout(
        LMTP_TRANSACTION_TIMEOUT,
        lmtp_transaction(host, rcpt, email, cut),
    )
    .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => Delivered::Broken(e.to_string()),
        Err(_) => Delivered::Broken("no final reply within 10 minutes".into()),
    }
}

/// How long a delivery may take to its final reply (RFC 5321 4.5.3.2.6: 10 minutes).
pub const LMTP_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one write of the data may block (RFC 5321 4.5.3.2.5, "DATA block": 3 minutes). A
/// writer blocked on a peer that crashed is never woken in turmoil 0.7.2: this ends it.
pub const LMTP_BLOCK_TIMEOUT: Duration = Duration::from_secs(180);

/// Writes `bytes`, failing after [`LMTP_BLOCK_TIMEOUT`].
async fn write_block(
    write: &mut tokio::io::BufWriter<turmoil::net::tcp::OwnedWriteHalf>,
    bytes: &[u8],
) -> std::io::Result<()> {
    match tokio::time::timeout(LMTP_BLOCK_TIMEOUT, write.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn lmtp_transaction(
    host: &str,
    rcpt: &str,
    email: &[u8],
    cut: Option<usize>,
) -> std::io::Result<Delivered> {
    let stream = TcpStream::connect((host, LMTP_PORT)).await?;
    let (read, write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut write = tokio::io::BufWriter::with_capacity(16 * 1024, write);
    async fn reply(
        read: &mut BufReader<turmoil::net::tcp::OwnedReadHalf>,
    ) -> std::io::Result<Option<String>> {
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Some(line.trim_end().to_string()));
            }
        }
    }
    let closed = || Delivered::Broken("connection closed".into());
    let Some(greeting) = reply(&mut read).await? else {
        return Ok(closed());
    };
    if !greeting.starts_with("220") {
        return Ok(Delivered::Reply(greeting));
    }
    for (command, code) in [
        ("LHLO sim\r\n".to_string(), "250"),
        ("MAIL FROM:<sim@example.org>\r\n".to_string(), "250"),
        (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
    ] {
        write_block(&mut write, command.as_bytes()).await?;
        write.flush().await?;
        let Some(line) = reply(&mut read).await? else {
            return Ok(closed());
        };
        if !line.starts_with(code) {
            return Ok(Delivered::Reply(line));
        }
    }
    let mut written = 0usize;
    for line in email.split_inclusive(|&b| b == b'\n') {
        if cut.is_some_and(|c| written >= c) {
            // A client that goes away in the middle of DATA.
            return Ok(Delivered::Broken(format!("cut after {written} bytes")));
        }
        if line.first() == Some(&b'.') {
            write_block(&mut write, b".").await?;
        }
        write_block(&mut write, line).await?;
        written += line.len();
    }
    if !email.ends_with(b"\r\n") {
        write_block(&mut write, b"\r\n").await?;
    }
    write_block(&mut write, b".\r\n").await?;
    match tokio::time::timeout(LMTP_BLOCK_TIMEOUT, write.flush()).await {
        Ok(result) => result?,
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
    }
    let result = match reply(&mut read).await? {
        Some(line) => Delivered::Reply(line),
        None => closed(),
    };
    if matches!(result, Delivered::Reply(_)) {
        let _ = write.write_all(b"QUIT\r\n").await;
        let _ = write.flush().await;
        let _ = reply(&mut read).await;
    }
    Ok(result)
}

/// Delivers `email` to user `i` until a 250 (a 4xx is retried after a pause, as an MTA would);
/// records every attempt in the ledger as a message of INBOX.
pub async fn deliver_until_done(
    ctx: &Ctx,
    host: &str,
    i: usize,
    email: &[u8],
    what: &str,
) -> Delivered {
    let rcpt = ctx.user(i).0;
    let mut pause = RETRY_PAUSE;
    let mut tries = 0;
    loop {
        let outcome = lmtp_deliver(host, &rcpt, email, None).await;
        tries += 1;
        ctx.ledger
            .borrow_mut()
            .add("INBOX", email, &[], outcome.ack(), None, what);
        let temporary = match &outcome {
            Delivered::Reply(line) => line.starts_with('4'),
            Delivered::Broken(_) => true,
        };
        if !temporary || tries > ctx.retries_max {
            return outcome;
        }
        back_off(&mut pause, ctx).await;
    }
}

/// A raw IMAP connection for what the client of [`ImapClient`] does not do on purpose: stopping
/// in the middle of a literal or of a response.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to `host`, reads the greeting and logs in as user `i`.
    pub async fn login(host: &str, ctx: &Ctx, i: usize) -> std::io::Result<Raw> {
        let stream = TcpStream::connect((host, IMAP_PORT)).await?;
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        raw.line().await?;
        let (name, password) = ctx.user(i);
        raw.send(format!("r1 LOGIN {name} \"{password}\"\r\n").as_bytes())
            .await?;
        raw.until_tagged("r1").await?;
        Ok(raw)
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads one line (without a literal), or an error at end of stream.
    pub async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(at + 2);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads lines until the one tagged `tag`; returns it.
    pub async fn until_tagged(&mut self, tag: &str) -> std::io::Result<String> {
        loop {
            let line = self.line().await?;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
        }
    }

    /// Reads at least `bytes` bytes of whatever the server sends.
    pub async fn read_at_least(&mut self, bytes: usize) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        let mut total = self.buf.len();
        self.buf.clear();
        let mut chunk = vec![0u8; 16 * 1024];
        while total < bytes {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set_text(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set_text(&[4]), "4");
        assert_eq!(uid_set_text(&[]), "");
    }

    #[test]
    fn no_lines_are_recognised() {
        assert!(is_no("A0001 NO [UNAVAILABLE] try again"));
        assert!(!is_no("A0001 OK done"));
        assert!(!is_no("A0001 BAD NO"));
    }

    #[test]
    fn delivery_replies_map_to_acks() {
        assert_eq!(Delivered::Reply("250 2.0.0 ok".into()).ack(), Ack::Ok);
        assert_eq!(
            Delivered::Reply("451 4.3.0 later".into()).ack(),
            Ack::Refused
        );
        assert_eq!(Delivered::Broken("eof".into()).ack(), Ack::Unknown);
    }
}
