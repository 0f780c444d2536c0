//! Opening sessions: connecting through the driver, reading the greeting, logging in (again
//! later when the server is busy deriving keys), and the strings commands are made of.

use std::time::Duration;

use imap_proto::Status;

use crate::client::{ClientError, ImapClient, Reply};
use crate::dataset::Dataset;
use crate::driver::Driver;
use crate::lmtp::{LmtpClient, LmtpError};
use crate::outcome::ClientOutcome;

/// Logins a client tries when the server is busy deriving keys (10,000 users logging in at once
/// queue for a while).
const LOGIN_ATTEMPTS: u32 = 200;
/// Wait before the next login attempt, times the attempt number (at most 10).
const LOGIN_RETRY_DELAY: Duration = Duration::from_millis(200);

/// An IMAP session over the driver's connections.
pub type Client<D> = ImapClient<<D as Driver>::Stream>;

/// Quotes an IMAP string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `s` as an IMAP astring: as it is when it is an atom, quoted otherwise.
pub fn astring(s: &str) -> String {
    let atom = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if atom {
        s.to_string()
    } else {
        quote(s)
    }
}

/// Connects and reads the greeting; failures are noted in `outcome` and give `None`.
pub async fn connect<D: Driver>(driver: &D, outcome: &mut ClientOutcome) -> Option<Client<D>> {
    let stream = match driver.dial_imap().await {
        Ok(stream) => stream,
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome.notes.push(format!("connect failed: {e}"));
            return None;
        }
    };
    match ImapClient::connect(stream).await {
        Ok((client, _)) => Some(client),
        Err(e) => {
            outcome.stats.unexpected += 1;
            outcome.notes.push(format!("no greeting: {e}"));
            None
        }
    }
}

/// Connects and logs in; failures are noted in `outcome` (the session's counters with them) and
/// give `None`. A server at its key-derivation bound answers NO [UNAVAILABLE]: a real client tries
/// again later.
pub async fn login<D: Driver>(
    driver: &D,
    user: &str,
    password: &str,
    outcome: &mut ClientOutcome,
) -> Option<Client<D>> {
    let mut client = connect(driver, outcome).await?;
    let command = format!("LOGIN {} {}", astring(user), quote(password));
    for attempt in 1.. {
        match client.command_ok_or_no(&command).await {
            Ok(reply) if reply.is_ok() => return Some(client),
            Ok(reply) if attempt < LOGIN_ATTEMPTS && is_unavailable(&reply) => {
                tokio::time::sleep(LOGIN_RETRY_DELAY * attempt.min(10)).await;
            }
            Ok(_) => {
                outcome.notes.push(format!("LOGIN {user} refused"));
                outcome.stats = client.into_stats();
                outcome.stats.unexpected += 1;
                return None;
            }
            Err(e) => {
                outcome.notes.push(format!("LOGIN {user}: {e}"));
                outcome.stats = client.into_stats();
                return None;
            }
        }
    }
    None
}

/// Whether the tagged reply says `[UNAVAILABLE]` (RFC 5530): try again later.
fn is_unavailable(reply: &Reply) -> bool {
    reply
        .responses
        .last()
        .is_some_and(|r| r.windows(13).any(|w| w == b"[UNAVAILABLE]"))
}

/// Connects to the driver's LMTP port and says LHLO.
pub async fn lmtp<D: Driver>(driver: &D) -> Result<LmtpClient<D::Stream>, LmtpError> {
    let Some(dial) = driver.dial_lmtp() else {
        return Err(LmtpError::NoServer);
    };
    LmtpClient::connect(dial.await?).await
}

/// Empties `mailbox` (creating it when LIST does not show it) unless the store is fresh: a real
/// server keeps what the last run left.
pub async fn prepare_mailbox<D: Driver>(
    driver: &D,
    client: &mut Client<D>,
    mailbox: &str,
) -> Result<(), ClientError> {
    if driver.store_is_fresh() {
        return Ok(());
    }
    ensure_mailbox(client, mailbox).await?;
    let select = client
        .command(&format!("SELECT {}", quote(mailbox)))
        .await?;
    if crate::responses::exists(&select).unwrap_or(0) > 0 {
        client
            .command("STORE 1:* +FLAGS.SILENT (\\Deleted)")
            .await?;
        client.command("EXPUNGE").await?;
    }
    client.command("CLOSE").await?;
    Ok(())
}

/// Creates `mailbox` unless LIST shows it (INBOX always exists).
pub async fn ensure_mailbox<S>(client: &mut ImapClient<S>, mailbox: &str) -> Result<(), ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return Ok(());
    }
    let list = client
        .command(&format!("LIST \"\" {}", quote(mailbox)))
        .await?;
    let listed = crate::responses::count(&list, |r| {
        matches!(
            r,
            imap_proto::Response::MailboxData(imap_proto::MailboxDatum::List { .. })
        )
    });
    if listed == 0 {
        client
            .command(&format!("CREATE {}", quote(mailbox)))
            .await?;
    }
    Ok(())
}

/// APPENDs emails `keys` of `dataset` to INBOX.
pub async fn append_emails<D: Driver>(
    driver: &D,
    client: &mut Client<D>,
    dataset: Dataset,
    sizes: &[u64],
    keys: impl Iterator<Item = usize>,
) -> Result<(), ClientError> {
    let seed = driver.dataset_seed();
    for k in keys {
        let email = dataset.email(seed, sizes, k);
        client
            .command_with_literal("APPEND INBOX", &email, Status::Ok)
            .await?;
    }
    Ok(())
}

/// SELECTs INBOX and checks, as `what`, that it holds `messages` messages.
pub async fn select_inbox_holding<S>(
    client: &mut ImapClient<S>,
    outcome: &mut ClientOutcome,
    what: &str,
    messages: usize,
) -> Result<(), ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let select = client.command("SELECT INBOX").await?;
    outcome.expect_eq(
        what,
        crate::responses::exists(&select),
        Some(messages as u32),
    );
    Ok(())
}
