//! The simulated world as the server sees it: turmoil TCP connectors (one counting its
//! attempts and taking vectored writes) and the simulated wall clock.

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use server::env::{BoxFuture, BoxIo, Clock, Connector};
use turmoil::net::TcpStream;

/// Opens turmoil TCP connections (the server's outbound connections in the simulation).
pub struct TurmoilConnector;

/// A server host's outbound connection attempts (see [`super::SimConfig::storage_io_vectored`]).
/// turmoil 0.7.2 keeps the socket of a connection attempt that fails (its SYN dropped by a
/// partition) or is given up (a timeout) in the host's socket table for the rest of the run, on
/// the host's account: `started - connected` counts those.
#[derive(Debug, Default)]
pub struct ConnectCounts {
    started: std::sync::atomic::AtomicU64,
    connected: std::sync::atomic::AtomicU64,
}

impl ConnectCounts {
    /// Connection attempts made.
    pub fn started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connection attempts that succeeded.
    pub fn connected(&self) -> u64 {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Attempts that failed or were given up: sockets turmoil never frees.
    pub fn abandoned(&self) -> u64 {
        self.started().saturating_sub(self.connected())
    }
}

/// Opens turmoil TCP connections that report vectored writes, as tokio's `TcpStream` does, and
/// counts the attempts.
pub struct VectoredConnector {
    /// Where the attempts are counted.
    pub(super) counts: Arc<ConnectCounts>,
}

impl Connector for VectoredConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        Box::pin(async move {
            use std::sync::atomic::Ordering::Relaxed;
            self.counts.started.fetch_add(1, Relaxed);
            let stream = TcpStream::connect(addr).await?;
            self.counts.connected.fetch_add(1, Relaxed);
            Ok(Box::new(Vectored(stream)) as BoxIo)
        })
    }
}

/// A turmoil stream whose writer says it takes vectored writes (it writes the first non-empty
/// buffer of each, which a writer may).
struct Vectored(TcpStream);

impl tokio::io::AsyncRead for Vectored {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Vectored {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        std::pin::Pin::new(&mut self.0).poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connector for TurmoilConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as BoxIo)
        })
    }
}

/// Simulated wall clock: the epoch plus simulated time.
pub struct SimClock {
    /// The simulation's epoch: simulated time 0.
    pub(super) epoch: SystemTime,
}

impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        // Outside a host's tick there is no simulated "now": the epoch is the only honest answer.
        match turmoil::since_epoch() {
            Some(since) => UNIX_EPOCH + since,
            None => self.epoch,
        }
    }
}
