//! APPEND: the message literal streams from the socket to storage one chunk at a time, through the
//! MIME scanner, and is acknowledged once its log operation is written.

use imap_types::command::{Command, CommandBody};
use tokio::io::{AsyncRead, AsyncWrite};

use super::state::{Next, Session};
use crate::mail::body::BodyWriter;
use crate::mail::index::Op;
use crate::mail::{MailError, MessageRecord};
use crate::mime::Scanner;
use crate::Server;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// APPEND: the message literal streams from the socket to storage one chunk at a time, through
    /// the MIME scanner; the message exists once its log operation is written, and only then is OK sent.
    pub(super) async fn append(
        &mut self,
        command: Command<'static>,
        length: u32,
    ) -> std::io::Result<Next> {
        let tag = command.tag.inner().to_string();
        let CommandBody::Append {
            mailbox,
            flags,
            date,
            ..
        } = command.body
        else {
            unreachable!("input hands over APPEND commands only as Incoming::Append")
        };
        let chunk_bytes = self.server.inner().config.limits.chunk_bytes;
        let user = match (&self.user, self.name_of(&mailbox)) {
            (Some(user), Some(_)) => Some(user.clone()),
            _ => None,
        };
        let entry = match &user {
            Some(user) => {
                user.find_mailbox(&self.name_of(&mailbox).unwrap_or_default())
                    .await
            }
            None => Err(MailError::NoSuchMailbox),
        };
        // Whatever happens, the literal is consumed so the connection stays in sync.
        let mut writer = match (&user, &entry) {
            (Some(user), Ok(_)) => {
                Some(user.body_writer(self.server.inner().env.random(), chunk_bytes))
            }
            _ => None,
        };
        let mut scanner = Scanner::new();
        let mut failure: Option<MailError> = None;
        let mut left = length as usize;
        let mut chunk = Vec::new();
        while left > 0 {
            chunk.clear();
            let n = self
                .input
                .read_literal(&mut chunk, left.min(chunk_bytes))
                .await?;
            if n == 0 {
                return Ok(Next::Close); // the client went away mid-literal: nothing was acknowledged
            }
            left -= n;
            if failure.is_none() {
                if let Some(w) = writer.as_mut() {
                    scanner.feed(&chunk);
                    if let Err(e) = w.write(&chunk).await {
                        failure = Some(e);
                    }
                }
            }
        }
        drop(chunk);
        match self.input.finish_append().await? {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                self.tagged(&tag, "BAD", "junk after APPEND literal");
                return Ok(Next::Continue);
            }
        }
        let Some(user) = user else {
            self.tagged(
                &tag,
                if self.user.is_some() { "NO" } else { "BAD" },
                "APPEND needs a login and a valid mailbox",
            );
            return Ok(Next::Continue);
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(MailError::NoSuchMailbox) => {
                self.tagged(&tag, "NO", "[TRYCREATE] no such mailbox");
                return Ok(Next::Continue);
            }
            Err(e) => {
                self.storage_failure(&tag, &e);
                return Ok(Next::Continue);
            }
        };
        if let Some(e) = failure {
            self.storage_failure(&tag, &e);
            return Ok(Next::Continue);
        }
        let writer = writer.expect("a writer exists whenever the mailbox was found");
        let internal_date = match date {
            Some(d) => d.as_ref().timestamp(),
            None => unix_seconds(&self.server),
        };
        let flag_names: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let result: Result<[u8; 16], MailError> = async {
            let message = *writer_message(&writer);
            let body = writer.finish().await?;
            let meta = scanner.finish();
            let size = body.size as u32;
            user.put_record(
                &message,
                &MessageRecord {
                    body,
                    internal_date,
                    meta,
                },
            )
            .await?;
            let cursor = self.selected.as_ref().and_then(|s| s.index.cursor.clone());
            let op = Op::Append {
                message,
                size,
                internal_date,
                flags: flag_names,
            };
            user.log_append(&entry, &op, cursor.as_deref()).await?;
            // Notification is best effort: the message is stored whatever happens here.
            if let Err(e) = user.notify(&entry).await {
                tracing::debug!(error = %e, "notify failed");
            }
            Ok(message)
        }
        .await;
        match result {
            Ok(message) => {
                let mut uid = 0;
                if self.selected.as_ref().map(|s| s.entry.id) == Some(entry.id) {
                    if let Err(e) = self.refresh_selected().await {
                        tracing::debug!(error = %e, "refresh after append failed");
                    }
                    let index = &self.selected.as_ref().expect("checked just above").index;
                    uid = index
                        .entries
                        .iter()
                        .rev()
                        .find(|e| e.message == message)
                        .map_or(0, |e| e.uid);
                } else if let Ok(uids) = user.uids_of(&entry, &[message]).await {
                    uid = uids[0];
                }
                if uid > 0 {
                    self.tagged(
                        &tag,
                        "OK",
                        &format!("[APPENDUID {} {uid}] APPEND completed", entry.uidvalidity),
                    );
                } else {
                    self.tagged(&tag, "OK", "APPEND completed");
                }
            }
            Err(e) => self.storage_failure(&tag, &e),
        }
        Ok(Next::Continue)
    }
}

fn writer_message(writer: &BodyWriter) -> &[u8; 16] {
    writer.message()
}

fn unix_seconds(server: &Server) -> i64 {
    server
        .inner()
        .env
        .clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
