//! The turmoil harness: one root seed builds a simulation with hosts `fakes3`, `imap` and the
//! scenario's clients, each host on its own allocation account.
//!
//! `fakes3` serves S3 on port 3900 and K2V on 3904; `imap` runs [`server::Server`] with IMAP on
//! 143 and LMTP on 24, its storage client connecting to `fakes3` over turmoil TCP, its clock
//! reading simulated time from a fixed epoch and its entropy seeded from the root seed. Every
//! subsystem's seed is drawn, in a fixed order, from a ChaCha RNG seeded with the root seed.
//!
//! Fault scenarios add to this: more server hosts on the same store ([`Harness::add_server`]),
//! and host faults (crash, restart, partition, repair) that clients request through
//! [`Controls`] and that [`Harness::run_controlled`] applies between two simulation steps.
//! A restarted server draws fresh entropy (a new stream of its seed per boot), as a real one
//! would from the operating system.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use server::config::{KdfParams, Limits, ServerConfig, UserConfig};
use server::env::{Env, SeededEntropy};
use server::storage::StorageConfig;
use turmoil::net::{TcpListener, TcpStream};

use crate::alloc::{self, Account, AccountError, Figures};
use crate::attribution::HostAccounts;

use crate::entropy::epoch;

mod turmoil_io;
pub use turmoil_io::{ConnectCounts, SimClock, TurmoilConnector, VectoredConnector};
/// Host name of the fake store.
pub const FAKES3_HOST: &str = "fakes3";
/// Host name of the IMAP/LMTP server.
pub const IMAP_HOST: &str = "imap";
/// S3 port on the fake store (Garage's default).
pub const S3_PORT: u16 = 3900;
/// K2V port on the fake store (Garage's default).
pub const K2V_PORT: u16 = 3904;
/// IMAP port on the server host.
pub const IMAP_PORT: u16 = 143;
/// LMTP port on the server host.
pub const LMTP_PORT: u16 = 24;

/// Options of one simulation. Faults default to off.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Root seed: every other seed is derived from it. Default 1.
    pub seed: u64,
    /// Smallest one-way network latency, in milliseconds. Default 1.
    pub latency_ms_min: u64,
    /// Largest one-way network latency, in milliseconds. Default 5.
    pub latency_ms_max: u64,
    /// Simulated time after which an unfinished run fails, in seconds. Default 600.
    pub duration_s: u64,
    /// Simulation step, in milliseconds. Default 1.
    pub tick_ms: u64,
    /// Users the server knows, as (name, password). Default none.
    pub users: Vec<(String, String)>,
    /// Server memory bounds. Default `Limits::default()`.
    pub limits: Limits,
    /// Server key-derivation parameters. Default `KdfParams::default()` (production's, 19 MiB).
    pub kdf: KdfParams,
    /// Storage requests the server keeps in flight at most. Default 16.
    pub storage_max_in_flight: usize,
    /// Idle storage connections the server keeps. Default 4.
    pub storage_max_idle_connections: usize,
    /// turmoil's TCP buffer capacity in segments, also each listener's accept backlog. Default 64.
    pub tcp_capacity: usize,
    /// Whether the server's storage connections report vectored writes and count their connection
    /// attempts ([`ConnectCounts`]). tokio's `TcpStream` reports vectored writes, turmoil's does not;
    /// without them hyper copies every request body into a write buffer that keeps the size of the
    /// largest one (one 64 KiB body chunk per pooled S3 connection). Default false: the budgets
    /// were measured without.
    pub storage_io_vectored: bool,
}

/// Cheap argon2id parameters (64 KiB, t=1) for scenarios that do not measure logins: production's
/// 19 MiB derivation would dominate their wall time and is measured by the `login` scenario.
pub fn cheap_kdf() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            latency_ms_min: 1,
            latency_ms_max: 5,
            duration_s: 600,
            tick_ms: 1,
            users: Vec::new(),
            limits: Limits::default(),
            kdf: KdfParams::default(),
            storage_max_in_flight: 16,
            storage_max_idle_connections: 4,
            tcp_capacity: 64,
            storage_io_vectored: false,
        }
    }
}

/// Harness errors.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// An option is out of range.
    #[error("invalid simulation option: {0}")]
    InvalidConfig(String),
    /// No allocation account left.
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// The fake store refused its configuration.
    #[error("fakes3 configuration: {0}")]
    FakeS3(#[from] fakes3::ConfigError),
    /// This thread cannot run a simulation whose figures repeat.
    #[error(transparent)]
    Entropy(#[from] crate::entropy::EntropyError),
    /// The simulation failed (a host returned an error, or time ran out).
    #[error("simulation failed: {0}")]
    Sim(String),
}

impl SimConfig {
    /// Checks the options (min ≤ max, non-zero tick and duration).
    pub fn validate(&self) -> Result<(), HarnessError> {
        if self.latency_ms_min > self.latency_ms_max {
            return Err(HarnessError::InvalidConfig(format!(
                "latency_ms_min {} > latency_ms_max {}",
                self.latency_ms_min, self.latency_ms_max
            )));
        }
        if self.tick_ms == 0 || self.duration_s == 0 {
            return Err(HarnessError::InvalidConfig(
                "tick_ms and duration_s must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Seeds of each subsystem, drawn in this order from the root seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    /// turmoil's RNG (latency draws, host runtimes).
    pub turmoil: u64,
    /// The server's entropy (keys, nonces, salts).
    pub server_entropy: u64,
    /// The fake store's RNG (faults).
    pub fakes3: u64,
    /// The generated mailbox dataset.
    pub dataset: u64,
    /// Client behaviour (choices a scenario draws).
    pub clients: u64,
}

impl Seeds {
    /// Derives every subsystem's seed from the root seed.
    pub fn derive(root: u64) -> Seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(root);
        Seeds {
            turmoil: rng.next_u64(),
            server_entropy: rng.next_u64(),
            fakes3: rng.next_u64(),
            dataset: rng.next_u64(),
            clients: rng.next_u64(),
        }
    }
}

/// The accounts of one simulation.
#[derive(Debug)]
pub struct Accounts {
    /// Everything the harness thread allocates during the run outside any host.
    pub harness: Account,
    /// The fake store host.
    pub fakes3: Account,
    /// The server host (the scenario's figures).
    pub imap: Account,
    /// All client hosts together.
    pub clients: Account,
}

impl Accounts {
    /// Every account of the run: harness, fakes3, imap, clients.
    fn all(&self) -> [&Account; 4] {
        [&self.harness, &self.fakes3, &self.imap, &self.clients]
    }
}

/// Every account's figures after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunFigures {
    /// The server host.
    pub server: Figures,
    /// The fake store host.
    pub fakes3: Figures,
    /// The clients.
    pub clients: Figures,
    /// The harness, outside hosts.
    pub harness: Figures,
    /// Simulated time the run took.
    pub sim_elapsed: Duration,
    /// Allocations made on the simulation's thread during the run that no account of this
    /// simulation saw: 0, or attribution failed (other threads' allocations do not count).
    pub unaccounted_allocs: i64,
}

/// The configuration of an `imapsim` server over `storage` with `users` (name, password): the
/// simulation's and `imapsim serve`'s.
pub fn server_config(
    storage: StorageConfig,
    users: &[(String, String)],
    limits: Limits,
    kdf: KdfParams,
) -> ServerConfig {
    ServerConfig {
        storage,
        users: users
            .iter()
            .map(|(name, password)| UserConfig {
                name: name.clone(),
                password: password.clone(),
            })
            .collect(),
        limits,
        kdf,
        hostname: "imapsim".to_string(),
    }
}

/// A host-level fault, applied by [`Harness::run_controlled`] between two simulation steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostFault {
    /// Crash the host: its runtime and every task it runs are dropped, its sockets closed.
    Crash(String),
    /// Restart the host's software from its closure (a crashed host comes back up).
    Bounce(String),
    /// Drop every message between the two hosts (turmoil partition; TCP does not retransmit).
    Partition(String, String),
    /// Deliver messages between the two hosts again.
    Repair(String, String),
}

/// A fault to apply as soon as the fake store has routed `requests` requests of `op` in total
/// (e.g. "crash the server once its 8th body chunk of this APPEND reached the store").
#[derive(Clone, Debug)]
pub struct Trigger {
    /// The operation counted (fakes3's per-operation request counter).
    pub op: fakes3::Op,
    /// The count at which the fault fires.
    pub requests: u64,
    /// The fault.
    pub fault: HostFault,
}

#[derive(Default)]
struct ControlState {
    queue: VecDeque<HostFault>,
    triggers: Vec<Trigger>,
    applied: Vec<(u64, HostFault)>,
}

/// The clients' handle on host faults (the simulation is single-threaded: a shared cell).
/// Requests are applied after the current step; armed triggers are checked after every step.
#[derive(Clone, Default)]
pub struct Controls(Rc<RefCell<ControlState>>);

impl Controls {
    /// Applies `fault` after the current simulation step.
    pub fn request(&self, fault: HostFault) {
        self.0.borrow_mut().queue.push_back(fault);
    }

    /// Arms `trigger`.
    pub fn arm(&self, trigger: Trigger) {
        self.0.borrow_mut().triggers.push(trigger);
    }

    /// Whether a trigger is still waiting to fire.
    pub fn armed(&self) -> bool {
        !self.0.borrow().triggers.is_empty()
    }

    /// Disarms every trigger that has not fired.
    pub fn disarm(&self) {
        self.0.borrow_mut().triggers.clear();
    }

    /// The faults applied so far, with the simulated time (ms since the run began) of each.
    pub fn applied(&self) -> Vec<(u64, HostFault)> {
        self.0.borrow().applied.clone()
    }

    /// How many faults were applied so far.
    pub fn applied_count(&self) -> usize {
        self.0.borrow().applied.len()
    }

    /// Whether a request or a fired trigger is waiting to be applied.
    fn pending(&self) -> bool {
        let state = self.0.borrow();
        !state.queue.is_empty() || !state.triggers.is_empty()
    }
}

/// An extra server host on the same store (see [`Harness::add_server`]).
struct ExtraServer {
    name: String,
    account: Account,
    connects: Option<Arc<ConnectCounts>>,
}

/// The entropy seed of server host number `host` (0 = `imap`) at its `boot`-th start: the
/// derived seed itself for the first start of `imap` (the figures of every scenario depend on
/// it), a separate ChaCha stream of it otherwise.
pub fn server_entropy_seed(base: u64, host: u32, boot: u32) -> u64 {
    if host == 0 && boot == 0 {
        return base;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(base);
    rng.set_stream((u64::from(host) << 32) | u64::from(boot));
    rng.next_u64()
}

/// A simulation under construction, then run.
pub struct Harness {
    // Field order is drop order: the simulation (and everything its hosts hold) goes first,
    // so that the accounts see their blocks freed before they are given back.
    sim: turmoil::Sim<'static>,
    fake: fakes3::FakeS3,
    hosts: HostAccounts,
    accounts: Accounts,
    extra_servers: Vec<ExtraServer>,
    imap_connects: Option<Arc<ConnectCounts>>,
    server_config: ServerConfig,
    controls: Controls,
    seeds: Seeds,
    config: SimConfig,
}

impl Harness {
    /// Builds the simulation with its `fakes3` and `imap` hosts; add clients, then [`Harness::run`].
    /// Must run on a simulation thread ([`crate::entropy::spawn`]; [`crate::scenarios::Scenario::run`]
    /// does it).
    pub fn new(config: SimConfig) -> Result<Harness, HarnessError> {
        config.validate()?;
        crate::entropy::check_simulation_thread()?;
        let seeds = Seeds::derive(config.seed);
        let accounts = Accounts {
            harness: Account::new("harness")?,
            fakes3: Account::new(FAKES3_HOST)?,
            imap: Account::new(IMAP_HOST)?,
            clients: Account::new("clients")?,
        };
        let hosts = HostAccounts::new();
        hosts.register(FAKES3_HOST, &accounts.fakes3);
        hosts.register(IMAP_HOST, &accounts.imap);

        let mut sim = turmoil::Builder::new()
            .rng_seed(seeds.turmoil)
            .epoch(epoch())
            .tick_duration(Duration::from_millis(config.tick_ms))
            .simulation_duration(Duration::from_secs(config.duration_s))
            .min_message_latency(Duration::from_millis(config.latency_ms_min))
            .max_message_latency(Duration::from_millis(config.latency_ms_max))
            .tcp_capacity(config.tcp_capacity)
            .build();

        let fake_config = fakes3::Config {
            seed: seeds.fakes3,
            date_header: false,
            ..fakes3::Config::default()
        };
        let storage = StorageConfig {
            s3_endpoint: format!("{FAKES3_HOST}:{S3_PORT}"),
            k2v_endpoint: format!("{FAKES3_HOST}:{K2V_PORT}"),
            region: fake_config.region.clone(),
            bucket: fake_config.bucket.clone(),
            key_id: fake_config.key_id.clone(),
            secret: fake_config.secret.clone(),
            max_in_flight: config.storage_max_in_flight,
            max_idle_connections: config.storage_max_idle_connections,
        };
        let fake = fakes3::FakeS3::new(fake_config)?;

        let server_config = server_config(
            storage,
            &config.users,
            config.limits.clone(),
            config.kdf.clone(),
        );

        // Each host's runtime, socket tables and first future are its own, from the start.
        let host_fake = fake.clone();
        {
            let _fakes3 = accounts.fakes3.enter();
            sim.host(FAKES3_HOST, move || fakes3_host(host_fake.clone()));
        }
        let host_config = server_config.clone();
        let entropy_seed = seeds.server_entropy;
        let perturbed = std::env::var_os(PERTURB_VARIABLE).is_some();
        let boots = Cell::new(0u32);
        let imap_connects = config
            .storage_io_vectored
            .then(|| Arc::new(ConnectCounts::default()));
        let connects = imap_connects.clone();
        let imap_account = accounts.imap.enter();
        sim.host(IMAP_HOST, move || {
            let boot = boots.get();
            boots.set(boot.saturating_add(1));
            imap_host(
                host_config.clone(),
                server_entropy_seed(entropy_seed, 0, boot),
                connects.clone(),
                perturbed,
            )
        });
        drop(imap_account);

        Ok(Harness {
            sim,
            fake,
            hosts,
            accounts,
            extra_servers: Vec::new(),
            imap_connects,
            server_config,
            controls: Controls::default(),
            seeds,
            config,
        })
    }

    /// Adds another server host named `name` on the same store, with the same users, its own
    /// allocation account and its own entropy (fault scenarios: two instances serving one user).
    pub fn add_server(&mut self, name: &str) -> Result<&Account, HarnessError> {
        if name == IMAP_HOST
            || name == FAKES3_HOST
            || self.extra_servers.iter().any(|s| s.name == name)
        {
            return Err(HarnessError::InvalidConfig(format!(
                "host name {name} is taken"
            )));
        }
        let account = Account::new(name.to_string())?;
        self.hosts.register(name, &account);
        let host = u32::try_from(self.extra_servers.len() + 1)
            .map_err(|_| HarnessError::InvalidConfig("too many server hosts".into()))?;
        let config = self.server_config.clone();
        let base = self.seeds.server_entropy;
        let boots = Cell::new(0u32);
        let connects = self
            .config
            .storage_io_vectored
            .then(|| Arc::new(ConnectCounts::default()));
        let host_connects = connects.clone();
        let entered = account.enter();
        self.sim.host(name, move || {
            let boot = boots.get();
            boots.set(boot.saturating_add(1));
            imap_host(
                config.clone(),
                server_entropy_seed(base, host, boot),
                host_connects.clone(),
                false,
            )
        });
        drop(entered);
        self.extra_servers.push(ExtraServer {
            name: name.to_string(),
            account,
            connects,
        });
        Ok(&self
            .extra_servers
            .last()
            .expect("pushed just above")
            .account)
    }

    /// The allocation account of server host `name` (`imap` or one added by [`Harness::add_server`]).
    pub fn server_account(&self, name: &str) -> Option<&Account> {
        if name == IMAP_HOST {
            return Some(&self.accounts.imap);
        }
        self.extra_servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.account)
    }

    /// The outbound connection attempts of server host `name`, when
    /// [`SimConfig::storage_io_vectored`] is on.
    pub fn connect_counts(&self, name: &str) -> Option<Arc<ConnectCounts>> {
        if name == IMAP_HOST {
            return self.imap_connects.clone();
        }
        self.extra_servers
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.connects.clone())
    }

    /// The handle clients request host faults through (applied by [`Harness::run_controlled`]).
    pub fn controls(&self) -> Controls {
        self.controls.clone()
    }

    /// The seeds derived from the root seed.
    pub fn seeds(&self) -> Seeds {
        self.seeds
    }

    /// The options.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The accounts (e.g. to reset the server's peak between phases).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The fake store (to inspect its objects, rows and request counts).
    pub fn fake(&self) -> &fakes3::FakeS3 {
        &self.fake
    }

    /// Adds a client host named `name`, charged to the clients' account; the run ends when all
    /// clients have returned.
    pub fn client<F>(&mut self, name: &str, client: F)
    where
        F: Future<Output = turmoil::Result> + 'static,
    {
        self.hosts.register(name, &self.accounts.clients);
        let _clients = self.accounts.clients.enter();
        self.sim.client(name, client);
    }

    /// Adds a host whose allocations are charged to `account` (for tests and extra roles).
    pub fn host<F, Fut>(&mut self, name: &str, account: &Account, host: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        self.hosts.register(name, account);
        let _host = account.enter();
        self.sim.host(name, host);
    }

    /// Adds a host charged to the clients' account that does not hold the run open (e.g. a
    /// sampler that runs until the clients are done).
    pub fn client_host<F, Fut>(&mut self, name: &str, host: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        self.hosts.register(name, &self.accounts.clients);
        let _clients = self.accounts.clients.enter();
        self.sim.host(name, host);
    }

    /// The host-name map, to register further hosts on accounts of the caller's.
    pub fn host_accounts(&self) -> &HostAccounts {
        &self.hosts
    }

    /// Runs the simulation until every client is done, with per-host attribution on.
    pub fn run(&mut self) -> Result<RunFigures, HarnessError> {
        run_measured(&mut self.sim, &self.hosts, &self.accounts)
    }

    /// [`Harness::run`] stepping the simulation itself, so that the faults clients request
    /// through [`Controls`] (and armed triggers) are applied between two steps. Extra servers'
    /// allocations count as accounted.
    pub fn run_controlled(&mut self) -> Result<RunFigures, HarnessError> {
        let accounts = &self.accounts;
        let mut all: Vec<&Account> = accounts.all().to_vec();
        all.extend(self.extra_servers.iter().map(|s| &s.account));
        let (sim, controls, fake, hosts) = (&mut self.sim, &self.controls, &self.fake, &self.hosts);
        measured(accounts, &all, || {
            let dispatch = tracing::Dispatch::new(hosts.subscriber());
            let result = tracing::dispatcher::with_default(&dispatch, || loop {
                match sim.step() {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
                if controls.pending() {
                    apply_controls(sim, controls, fake, hosts);
                }
            });
            (result, sim.elapsed())
        })
    }
}

/// Fires the triggers whose count was reached, then applies every requested fault in order.
fn apply_controls(
    sim: &mut turmoil::Sim<'static>,
    controls: &Controls,
    fake: &fakes3::FakeS3,
    hosts: &HostAccounts,
) {
    let mut state = controls.0.borrow_mut();
    if !state.triggers.is_empty() {
        let requests = fake.stats().requests;
        let (fired, waiting): (Vec<Trigger>, Vec<Trigger>) = std::mem::take(&mut state.triggers)
            .into_iter()
            .partition(|t| requests.get(&t.op).copied().unwrap_or(0) >= t.requests);
        state.triggers = waiting;
        state.queue.extend(fired.into_iter().map(|t| t.fault));
    }
    let now_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
    // A crashed host's teardown and a restarted host's new runtime are charged to the host.
    let on_host = |host: &str| alloc::enter_id(hosts.lookup(host).unwrap_or(0));
    while let Some(fault) = state.queue.pop_front() {
        match &fault {
            HostFault::Crash(host) => {
                if sim.is_host_running(host.as_str()) {
                    let _host = on_host(host);
                    sim.crash(host.as_str());
                }
            }
            HostFault::Bounce(host) => {
                let _host = on_host(host);
                sim.bounce(host.as_str());
            }
            HostFault::Partition(a, b) => sim.partition(a.as_str(), b.as_str()),
            HostFault::Repair(a, b) => sim.repair(a.as_str(), b.as_str()),
        }
        state.applied.push((now_ms, fault));
    }
}

/// Runs `sim` with `hosts` attributed, the harness's own allocations on `accounts.harness`.
fn run_measured(
    sim: &mut turmoil::Sim<'static>,
    hosts: &HostAccounts,
    accounts: &Accounts,
) -> Result<RunFigures, HarnessError> {
    measured(accounts, &accounts.all(), || {
        let result = crate::attribution::run_attributed(sim, hosts);
        (result, sim.elapsed())
    })
}

/// Runs `run` (which gives its result and the simulated time) on `accounts.harness` and reads
/// every account's figures after it; the thread's allocations that none of `all` counted during
/// the run are the unaccounted ones.
fn measured(
    accounts: &Accounts,
    all: &[&Account],
    run: impl FnOnce() -> (turmoil::Result, Duration),
) -> Result<RunFigures, HarnessError> {
    let counted = |all: &[&Account]| all.iter().map(|a| a.figures().allocs).sum::<u64>();
    let counted_before = counted(all);
    let ops_before = alloc::thread_alloc_ops();
    let (result, sim_elapsed) = {
        let _harness = accounts.harness.enter();
        run()
    };
    let ops = alloc::thread_alloc_ops() - ops_before;
    let counted_during = counted(all) - counted_before;
    result.map_err(|e| HarnessError::Sim(e.to_string()))?;
    Ok(RunFigures {
        server: accounts.imap.figures(),
        fakes3: accounts.fakes3.figures(),
        clients: accounts.clients.figures(),
        harness: accounts.harness.figures(),
        sim_elapsed,
        unaccounted_allocs: ops as i64 - counted_during as i64,
    })
}

/// The fake store host: S3 and K2V listeners, one task per connection.
async fn fakes3_host(fake: fakes3::FakeS3) -> turmoil::Result {
    let s3 = TcpListener::bind(("0.0.0.0", S3_PORT)).await?;
    let k2v = TcpListener::bind(("0.0.0.0", K2V_PORT)).await?;
    loop {
        let (api, stream) = tokio::select! {
            biased;
            accepted = s3.accept() => (fakes3::Api::S3, accepted?.0),
            accepted = k2v.accept() => (fakes3::Api::K2v, accepted?.0),
        };
        let fake = fake.clone();
        tokio::task::spawn_local(async move {
            // A connection the server drops mid-request ends with an error; the store is unaffected.
            if let Err(error) = fake.serve_connection(api, stream).await {
                tracing::debug!(%error, "fakes3 connection ended with an error");
            }
        });
    }
}

/// Set in the environment, this variable makes the `imap` host hold one block whose size
/// depends on the process id: a planted nondeterminism for the tests of `imapsim run --check`.
pub const PERTURB_VARIABLE: &str = "IMAPSIM_TEST_PERTURB_ALLOCATION";

/// The server host: IMAP and LMTP listeners, one task per session.
async fn imap_host(
    config: ServerConfig,
    entropy_seed: u64,
    connects: Option<Arc<ConnectCounts>>,
    perturbed: bool,
) -> turmoil::Result {
    let _planted = perturbed.then(|| vec![0u8; 64 + std::process::id() as usize % 4096]);
    let env = Env {
        connector: match connects {
            None => Arc::new(TurmoilConnector),
            Some(counts) => Arc::new(VectoredConnector { counts }),
        },
        clock: Arc::new(SimClock { epoch: epoch() }),
        entropy: Arc::new(SeededEntropy::new(entropy_seed)),
    };
    let server = server::Server::new(config, env);
    let imap = TcpListener::bind(("0.0.0.0", IMAP_PORT)).await?;
    let lmtp = TcpListener::bind(("0.0.0.0", LMTP_PORT)).await?;
    loop {
        let (is_imap, stream, peer): (bool, TcpStream, SocketAddr) = tokio::select! {
            biased;
            accepted = imap.accept() => { let (s, p) = accepted?; (true, s, p) }
            accepted = lmtp.accept() => { let (s, p) = accepted?; (false, s, p) }
        };
        let server = server.clone();
        // Two spawns, not one future with both arms: a task's future is as large as its largest
        // arm, and an idle IMAP session must not carry the size of an LMTP delivery.
        if is_imap {
            tokio::task::spawn_local(server.serve_imap(stream, peer));
        } else {
            tokio::task::spawn_local(async move { server.serve_lmtp(stream, peer).await });
        }
    }
}

#[cfg(test)]
mod tests;
