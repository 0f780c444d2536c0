//! The state of one IMAP connection (the session and its selected mailbox) and the replies every
//! command handler writes: tagged answers, storage failures, mailbox names in and out, EXPUNGE.

use std::net::SocketAddr;

use imap_types::mailbox::Mailbox;
use tokio::io::{AsyncRead, AsyncWrite};

use super::input::{decode_modified_utf7, Input};
use super::output::Output;
use crate::mail::index::{Entry, Index, Recent};
use crate::mail::{canonical, MailError, MailboxEntry, UserStore};
use crate::Server;

/// A selected mailbox: its log position and index.
pub(super) struct Selected {
    pub entry: MailboxEntry,
    /// Whether this is INBOX, where LMTP deliveries land.
    pub inbox: bool,
    pub index: Index,
    pub read_only: bool,
    /// The messages that are \Recent in this session.
    pub recent: Recent,
    /// How many of the index's keywords the client was told of (FLAGS, PERMANENTFLAGS).
    pub keywords_announced: u32,
}

pub(super) struct Session<R, W> {
    pub server: Server,
    pub input: Input<R>,
    pub out: Output<W>,
    pub user: Option<UserStore>,
    pub selected: Option<Selected>,
    /// CONDSTORE enabled (RFC 7162): MODSEQ goes with every FETCH of flags.
    pub condstore: bool,
    /// UTF8=ACCEPT enabled (RFC 6855): mailbox names travel as UTF-8, not modified UTF-7.
    pub utf8: bool,
    pub peer: SocketAddr,
}

/// What a command asks of the connection afterwards.
pub(super) enum Next {
    Continue,
    Close,
}

pub(super) fn mailbox_name(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(other) => String::from_utf8(other.as_ref().to_vec())
            .ok()
            .map(|s| canonical(&s).to_string()),
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        let line = format!("{tag} {status} {text}\r\n");
        self.out.line(line.as_bytes());
    }

    pub(super) fn storage_failure(&mut self, tag: &str, err: &MailError) {
        match err {
            MailError::NoSuchMailbox => self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox"),
            MailError::MailboxExists => {
                self.tagged(tag, "NO", "[ALREADYEXISTS] mailbox already exists")
            }
            other => {
                tracing::warn!(error = %other, "storage failure");
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] storage temporarily unavailable, try again",
                );
            }
        }
    }

    /// A mailbox name from the client as stored (UTF-8): modified UTF-7 is decoded unless UTF8=ACCEPT.
    pub(super) fn name_of(&self, mailbox: &Mailbox<'_>) -> Option<String> {
        let name = mailbox_name(mailbox)?;
        Some(if self.utf8 {
            name
        } else {
            canonical(&decode_modified_utf7(&name)?).to_string()
        })
    }

    /// A stored mailbox name as the client expects it.
    pub(super) fn name_out(&self, name: &str) -> String {
        if self.utf8 {
            name.to_string()
        } else {
            utf7_imap::encode_utf7_imap(name.to_string())
        }
    }

    /// Entry `seq` (1-based) of the selected mailbox's view; for commands that run while selected.
    pub(super) fn entry_at(&self, seq: u32) -> Entry {
        self.selected
            .as_ref()
            .expect("commands that read entries run while a mailbox is selected")
            .index
            .entries[seq as usize - 1]
    }

    /// Sends EXPUNGE for the messages of the view expunged since the last announcement.
    pub(super) fn announce_expunges(&mut self) {
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let out = &mut self.out;
        selected
            .index
            .announce_expunges(|seq| out.line(format!("* {seq} EXPUNGE\r\n").as_bytes()));
    }
}
