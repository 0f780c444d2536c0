//! One IMAP connection: the state machine of RFC 3501 (not authenticated, authenticated, selected,
//! logout) and the commands of each state.

use std::net::SocketAddr;
use std::time::Duration;

use imap_types::command::{Command, CommandBody};
use imap_types::core::AString;
use imap_types::mailbox::{ListMailbox, Mailbox};
use tokio::io::{AsyncRead, AsyncWrite};

use super::input::{Incoming, Input};
use super::output::{push_astring, Output};
use super::{fetch, CAPABILITIES};
use crate::env::Io;
use crate::mail::index::{Change, Index, Op};
use crate::mail::{canonical, MailError, MailboxEntry, MessageRecord, UserStore};
use crate::Server;

/// A selected mailbox: its log position and index.
pub(super) struct Selected {
    pub entry: MailboxEntry,
    pub index: Index,
    pub read_only: bool,
}

pub(super) struct Session<R, W> {
    pub server: Server,
    pub input: Input<R>,
    pub out: Output<W>,
    pub user: Option<UserStore>,
    pub selected: Option<Selected>,
    #[allow(dead_code)]
    pub peer: SocketAddr,
}

/// Serves one IMAP connection until the client logs out or goes away.
pub async fn serve(server: Server, io: impl Io, peer: SocketAddr) {
    let (reader, writer) = tokio::io::split(io);
    let limits = &server.inner().config.limits;
    let mut session = Session {
        input: Input::new(reader, limits.line_bytes_max, limits.literal_bytes_max),
        out: Output::new(writer),
        server: server.clone(),
        user: None,
        selected: None,
        peer,
    };
    // An I/O error means the client is gone; there is nobody left to tell.
    let _ = session.run().await;
}

/// What a command asks of the connection afterwards.
enum Next {
    Continue,
    Close,
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(other) => String::from_utf8(other.as_ref().to_vec()).ok().map(|s| canonical(&s).to_string()),
    }
}

fn astring_text(s: &AString<'_>) -> Option<String> {
    String::from_utf8(s.as_ref().to_vec()).ok()
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    async fn run(&mut self) -> std::io::Result<()> {
        let greeting = format!("* OK [CAPABILITY {CAPABILITIES}] {} ready\r\n", self.server.inner().config.hostname);
        self.out.line(greeting.as_bytes());
        self.out.flush().await?;
        loop {
            self.input.release();
            let incoming = self.input.next(&mut self.out).await?;
            let next = match incoming {
                Incoming::Eof => return Ok(()),
                Incoming::Bad { tag, reason } => {
                    let line = format!("{} BAD {reason}\r\n", tag.as_deref().unwrap_or("*"));
                    self.out.line(line.as_bytes());
                    Next::Continue
                }
                Incoming::AppendTooBig { tag } => {
                    let line = format!("{tag} NO [TOOBIG] message larger than the server accepts\r\n");
                    self.out.line(line.as_bytes());
                    Next::Continue
                }
                Incoming::Append { command, length } => self.append(command, length).await?,
                Incoming::Command(command) => self.command(command).await?,
            };
            self.out.flush().await?;
            if let Next::Close = next {
                return self.out.close().await;
            }
        }
    }

    fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        let line = format!("{tag} {status} {text}\r\n");
        self.out.line(line.as_bytes());
    }

    fn storage_failure(&mut self, tag: &str, err: &MailError) {
        match err {
            MailError::NoSuchMailbox => self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox"),
            MailError::MailboxExists => self.tagged(tag, "NO", "[ALREADYEXISTS] mailbox already exists"),
            other => {
                tracing::warn!(error = %other, "storage failure");
                self.tagged(tag, "NO", "[UNAVAILABLE] storage temporarily unavailable, try again");
            }
        }
    }

    async fn command(&mut self, command: Command<'static>) -> std::io::Result<Next> {
        let tag = command.tag.inner().to_string();
        let authenticated = self.user.is_some();
        let selected = self.selected.is_some();
        match command.body {
            CommandBody::Capability => {
                self.out.line(format!("* CAPABILITY {CAPABILITIES}\r\n").as_bytes());
                self.tagged(&tag, "OK", "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => {
                if let Err(e) = self.refresh_selected().await {
                    self.storage_failure(&tag, &e);
                } else {
                    self.tagged(&tag, "OK", "completed");
                }
            }
            CommandBody::Logout => {
                self.out.line(b"* BYE logging out\r\n");
                self.tagged(&tag, "OK", "LOGOUT completed");
                return Ok(Next::Close);
            }
            CommandBody::Login { username, password } if !authenticated => {
                let (Some(name), password) = (astring_text(&username), password.declassify().as_ref().to_vec()) else {
                    self.tagged(&tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials");
                    return Ok(Next::Continue);
                };
                match crate::auth::login(&self.server, &name, &password).await {
                    Ok(user) => {
                        self.user = Some(user);
                        self.tagged(&tag, "OK", &format!("[CAPABILITY {CAPABILITIES}] logged in"));
                    }
                    Err(crate::auth::AuthError::InvalidCredentials) => {
                        let delay = self.server.inner().config.limits.auth_failure_delay_ms;
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        self.tagged(&tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "login failed");
                        self.tagged(&tag, "NO", "[UNAVAILABLE] login temporarily unavailable");
                    }
                }
            }
            CommandBody::Login { .. } => self.tagged(&tag, "BAD", "already authenticated"),
            _ if !authenticated => self.tagged(&tag, "NO", "log in first"),
            CommandBody::Create { mailbox } => {
                let user = self.user.clone().expect("checked authenticated above");
                match mailbox_name(&mailbox) {
                    Some(name) if name == "INBOX" => self.tagged(&tag, "NO", "[ALREADYEXISTS] INBOX always exists"),
                    Some(name) => match user.create_mailbox(name.trim_end_matches('/')).await {
                        Ok(_) => self.tagged(&tag, "OK", "CREATE completed"),
                        Err(e) => self.storage_failure(&tag, &e),
                    },
                    None => self.tagged(&tag, "BAD", "mailbox name is not UTF-8"),
                }
            }
            CommandBody::Select { mailbox, .. } => self.select(&tag, &mailbox, false).await,
            CommandBody::Examine { mailbox, .. } => self.select(&tag, &mailbox, true).await,
            CommandBody::List { reference, mailbox_wildcard } => self.list(&tag, &reference, &mailbox_wildcard).await,
            CommandBody::Unselect if selected => {
                self.selected = None;
                self.tagged(&tag, "OK", "UNSELECT completed");
            }
            CommandBody::Close if selected => {
                self.selected = None;
                self.tagged(&tag, "OK", "CLOSE completed");
            }
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, .. } if selected => {
                fetch::fetch(self, &tag, &sequence_set, &macro_or_item_names, uid).await?;
            }
            CommandBody::Unselect | CommandBody::Close | CommandBody::Fetch { .. } => {
                self.tagged(&tag, "BAD", "no mailbox selected")
            }
            _ => self.tagged(&tag, "BAD", "command not supported"),
        }
        Ok(Next::Continue)
    }

    async fn select(&mut self, tag: &str, mailbox: &Mailbox<'_>, read_only: bool) {
        self.selected = None;
        let user = self.user.clone().expect("select runs only when authenticated");
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
        let flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        let keywords: String = index.keywords.iter().map(|k| format!(" {k}")).collect();
        let head = format!(
            "* FLAGS ({flags}{keywords})\r\n* OK [PERMANENTFLAGS ({flags}{keywords} \\*)] flags permitted\r\n\
             * {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] predicted next UID\r\n",
            index.exists(),
            entry.uidvalidity,
            index.uidnext,
        );
        self.out.line(head.as_bytes());
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.tagged(tag, "OK", &format!("[{mode}] {} completed", if read_only { "EXAMINE" } else { "SELECT" }));
        self.selected = Some(Selected { entry, index, read_only });
    }

    /// Reads new log operations of the selected mailbox and tells the client what changed.
    pub(super) async fn refresh_selected(&mut self) -> Result<(), MailError> {
        let (Some(user), Some(selected)) = (self.user.as_ref(), self.selected.as_mut()) else { return Ok(()) };
        let mut lines = Vec::new();
        let mut grew = false;
        user.refresh(&selected.entry, &mut selected.index, |index, change| match change {
            Change::Exists => grew = true,
            Change::Expunged(seq) => lines.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes()),
            Change::Flags(seq) => {
                let entry = &index.entries[seq as usize - 1];
                let flags: Vec<&str> = index.flag_names(entry.flags).collect();
                lines.extend_from_slice(format!("* {seq} FETCH (FLAGS ({}))\r\n", flags.join(" ")).as_bytes());
            }
            Change::None => {}
        })
        .await?;
        self.out.line(&lines);
        if grew {
            self.out.line(format!("* {} EXISTS\r\n", selected.index.exists()).as_bytes());
        }
        Ok(())
    }

    async fn list(&mut self, tag: &str, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) {
        let user = self.user.clone().expect("list runs only when authenticated");
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        if pattern.is_empty() {
            self.out.line(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return self.tagged(tag, "OK", "LIST completed");
        }
        let full = format!("{reference}{pattern}");
        let list = match user.mailbox_list().await {
            Ok((list, _)) => list,
            Err(e) => return self.storage_failure(tag, &e),
        };
        let mut lines = Vec::new();
        for name in list.mailboxes.keys() {
            if wildcard_match(full.as_bytes(), name.as_bytes()) {
                lines.extend_from_slice(b"* LIST () \"/\" ");
                push_astring(&mut lines, name.as_bytes());
                lines.extend_from_slice(b"\r\n");
            }
        }
        self.out.line(&lines);
        self.tagged(tag, "OK", "LIST completed");
    }

    /// APPEND: the message literal streams from the socket to storage one chunk at a time, through
    /// the MIME scanner; the message exists once its log operation is written, and only then is OK sent.
    async fn append(&mut self, command: Command<'static>, length: u32) -> std::io::Result<Next> {
        let tag = command.tag.inner().to_string();
        let CommandBody::Append { mailbox, flags, date, .. } = command.body else {
            unreachable!("input hands over APPEND commands only as Incoming::Append")
        };
        let chunk_bytes = self.server.inner().config.limits.chunk_bytes;
        let user = match (&self.user, mailbox_name(&mailbox)) {
            (Some(user), Some(_)) => Some(user.clone()),
            _ => None,
        };
        let entry = match &user {
            Some(user) => user.find_mailbox(&mailbox_name(&mailbox).unwrap_or_default()).await,
            None => Err(MailError::NoSuchMailbox),
        };
        // Whatever happens, the literal is consumed so the connection stays in sync.
        let mut writer = match (&user, &entry) {
            (Some(user), Ok(_)) => Some(user.body_writer(self.server.inner().env.random(), chunk_bytes)),
            _ => None,
        };
        let mut scanner = crate::mime::Scanner::new();
        let mut failure: Option<MailError> = None;
        let mut left = length as usize;
        let mut chunk = Vec::new();
        while left > 0 {
            chunk.clear();
            let n = self.input.read_literal(&mut chunk, left.min(chunk_bytes)).await?;
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
            self.tagged(&tag, if self.user.is_some() { "NO" } else { "BAD" }, "APPEND needs a login and a valid mailbox");
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
        let result: Result<(), MailError> = async {
            let message = *writer_message(&writer);
            let body = writer.finish().await?;
            let meta = scanner.finish();
            let size = body.size as u32;
            user.put_record(&message, &MessageRecord { body, internal_date, meta }).await?;
            let cursor = self.selected.as_ref().and_then(|s| s.index.cursor.clone());
            let op = Op::Append { message, size, internal_date, flags: flag_names };
            user.log_append(&entry, &op, cursor.as_deref()).await?;
            // Notification is best effort: the message is stored whatever happens here.
            if let Err(e) = user.notify(&entry).await {
                tracing::debug!(error = %e, "notify failed");
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                if self.selected.as_ref().map(|s| s.entry.id) == Some(entry.id) {
                    if let Err(e) = self.refresh_selected().await {
                        tracing::debug!(error = %e, "refresh after append failed");
                    }
                }
                self.tagged(&tag, "OK", "APPEND completed");
            }
            Err(e) => self.storage_failure(&tag, &e),
        }
        Ok(Next::Continue)
    }
}

fn writer_message(writer: &crate::mail::body::BodyWriter) -> &[u8; 16] {
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

/// IMAP LIST matching: `*` matches anything, `%` anything but the separator `/`.
pub(super) fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard_match(rest, &name[i..])),
        Some((b'%', rest)) => {
            let stop = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
            (0..=stop).any(|i| wildcard_match(rest, &name[i..]))
        }
        Some((&c, rest)) => match name.split_first() {
            Some((&n, name_rest)) if n == c => wildcard_match(rest, name_rest),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards_follow_rfc3501() {
        assert!(wildcard_match(b"*", b"a/b"));
        assert!(!wildcard_match(b"%", b"a/b"));
        assert!(wildcard_match(b"a/%", b"a/b"));
        assert!(wildcard_match(b"INBOX", b"INBOX"));
        assert!(!wildcard_match(b"IN", b"INBOX"));
    }
}
