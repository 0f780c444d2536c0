//! STORE, EXPUNGE, COPY and MOVE: one message at a time, operations written to the log in small
//! batches, never a body byte read or written (copies share the body).

use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::mailbox::Mailbox;
use imap_types::sequence::SequenceSet;
use tokio::io::{AsyncRead, AsyncWrite};

use super::fetch::contains;
use super::output::uid_set;
use super::state::Session;
use crate::mail::index::{flag, Op};
use crate::mail::transaction::LogWrite;
use crate::mail::{MailError, MessageRecord};

/// Log operations written per request.
const BATCH: usize = 128;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Whether the message at `seq` (1-based) is in `set` and not expunged.
    fn matches(&self, set: &SequenceSet, uid: bool, seq: u32) -> bool {
        self.in_set(set, uid, seq)
            && !self
                .selected
                .as_ref()
                .expect("caller checked selected")
                .index
                .is_expunged(seq)
    }

    /// Whether the message at `seq` (1-based) is in `set`, expunged or not.
    fn in_set(&self, set: &SequenceSet, uid: bool, seq: u32) -> bool {
        let index = &self
            .selected
            .as_ref()
            .expect("caller checked selected")
            .index;
        let exists = index.exists();
        let entry = &index.entries[seq as usize - 1];
        if uid {
            contains(
                set,
                entry.uid,
                index.entries.last().map(|e| e.uid).unwrap_or(0),
            )
        } else {
            contains(set, seq, exists)
        }
    }

    pub(super) async fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        unchanged_since: Option<u64>,
    ) {
        let selected = self.selected.as_ref().expect("caller checked selected");
        if selected.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] mailbox is read-only");
        }
        let user = self.user.clone().expect("selected implies authenticated");
        let entry = selected.entry.clone();
        let names: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let exists = selected.index.exists();
        let mut batch = Vec::new();
        let mut modified = Vec::new();
        for seq in 1..=exists {
            if !self.matches(set, uid, seq) {
                continue;
            }
            let e = self.entry_at(seq);
            if unchanged_since.is_some_and(|m| e.modseq > m) {
                modified.push(if uid { e.uid } else { seq });
                continue;
            }
            let message = e.message;
            let flags = names.clone();
            batch.push(match kind {
                StoreType::Add => Op::FlagsAdd { message, flags },
                StoreType::Remove => Op::FlagsRemove { message, flags },
                StoreType::Replace => Op::FlagsSet { message, flags },
            });
            if batch.len() == BATCH {
                if let Err(e) = self.write_ops(&user, &entry, &mut batch).await {
                    return self.storage_failure(tag, &e);
                }
            }
        }
        if let Err(e) = self.write_ops(&user, &entry, &mut batch).await {
            return self.storage_failure(tag, &e);
        }
        // The refresh reports new messages, and expunges for UID STORE only, but no flag changes:
        // the flags of the set are reported below, changed or not (RFC 3501 6.4.6), unless .SILENT.
        if let Err(e) = self.refresh_view(false, uid).await {
            return self.storage_failure(tag, &e);
        }
        if !matches!(response, StoreResponse::Silent) {
            let exists = self
                .selected
                .as_ref()
                .expect("still selected")
                .index
                .exists();
            for seq in 1..=exists {
                if !self.matches(set, uid, seq) {
                    continue;
                }
                let index = &self.selected.as_ref().expect("still selected").index;
                let e = &index.entries[seq as usize - 1];
                let names: Vec<&str> = index.flag_names(e).collect();
                let uid_item = if uid {
                    format!("UID {} ", e.uid)
                } else {
                    String::new()
                };
                let modseq = if self.condstore {
                    format!(" MODSEQ ({})", e.modseq)
                } else {
                    String::new()
                };
                let line = format!(
                    "* {seq} FETCH ({uid_item}FLAGS ({}){modseq})\r\n",
                    names.join(" ")
                );
                if let Err(e) = self.out.push(line.as_bytes()).await {
                    tracing::debug!(error = %e, "client went away during STORE");
                    return;
                }
            }
        }
        if modified.is_empty() {
            self.tagged(tag, "OK", "STORE completed");
        } else {
            let list: Vec<String> = modified.iter().map(u32::to_string).collect();
            self.tagged(
                tag,
                "OK",
                &format!(
                    "[MODIFIED {}] conditional STORE failed for some",
                    list.join(",")
                ),
            );
        }
    }

    async fn write_ops(
        &mut self,
        user: &crate::mail::UserStore,
        entry: &crate::mail::MailboxEntry,
        batch: &mut Vec<Op>,
    ) -> Result<(), MailError> {
        if batch.is_empty() {
            return Ok(());
        }
        let cursor = self.selected.as_ref().and_then(|s| s.index.cursor.clone());
        let ops = std::mem::replace(batch, Vec::with_capacity(BATCH));
        user.log_append_batch(entry, ops, cursor.as_deref()).await
    }

    /// EXPUNGE / CLOSE / UID EXPUNGE: removes the \Deleted messages (of `only`, if given).
    pub(super) async fn expunge(&mut self, only: Option<&SequenceSet>) -> Result<(), MailError> {
        let selected = self.selected.as_ref().expect("caller checked selected");
        if selected.read_only {
            return Ok(());
        }
        let user = self.user.clone().expect("selected implies authenticated");
        let entry = selected.entry.clone();
        let exists = selected.index.exists();
        let mut batch = Vec::new();
        for seq in 1..=exists {
            let e = self.entry_at(seq);
            if e.flags & (flag::DELETED | flag::EXPUNGED) != flag::DELETED
                || only.is_some_and(|set| !self.matches(set, true, seq))
            {
                continue;
            }
            batch.push(Op::Expunge { message: e.message });
            if batch.len() == BATCH {
                self.write_ops(&user, &entry, &mut batch).await?;
            }
        }
        self.write_ops(&user, &entry, &mut batch).await
    }

    /// COPY / MOVE: each message gets a new id in the destination whose record shares the body.
    pub(super) async fn copy(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) {
        let user = self.user.clone().expect("selected implies authenticated");
        let Some(name) = self.name_of(mailbox) else {
            return self.tagged(tag, "NO", "[TRYCREATE] no such mailbox");
        };
        let dest = match user.find_mailbox(&name).await {
            Ok(dest) => dest,
            Err(MailError::NoSuchMailbox) => {
                return self.tagged(tag, "NO", "[TRYCREATE] no such mailbox")
            }
            Err(e) => return self.storage_failure(tag, &e),
        };
        let selected = self.selected.as_ref().expect("caller checked selected");
        if is_move && selected.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] mailbox is read-only");
        }
        let source = selected.entry.clone();
        let exists = selected.index.exists();
        let mut appends = Vec::new();
        let mut expunges = Vec::new();
        // Source UIDs and copy ids, for COPYUID: 20 bytes a message, bounded by the selection.
        let mut copied: Vec<(u32, [u8; 16])> = Vec::new();
        for seq in 1..=exists {
            if !self.in_set(set, uid, seq) {
                continue;
            }
            let e = self.entry_at(seq);
            if e.flags & flag::EXPUNGED != 0 {
                // Dovecot's answer: nothing copied, and the expunges announced.
                self.announce_expunges();
                return self.tagged(
                    tag,
                    "NO",
                    "[EXPUNGEISSUED] Some of the requested messages no longer exist.",
                );
            }
            let result: Result<(), MailError> = async {
                let record: MessageRecord = user.record(&e.message).await?;
                let copy: [u8; 16] = self.server.inner().env.random();
                // A record that the commit below never names is unreachable: a refused COPY
                // leaves garbage, never a visible message.
                user.put_record(&copy, &record).await?;
                let names: Vec<String> = {
                    let index = &self.selected.as_ref().expect("still selected").index;
                    index.flag_names(&e).map(str::to_string).collect()
                };
                appends.push(Op::Append {
                    message: copy,
                    size: e.size,
                    internal_date: e.internal_date,
                    flags: names,
                });
                copied.push((e.uid, copy));
                if is_move {
                    expunges.push(Op::Expunge { message: e.message });
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                return self.storage_failure(tag, &e);
            }
        }
        // The commit point: the copies and, for MOVE, the expunges of the originals, in one
        // request. Before it nothing is visible, after it everything is (RFC 3501 6.4.7, RFC 6851
        // 3.3): a NO means the command had no effect, so the client's retry adds no duplicate.
        let cursor = self.selected.as_ref().and_then(|s| s.index.cursor.clone());
        let mut writes = vec![LogWrite {
            mailbox: &dest,
            ops: appends,
            after: None,
        }];
        if is_move {
            writes.push(LogWrite {
                mailbox: &source,
                ops: expunges,
                after: cursor.as_deref(),
            });
        }
        if let Err(e) = user.log_commit(writes).await {
            return self.storage_failure(tag, &e);
        }
        // From here on the command has happened: a failure only leaves out what it would report.
        let ids: Vec<[u8; 16]> = copied.iter().map(|(_, id)| *id).collect();
        let copyuid = match user.uids_of(&dest, &ids).await {
            Ok(dest_uids) if !copied.is_empty() && dest_uids.iter().all(|u| *u > 0) => {
                let src: Vec<u32> = copied.iter().map(|(u, _)| *u).collect();
                Some(format!(
                    "[COPYUID {} {} {}]",
                    dest.uidvalidity,
                    uid_set(&src),
                    uid_set(&dest_uids)
                ))
            }
            _ => None,
        };
        drop((ids, copied));
        if is_move {
            if let Some(code) = &copyuid {
                self.out.line(format!("* OK {code} moved\r\n").as_bytes());
            }
        }
        if dest.id != source.id || is_move {
            if let Err(e) = user.notify(&dest).await {
                tracing::debug!(error = %e, "notify failed");
            }
        }
        if let Err(e) = self.refresh_selected().await {
            // The EXPUNGEs of a MOVE then come with the next command's refresh.
            tracing::warn!(error = %e, "refresh after a committed COPY/MOVE failed");
        }
        match (is_move, copyuid) {
            (false, Some(code)) => self.tagged(tag, "OK", &format!("{code} COPY completed")),
            (false, None) => self.tagged(tag, "OK", "COPY completed"),
            (true, _) => self.tagged(tag, "OK", "MOVE completed"),
        }
    }
}
