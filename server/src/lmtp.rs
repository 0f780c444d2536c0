//! LMTP (RFC 2033) delivery into the INBOX of local users, the way mail arrives in production. The
//! recipient's password is not known here, so the body is sealed under a fresh per-message key and
//! the message's record (with that key) is sealed to the user's public delivery key; the user's
//! next session imports it into INBOX. DATA streams to storage chunk by chunk through the MIME
//! scanner; a reply of 250 means the delivery row is written, so an acknowledged delivery survives.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::env::Io;
use crate::imap::input::Input;
use crate::imap::output::Output;
use crate::mail::body::BodyWriter;
use crate::mail::{layout, Delivery, MailError, MessageRecord};
use crate::Server;

/// Recipients accepted per transaction.
const RECIPIENTS_MAX: usize = 100;
/// Longest command line.
const LINE_MAX: usize = 4096;

struct Recipient {
    login: String,
    user: String,
    public: [u8; 32],
}

/// Serves one LMTP connection to its end.
pub async fn serve(server: Server, io: impl Io, peer: SocketAddr) {
    let _ = peer;
    let (reader, writer) = tokio::io::split(io);
    let limits = &server.inner().config.limits;
    let mut input = Input::new(reader, LINE_MAX, limits.literal_bytes_max);
    let mut out = Output::new(writer);
    // I/O errors mean the client is gone.
    let _ = session(&server, &mut input, &mut out).await;
}

async fn reply<W: AsyncWrite + Unpin>(out: &mut Output<W>, text: &str) -> std::io::Result<()> {
    out.line(text.as_bytes());
    out.line(b"\r\n");
    out.flush().await
}

/// The address inside `<...>` after a `FROM:`/`TO:` keyword.
fn path(arg: &str) -> Option<&str> {
    let start = arg.find('<')?;
    let end = arg[start..].find('>')? + start;
    Some(&arg[start + 1..end])
}

async fn session<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    server: &Server,
    input: &mut Input<R>,
    out: &mut Output<W>,
) -> std::io::Result<()> {
    let hostname = server.inner().config.hostname.clone();
    reply(out, &format!("220 {hostname} LMTP ready")).await?;
    let mut mail_from: Option<String> = None;
    let mut recipients: Vec<Recipient> = Vec::new();
    loop {
        input.release();
        let line = match input.line(LINE_MAX).await? {
            None => return Ok(()),
            Some(Err(_)) => {
                reply(out, "500 5.5.2 line too long").await?;
                continue;
            }
            Some(Ok(line)) => line,
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        match verb.to_ascii_uppercase().as_str() {
            "LHLO" => {
                let size = server.inner().config.limits.literal_bytes_max;
                reply(out, &format!("250-{hostname}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE {size}")).await?
            }
            "MAIL" => match path(arg) {
                Some(from) if mail_from.is_none() => {
                    mail_from = Some(from.to_string());
                    reply(out, "250 2.1.0 sender OK").await?
                }
                Some(_) => reply(out, "503 5.5.1 nested MAIL command").await?,
                None => reply(out, "501 5.5.4 syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => {
                let Some(to) = path(arg) else {
                    reply(out, "501 5.5.4 syntax: RCPT TO:<address>").await?;
                    continue;
                };
                if mail_from.is_none() {
                    reply(out, "503 5.5.1 MAIL first").await?;
                    continue;
                }
                if recipients.len() >= RECIPIENTS_MAX {
                    reply(out, "452 4.5.3 too many recipients").await?;
                    continue;
                }
                // A recipient is a login name, or an address whose local part is one.
                let local = to.split('@').next().unwrap_or(to);
                let mut found = crate::auth::delivery_key(server, to)
                    .await
                    .map(|k| k.map(|k| (to, k)));
                if matches!(found, Ok(None)) && local != to {
                    found = crate::auth::delivery_key(server, local)
                        .await
                        .map(|k| k.map(|k| (local, k)));
                }
                match found {
                    Ok(Some((login, public))) => {
                        recipients.push(Recipient {
                            user: layout::user_id(login),
                            login: login.to_string(),
                            public,
                        });
                        reply(out, "250 2.1.5 recipient OK").await?
                    }
                    Ok(None) => reply(out, "550 5.1.1 no such user").await?,
                    Err(e) => {
                        tracing::warn!(error = %e, "recipient lookup failed");
                        reply(out, "451 4.3.0 temporary failure, try again").await?
                    }
                }
            }
            "DATA" => {
                if recipients.is_empty() {
                    reply(out, "503 5.5.1 no valid recipients").await?;
                    continue;
                }
                reply(out, "354 go ahead, end with <CRLF>.<CRLF>").await?;
                if !data(server, input, out, &recipients).await? {
                    return Ok(());
                }
                mail_from = None;
                recipients.clear();
            }
            "RSET" => {
                mail_from = None;
                recipients.clear();
                reply(out, "250 2.0.0 OK").await?
            }
            "NOOP" => reply(out, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(out, &format!("221 2.0.0 {hostname} closing")).await?;
                return out.close().await;
            }
            _ => reply(out, "500 5.5.1 command not recognized").await?,
        }
    }
}

/// Removes SMTP dot-stuffing from a stream and finds the terminating `CRLF . CRLF`.
#[derive(Default)]
struct Unstuff {
    state: State,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    LineStart,
    Middle,
    Dot,
    DotCr,
    Done,
}

impl Unstuff {
    /// Appends the message bytes of `input` to `out`; returns how many input bytes were used
    /// (fewer than all once the end marker is found).
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        for (i, &b) in input.iter().enumerate() {
            self.state = match (self.state, b) {
                (State::Done, _) => return i,
                (State::LineStart, b'.') => State::Dot,
                (State::Dot, b'\r') => State::DotCr,
                (State::Dot, b) => {
                    out.push(b);
                    if b == b'\n' {
                        State::LineStart
                    } else {
                        State::Middle
                    }
                }
                (State::DotCr, b'\n') => State::Done,
                (State::DotCr, b) => {
                    out.push(b'\r');
                    out.push(b);
                    if b == b'\n' {
                        State::LineStart
                    } else {
                        State::Middle
                    }
                }
                (_, b'\n') => {
                    out.push(b);
                    State::LineStart
                }
                (_, b) => {
                    out.push(b);
                    State::Middle
                }
            };
        }
        input.len()
    }

    fn done(&self) -> bool {
        self.state == State::Done
    }
}

/// Reads DATA and delivers it; `Ok(false)` if the client went away mid-message.
async fn data<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    server: &Server,
    input: &mut Input<R>,
    out: &mut Output<W>,
    recipients: &[Recipient],
) -> std::io::Result<bool> {
    let inner = server.inner();
    let chunk_bytes = inner.config.limits.chunk_bytes;
    let size_max = inner.config.limits.literal_bytes_max;
    let mut writers: Vec<(BodyWriter, Option<MailError>)> = recipients
        .iter()
        .map(|r| {
            let message: [u8; 16] = inner.env.random();
            (
                BodyWriter::new(
                    inner.store.clone(),
                    inner.env.clone(),
                    r.user.clone(),
                    message,
                    chunk_bytes,
                ),
                None,
            )
        })
        .collect();
    let mut scanner = crate::mime::Scanner::new();
    let mut unstuff = Unstuff::default();
    let mut raw = Vec::new();
    let mut plain = Vec::new();
    let mut size: u64 = 0;
    while !unstuff.done() {
        raw.clear();
        if input.read_literal(&mut raw, chunk_bytes).await? == 0 {
            return Ok(false);
        }
        plain.clear();
        let used = unstuff.feed(&raw, &mut plain);
        if used < raw.len() {
            // Pipelined commands after the end marker: give them back to the reader.
            input.unread(&raw[used..]);
        }
        size += plain.len() as u64;
        if size > size_max {
            continue; // keep reading to the end marker; refused below
        }
        scanner.feed(&plain);
        for (writer, failure) in writers.iter_mut() {
            if failure.is_none() {
                if let Err(e) = writer.write(&plain).await {
                    *failure = Some(e);
                }
            }
        }
    }
    drop((raw, plain));
    if size > size_max {
        for r in recipients {
            reply(out, &format!("552 5.3.4 message too big for <{}>", r.login)).await?;
        }
        return Ok(true);
    }
    let meta = scanner.finish();
    let internal_date = inner
        .env
        .clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for ((writer, failure), r) in writers.into_iter().zip(recipients) {
        let result: Result<(), MailError> = async {
            if let Some(e) = failure {
                return Err(e);
            }
            let message = *writer.message();
            let body = writer.finish().await?;
            let delivery = Delivery {
                message,
                record: MessageRecord {
                    body,
                    internal_date,
                    meta: meta.clone(),
                },
            };
            let plain = postcard::to_allocvec(&delivery).expect("serialising to a Vec cannot fail");
            let sealed = crate::crypto::seal_to(&inner.env, &r.public, &plain);
            let pk = layout::deliveries_partition(&r.user);
            // Checked on failure: a 451 for a delivery that was stored would make the MTA
            // deliver it twice.
            crate::mail::insert_checked(
                &inner.store,
                &pk,
                &layout::hex_id(&message),
                None,
                Bytes::from(sealed),
            )
            .await?;
            // Wake idling sessions; best effort, the delivery is stored whatever happens.
            let key = layout::deliveries_watch_key(&r.user);
            if let Err(e) = crate::watch::bump(&inner.store, &inner.env, &key).await {
                tracing::debug!(error = %e, "delivery watch bump failed");
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => reply(out, &format!("250 2.0.0 <{}> delivered", r.login)).await?,
            Err(e) => {
                tracing::warn!(error = %e, "delivery failed");
                reply(
                    out,
                    &format!(
                        "451 4.3.0 <{}> temporary storage failure, try again",
                        r.login
                    ),
                )
                .await?
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff_all(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut u = Unstuff::default();
        let mut out = Vec::new();
        for c in chunks {
            u.feed(c, &mut out);
        }
        (out, u.done())
    }

    #[test]
    fn dot_stuffing_is_removed_and_the_end_found_across_chunks() {
        let (out, done) = unstuff_all(&[b"a\r\n..b\r\n", b".c\r\n\r", b"\n.", b"\r\nNOOP"]);
        assert_eq!(out, b"a\r\n.b\r\nc\r\n\r\n");
        assert!(done);
        let (_, done) = unstuff_all(&[b"a\r\n.b\r\n"]);
        assert!(!done);
    }

    #[test]
    fn paths_are_read_from_angle_brackets() {
        assert_eq!(path("FROM:<a@b.c> SIZE=10"), Some("a@b.c"));
        assert_eq!(path("TO:<>"), Some(""));
        assert_eq!(path("TO:x"), None);
    }
}
