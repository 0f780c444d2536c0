//! What the server takes from its surroundings: outbound connections, the wall clock and entropy.
//! Production passes tokio TCP, `SystemTime` and the OS RNG; the simulation passes turmoil TCP,
//! simulated time and a seeded RNG, so the same code runs unchanged in both.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream (TCP in production, turmoil TCP in the simulation).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed stream, so the storage client is not generic over the transport.
pub type BoxIo = Box<dyn Io>;

/// A future boxed for use behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens outbound connections, e.g. to the S3 and K2V endpoints.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `addr` ("host:port").
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>>;
}

/// Reads the wall clock: for INTERNALDATE, request signing and log timestamps.
/// Durations and timeouts use `tokio::time`, which the simulation controls already.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// Fills buffers with random bytes: nonces, keys, salts, message ids.
pub trait Entropy: Send + Sync + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Everything the server takes from outside.
#[derive(Clone)]
pub struct Env {
    /// Outbound connections.
    pub connector: Arc<dyn Connector>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Entropy.
    pub entropy: Arc<dyn Entropy>,
}

impl Env {
    /// The production environment: tokio TCP, the system clock and the OS RNG.
    pub fn production() -> Self {
        Env {
            connector: Arc::new(TokioConnector),
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
        }
    }

    /// Random bytes as an array.
    pub fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.entropy.fill(&mut out);
        out
    }
}

/// Outbound connections over the real network.
pub struct TokioConnector;

impl Connector for TokioConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxIo)
        })
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The operating system's RNG.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        use rand_core::RngCore;
        rand_core::OsRng.fill_bytes(buf);
    }
}

/// A seeded RNG (ChaCha20), for the simulation and for tests.
pub struct SeededEntropy(Mutex<rand_chacha::ChaCha20Rng>);

impl SeededEntropy {
    /// An RNG whose whole output is a function of `seed`.
    pub fn new(seed: u64) -> Self {
        use rand_core::SeedableRng;
        SeededEntropy(Mutex::new(rand_chacha::ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        use rand_core::RngCore;
        // A poisoned lock only means another thread panicked mid-fill; the RNG state is still valid.
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(buf);
    }
}
