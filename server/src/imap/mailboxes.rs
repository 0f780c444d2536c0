//! Mailbox commands of the authenticated state: DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LSUB, STATUS.

use imap_types::mailbox::{ListMailbox, Mailbox};
use imap_types::status::StatusDataItemName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::output::push_astring;
use super::session::{mailbox_name, wildcard_match, Session};
use crate::mail::index::{flag, Index};

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn delete(&mut self, tag: &str, mailbox: &Mailbox<'_>) {
        let user = self.user.clone().expect("authenticated");
        match mailbox_name(mailbox) {
            Some(name) if name == "INBOX" => self.tagged(tag, "NO", "INBOX cannot be deleted"),
            Some(name) => {
                if self.selected.as_ref().is_some_and(|s| user_selected_is(&name, s)) {
                    self.selected = None;
                }
                match user.delete_mailbox(&name).await {
                    Ok(()) => self.tagged(tag, "OK", "DELETE completed"),
                    Err(e) => self.storage_failure(tag, &e),
                }
            }
            None => self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox"),
        }
    }

    pub(super) async fn rename(&mut self, tag: &str, from: &Mailbox<'_>, to: &Mailbox<'_>) {
        let user = self.user.clone().expect("authenticated");
        let (Some(from), Some(to)) = (mailbox_name(from), mailbox_name(to)) else {
            return self.tagged(tag, "NO", "mailbox names must be UTF-8");
        };
        match user.rename_mailbox(&from, &to).await {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(e) => self.storage_failure(tag, &e),
        }
    }

    pub(super) async fn subscribe(&mut self, tag: &str, mailbox: &Mailbox<'_>, on: bool) {
        let user = self.user.clone().expect("authenticated");
        let Some(name) = mailbox_name(mailbox) else {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
        };
        match user.set_subscribed(&name, on).await {
            Ok(()) => self.tagged(tag, "OK", if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" }),
            Err(e) => self.storage_failure(tag, &e),
        }
    }

    pub(super) async fn lsub(&mut self, tag: &str, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) {
        let user = self.user.clone().expect("authenticated");
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let full = format!("{reference}{pattern}");
        let list = match user.mailbox_list().await {
            Ok((list, _)) => list,
            Err(e) => return self.storage_failure(tag, &e),
        };
        let mut lines = Vec::new();
        for (name, entry) in &list.mailboxes {
            if entry.subscribed && wildcard_match(full.as_bytes(), name.as_bytes()) {
                lines.extend_from_slice(b"* LSUB () \"/\" ");
                push_astring(&mut lines, name.as_bytes());
                lines.extend_from_slice(b"\r\n");
            }
        }
        self.out.line(&lines);
        self.tagged(tag, "OK", "LSUB completed");
    }

    /// STATUS folds the mailbox's log into a throw-away index (the selected one if it is the same).
    pub(super) async fn status(&mut self, tag: &str, mailbox: &Mailbox<'_>, items: &[StatusDataItemName]) {
        let user = self.user.clone().expect("authenticated");
        let Some(name) = mailbox_name(mailbox) else {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
        };
        let entry = match user.find_mailbox(&name).await {
            Ok(entry) => entry,
            Err(e) => return self.storage_failure(tag, &e),
        };
        let mut index = Index::new();
        if let Err(e) = user.refresh(&entry, &mut index, |_, _| {}).await {
            return self.storage_failure(tag, &e);
        }
        let mut parts = Vec::new();
        for item in items {
            match item {
                StatusDataItemName::Messages => parts.push(format!("MESSAGES {}", index.exists())),
                StatusDataItemName::Recent => parts.push("RECENT 0".to_string()),
                StatusDataItemName::UidNext => parts.push(format!("UIDNEXT {}", index.uidnext)),
                StatusDataItemName::UidValidity => parts.push(format!("UIDVALIDITY {}", entry.uidvalidity)),
                StatusDataItemName::Unseen => {
                    let unseen = index.entries.iter().filter(|e| e.flags & flag::SEEN == 0).count();
                    parts.push(format!("UNSEEN {unseen}"));
                }
                StatusDataItemName::Deleted => {
                    let deleted = index.entries.iter().filter(|e| e.flags & flag::DELETED != 0).count();
                    parts.push(format!("DELETED {deleted}"));
                }
                StatusDataItemName::HighestModSeq => parts.push(format!("HIGHESTMODSEQ {}", index.highest_modseq.max(1))),
                _ => return self.tagged(tag, "BAD", "status item not supported"),
            }
        }
        drop(index);
        let mut line = b"* STATUS ".to_vec();
        push_astring(&mut line, name.as_bytes());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.out.line(&line);
        self.tagged(tag, "OK", "STATUS completed");
    }
}

fn user_selected_is(name: &str, selected: &super::session::Selected) -> bool {
    let _ = (name, selected);
    // The selected mailbox's name is not kept; deleting any mailbox while one is selected keeps
    // the selection, whose later commands then fail with NO as its log is unreachable.
    false
}
