//! LMTP deliveries under faults, and how each ended.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::TcpStream;

use super::link::back_off;
use super::run::Ctx;
use crate::harness::LMTP_PORT;
use workload::ledger::Ack;
use workload::tolerant::RETRY_PAUSE;

/// How an LMTP delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The server answered this final reply to the data.
    Reply(String),
    /// The connection broke before the final reply.
    Broken(String),
}

impl Delivered {
    /// The ledger's view: 250 acknowledged, any other code refused, no answer unknown.
    pub fn ack(&self) -> Ack {
        match self {
            Delivered::Reply(line) if line.starts_with("250") => Ack::Ok,
            Delivered::Reply(_) => Ack::Refused,
            Delivered::Broken(_) => Ack::Unknown,
        }
    }
}

/// Delivers `email` to `rcpt` over LMTP on `host`; with `cut`, the client goes away once that
/// many bytes of the data are written (a delivery cut off mid-DATA).
pub async fn lmtp_deliver(host: &str, rcpt: &str, email: &[u8], cut: Option<usize>) -> Delivered {
    match tokio::time::timeout(
        LMTP_TRANSACTION_TIMEOUT,
        lmtp_transaction(host, rcpt, email, cut),
    )
    .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => Delivered::Broken(e.to_string()),
        Err(_) => Delivered::Broken("no final reply within 10 minutes".into()),
    }
}

/// How long a delivery may take to its final reply (RFC 5321 4.5.3.2.6: 10 minutes).
pub const LMTP_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one write of the data may block (RFC 5321 4.5.3.2.5, "DATA block": 3 minutes). A
/// writer blocked on a peer that crashed is never woken in turmoil 0.7.2: this ends it.
pub const LMTP_BLOCK_TIMEOUT: Duration = Duration::from_secs(180);

/// Writes `bytes`, failing after [`LMTP_BLOCK_TIMEOUT`].
async fn write_block(
    write: &mut tokio::io::BufWriter<turmoil::net::tcp::OwnedWriteHalf>,
    bytes: &[u8],
) -> std::io::Result<()> {
    match tokio::time::timeout(LMTP_BLOCK_TIMEOUT, write.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn lmtp_transaction(
    host: &str,
    rcpt: &str,
    email: &[u8],
    cut: Option<usize>,
) -> std::io::Result<Delivered> {
    let stream = TcpStream::connect((host, LMTP_PORT)).await?;
    let (read, write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut write = tokio::io::BufWriter::with_capacity(16 * 1024, write);
    async fn reply(
        read: &mut BufReader<turmoil::net::tcp::OwnedReadHalf>,
    ) -> std::io::Result<Option<String>> {
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Some(line.trim_end().to_string()));
            }
        }
    }
    let closed = || Delivered::Broken("connection closed".into());
    let Some(greeting) = reply(&mut read).await? else {
        return Ok(closed());
    };
    if !greeting.starts_with("220") {
        return Ok(Delivered::Reply(greeting));
    }
    for (command, code) in [
        ("LHLO sim\r\n".to_string(), "250"),
        ("MAIL FROM:<sim@example.org>\r\n".to_string(), "250"),
        (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
    ] {
        write_block(&mut write, command.as_bytes()).await?;
        write.flush().await?;
        let Some(line) = reply(&mut read).await? else {
            return Ok(closed());
        };
        if !line.starts_with(code) {
            return Ok(Delivered::Reply(line));
        }
    }
    let mut written = 0usize;
    for line in email.split_inclusive(|&b| b == b'\n') {
        if cut.is_some_and(|c| written >= c) {
            // A client that goes away in the middle of DATA.
            return Ok(Delivered::Broken(format!("cut after {written} bytes")));
        }
        if line.first() == Some(&b'.') {
            write_block(&mut write, b".").await?;
        }
        write_block(&mut write, line).await?;
        written += line.len();
    }
    if !email.ends_with(b"\r\n") {
        write_block(&mut write, b"\r\n").await?;
    }
    write_block(&mut write, b".\r\n").await?;
    match tokio::time::timeout(LMTP_BLOCK_TIMEOUT, write.flush()).await {
        Ok(result) => result?,
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
    }
    let result = match reply(&mut read).await? {
        Some(line) => Delivered::Reply(line),
        None => closed(),
    };
    if matches!(result, Delivered::Reply(_)) {
        let _ = write.write_all(b"QUIT\r\n").await;
        let _ = write.flush().await;
        let _ = reply(&mut read).await;
    }
    Ok(result)
}

/// Delivers `email` to user `i` until a 250 (a 4xx is retried after a pause, as an MTA would);
/// records every attempt in the ledger as a message of INBOX.
pub async fn deliver_until_done(
    ctx: &Ctx,
    host: &str,
    i: usize,
    email: &[u8],
    what: &str,
) -> Delivered {
    let rcpt = ctx.user(i).0;
    let mut pause = RETRY_PAUSE;
    let mut tries = 0;
    loop {
        let outcome = lmtp_deliver(host, &rcpt, email, None).await;
        tries += 1;
        ctx.ledger
            .borrow_mut()
            .add("INBOX", email, &[], outcome.ack(), None, what);
        let temporary = match &outcome {
            Delivered::Reply(line) => line.starts_with('4'),
            Delivered::Broken(_) => true,
        };
        if !temporary || tries > ctx.retries_max {
            return outcome;
        }
        back_off(&mut pause, ctx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_replies_map_to_acks() {
        assert_eq!(Delivered::Reply("250 2.0.0 ok".into()).ack(), Ack::Ok);
        assert_eq!(
            Delivered::Reply("451 4.3.0 later".into()).ack(),
            Ack::Refused
        );
        assert_eq!(Delivered::Broken("eof".into()).ack(), Ack::Unknown);
    }
}
