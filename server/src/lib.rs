//! imapsim's IMAP + LMTP server: mailboxes are encrypted event logs over S3 + K2V (Garage's APIs).
//! It knows nothing of simulation: I/O, clock and entropy come in through [`env::Env`].

pub mod auth;
pub mod config;
pub mod crypto;
pub mod env;
pub mod imap;
pub mod listener;
pub mod lmtp;
pub mod mail;
pub mod mime;
pub mod storage;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use config::ServerConfig;
use env::{Env, Io};
use mail::LogClock;
use storage::Store;

/// A server instance: shared by all its connections.
#[derive(Clone)]
pub struct Server(Arc<Inner>);

/// What every session of a server shares.
pub struct Inner {
    /// Configuration.
    pub config: ServerConfig,
    /// I/O, clock and entropy.
    pub env: Env,
    /// The storage client.
    pub store: Store,
    /// Bounds concurrent key derivations.
    pub kdf_slots: Semaphore,
    /// Logins holding or waiting for a KDF slot.
    pub kdf_waiting: std::sync::atomic::AtomicUsize,
    /// Log sort keys of this instance.
    pub log_clock: Arc<LogClock>,
    /// One watcher per mailbox with idling sessions.
    pub watchers: Arc<watch::Watchers>,
    /// Failed logins per user and address.
    pub login_limiter: auth::RateLimiter,
}

impl Server {
    /// A server on `config`'s store, in `env`.
    pub fn new(config: ServerConfig, env: Env) -> Server {
        let store = Store::new(config.storage.clone(), env.clone());
        let kdf_slots = Semaphore::new(config.limits.kdf_concurrency.max(1));
        let log_clock = Arc::new(LogClock::new(&env));
        Server(Arc::new(Inner {
            config,
            env,
            store,
            kdf_slots,
            kdf_waiting: Default::default(),
            log_clock,
            watchers: Arc::default(),
            login_limiter: auth::RateLimiter::default(),
        }))
    }

    /// Shared state.
    pub fn inner(&self) -> &Inner {
        &self.0
    }

    /// Serves one IMAP connection to its end.
    pub fn serve_imap(
        &self,
        io: impl Io,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        imap::serve(self.clone(), io, peer)
    }

    /// Serves one LMTP connection to its end.
    pub async fn serve_lmtp(&self, io: impl Io, peer: SocketAddr) {
        lmtp::serve(self.clone(), io, peer).await
    }
}
