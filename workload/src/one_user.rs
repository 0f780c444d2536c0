//! One-user workloads on a preloaded INBOX: parallel sessions APPEND the dataset through the
//! server's own path, then one session logs in, SELECTs INBOX and runs a [`StepSet`]: the
//! measured commands, each ended by a phase boundary, and the checks of their answers.

use std::collections::BTreeMap;
use std::rc::Rc;

use imap_proto::{MailboxDatum, Response};

use crate::client::{ClientError, Reply};
use crate::dataset::Dataset;
use crate::driver::{Driver, PhaseCursor, Phases, StoreRequests};
use crate::outcome::{ClientOutcome, Outcomes, WorkloadRun};
use crate::responses::{
    body_section_bytes, count, exists, fetch_count, fetched, search_hits, status_messages,
};
use crate::session::{append_emails, login, prepare_mailbox, Client};

/// The trace's SEARCH commands (flags, dates, headers, sequence sets), in IMAP syntax.
pub const TRACE_SEARCHES: &[&str] = &[
    "UID SEARCH HEADER Message-ID \"<Mailbird-8d3b03f5-7737-479e-b8d7-a3cae013e72f@saint-ex.deuxfleurs.org>\" UNDELETED",
    "UID SEARCH 1:* DELETED",
    "UID SEARCH 1:* NOT DELETED",
    "UID SEARCH 1:* SINCE 16-Nov-2023",
    "UID SEARCH 1:* UNSEEN",
    "UID SEARCH 1:1 NOT DELETED",
    "UID SEARCH 1:4 NOT DELETED",
    "SEARCH SINCE 7-Feb-2024 ALL",
    "SEARCH SINCE 8-Feb-2024 ALL",
    "SEARCH SINCE 9-Feb-2024 ALL",
    "SEARCH UNDELETED SINCE 17-Nov-2023",
    "SEARCH UNDELETED SINCE 13-Feb-2024",
    "UID SEARCH BEFORE 9-Feb-2024",
    "UID SEARCH SINCE 31-Jan-2024",
];

/// The 16 flags of `store_flags`' second step.
const SIXTEEN_FLAGS: &str =
    "\\Seen \\Answered \\Flagged \\Draft $Forwarded $Junk $NotJunk $MDNSent \
                             $Label1 $Label2 $Label3 $Label4 $Label5 work personal todo";

/// The measured commands of a one-user workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepSet {
    /// FETCH 1:* ALL.
    FetchAll,
    /// FETCH 1:* FULL (no body may be read).
    FetchFull,
    /// FETCH 1:* BODY.PEEK[] (the bytes sent add up to the dataset).
    FetchBody,
    /// COPY 1:* to Sent, then MOVE 1:* from Sent to Archive (no body traffic).
    CopyMove,
    /// STORE 1 flag on 1 email, 16 flags on 1 email, 1 flag on all.
    StoreFlags,
    /// SELECT, NOOP, CHECK, STATUS of another mailbox.
    Refresh,
    /// The trace's 14 SEARCH commands.
    SearchMeta,
    /// SEARCH BODY / TEXT (every body read).
    SearchBody,
    /// LIST, LSUB, LIST RETURN (STATUS) over the 5 mailboxes left after the setup.
    List,
    /// UNSELECT, then SELECT INBOX (the index of a selected mailbox).
    Select,
    /// FETCH 1:* FULL, as a scaling point.
    ScaleFetchFull,
    /// SEARCH UNSEEN (every message hits), then SEARCH TEXT of an absent word.
    ScaleSearch,
}

impl StepSet {
    /// Every phase of the workload: the preload, the measured session's login and SELECT, then
    /// one per measured command.
    pub const fn phases(self) -> &'static [&'static str] {
        match self {
            StepSet::FetchAll | StepSet::FetchFull | StepSet::FetchBody => {
                &["preload", "session", "fetch"]
            }
            StepSet::CopyMove => &["preload", "session", "copy", "select_sent", "move"],
            StepSet::StoreFlags => &[
                "preload",
                "session",
                "store_1_flag",
                "store_16_flags",
                "store_1k_emails",
            ],
            StepSet::Refresh => &["preload", "session", "select", "noop", "check", "status"],
            StepSet::SearchMeta | StepSet::SearchBody => &["preload", "session", "search"],
            StepSet::List => &["preload", "session", "list", "lsub", "list_status"],
            StepSet::Select => &["preload", "session", "unselect", "select"],
            StepSet::ScaleFetchFull => &["preload", "session", "fetch_full"],
            StepSet::ScaleSearch => &["preload", "session", "search_meta", "search_body"],
        }
    }
}

/// A one-user workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneUser {
    /// What INBOX is filled with.
    pub dataset: Dataset,
    /// Parallel sessions appending the dataset.
    pub preload_sessions: usize,
    /// Commands the first preload session runs before appending (the server creates INBOX,
    /// Archive, Drafts, Junk, Sent and Trash at a user's first login).
    pub setup: &'static [&'static str],
    /// The measured commands.
    pub steps: StepSet,
}

/// What the steps get: the measured session, its phase cursor and outcome.
pub struct Steps<D: Driver> {
    /// The logged-in, INBOX-selected session.
    pub client: Client<D>,
    /// The phases after "session".
    pub phases: PhaseCursor,
    /// Where checks are counted.
    pub outcome: ClientOutcome,
    /// Emails in INBOX after the preload.
    pub emails: usize,
    /// The driver, for the store's counters.
    pub driver: Rc<D>,
    /// Figures for the report.
    pub figures: BTreeMap<String, u64>,
}

impl<D: Driver> Steps<D> {
    /// Runs `command` as one phase.
    async fn step(&mut self, command: &str) -> Result<Reply, ClientError> {
        let reply = self.client.command(command).await?;
        self.phases.end_phase().await;
        Ok(reply)
    }

    /// The store's body requests since `before` as figure `name`, expected `expected` if given;
    /// nothing when the driver cannot see the store.
    fn body_figure(
        &mut self,
        before: Option<StoreRequests>,
        name: &str,
        only_gets: bool,
    ) -> Option<u64> {
        let (before, after) = (before?, self.driver.store_requests()?);
        let n = if only_gets {
            after.get_object - before.get_object
        } else {
            before.body_requests_until(after)
        };
        self.figures.insert(name.into(), n);
        Some(n)
    }

    /// FETCH 1:* `items` as one phase, checking one response per message; the body reads it
    /// caused and the bytes it sent become figures.
    async fn fetch(&mut self, items: &str) -> Result<Reply, ClientError> {
        let before = self.driver.store_requests();
        let received_before = self.client.stats().bytes_received;
        let reply = self.step(&format!("FETCH 1:* {items}")).await?;
        self.body_figure(before, "body_get_objects", true);
        let sent = self.client.stats().bytes_received - received_before;
        self.figures.insert("bytes_sent".into(), sent);
        let emails = self.emails;
        self.outcome
            .expect_eq("FETCH responses", fetch_count(&reply), emails);
        Ok(reply)
    }
}

impl StepSet {
    /// The mailboxes the commands use, emptied first on a store that is not fresh.
    pub fn mailboxes(self) -> &'static [&'static str] {
        match self {
            StepSet::CopyMove => &["INBOX", "Sent", "Archive"],
            _ => &["INBOX"],
        }
    }

    /// Runs the measured commands and their checks.
    pub async fn run<D: Driver>(self, s: &mut Steps<D>) -> Result<(), ClientError> {
        let emails = s.emails;
        match self {
            StepSet::FetchAll => {
                s.fetch("ALL").await?;
            }
            StepSet::FetchFull | StepSet::ScaleFetchFull => {
                s.fetch("FULL").await?;
                if let Some(&reads) = s.figures.get("body_get_objects") {
                    s.outcome
                        .expect_eq("body GetObject during FETCH FULL", reads, 0);
                }
            }
            StepSet::FetchBody => {
                let reply = s.fetch("BODY.PEEK[]").await?;
                s.figures
                    .insert("body_bytes".into(), body_section_bytes(&reply));
            }
            StepSet::CopyMove => {
                let before = s.driver.store_requests();
                s.step("COPY 1:* Sent").await?;
                let copy = s.body_figure(before, "copy_body_requests", false);
                s.step("SELECT Sent").await?;
                let before = s.driver.store_requests();
                s.step("MOVE 1:* Archive").await?;
                let moved = s.body_figure(before, "move_body_requests", false);
                if let (Some(copy), Some(moved)) = (copy, moved) {
                    s.outcome.expect_eq("S3 body requests during COPY", copy, 0);
                    s.outcome
                        .expect_eq("S3 body requests during MOVE", moved, 0);
                }
                let archive = s.client.command("STATUS Archive (MESSAGES)").await?;
                s.outcome.expect_eq(
                    "Archive MESSAGES",
                    status_messages(&archive),
                    Some(emails as u32),
                );
                let inbox = s.client.command("STATUS INBOX (MESSAGES)").await?;
                s.outcome.expect_eq(
                    "INBOX MESSAGES after COPY",
                    status_messages(&inbox),
                    Some(emails as u32),
                );
            }
            StepSet::StoreFlags => {
                let one = s.step("STORE 1 +FLAGS (\\Flagged)").await?;
                s.outcome
                    .expect_eq("STORE 1 FETCH responses", fetch_count(&one), 1);
                let sixteen = s.step(&format!("STORE 2 +FLAGS ({SIXTEEN_FLAGS})")).await?;
                s.outcome
                    .expect_eq("STORE 16 flags FETCH responses", fetch_count(&sixteen), 1);
                let all = s.step("STORE 1:* +FLAGS (\\Seen)").await?;
                // Message 2 has \Seen already: a server may leave its FETCH out (Dovecot does;
                // imapsim's server sends one per message). Every other message must answer.
                let answered: std::collections::BTreeSet<u32> =
                    fetched(&all).iter().map(|f| f.seq).collect();
                let silent: Vec<u32> = (1..=emails as u32)
                    .filter(|seq| !answered.contains(seq) && *seq != 2)
                    .collect();
                s.outcome
                    .expect_eq("STORE 1:* messages without a FETCH", silent, Vec::new());
                s.figures
                    .insert("store_all_fetch_responses".into(), answered.len() as u64);
            }
            StepSet::Refresh => {
                let select = s.step("SELECT INBOX").await?;
                s.outcome
                    .expect_eq("SELECT EXISTS", exists(&select), Some(emails as u32));
                s.step("NOOP").await?;
                s.step("CHECK").await?;
                let status = s.step("STATUS Archive (MESSAGES UIDNEXT UNSEEN)").await?;
                s.outcome
                    .expect_eq("STATUS Archive MESSAGES", status_messages(&status), Some(0));
            }
            StepSet::SearchMeta => {
                let before = s.driver.store_requests();
                let mut hits = 0;
                for command in TRACE_SEARCHES {
                    hits += search_hits(&s.client.command(command).await?);
                }
                s.phases.end_phase().await;
                s.body_figure(before, "body_get_objects", true);
                s.figures.insert("search_hits".into(), hits as u64);
                // Every message is unseen and undeleted: "1:* NOT DELETED" and "1:* UNSEEN" hit all.
                let all = s.client.command("SEARCH 1:* UNSEEN").await?;
                s.outcome
                    .expect_eq("SEARCH UNSEEN hits", search_hits(&all), emails);
            }
            StepSet::SearchBody => {
                let before = s.driver.store_requests();
                let body = s.client.command("SEARCH BODY \"the\"").await?;
                let text = s.client.command("SEARCH TEXT \"zqxjkvbw\"").await?;
                s.phases.end_phase().await;
                s.body_figure(before, "body_get_objects", true);
                s.figures
                    .insert("body_hits".into(), search_hits(&body) as u64);
                s.figures
                    .insert("text_hits_absent_word".into(), search_hits(&text) as u64);
                s.outcome
                    .expect_eq("SEARCH TEXT of an absent word", search_hits(&text), 0);
                if search_hits(&body) == 0 {
                    s.outcome
                        .mismatch("SEARCH BODY \"the\" found nothing".into());
                }
            }
            StepSet::List => {
                let list = s.step("LIST \"\" \"*\"").await?;
                let lists = count(&list, |r| {
                    matches!(r, Response::MailboxData(MailboxDatum::List { .. }))
                });
                s.outcome.expect_eq("LIST mailboxes", lists, 5);
                s.step("LSUB \"\" \"*\"").await?;
                let status = s
                    .step("LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))")
                    .await?;
                let statuses = count(&status, |r| {
                    matches!(r, Response::MailboxData(MailboxDatum::Status { .. }))
                });
                s.outcome.expect_eq("LIST-STATUS answers", statuses, 5);
            }
            StepSet::Select => {
                s.step("UNSELECT").await?;
                let reply = s.step("SELECT INBOX").await?;
                s.outcome
                    .expect_eq("SELECT INBOX EXISTS", exists(&reply), Some(emails as u32));
            }
            StepSet::ScaleSearch => {
                let unseen = s.step("SEARCH 1:* UNSEEN").await?;
                let before = s.driver.store_requests();
                let text = s.step("SEARCH TEXT \"zqxjkvbw\"").await?;
                s.body_figure(before, "body_get_objects", true);
                // Every message is unseen; the word appears in none of the generated emails.
                s.outcome
                    .expect_eq("SEARCH UNSEEN hits", search_hits(&unseen), emails);
                s.outcome
                    .expect_eq("SEARCH TEXT of an absent word", search_hits(&text), 0);
            }
        }
        Ok(())
    }
}

impl OneUser {
    /// Runs it as `user` (a local task per session; the caller's task waits for them all).
    pub async fn run<D: Driver>(self, driver: Rc<D>, user: (String, String)) -> WorkloadRun {
        let sessions = self.preload_sessions.max(1);
        let phases = Phases::new(&driver, sessions + 1, self.steps.phases());
        let outcomes = Outcomes::default();
        let sizes = Rc::new(traces::dataset::recorded_sizes());
        let total = self.dataset.len();
        let user = Rc::new(user);
        let first_login = Rc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        // The preloaders: session `p` appends emails p, p + sessions, ...
        for p in 0..sessions {
            let (driver, user, outcomes, sizes) = (
                driver.clone(),
                user.clone(),
                outcomes.clone(),
                sizes.clone(),
            );
            let first_login = first_login.clone();
            let mut cursor = phases.cursor();
            tasks.spawn_local(async move {
                let mut outcome = ClientOutcome::default();
                // The first login of a user sets up their keys: the other sessions wait for it
                // (concurrent first logins of one user broke its later APPENDs).
                if p > 0 {
                    let permit = first_login.acquire().await.expect("never closed");
                    permit.forget();
                }
                let client = login(&*driver, &user.0, &user.1, &mut outcome).await;
                if p == 0 {
                    first_login.add_permits(sessions - 1);
                }
                if let Some(mut client) = client {
                    let result: Result<(), ClientError> = async {
                        if p == 0 {
                            for mailbox in self.steps.mailboxes() {
                                prepare_mailbox(&*driver, &mut client, mailbox).await?;
                            }
                            for command in self.setup {
                                client.command(command).await?;
                            }
                        }
                        let keys = (p..total).step_by(sessions);
                        append_emails(&*driver, &mut client, self.dataset, &sizes, keys).await?;
                        client.command("LOGOUT").await?;
                        Ok(())
                    }
                    .await;
                    if let Err(e) = result {
                        outcome.notes.push(format!("preload ended early: {e}"));
                    }
                    outcome.stats = client.into_stats();
                }
                cursor.end_all().await;
                outcomes.borrow_mut().insert(1 + p, outcome);
            });
        }
        let mut cursor = phases.cursor();
        let figures = Rc::new(std::cell::RefCell::new(BTreeMap::new()));
        let (measured_outcomes, measured_figures) = (outcomes.clone(), figures.clone());
        tasks.spawn_local(async move {
            // Waits for the preload to end.
            cursor.end_phase().await;
            let mut outcome = ClientOutcome::default();
            let Some(mut client) = login(&*driver, &user.0, &user.1, &mut outcome).await else {
                cursor.end_all().await;
                measured_outcomes.borrow_mut().insert(0, outcome);
                return;
            };
            match client.command("SELECT INBOX").await {
                Ok(reply) => {
                    outcome.expect_eq("SELECT INBOX EXISTS", exists(&reply), Some(total as u32))
                }
                Err(e) => outcome.notes.push(format!("SELECT INBOX: {e}")),
            }
            cursor.end_phase().await;
            let mut s = Steps {
                client,
                phases: cursor,
                outcome,
                emails: total,
                driver,
                figures: BTreeMap::new(),
            };
            if let Err(e) = self.steps.run(&mut s).await {
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
            *measured_figures.borrow_mut() = figures;
            measured_outcomes.borrow_mut().insert(0, outcome);
        });
        while tasks.join_next().await.is_some() {}
        let mut figures = figures.take();
        figures.insert("emails".into(), total as u64);
        figures.insert("dataset_bytes".into(), self.dataset.total_bytes(&sizes));
        WorkloadRun {
            outcomes: outcomes.take(),
            figures,
        }
    }
}
