//! The loopback fixture: an in-process fakes3 and server instances on ports the system picks,
//! with the users, limits and clock a test gives, entropy from a seed and cheap key derivation
//! (tests log in often).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use server::config::{KdfParams, Limits, ServerConfig, UserConfig};
use server::env::{Clock, Env, SeededEntropy};
use server::listener::Listeners;
use server::storage::StorageConfig;
use server::Server;

/// Key derivation cheap enough for tests that log in hundreds of times.
pub fn cheap_kdf() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

/// What a test server is made of. Defaults: no users, the default limits, [`cheap_kdf`], the
/// system clock, entropy seeded with 1, hostname "test".
#[derive(Clone)]
pub struct Setup {
    users: Vec<UserConfig>,
    limits: Limits,
    kdf: KdfParams,
    clock: Option<Arc<dyn Clock>>,
    seed: u64,
    hostname: String,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            users: Vec::new(),
            limits: Limits::default(),
            kdf: cheap_kdf(),
            clock: None,
            seed: 1,
            hostname: "test".into(),
        }
    }
}

/// A running fakes3 and a server on it.
pub struct Started {
    /// IMAP address.
    pub imap: SocketAddr,
    /// LMTP address.
    pub lmtp: SocketAddr,
    /// The store, to inspect what was written or to start more instances on.
    pub fake: fakes3::FakeS3,
}

impl Setup {
    /// The defaults.
    pub fn new() -> Setup {
        Setup::default()
    }

    /// Adds a user.
    pub fn user(mut self, name: &str, password: &str) -> Setup {
        self.users.push(UserConfig {
            name: name.into(),
            password: password.into(),
        });
        self
    }

    /// Adds users as (name, password).
    pub fn users(self, users: &[(&str, &str)]) -> Setup {
        users
            .iter()
            .fold(self, |setup, (name, password)| setup.user(name, password))
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> Setup {
        self.limits = limits;
        self
    }

    /// The key derivation parameters.
    pub fn kdf(mut self, kdf: KdfParams) -> Setup {
        self.kdf = kdf;
        self
    }

    /// The clock instead of the system's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Setup {
        self.clock = Some(clock);
        self
    }

    /// The entropy seed (instances on one store need seeds of their own: their node ids).
    pub fn seed(mut self, seed: u64) -> Setup {
        self.seed = seed;
        self
    }

    /// The hostname the server greets with.
    pub fn hostname(mut self, hostname: &str) -> Setup {
        self.hostname = hostname.into();
        self
    }

    /// The server's configuration over a fakes3 (its default credentials) at `s3` and `k2v`.
    pub fn config(&self, s3: &str, k2v: &str) -> ServerConfig {
        let store = fakes3::Config::default();
        ServerConfig {
            storage: StorageConfig {
                s3_endpoint: s3.into(),
                k2v_endpoint: k2v.into(),
                region: store.region,
                bucket: store.bucket,
                key_id: store.key_id,
                secret: store.secret,
                max_in_flight: 8,
                max_idle_connections: 4,
            },
            users: self.users.clone(),
            limits: self.limits.clone(),
            kdf: self.kdf.clone(),
            hostname: self.hostname.clone(),
        }
    }

    /// The production environment with the seeded entropy and the clock, if one was given.
    pub fn env(&self) -> Env {
        let mut env = Env::production();
        env.entropy = Arc::new(SeededEntropy::new(self.seed));
        if let Some(clock) = &self.clock {
            env.clock = clock.clone();
        }
        env
    }

    /// A server instance on `fake`'s store, not listening (as an administrator's tool runs):
    /// `fake` is served on fresh loopback ports for it.
    pub async fn server_on(&self, fake: &fakes3::FakeS3) -> Server {
        let (s3, k2v) = fake
            .serve_loopback("127.0.0.1:0", "127.0.0.1:0")
            .await
            .expect("loopback ports are free to bind");
        Server::new(self.config(&s3.to_string(), &k2v.to_string()), self.env())
    }

    /// A server instance on `fake`'s store, listening on fresh loopback ports until the test's
    /// runtime stops: its IMAP and LMTP addresses.
    pub async fn serve_on(&self, fake: &fakes3::FakeS3) -> (SocketAddr, SocketAddr) {
        let server = self.server_on(fake).await;
        let listeners = Listeners::bind_loopback()
            .await
            .expect("loopback ports are free to bind");
        let addrs = listeners
            .local_addrs()
            .expect("bound listeners have addresses");
        tokio::spawn(listeners.serve(server, std::future::pending()));
        addrs
    }

    /// Starts a fresh fakes3 and a server instance on it.
    pub async fn start(&self) -> Started {
        let fake =
            fakes3::FakeS3::new(fakes3::Config::default()).expect("default fakes3 config is valid");
        let (imap, lmtp) = self.serve_on(&fake).await;
        Started { imap, lmtp, fake }
    }
}

/// A clock the test moves by hand, in milliseconds since the Unix epoch.
pub struct TestClock(pub AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

impl TestClock {
    /// A clock at `ms` milliseconds since the Unix epoch.
    pub fn at(ms: u64) -> TestClock {
        TestClock(AtomicU64::new(ms))
    }

    /// Moves the clock `ms` milliseconds on.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// How many checkpoint objects the store holds.
pub fn checkpoints(fake: &fakes3::FakeS3) -> usize {
    fake.objects()
        .iter()
        .filter(|(k, _)| k.contains("/ckpt/"))
        .count()
}
