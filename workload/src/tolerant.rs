//! An IMAP session that tolerates `NO` answers over any byte stream: it retries them with a
//! doubling pause, counts what it tolerated and retried, and takes the tolerated answers out of
//! its unexpected count when it ends (the fault scenarios' client: a refusal under faults is not
//! a wrong answer).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use imap_proto::Status;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{ClientError, ClientStats, Failure, ImapClient, Reply};
use crate::ledger::Ack;
use crate::{ClientOutcome, Outcomes};

/// How many times a command answered `NO` is sent again before the client gives up.
pub const RETRIES_MAX: usize = 40;
/// Pause before the first retry; it doubles up to [`RETRY_PAUSE_MAX`].
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between two retries.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Fault and retry counters of a run, by name (they become report figures).
#[derive(Clone, Default)]
pub struct Counts(Rc<RefCell<BTreeMap<String, u64>>>);

impl Counts {
    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        *self.0.borrow_mut().entry(name.to_string()).or_insert(0) += n;
    }

    /// Sets counter `name`.
    pub fn set(&self, name: &str, n: u64) {
        self.0.borrow_mut().insert(name.to_string(), n);
    }

    /// Counter `name` (0 if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.0.borrow().get(name).copied().unwrap_or(0)
    }

    /// Takes every counter out (the counters start again from none).
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// Where sessions leave their counters: one outcome per connection, in the order they end.
#[derive(Clone, Default)]
pub struct Recorder {
    outcomes: Outcomes,
    next: Rc<Cell<usize>>,
}

impl Recorder {
    /// Records one connection's counters and notes.
    pub fn record(&self, stats: ClientStats, notes: Vec<String>) {
        let key = self.next.get();
        self.next.set(key + 1);
        self.outcomes.borrow_mut().insert(
            key,
            ClientOutcome {
                stats,
                mismatches: 0,
                notes,
            },
        );
    }

    /// The outcomes recorded so far, by the order their connections ended.
    pub fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }
}

/// How a [`Session`] retries: how many times, and the longest pause between two tries.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    /// How many times a command answered NO is sent again. Default [`RETRIES_MAX`].
    pub retries_max: usize,
    /// Longest pause between two retries. Default [`RETRY_PAUSE_MAX`].
    pub retry_pause_max: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            retries_max: RETRIES_MAX,
            retry_pause_max: RETRY_PAUSE_MAX,
        }
    }
}

/// An IMAP session that tolerates `NO`: the answers it tolerated are taken out of the
/// unexpected count when it ends, so that only wrong answers (BAD, unparsable, a broken
/// connection the scenario did not cause) remain.
pub struct Session<S> {
    client: ImapClient<S>,
    patience: Patience,
    tolerated: Vec<String>,
    counts: Counts,
    recorder: Recorder,
    notes: Vec<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Reads the greeting of a connected stream; the session counts into `counts` and records
    /// its outcome into `recorder` when it ends.
    pub async fn connect(
        stream: S,
        patience: Patience,
        counts: Counts,
        recorder: Recorder,
    ) -> Result<Session<S>, ClientError> {
        let (client, _greeting) = ImapClient::connect(stream).await?;
        Ok(Session {
            client,
            patience,
            tolerated: Vec::new(),
            counts,
            recorder,
            notes: Vec::new(),
        })
    }

    /// Logs in, retrying a refused login.
    pub async fn login(&mut self, name: &str, password: &str) -> Result<Reply, ClientError> {
        self.retry(&format!("LOGIN {name} \"{password}\"")).await
    }

    /// The wrapped client.
    pub fn client(&mut self) -> &mut ImapClient<S> {
        &mut self.client
    }

    /// Sends `command` expecting OK; a NO is tolerated (the caller reads the status).
    pub async fn cmd(&mut self, command: &str) -> Result<Reply, ClientError> {
        let reply = self.client.command(command).await;
        self.absorb(command, reply)
    }

    /// [`Session::cmd`] with a literal (APPEND).
    pub async fn cmd_literal(
        &mut self,
        command: &str,
        literal: &[u8],
    ) -> Result<Reply, ClientError> {
        let reply = self
            .client
            .command_with_literal(command, literal, Status::Ok)
            .await;
        self.absorb(command, reply)
    }

    fn absorb(
        &mut self,
        command: &str,
        reply: Result<Reply, ClientError>,
    ) -> Result<Reply, ClientError> {
        let reply = reply?;
        if reply.status == Some(Status::No) {
            self.tolerated.push(command.to_string());
            self.counts.add("no_answers", 1);
        }
        Ok(reply)
    }

    /// Sends `command` until it is answered OK, at most [`Patience::retries_max`] more times;
    /// returns the last reply (NO if the client gave up).
    pub async fn retry(&mut self, command: &str) -> Result<Reply, ClientError> {
        self.retry_with(command, None).await
    }

    /// [`Session::retry`] with a literal.
    pub async fn retry_literal(
        &mut self,
        command: &str,
        literal: &[u8],
    ) -> Result<Reply, ClientError> {
        self.retry_with(command, Some(literal)).await
    }

    async fn retry_with(
        &mut self,
        command: &str,
        literal: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let mut pause = RETRY_PAUSE;
        let mut tries = 0;
        loop {
            let reply = match literal {
                Some(bytes) => self.cmd_literal(command, bytes).await?,
                None => self.cmd(command).await?,
            };
            tries += 1;
            if reply.status != Some(Status::No) || tries > self.patience.retries_max {
                if reply.status == Some(Status::No) {
                    self.counts.add("gave_up", 1);
                    self.notes
                        .push(format!("{command}: still NO after {tries} tries"));
                }
                return Ok(reply);
            }
            self.counts.add("retries", 1);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.patience.retry_pause_max);
        }
    }

    /// Notes that `command` ended the connection because of a fault the scenario caused (a crash,
    /// a deliberate disconnect): not an unexpected answer.
    pub fn tolerate_break(&mut self, command: &str) {
        self.tolerated.push(command.to_string());
        self.counts.add("broken_sessions", 1);
    }

    /// Adds a note to the session's outcome.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Ends the session (without LOGOUT) and records its counters.
    pub fn end(self) {
        let Session {
            client,
            tolerated,
            recorder,
            notes,
            ..
        } = self;
        let mut stats = client.into_stats();
        for command in &tolerated {
            stats.unexpected = stats.unexpected.saturating_sub(1);
            let position = stats.failures.iter().position(|f| match f {
                Failure::Unexpected {
                    command: c, line, ..
                } => c == command && is_no(line),
                Failure::Broken { command: c, .. } => c == command,
                Failure::Unparsable { .. } => false,
            });
            if let Some(i) = position {
                stats.failures.remove(i);
            }
        }
        recorder.record(stats, notes);
    }

    /// Logs out, then ends the session.
    pub async fn logout(mut self) -> Result<(), ClientError> {
        let result = self.cmd("LOGOUT").await.map(|_| ());
        self.end();
        result
    }
}

/// Whether a tagged line's status is NO.
fn is_no(line: &str) -> bool {
    line.split(' ')
        .nth(1)
        .is_some_and(|s| s.eq_ignore_ascii_case("NO"))
}

/// How a session step ended: the session goes on, or its connection is gone.
pub fn ack_of(reply: &Result<Reply, ClientError>) -> Ack {
    match reply {
        Ok(r) if r.status == Some(Status::Ok) => Ack::Ok,
        Ok(_) => Ack::Refused,
        Err(_) => Ack::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_lines_are_recognised() {
        assert!(is_no("A0001 NO [UNAVAILABLE] try again"));
        assert!(!is_no("A0001 OK done"));
        assert!(!is_no("A0001 BAD NO"));
    }
}
