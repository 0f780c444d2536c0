//! Connecting the fault scenarios' clients to the simulated servers: the NO-tolerant
//! [`Session`] and the [`Raw`] connection on turmoil, retried while a restarting server refuses.

use std::time::Duration;

use turmoil::net::TcpStream;

use super::run::Ctx;
use crate::harness::IMAP_PORT;
use workload::client::ClientError;

/// The NO-tolerant session of the fault scenarios, on a turmoil connection.
pub type Session = workload::tolerant::Session<TcpStream>;
/// The raw IMAP connection of the fault scenarios, on a turmoil connection.
pub type Raw = workload::raw::Raw<TcpStream>;

/// How many times a client tries to connect before giving up (a restarting server refuses).
pub const CONNECT_ATTEMPTS_MAX: usize = 100;
/// Pause between two connection attempts.
pub const CONNECT_PAUSE: Duration = Duration::from_millis(100);

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
    Session::connect(
        stream,
        ctx.patience(),
        ctx.counts.clone(),
        ctx.recorder.clone(),
    )
    .await
}

/// Connects to `host` and logs in as user `i` (1-based), retrying a refused login.
pub async fn login(host: &str, ctx: &Ctx, i: usize) -> Result<Session, ClientError> {
    let mut session = open(host, ctx).await?;
    let (name, password) = ctx.user(i);
    session.login(&name, &password).await?;
    Ok(session)
}

/// Connects to `host`, reads the greeting and logs in as user `i` on a [`Raw`] connection.
pub async fn raw_login(host: &str, ctx: &Ctx, i: usize) -> std::io::Result<Raw> {
    let stream = TcpStream::connect((host, IMAP_PORT)).await?;
    let mut raw = Raw::connect(stream).await?;
    let (name, password) = ctx.user(i);
    raw.login(&name, &password).await?;
    Ok(raw)
}
