//! A user's session that reconnects when the server closes it on purpose ([`Link`]), and the
//! steps a scenario runs over it until they are acknowledged, every attempt in the ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use imap_proto::Status;

use super::connect::{login, Session};
use super::run::Ctx;
use server::imap::output::uid_set;
use workload::client::{ClientError, Reply};
use workload::ledger::{Ack, Digest, FlagOp, View};
use workload::tolerant::{ack_of, RETRY_PAUSE};

/// Backs off before the next retry.
pub(crate) async fn back_off(pause: &mut Duration, ctx: &Ctx) {
    ctx.counts.add("retries", 1);
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(ctx.retry_pause_max);
}

/// A user's IMAP session that comes back when the server closes it on purpose: the server
/// closes a connection whose FETCH body literal it can no longer complete (its length is
/// promised), and the client then reconnects, logs in, selects again and retries.
pub struct Link {
    ctx: Ctx,
    host: String,
    user: usize,
    session: Option<Session>,
    view: Option<View>,
    breaks_expected: bool,
}

impl Link {
    /// Connects to `host` and logs in as user `user` (1-based).
    pub async fn open(ctx: &Ctx, host: &str, user: usize) -> Result<Link, ClientError> {
        let session = login(host, ctx, user).await?;
        Ok(Link {
            ctx: ctx.clone(),
            host: host.to_string(),
            user,
            session: Some(session),
            view: None,
            breaks_expected: false,
        })
    }

    /// Whether a broken connection is a fault the scenario causes (a crash, a partition of the
    /// client): the helpers then connect again and retry instead of failing.
    pub fn expect_breaks(&mut self, expected: bool) {
        self.breaks_expected = expected;
    }

    /// Sends `command` (with `literal`) once. `Ok(Err(_))`: the connection broke in a way this
    /// link tolerates (it connects again at the next command); `Err(_)`: it broke otherwise.
    async fn attempt(
        &mut self,
        command: &str,
        literal: Option<&[u8]>,
        cut_ok: bool,
    ) -> Result<Result<Reply, ClientError>, ClientError> {
        let tolerated = |e: &ClientError, breaks: bool| {
            breaks || (cut_ok && matches!(e, ClientError::Closed { .. }))
        };
        let breaks = self.breaks_expected;
        let session = match self.session().await {
            Ok(session) => session,
            Err(e) if breaks => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        let result = match literal {
            Some(bytes) => session.cmd_literal(command, bytes).await,
            None => session.cmd(command).await,
        };
        match result {
            Ok(reply) => Ok(Ok(reply)),
            Err(e) if tolerated(&e, breaks) => {
                if cut_ok && !breaks {
                    self.ctx.counts.add("fetches_cut_by_server", 1);
                }
                self.broke(command);
                Ok(Err(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Counts that `command` was given up on after [`Ctx::retries_max`] retries, and notes it.
    fn gave_up(&mut self, command: &str) {
        self.ctx.counts.add("gave_up", 1);
        self.note(format!(
            "{command}: gave up after {} retries",
            self.ctx.retries_max
        ));
    }

    /// Logs out if `result` (what ran over the link) succeeded; otherwise ends the session
    /// without LOGOUT and returns the error.
    pub async fn close_after(self, result: Result<(), ClientError>) -> Result<(), ClientError> {
        match result {
            Ok(()) => self.logout().await,
            Err(e) => {
                self.end();
                Err(e)
            }
        }
    }

    /// The session, connected again (logged in, the mailbox selected again) if it broke.
    pub async fn session(&mut self) -> Result<&mut Session, ClientError> {
        if self.session.is_none() {
            self.ctx.counts.add("reconnects", 1);
            let mut session = login(&self.host, &self.ctx, self.user).await?;
            if let Some(mailbox) = self.view.as_ref().map(|v| v.mailbox().to_string()) {
                let command = format!("SELECT \"{mailbox}\" (CONDSTORE)");
                let reply = session.retry(&command).await?;
                self.view = Some(
                    self.ctx
                        .ledger
                        .borrow_mut()
                        .observe_select(&mailbox, &reply, &command),
                );
            }
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("connected just above"))
    }

    /// The session broke during `command` because the server closed it on purpose.
    pub fn broke(&mut self, command: &str) {
        if let Some(mut session) = self.session.take() {
            session.tolerate_break(command);
            session.end();
        }
    }

    /// `SELECT mailbox (CONDSTORE)` until acknowledged; the answer is checked by the ledger.
    pub async fn select(&mut self, mailbox: &str) -> Result<(), ClientError> {
        let command = format!("SELECT \"{mailbox}\" (CONDSTORE)");
        let ctx = self.ctx.clone();
        let mut pause = RETRY_PAUSE;
        for _ in 0..=ctx.retries_max {
            // A connection that breaks here comes back with this mailbox selected.
            self.view = Some(View::new(mailbox));
            if let Ok(reply) = self.attempt(&command, None, false).await? {
                if reply.status == Some(Status::Ok) {
                    self.view = Some(
                        ctx.ledger
                            .borrow_mut()
                            .observe_select(mailbox, &reply, &command),
                    );
                    return Ok(());
                }
            } else if self.session.is_none() {
                // Broken: the next session() selects again; nothing more to do here once it did.
                if self.session().await.is_ok() {
                    return Ok(());
                }
            }
            back_off(&mut pause, &ctx).await;
        }
        self.gave_up(&command);
        Ok(())
    }

    /// The selected mailbox's name.
    pub fn selected(&self) -> Option<&str> {
        self.view.as_ref().map(View::mailbox)
    }

    /// Checks the FETCH answers of `reply` in the session's view.
    fn observe(&mut self, reply: &Reply, context: &str) {
        if let Some(view) = self.view.as_mut() {
            self.ctx
                .ledger
                .borrow_mut()
                .observe_fetch(view, reply, context);
        }
    }

    /// Adds a note to the session's outcome.
    pub fn note(&mut self, note: String) {
        if let Some(session) = self.session.as_mut() {
            session.note(note);
        }
    }

    /// Logs out (if connected) and records the session.
    pub async fn logout(mut self) -> Result<(), ClientError> {
        match self.session.take() {
            Some(session) => session.logout().await,
            None => Ok(()),
        }
    }

    /// Records the session without LOGOUT.
    pub fn end(mut self) {
        if let Some(session) = self.session.take() {
            session.end();
        }
    }
}

/// APPENDs `email` with `flags` to `mailbox` until it is acknowledged (at most [`Ctx::retries_max`]
/// retries), recording every attempt in the ledger; returns how the last attempt ended.
pub async fn append_until_done(
    link: &mut Link,
    mailbox: &str,
    flags: &[&str],
    email: &[u8],
    what: &str,
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let command = format!("APPEND \"{mailbox}\" ({})", flags.join(" "));
    let mut pause = RETRY_PAUSE;
    for attempt in 0..=ctx.retries_max {
        let reply = link.attempt(&command, Some(email), false).await?;
        let ack = ack_of(&reply);
        let uid = reply
            .as_ref()
            .ok()
            .and_then(workload::responses::append_uid)
            .map(|(_, uid)| uid);
        let what = if attempt == 0 {
            what.to_string()
        } else {
            format!("{what} (try {})", attempt + 1)
        };
        ctx.ledger
            .borrow_mut()
            .add(mailbox, email, flags, ack, uid, &what);
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        back_off(&mut pause, &ctx).await;
    }
    link.gave_up(&command);
    Ok(Ack::Refused)
}

/// The digests of the messages the ledger knows by `uids` in `mailbox` (unknown UIDs skipped).
pub fn digests_of(ctx: &Ctx, mailbox: &str, uids: &[u32]) -> Vec<Digest> {
    let ledger = ctx.ledger.borrow();
    uids.iter()
        .filter_map(|u| ledger.digest_of(mailbox, *u))
        .collect()
}

/// `UID STORE uids op (flags)` in the selected mailbox until acknowledged, every attempt in the
/// ledger; the flag updates in the answers are checked.
pub async fn store_until_done(
    link: &mut Link,
    uids: &[u32],
    op: FlagOp,
    flags: &[&str],
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let sign = match op {
        FlagOp::Add => "+",
        FlagOp::Remove => "-",
        FlagOp::Replace => "",
    };
    let command = format!(
        "UID STORE {} {sign}FLAGS ({})",
        uid_set(uids),
        flags.join(" ")
    );
    let mailbox = link.selected().unwrap_or("INBOX").to_string();
    let targets = digests_of(&ctx, &mailbox, uids);
    until_acked(&ctx, link, &command, |link, reply, ack| {
        ctx.ledger
            .borrow_mut()
            .store(&mailbox, &targets, op, flags, ack);
        if let Ok(reply) = reply {
            link.observe(reply, &command);
        }
    })
    .await
}

/// `UID EXPUNGE uids` in the selected mailbox until acknowledged, every attempt in the ledger.
pub async fn expunge_until_done(link: &mut Link, uids: &[u32]) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let command = format!("UID EXPUNGE {}", uid_set(uids));
    let mailbox = link.selected().unwrap_or("INBOX").to_string();
    let targets = digests_of(&ctx, &mailbox, uids);
    until_acked(&ctx, link, &command, |_, _, ack| {
        ctx.ledger
            .borrow_mut()
            .expunge(&mailbox, Some(&targets), ack, &command);
    })
    .await
}

/// Sends `command` in the selected mailbox until it is acknowledged (at most
/// [`Ctx::retries_max`] retries); `record` puts each attempt in the ledger.
async fn until_acked(
    ctx: &Ctx,
    link: &mut Link,
    command: &str,
    mut record: impl FnMut(&mut Link, &Result<Reply, ClientError>, Ack),
) -> Result<Ack, ClientError> {
    let mut pause = RETRY_PAUSE;
    for _ in 0..=ctx.retries_max {
        let reply = link.attempt(command, None, false).await?;
        let ack = ack_of(&reply);
        record(link, &reply, ack);
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        back_off(&mut pause, ctx).await;
    }
    link.gave_up(command);
    Ok(Ack::Refused)
}

/// `UID COPY` (or `UID MOVE`) of `uids` from the selected mailbox to `to` until acknowledged,
/// every attempt in the ledger. Retrying after a NO is what a client does; a server that left
/// part of a refused COPY or MOVE behind shows up as duplicates.
pub async fn transfer_until_done(
    link: &mut Link,
    to: &str,
    uids: &[u32],
    moved: bool,
) -> Result<Ack, ClientError> {
    let ctx = link.ctx.clone();
    let from = link.selected().unwrap_or("INBOX").to_string();
    let verb = if moved { "MOVE" } else { "COPY" };
    let mut pause = RETRY_PAUSE;
    let mut left: Vec<u32> = uids.to_vec();
    for attempt in 0..=ctx.retries_max {
        let command = format!("UID {verb} {} \"{to}\"", uid_set(&left));
        let targets = digests_of(&ctx, &from, &left);
        let reply = link.attempt(&command, None, false).await?;
        let ack = ack_of(&reply);
        let dest_uids: Option<Vec<u32>> = reply.as_ref().ok().and_then(|r| {
            let (_, src, dst) = workload::responses::copy_uid(r)?;
            let by_src: BTreeMap<u32, u32> = src.into_iter().zip(dst).collect();
            left.iter().map(|u| by_src.get(u).copied()).collect()
        });
        let what = format!("{verb} #{} of {} to {to}", attempt + 1, uid_set(&left));
        ctx.ledger.borrow_mut().transfer(
            &from,
            to,
            &targets,
            moved,
            ack,
            dest_uids.as_deref(),
            &what,
        );
        if ack == Ack::Ok {
            return Ok(Ack::Ok);
        }
        if moved {
            // Retry only what is still in the source (a server may have moved part of it).
            let probe = format!("UID FETCH {} (UID)", uid_set(&left));
            let listed = link.attempt(&probe, None, false).await?;
            if let Some(listed) = listed.ok().filter(|l| l.status == Some(Status::Ok)) {
                let still: std::collections::BTreeSet<u32> = workload::responses::fetched(&listed)
                    .into_iter()
                    .filter_map(|f| f.uid)
                    .collect();
                left.retain(|u| still.contains(u));
                if left.is_empty() {
                    return Ok(Ack::Ok);
                }
            }
        }
        back_off(&mut pause, &ctx).await;
    }
    link.gave_up(&format!("UID {verb} {}", uid_set(&left)));
    Ok(Ack::Refused)
}

/// UIDs per FETCH of [`fetch_all`]: a client reads a large mailbox in batches.
pub const FETCH_BATCH: u32 = 8;

/// Reads every message of the selected mailbox (`UID FETCH a:b (UID FLAGS MODSEQ BODY.PEEK[])`,
/// [`FETCH_BATCH`] UIDs at a time, each batch until acknowledged): every answer, the partial
/// ones of refused or cut-off attempts included, is checked by the ledger, which learns each
/// message's UID. A connection the server closes in the middle of a body is opened again.
pub async fn fetch_all(link: &mut Link) -> Result<(), ClientError> {
    let ctx = link.ctx.clone();
    let mut pause = RETRY_PAUSE;
    let mut listed = None;
    for _ in 0..=ctx.retries_max {
        if let Ok(reply) = link.attempt("UID FETCH 1:* (UID)", None, false).await? {
            if reply.status == Some(Status::Ok) {
                listed = Some(reply);
                break;
            }
        }
        back_off(&mut pause, &ctx).await;
    }
    let Some(reply) = listed else {
        ctx.counts.add("gave_up", 1);
        link.note("UID FETCH 1:* (UID): gave up".into());
        return Ok(());
    };
    let mut uids: Vec<u32> = workload::responses::fetched(&reply)
        .into_iter()
        .filter_map(|f| f.uid)
        .collect();
    uids.sort_unstable();
    for batch in uids.chunks(FETCH_BATCH as usize) {
        let command = format!(
            "UID FETCH {} (UID FLAGS MODSEQ BODY.PEEK[])",
            uid_set(batch)
        );
        let mut pause = RETRY_PAUSE;
        let mut done = false;
        for _ in 0..=ctx.retries_max {
            if let Ok(reply) = link.attempt(&command, None, true).await? {
                link.observe(&reply, &command);
                if reply.status == Some(Status::Ok) {
                    done = true;
                    break;
                }
            }
            back_off(&mut pause, &ctx).await;
        }
        if !done {
            ctx.counts.add("gave_up", 1);
            link.note(format!(
                "{command}: still not answered OK after {} retries",
                ctx.retries_max
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }
}
