//! Building blocks the RAM-study scenarios share: users and simulation options, logging in,
//! preloading a mailbox through the server's own APPEND path in parallel sessions, LMTP delivery,
//! the heap sampler, and the one-user runner (preload, open a session, run the measured steps).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use imap_proto::{MailboxDatum, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::TcpStream;

use crate::alloc;
use crate::client::{ClientError, ImapClient};
use crate::harness::{Harness, SimConfig, IMAP_HOST, IMAP_PORT, LMTP_PORT};
use crate::scenario::{
    sim_now_ms, ClientOutcome, Outcomes, PhaseCursor, PhaseMarks, Report, ScenarioError,
};

/// Period of the heap sampler, in simulated milliseconds.
pub const SAMPLE_PERIOD_MS: u64 = 10;

/// Name of user `i` (1-based) and their password.
pub fn user(i: usize) -> (String, String) {
    (format!("user{i}"), format!("password-{i}"))
}

/// Users 1..=n.
pub fn users(n: usize) -> Vec<(String, String)> {
    (1..=n).map(user).collect()
}

/// Cheap argon2id parameters (64 KiB, t=1) for scenarios that do not measure logins: production's
/// 19 MiB derivation would dominate their wall time and is measured by the `login` scenario.
pub fn cheap_kdf() -> server::config::KdfParams {
    server::config::KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

/// Simulation options for `users` users with cheap key derivation and a long simulated duration.
pub fn config(seed: u64, users: Vec<(String, String)>) -> SimConfig {
    SimConfig {
        seed,
        users,
        kdf: cheap_kdf(),
        duration_s: 3600,
        ..SimConfig::default()
    }
}

/// Which emails a mailbox is filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// The 100 emails at the recorded sizes, `factor` times (copies have their own content).
    Recorded {
        /// Copies of the 100.
        factor: usize,
    },
    /// `count` generated emails of `bytes` bytes each (scaling runs: the index, not the bodies).
    Small {
        /// How many.
        count: usize,
        /// Size of each.
        bytes: u64,
    },
}

impl Dataset {
    /// Emails in the set.
    pub fn len(&self) -> usize {
        match *self {
            Dataset::Recorded { factor } => traces::dataset::recorded_sizes().len() * factor,
            Dataset::Small { count, .. } => count,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Email `k` of the set, generated on demand (the set is never held whole).
    pub fn email(&self, seed: u64, sizes: &[u64], k: usize) -> Vec<u8> {
        match *self {
            Dataset::Recorded { .. } => {
                let (copy, i) = (k / sizes.len(), k % sizes.len());
                traces::dataset::email(traces::dataset::copy_seed(seed, copy), i, sizes[i]).bytes
            }
            Dataset::Small { bytes, .. } => traces::dataset::email(seed, k, bytes).bytes,
        }
    }

    /// Total bytes of the set.
    pub fn total_bytes(&self) -> u64 {
        match *self {
            Dataset::Recorded { factor } => {
                traces::dataset::recorded_sizes().iter().sum::<u64>() * factor as u64
            }
            Dataset::Small { count, bytes } => count as u64 * bytes,
        }
    }
}

/// Connects to the server and logs in; failures are noted in `outcome` and give `None`.
pub async fn login(
    user: &str,
    password: &str,
    outcome: &mut ClientOutcome,
) -> Option<ImapClient<TcpStream>> {
    let mut client = connect(outcome).await?;
    // A server at its key-derivation bound answers NO [UNAVAILABLE]; a real client tries again later.
    for attempt in 1.. {
        match client
            .command_ok_or_no(&format!("LOGIN {user} \"{password}\""))
            .await
        {
            Ok(reply) if reply.is_ok() => return Some(client),
            Ok(reply) if attempt < LOGIN_ATTEMPTS && is_unavailable(&reply) => {
                tokio::time::sleep(LOGIN_RETRY_DELAY * attempt.min(10)).await;
            }
            Ok(_) => {
                outcome.notes.push(format!("LOGIN {user} refused"));
                outcome.stats = client.into_stats();
                outcome.stats.unexpected += 1;
                return None;
            }
            Err(e) => {
                outcome.notes.push(format!("LOGIN {user}: {e}"));
                outcome.stats = client.into_stats();
                return None;
            }
        }
    }
    None
}

/// Logins a client tries when the server is busy deriving keys (10,000 users logging in at once
/// queue for a while).
const LOGIN_ATTEMPTS: u32 = 200;
/// Wait before the next login attempt, times the attempt number (at most 10).
const LOGIN_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether the tagged reply says `[UNAVAILABLE]` (RFC 5530): try again later.
fn is_unavailable(reply: &crate::client::Reply) -> bool {
    reply
        .responses
        .last()
        .is_some_and(|r| r.windows(13).any(|w| w == b"[UNAVAILABLE]"))
}

/// Connects to the IMAP server and reads its greeting.
async fn connect(outcome: &mut ClientOutcome) -> Option<ImapClient<TcpStream>> {
    let stream = match TcpStream::connect((IMAP_HOST, IMAP_PORT)).await {
        Ok(stream) => stream,
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome.notes.push(format!("connect failed: {e}"));
            return None;
        }
    };
    match ImapClient::connect(stream).await {
        Ok((client, _)) => Some(client),
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome.notes.push(format!("no greeting: {e}"));
            None
        }
    }
}

/// The EXISTS count in a reply, if any.
pub fn exists(reply: &crate::client::Reply) -> Option<u32> {
    reply.parsed().find_map(|r| match r {
        Response::MailboxData(MailboxDatum::Exists(n)) => Some(n),
        _ => None,
    })
}

/// The count of a raw `* N EXISTS` response.
pub fn parse_exists(response: &[u8]) -> Option<u32> {
    match crate::client::parse_complete(response) {
        Some(Response::MailboxData(MailboxDatum::Exists(n))) => Some(n),
        _ => None,
    }
}

/// How many untagged FETCH responses a reply holds.
pub fn fetch_count(reply: &crate::client::Reply) -> usize {
    reply
        .parsed()
        .filter(|r| matches!(r, Response::Fetch(..)))
        .count()
}

/// Adds a mismatch to `outcome` unless `actual == expected`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    outcome: &mut ClientOutcome,
    what: &str,
    actual: T,
    expected: T,
) {
    if actual != expected {
        outcome.mismatches += 1;
        outcome
            .notes
            .push(format!("{what}: got {actual:?}, expected {expected:?}"));
    }
}

/// LMTP errors.
#[derive(Debug, thiserror::Error)]
pub enum LmtpError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with another code than expected.
    #[error("expected {expected}, got {line:?}")]
    Unexpected {
        /// Expected reply code.
        expected: &'static str,
        /// The reply line.
        line: String,
    },
}

/// A minimal LMTP client (RFC 2033): LHLO, then one transaction per message.
pub struct LmtpClient {
    read: BufReader<turmoil::net::tcp::OwnedReadHalf>,
    write: turmoil::net::tcp::OwnedWriteHalf,
}

impl LmtpClient {
    /// Connects to the server's LMTP port and says LHLO.
    pub async fn connect() -> Result<LmtpClient, LmtpError> {
        let stream = TcpStream::connect((IMAP_HOST, LMTP_PORT)).await?;
        let (read, write) = stream.into_split();
        let mut client = LmtpClient {
            read: BufReader::new(read),
            write,
        };
        client.expect("220").await?;
        client.write.write_all(b"LHLO sim\r\n").await?;
        client.expect("250").await?;
        Ok(client)
    }

    /// Reads one reply (all its continuation lines) and checks its code.
    async fn expect(&mut self, code: &'static str) -> Result<(), LmtpError> {
        loop {
            let mut line = String::new();
            if self.read.read_line(&mut line).await? == 0 {
                return Err(LmtpError::Unexpected {
                    expected: code,
                    line: "connection closed".into(),
                });
            }
            if !line.starts_with(code) {
                return Err(LmtpError::Unexpected {
                    expected: code,
                    line: line.trim_end().to_string(),
                });
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    /// Delivers `email` to every recipient: one transaction, one 250 per recipient.
    pub async fn deliver(&mut self, recipients: &[&str], email: &[u8]) -> Result<(), LmtpError> {
        self.write
            .write_all(b"MAIL FROM:<sim@example.org>\r\n")
            .await?;
        self.expect("250").await?;
        for rcpt in recipients {
            self.write
                .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .await?;
            self.expect("250").await?;
        }
        self.write.write_all(b"DATA\r\n").await?;
        self.expect("354").await?;
        // Dot-stuffing, line by line, without copying the message.
        for line in email.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                self.write.write_all(b".").await?;
            }
            self.write.write_all(line).await?;
        }
        if !email.ends_with(b"\r\n") {
            self.write.write_all(b"\r\n").await?;
        }
        self.write.write_all(b".\r\n").await?;
        for _ in recipients {
            self.expect("250").await?;
        }
        Ok(())
    }

    /// Says QUIT.
    pub async fn quit(mut self) -> Result<(), LmtpError> {
        self.write.write_all(b"QUIT\r\n").await?;
        self.expect("221").await
    }
}

/// The heap sampler's series: (simulated ms, server live bytes).
pub type Samples = Rc<RefCell<Vec<(u64, u64)>>>;

/// Adds a host that samples the server's live bytes every [`SAMPLE_PERIOD_MS`] of simulated time
/// (charged to the clients' account; it sends nothing, so the schedule is the same without it).
pub fn add_sampler(harness: &mut Harness) -> Samples {
    let samples = Samples::default();
    let server = harness.accounts().imap.id();
    let series = samples.clone();
    harness.client_host("sampler", move || {
        let series = series.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(SAMPLE_PERIOD_MS)).await;
                let live = alloc::figures_of(server).live_bytes;
                series.borrow_mut().push((sim_now_ms(), live));
            }
        }
    });
    samples
}

/// What the one-user runner's steps get: the measured session, its phase cursor and outcome.
pub struct Steps {
    /// The logged-in, INBOX-selected session.
    pub client: ImapClient<TcpStream>,
    /// The phases after "session".
    pub phases: PhaseCursor,
    /// Where checks are counted.
    pub outcome: ClientOutcome,
    /// Emails in INBOX after the preload.
    pub emails: usize,
    /// The store, to read its request counters.
    pub fake: fakes3::FakeS3,
    /// Scenario-specific figures for the report.
    pub figures: BTreeMap<String, u64>,
}

/// The future of a scenario's steps.
pub type StepsFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ClientError>> + 'a>>;

/// A one-user scenario: preload INBOX, open the measured session, run the steps.
pub struct OneUser {
    /// Scenario name.
    pub name: &'static str,
    /// What INBOX is filled with.
    pub dataset: Dataset,
    /// Parallel sessions appending the dataset.
    pub preload_sessions: usize,
    /// Commands the first preload session runs before appending (the server creates INBOX,
    /// Archive, Drafts, Junk, Sent and Trash at a user's first login).
    pub setup: &'static [&'static str],
    /// Every phase after "preload" and "session", in order (the steps end each one).
    pub phases: &'static [&'static str],
    /// The phases the budget measures.
    pub measured: &'static [&'static str],
    /// The target for the measured figure, in bytes.
    pub target_bytes: u64,
    /// The steps.
    pub steps: for<'a> fn(&'a mut Steps) -> StepsFuture<'a>,
}

impl OneUser {
    /// Runs the scenario with root seed `seed`.
    pub fn run(&self, seed: u64) -> Result<Report, ScenarioError> {
        let (name, password) = user(1);
        let mut harness = Harness::new(config(seed, vec![(name.clone(), password.clone())]))?;
        let samples = add_sampler(&mut harness);
        let names: &'static [&'static str] = leak_phases(self.phases);
        let sessions = self.preload_sessions.max(1);
        let marks = PhaseMarks::new(&harness.accounts().imap, sessions + 1, names);
        let outcomes = Outcomes::default();
        let dataset = self.dataset;
        let dataset_seed = harness.seeds().dataset;
        let sizes = Rc::new(traces::dataset::recorded_sizes());
        let total = dataset.len();
        let setup = self.setup;
        let first_login = Rc::new(tokio::sync::Semaphore::new(0));
        // The preloaders: session `p` appends emails p, p + sessions, ...
        for p in 0..sessions {
            let (name, password) = (name.clone(), password.clone());
            let (outcomes, sizes) = (outcomes.clone(), sizes.clone());
            let first_login = first_login.clone();
            let mut phases = marks.cursor();
            harness.client(&format!("preload{p}"), async move {
                let mut outcome = ClientOutcome::default();
                // The first login of a user sets up their keys: the other sessions wait for it
                // (concurrent first logins of one user break its later APPENDs; reported).
                if p > 0 {
                    let permit = first_login
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    permit.forget();
                }
                let client = login(&name, &password, &mut outcome).await;
                if p == 0 {
                    first_login.add_permits(sessions - 1);
                }
                if let Some(mut client) = client {
                    let result: Result<(), ClientError> = async {
                        if p == 0 {
                            for command in setup {
                                client.command(command).await?;
                            }
                        }
                        for k in (p..total).step_by(sessions) {
                            let email = dataset.email(dataset_seed, &sizes, k);
                            client
                                .command_with_literal(
                                    "APPEND INBOX",
                                    &email,
                                    imap_proto::Status::Ok,
                                )
                                .await?;
                        }
                        client.command("LOGOUT").await?;
                        Ok(())
                    }
                    .await;
                    if let Err(e) = result {
                        outcome.notes.push(format!("preload ended early: {e}"));
                    }
                    outcome.stats = client.into_stats();
                }
                phases.end_all().await;
                outcomes.borrow_mut().insert(1 + p, outcome);
                Ok(())
            });
        }
        let steps = self.steps;
        let fake = harness.fake().clone();
        let mut phases = marks.cursor();
        let main_outcomes = outcomes.clone();
        harness.client("client0", async move {
            let outcomes = main_outcomes;
            // Waits for the preload to end.
            phases.end_phase().await;
            let mut outcome = ClientOutcome::default();
            let Some(mut client) = login(&name, &password, &mut outcome).await else {
                phases.end_all().await;
                outcomes.borrow_mut().insert(0, outcome);
                return Ok(());
            };
            match client.command("SELECT INBOX").await {
                Ok(reply) => expect_eq(
                    &mut outcome,
                    "SELECT INBOX EXISTS",
                    exists(&reply),
                    Some(total as u32),
                ),
                Err(e) => outcome.notes.push(format!("SELECT INBOX: {e}")),
            }
            phases.end_phase().await;
            let mut s = Steps {
                client,
                phases,
                outcome,
                emails: total,
                fake,
                figures: BTreeMap::new(),
            };
            if let Err(e) = steps(&mut s).await {
                s.outcome.notes.push(format!("steps ended early: {e}"));
            }
            s.phases.end_all().await;
            let Steps {
                client,
                mut outcome,
                figures,
                ..
            } = s;
            outcome.stats = client.into_stats();
            FIGURES.with(|f| *f.borrow_mut() = figures);
            outcomes.borrow_mut().insert(0, outcome);
            Ok(())
        });
        let run = harness.run()?;
        let mut report = Report::build(self.name, seed, &run, &outcomes, marks.phases());
        report.measure_steps(self.measured, self.target_bytes);
        if let Some(session) = report.phase("session") {
            report.session_base_bytes = session
                .server_live_end_bytes
                .saturating_sub(session.server_live_start_bytes);
        }
        report.figures = FIGURES.with(|f| std::mem::take(&mut *f.borrow_mut()));
        report.figures.insert("emails".into(), total as u64);
        report
            .figures
            .insert("dataset_bytes".into(), dataset.total_bytes());
        report.samples = std::mem::take(&mut *samples.borrow_mut());
        drop(harness);
        Ok(report)
    }
}

thread_local! {
    /// The measured client's figures, handed from its host to the runner (same thread).
    static FIGURES: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// "preload" and "session" followed by `phases`, as a static list (one small leak per scenario
/// and phase list, cached).
fn leak_phases(phases: &'static [&'static str]) -> &'static [&'static str] {
    thread_local! {
        static CACHE: RefCell<BTreeMap<usize, &'static [&'static str]>> = const { RefCell::new(BTreeMap::new()) };
    }
    let key = phases.as_ptr() as usize;
    CACHE.with(|cache| {
        *cache.borrow_mut().entry(key).or_insert_with(|| {
            let mut all = vec!["preload", "session"];
            all.extend_from_slice(phases);
            Box::leak(all.into_boxed_slice())
        })
    })
}
