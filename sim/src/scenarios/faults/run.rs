//! A fault scenario's run: the context its driver shares ([`Ctx`]: ledger, counters, host
//! controls, store) and the harness that runs it and assembles its report ([`FaultRun`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::figures::{Report, ScenarioError};
use crate::harness::{
    cheap_kdf, ConnectCounts, Controls, Harness, HostFault, SimConfig, IMAP_HOST,
};
use workload::dataset::user;
use workload::ledger::{Ledger, SharedLedger};
use workload::tolerant::{Counts, Patience, Recorder, RETRIES_MAX, RETRY_PAUSE_MAX};

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

    /// How the sessions retry a command answered NO.
    pub fn patience(&self) -> Patience {
        Patience {
            retries_max: self.retries_max,
            retry_pause_max: self.retry_pause_max,
        }
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

    /// Adds the driver client: `body` gets the context and the IMAP server's account id.
    pub fn driver<F, Fut>(&mut self, body: F)
    where
        F: FnOnce(Ctx, u16) -> Fut,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        let ctx = self.ctx();
        let imap = self.harness.accounts().imap.id();
        self.harness.client("driver", body(ctx, imap));
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
            &self.ctx.recorder.outcomes().borrow(),
            Vec::new(),
        );
        let stats = self.ctx.fake.stats();
        let counts = self.ctx.counts.take();
        let host_faults = self.ctx.controls.applied();
        let applied =
            |is: fn(&HostFault) -> bool| host_faults.iter().filter(|(_, f)| is(f)).count() as u64;
        let bounces = applied(|f| matches!(f, HostFault::Bounce(_)));
        let repairs = applied(|f| matches!(f, HostFault::Repair(..)));
        let crashes = applied(|f| matches!(f, HostFault::Crash(_)));
        let partitions = applied(|f| matches!(f, HostFault::Partition(..)));
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
