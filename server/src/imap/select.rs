//! SELECT and EXAMINE, and keeping the selected mailbox's view up to date: new messages, flag
//! changes, \Recent and expunges, told to the client in the order RFC 3501 allows.

use imap_types::command::SelectParameter;
use imap_types::mailbox::Mailbox;
use tokio::io::{AsyncRead, AsyncWrite};

use super::fetch;
use super::keywords;
use super::state::{Selected, Session};
use crate::mail::index::{flag, Change, Recent};
use crate::mail::MailError;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// SELECT, or EXAMINE when `read_only`; a CONDSTORE parameter enables CONDSTORE (RFC 7162).
    pub(super) async fn select(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
        parameters: &[SelectParameter],
        read_only: bool,
    ) {
        self.condstore |= parameters.contains(&SelectParameter::CondStore);
        self.selected = None;
        let user = self
            .user
            .clone()
            .expect("select runs only when authenticated");
        let Some(name) = self.name_of(mailbox) else {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
        };
        let entry = match user.find_mailbox(&name).await {
            Ok(entry) => entry,
            Err(e) => return self.storage_failure(tag, &e),
        };
        if name == "INBOX" {
            if let Err(e) = user.import_deliveries(&entry, None).await {
                tracing::debug!(error = %e, "importing deliveries failed");
            }
        }
        let index = match user.load_index(&entry).await {
            Ok(index) => index,
            Err(e) => return self.storage_failure(tag, &e),
        };
        // \Recent (RFC 3501 2.3.2): SELECT claims what no session has seen yet; EXAMINE only looks.
        // Best effort: without the watermark, no message is recent in this session.
        let mut recent = Recent::none(index.uidnext);
        let claim = if read_only {
            user.recent_watermark(&entry)
                .await
                .map(|w| recent = Recent::read_only(w))
        } else {
            user.claim_recent(&entry, index.uidnext)
                .await
                .map(|won| recent.claimed(won, index.uidnext))
        };
        if let Err(e) = claim {
            tracing::debug!(error = %e, "recent watermark unavailable");
        }
        let head = format!(
            "{}* {} EXISTS\r\n* {} RECENT\r\n* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] predicted next UID\r\n",
            keywords::flags_responses(&index),
            index.exists(),
            recent.count(&index),
            entry.uidvalidity,
            index.uidnext,
        );
        self.out.line(head.as_bytes());
        if let Some(first) = index.entries.iter().position(|e| e.flags & flag::SEEN == 0) {
            self.out
                .line(format!("* OK [UNSEEN {}] first unseen\r\n", first + 1).as_bytes());
        }
        self.out.line(
            format!(
                "* OK [HIGHESTMODSEQ {}] highest\r\n",
                index.highest_modseq.max(1)
            )
            .as_bytes(),
        );
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.tagged(
            tag,
            "OK",
            &format!(
                "[{mode}] {} completed",
                if read_only { "EXAMINE" } else { "SELECT" }
            ),
        );
        self.selected = Some(Selected {
            entry,
            keywords_announced: index.keywords.len() as u32,
            index,
            read_only,
            inbox: name == "INBOX",
            recent,
        });
    }

    /// Reads new log operations of the selected mailbox and tells the client what changed,
    /// expunges included.
    pub(super) async fn refresh_selected(&mut self) -> Result<(), MailError> {
        self.refresh_view(true, true).await
    }

    /// Reads new log operations of the selected mailbox into the session's view. New messages are
    /// announced first, so that every later number is one the client has; then flag changes, unless
    /// `flags` is false (the command reports flags itself); then, if `expunges`, the expunged
    /// messages. Without `expunges` they stay in the view, sequence numbers unchanged, until a
    /// command that may announce them (RFC 3501 7.4.1).
    pub(super) async fn refresh_view(
        &mut self,
        flags: bool,
        expunges: bool,
    ) -> Result<(), MailError> {
        let (Some(user), Some(selected)) = (self.user.as_ref(), self.selected.as_mut()) else {
            return Ok(());
        };
        if selected.inbox {
            // Deliveries are best effort here: they stay queued and are imported next time.
            if let Err(e) = user
                .import_deliveries(&selected.entry, selected.index.cursor.as_deref())
                .await
            {
                tracing::debug!(error = %e, "importing deliveries failed");
            }
        }
        let mut lines = Vec::new();
        let exists_before = selected.index.exists();
        let condstore = self.condstore;
        let recent = selected.recent;
        let recent_before = recent.count(&selected.index);
        user.refresh(
            &selected.entry,
            &mut selected.index,
            |index, change| match change {
                Change::Flags(seq) if flags => {
                    let entry = &index.entries[seq as usize - 1];
                    let flags = fetch::flag_list(index, entry, recent.contains(entry.uid));
                    let modseq = if condstore {
                        format!(" MODSEQ ({})", entry.modseq)
                    } else {
                        String::new()
                    };
                    lines.extend_from_slice(
                        format!(
                            "* {seq} FETCH (UID {} FLAGS ({flags}){modseq})\r\n",
                            entry.uid,
                        )
                        .as_bytes(),
                    );
                }
                Change::Exists | Change::Expunged(_) | Change::Flags(_) | Change::None => {}
            },
        )
        .await?;
        // The view only grows during a fold (expunged messages keep their place), so one EXISTS
        // covers every number in the lines that follow.
        if selected.index.exists() > exists_before {
            self.out
                .line(format!("* {} EXISTS\r\n", selected.index.exists()).as_bytes());
        }
        // Before any FETCH that carries a new keyword.
        keywords::announce(selected, &mut self.out);
        self.out.line(&lines);
        // Messages that arrived while selected are \Recent here, unless another session got them.
        let uidnext = selected.index.uidnext;
        if !selected.read_only && uidnext > selected.recent.claimed_to {
            match user.claim_recent(&selected.entry, uidnext).await {
                Ok(won) => selected.recent.claimed(won, uidnext),
                Err(e) => tracing::debug!(error = %e, "claiming recent messages failed"),
            }
        }
        let recent_after = selected.recent.count(&selected.index);
        if recent_after != recent_before {
            self.out
                .line(format!("* {recent_after} RECENT\r\n").as_bytes());
        }
        if expunges {
            self.announce_expunges();
        }
        Ok(())
    }
}
