//! The serving process's listeners: IMAP and LMTP on TCP, each accepted connection served on its
//! own task until a shutdown future completes. `imapsim serve` and the loopback test kit both
//! listen through here, so the tests accept connections the way the serving binary does.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use crate::Server;

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP (RFC 3501).
    Imap,
    /// LMTP (RFC 2033).
    Lmtp,
}

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: String,
    /// Why it could not be bound.
    #[source]
    pub source: io::Error,
}

/// The IMAP and LMTP listeners of one server.
pub struct Listeners {
    /// IMAP connections.
    pub imap: TcpListener,
    /// LMTP connections.
    pub lmtp: TcpListener,
}

impl Listeners {
    /// Binds IMAP on `imap` then LMTP on `lmtp` (`host:port`; port 0 lets the system pick).
    pub async fn bind(imap: &str, lmtp: &str) -> Result<Listeners, BindError> {
        Ok(Listeners {
            imap: bind(imap).await?,
            lmtp: bind(lmtp).await?,
        })
    }

    /// Binds both on loopback ports the system picks.
    pub async fn bind_loopback() -> Result<Listeners, BindError> {
        Listeners::bind("127.0.0.1:0", "127.0.0.1:0").await
    }

    /// The bound IMAP and LMTP addresses (the ports the system picked for port 0).
    pub fn local_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.imap.local_addr()?, self.lmtp.local_addr()?))
    }

    /// Serves every connection with `server`'s sessions until `shutdown` completes; sessions
    /// still running then go on until their runtime stops.
    pub async fn serve(self, server: Server, shutdown: impl Future<Output = ()>) {
        self.serve_with(shutdown, |protocol, stream, peer| {
            spawn_session(&server, protocol, stream, peer)
        })
        .await
    }

    /// Accepts connections until `shutdown` completes, handing each to `spawn` (which starts its
    /// session, such as [`spawn_session`], on a task of its own). A failed accept is reported on
    /// stderr and the listener goes on: it is the one connection's trouble.
    pub async fn serve_with(
        self,
        shutdown: impl Future<Output = ()>,
        mut spawn: impl FnMut(Protocol, TcpStream, SocketAddr),
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = self.imap.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Responses go out as they are flushed: IMAP clients wait on each one.
                        let _ = stream.set_nodelay(true);
                        spawn(Protocol::Imap, stream, peer);
                    }
                    Err(e) => eprintln!("imapsim: IMAP accept failed: {e}"),
                },
                accepted = self.lmtp.accept() => match accepted {
                    Ok((stream, peer)) => spawn(Protocol::Lmtp, stream, peer),
                    Err(e) => eprintln!("imapsim: LMTP accept failed: {e}"),
                },
            }
        }
    }
}

/// Starts `server`'s session for one accepted connection on a task of its own.
pub fn spawn_session(server: &Server, protocol: Protocol, stream: TcpStream, peer: SocketAddr) {
    match protocol {
        Protocol::Imap => {
            tokio::spawn(server.serve_imap(stream, peer));
        }
        Protocol::Lmtp => {
            let server = server.clone();
            tokio::spawn(async move { server.serve_lmtp(stream, peer).await });
        }
    }
}

async fn bind(addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        addr: addr.to_string(),
        source,
    })
}

/// Keeps large blocks out of the allocator's heap for the rest of the process: glibc raises its
/// mmap threshold each time a block it mapped is freed, so after the first login argon2's 19 MiB
/// blocks come from the heap and stay resident, hundreds of times what the sessions hold (the
/// reference server's 2 MB per idle user). A fixed threshold turns that off: blocks of 1 MiB or
/// more are mapped and given back when freed. The simulation counts them all the same. For the
/// serving process, called before the server allocates much.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before the server allocates much.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
    }
}

/// The size from which a block is mapped on its own ([`return_large_blocks_to_the_system`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const LARGE_BLOCK_BYTES: libc::c_int = 1 << 20;
