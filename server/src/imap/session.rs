//! One IMAP connection: the state machine of RFC 3501 (not authenticated, authenticated, selected,
//! logout) and the commands of each state.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use imap_types::auth::AuthMechanism;
use imap_types::command::{Command, CommandBody, FetchModifier, SelectParameter, StoreModifier};
use imap_types::core::AString;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::mailbox::Mailbox;
use tokio::io::{AsyncRead, AsyncWrite};

use super::input::{Incoming, Input};
use super::mailboxes::ListOptions;
use super::output::Output;
use super::{fetch, CAPABILITIES};
use crate::env::Io;
use crate::mail::index::{Change, Index, Op, Recent};
use crate::mail::{canonical, MailError, MailboxEntry, MessageRecord, UserStore};
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

/// Serves one IMAP connection until the client logs out or goes away. A plain function returning
/// the future: the connection is split and the session built before the task starts, so the task's
/// future does not also hold the arguments it was built from.
pub fn serve(
    server: Server,
    io: impl Io,
    peer: SocketAddr,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (reader, writer) = tokio::io::split(io);
    let limits = &server.inner().config.limits;
    // Boxed before the task starts: the task's future then holds a pointer, where an async fn taking
    // the session by value would keep a copy of its argument beside the one it runs on.
    let session = Box::new(Session {
        input: Input::new(reader, limits.line_bytes_max, limits.literal_bytes_max)
            .before_login(limits.unauthenticated_bytes_max),
        out: Output::new(writer),
        server: server.clone(),
        user: None,
        selected: None,
        condstore: false,
        utf8: false,
        peer,
    });
    session.serve_to_end()
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

/// The tag of an IDLE command that can start (a mailbox is selected), or the input back: a plain
/// function, so that the consumed input is not kept in the connection's future across the IDLE.
fn idle_tag(incoming: Incoming, selected: bool) -> Result<String, Incoming> {
    match incoming {
        Incoming::Command(command) if selected && matches!(command.body, CommandBody::Idle) => {
            Ok(command.tag.inner().to_string())
        }
        other => Err(other),
    }
}

/// Whether pending expunges are announced before the command runs: not for FETCH, STORE and
/// SEARCH by sequence number (RFC 3501 7.4.1 forbids EXPUNGE during them), nor for COPY and MOVE by
/// sequence number, whose numbers are the client's view before any announcement (they announce
/// when done); not for the commands that leave the mailbox, which drop the view.
fn announces_first(body: &CommandBody<'_>) -> bool {
    !matches!(
        body,
        CommandBody::Fetch { uid: false, .. }
            | CommandBody::Store { uid: false, .. }
            | CommandBody::Search { uid: false, .. }
            | CommandBody::Copy { uid: false, .. }
            | CommandBody::Move { uid: false, .. }
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Select { .. }
            | CommandBody::Examine { .. }
            | CommandBody::Logout
    )
}

fn astring_text(s: &AString<'_>) -> Option<String> {
    String::from_utf8(s.as_ref().to_vec()).ok()
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    async fn serve_to_end(mut self: Box<Self>) {
        // An I/O error means the client is gone; there is nobody left to tell.
        let _ = self.run().await;
    }

    async fn run(&mut self) -> std::io::Result<()> {
        {
            // Scoped: the greeting must not live as long as the session.
            let greeting = format!(
                "* OK [CAPABILITY {CAPABILITIES}] {} ready\r\n",
                self.server.inner().config.hostname
            );
            self.out.line(greeting.as_bytes());
        }
        self.out.flush().await?;
        loop {
            self.input.release();
            // Everything between two commands is boxed: the connection's task itself holds only the
            // session and the state of waiting, so an idle session costs little (DESIGN.md principle
            // 3). Reading, each command and IDLE get their own allocation while they run.
            let incoming = Box::pin(self.input.next(&mut self.out)).await?;
            let next = match idle_tag(incoming, self.selected.is_some()) {
                // Not boxed: IDLE is the state an idle connection sits in, so the task holds it.
                Ok(tag) => self.idle(&tag).await?,
                Err(Incoming::Eof) => return Ok(()),
                Err(incoming) => Box::pin(self.handle(incoming)).await?,
            };
            self.out.flush().await?;
            if let Next::Close = next {
                return self.out.close().await;
            }
        }
    }

    /// Answers one command (IDLE aside).
    async fn handle(&mut self, incoming: Incoming) -> std::io::Result<Next> {
        Ok(match incoming {
            Incoming::Eof => Next::Close,
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
            Incoming::Append { command, length } => {
                self.announce_expunges();
                self.append(command, length).await?
            }
            Incoming::Command(command) => Box::pin(self.command(command)).await?,
            Incoming::ListExtended(list) => {
                self.announce_expunges();
                if self.user.is_none() {
                    self.tagged(&list.tag, "NO", "log in first");
                } else {
                    let patterns: Vec<&str> = list.patterns.iter().map(String::as_str).collect();
                    Box::pin(self.list(&list.tag, &list.reference, &patterns, &list.options)).await;
                }
                Next::Continue
            }
        })
    }

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

    async fn command(&mut self, command: Command<'static>) -> std::io::Result<Next> {
        let tag = command.tag.inner().to_string();
        let authenticated = self.user.is_some();
        let selected = self.selected.is_some();
        if selected && announces_first(&command.body) {
            self.announce_expunges();
        }
        match command.body {
            CommandBody::Capability => {
                self.out
                    .line(format!("* CAPABILITY {CAPABILITIES}\r\n").as_bytes());
                self.tagged(&tag, "OK", "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => {
                if let Err(e) = self.refresh_selected().await {
                    self.storage_failure(&tag, &e);
                } else {
                    self.tagged(&tag, "OK", "completed");
                }
            }
            // RFC 2971: ID is valid in every state.
            CommandBody::Id { .. } => {
                self.out.line(b"* ID (\"name\" \"imapsim\")\r\n");
                self.tagged(&tag, "OK", "ID completed");
            }
            CommandBody::Logout => {
                self.out.line(b"* BYE logging out\r\n");
                self.tagged(&tag, "OK", "LOGOUT completed");
                return Ok(Next::Close);
            }
            CommandBody::Login { username, password } if !authenticated => {
                match astring_text(&username) {
                    Some(name) => {
                        self.login(&tag, &name, password.declassify().as_ref())
                            .await
                    }
                    None => self.tagged(&tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials"),
                }
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if !authenticated => {
                if !matches!(mechanism, AuthMechanism::Plain) {
                    self.tagged(&tag, "NO", "[CANNOT] only PLAIN is supported");
                    return Ok(Next::Continue);
                }
                let response = match initial_response {
                    Some(r) => r.declassify().to_vec(),
                    None => {
                        self.out.line(b"+ \r\n");
                        self.out.flush().await?;
                        let Some(line) = self.input.line(8 * 1024).await? else {
                            return Ok(Next::Close);
                        };
                        let Ok(line) = line else {
                            self.tagged(&tag, "BAD", "line too long");
                            return Ok(Next::Continue);
                        };
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end();
                        if text == "*" {
                            self.tagged(&tag, "BAD", "authentication cancelled");
                            return Ok(Next::Continue);
                        }
                        match base64::engine::general_purpose::STANDARD.decode(text) {
                            Ok(bytes) => bytes,
                            Err(_) => {
                                self.tagged(&tag, "BAD", "invalid base64");
                                return Ok(Next::Continue);
                            }
                        }
                    }
                };
                // PLAIN: authorization identity NUL authentication identity NUL password.
                let mut fields = response.split(|&b| b == 0);
                let (authz, authc, password) = (fields.next(), fields.next(), fields.next());
                match (
                    authz,
                    authc.and_then(|a| std::str::from_utf8(a).ok()),
                    password,
                    fields.next(),
                ) {
                    (Some(authz), Some(name), Some(password), None)
                        if authz.is_empty() || authz == name.as_bytes() =>
                    {
                        let name = name.to_string();
                        self.login(&tag, &name, password).await
                    }
                    _ => self.tagged(&tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials"),
                }
            }
            CommandBody::Authenticate { .. } => self.tagged(&tag, "BAD", "already authenticated"),
            CommandBody::Login { .. } => self.tagged(&tag, "BAD", "already authenticated"),
            _ if !authenticated => self.tagged(&tag, "NO", "log in first"),
            CommandBody::Create { mailbox } => {
                let user = self.user.clone().expect("checked authenticated above");
                match self.name_of(&mailbox) {
                    Some(name) if name == "INBOX" => {
                        self.tagged(&tag, "NO", "[ALREADYEXISTS] INBOX always exists")
                    }
                    Some(name) => match user
                        .create_mailbox(name.trim_end_matches(crate::mail::SEPARATOR))
                        .await
                    {
                        Ok(_) => self.tagged(&tag, "OK", "CREATE completed"),
                        Err(e) => self.storage_failure(&tag, &e),
                    },
                    None => self.tagged(&tag, "BAD", "mailbox name is not UTF-8"),
                }
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                self.condstore |= parameters.contains(&SelectParameter::CondStore);
                self.select(&tag, &mailbox, false).await
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                self.condstore |= parameters.contains(&SelectParameter::CondStore);
                self.select(&tag, &mailbox, true).await
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let (reference, pattern) = (
                    self.list_text(&reference),
                    self.pattern_text(&mailbox_wildcard),
                );
                self.list(&tag, &reference, &[&pattern], &ListOptions::default())
                    .await
            }
            CommandBody::Delete { mailbox } => self.delete(&tag, &mailbox).await,
            CommandBody::Rename { from, to } => self.rename(&tag, &from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&tag, &mailbox, false).await,
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.lsub(&tag, &reference, &mailbox_wildcard).await,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &mailbox, &item_names).await,
            CommandBody::Namespace => {
                self.out.line(b"* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
                self.tagged(&tag, "OK", "NAMESPACE completed");
            }
            CommandBody::Enable { capabilities } => {
                let mut enabled = String::from("* ENABLED");
                for capability in capabilities.as_ref() {
                    match capability {
                        CapabilityEnable::CondStore => {
                            self.condstore = true;
                            enabled.push_str(" CONDSTORE");
                        }
                        CapabilityEnable::Utf8(_) => {
                            self.utf8 = true;
                            enabled.push_str(" UTF8=ACCEPT");
                        }
                        _ => {}
                    }
                }
                enabled.push_str("\r\n");
                self.out.line(enabled.as_bytes());
                self.tagged(&tag, "OK", "ENABLE completed");
            }
            CommandBody::Search { criteria, uid, .. } if selected => {
                self.search(&tag, criteria.as_ref(), uid).await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } if selected => {
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(m)| *m)
                    .next();
                self.condstore |= unchanged_since.is_some();
                self.store(
                    &tag,
                    &sequence_set,
                    kind,
                    response,
                    &flags,
                    uid,
                    unchanged_since,
                )
                .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } if selected => self.copy(&tag, &sequence_set, &mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } if selected => self.copy(&tag, &sequence_set, &mailbox, uid, true).await,
            CommandBody::ExpungeUid { sequence_set } if selected => {
                match self.expunge(Some(&sequence_set)).await {
                    Ok(()) => match self.refresh_selected().await {
                        Ok(()) => self.tagged(&tag, "OK", "UID EXPUNGE completed"),
                        Err(e) => self.storage_failure(&tag, &e),
                    },
                    Err(e) => self.storage_failure(&tag, &e),
                }
            }
            CommandBody::Expunge if selected => match self.expunge(None).await {
                Ok(()) => match self.refresh_selected().await {
                    Ok(()) => self.tagged(&tag, "OK", "EXPUNGE completed"),
                    Err(e) => self.storage_failure(&tag, &e),
                },
                Err(e) => self.storage_failure(&tag, &e),
            },
            CommandBody::Close if selected => {
                // CLOSE expunges silently; a failure still closes the mailbox.
                let result = self.expunge(None).await;
                self.selected = None;
                match result {
                    Ok(()) => self.tagged(&tag, "OK", "CLOSE completed"),
                    Err(e) => self.storage_failure(&tag, &e),
                }
            }
            CommandBody::Unselect if selected => {
                self.selected = None;
                self.tagged(&tag, "OK", "UNSELECT completed");
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } if selected => {
                let changed_since = modifiers.iter().find_map(|m| match m {
                    FetchModifier::ChangedSince(v) => Some(v.get()),
                    FetchModifier::Vanished => None,
                });
                fetch::fetch(
                    self,
                    &tag,
                    &sequence_set,
                    &macro_or_item_names,
                    uid,
                    changed_since,
                )
                .await?;
            }
            CommandBody::Idle => {
                // RFC 2177 allows IDLE in the authenticated state: nothing is selected, so nothing
                // can change; wait for DONE.
                self.out.line(b"+ idling\r\n");
                self.out.flush().await?;
                match self.input.idle_line().await? {
                    Some(line) if line.eq_ignore_ascii_case(b"DONE") => {
                        self.tagged(&tag, "OK", "IDLE terminated")
                    }
                    Some(_) => self.tagged(&tag, "BAD", "expected DONE"),
                    None => return Ok(Next::Close),
                }
            }
            CommandBody::Unselect
            | CommandBody::Close
            | CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Search { .. } => self.tagged(&tag, "BAD", "no mailbox selected"),
            _ => self.tagged(&tag, "BAD", "command not supported"),
        }
        Ok(Next::Continue)
    }

    /// A mailbox name from the client as stored (UTF-8): modified UTF-7 is decoded unless UTF8=ACCEPT.
    pub(super) fn name_of(&self, mailbox: &Mailbox<'_>) -> Option<String> {
        let name = mailbox_name(mailbox)?;
        Some(if self.utf8 {
            name
        } else {
            canonical(&super::input::decode_modified_utf7(&name)?).to_string()
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

    /// LIST/LSUB reference as stored text.
    pub(super) fn list_text(&self, reference: &Mailbox<'_>) -> String {
        let text = super::mailboxes::list_text_mailbox(reference);
        if self.utf8 {
            text
        } else {
            super::input::decode_modified_utf7(&text).unwrap_or(text)
        }
    }

    /// LIST/LSUB pattern as stored text.
    pub(super) fn pattern_text(&self, pattern: &imap_types::mailbox::ListMailbox<'_>) -> String {
        let text = super::mailboxes::list_text_pattern(pattern);
        if self.utf8 {
            text
        } else {
            super::input::decode_modified_utf7(&text).unwrap_or(text)
        }
    }

    /// LOGIN and AUTHENTICATE PLAIN: rate limited per user and address, NO after a delay on failure.
    async fn login(&mut self, tag: &str, name: &str, password: &[u8]) {
        let inner = self.server.inner();
        let addr = self.peer.ip();
        let delay = Duration::from_millis(inner.config.limits.auth_failure_delay_ms);
        if !inner.login_limiter.allowed(name, &addr) {
            tokio::time::sleep(delay).await;
            return self.tagged(
                tag,
                "NO",
                "[AUTHENTICATIONFAILED] too many failed logins, try later",
            );
        }
        match crate::auth::login(&self.server, name, password).await {
            Ok(user) => {
                self.server.inner().login_limiter.succeeded(name);
                self.user = Some(user);
                self.input.logged_in();
                self.tagged(tag, "OK", &format!("[CAPABILITY {CAPABILITIES}] logged in"));
            }
            Err(crate::auth::AuthError::Busy) => {
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] too many logins in progress, try again later",
                );
            }
            Err(crate::auth::AuthError::InvalidCredentials) => {
                self.server.inner().login_limiter.failed(name, &addr);
                tokio::time::sleep(delay).await;
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials");
            }
            Err(e) => {
                tracing::warn!(error = %e, "login failed");
                self.tagged(tag, "NO", "[UNAVAILABLE] login temporarily unavailable");
            }
        }
    }

    async fn select(&mut self, tag: &str, mailbox: &Mailbox<'_>, read_only: bool) {
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
            super::keywords::flags_responses(&index),
            index.exists(),
            recent.count(&index),
            entry.uidvalidity,
            index.uidnext,
        );
        self.out.line(head.as_bytes());
        if let Some(first) = index
            .entries
            .iter()
            .position(|e| e.flags & crate::mail::index::flag::SEEN == 0)
        {
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
        super::keywords::announce(selected, &mut self.out);
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

    /// APPEND: the message literal streams from the socket to storage one chunk at a time, through
    /// the MIME scanner; the message exists once its log operation is written, and only then is OK sent.
    async fn append(&mut self, command: Command<'static>, length: u32) -> std::io::Result<Next> {
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
        let mut scanner = crate::mime::Scanner::new();
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

/// IMAP LIST matching: `*` matches anything, `%` anything but the hierarchy separator. Dynamic
/// programming over (pattern, name) positions, so hostile patterns cost O(pattern x name).
pub(crate) fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    // reach[j]: the pattern prefix consumed so far matches name[..j].
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                let mut on = false;
                for j in 0..=name.len() {
                    on = reach[j]
                        || (on
                            && j > 0
                            && (p == b'*' || name[j - 1] != crate::mail::SEPARATOR as u8));
                    next[j] = on;
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = reach[j - 1] && name[j - 1] == c;
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards_follow_rfc3501() {
        assert!(wildcard_match(b"*", b"a.b"));
        assert!(!wildcard_match(b"%", b"a.b"));
        assert!(wildcard_match(b"a.%", b"a.b"));
        assert!(wildcard_match(b"INBOX", b"INBOX"));
        assert!(!wildcard_match(b"IN", b"INBOX"));
        assert!(wildcard_match(b"%.%", b"a.b"));
        assert!(!wildcard_match(b"a%", b"a.b"));
        let hostile = b"*a".repeat(200);
        assert!(!wildcard_match(&hostile, &b"a".repeat(150)));
    }
}

#[cfg(test)]
mod future_size {
    /// The connection task's future is allocated whole at spawn and lives as long as the
    /// connection: it must hold only the waiting and IDLE states (commands are boxed).
    #[test]
    fn an_idle_connection_task_stays_small() {
        let server = crate::Server::new(
            crate::config::ServerConfig {
                storage: crate::storage::StorageConfig::default(),
                users: vec![],
                limits: Default::default(),
                kdf: Default::default(),
                hostname: "x".into(),
            },
            crate::env::Env::production(),
        );
        let (io, _peer) = tokio::io::duplex(64);
        let task = super::serve(server, io, "127.0.0.1:1".parse().expect("valid address"));
        let bytes = std::mem::size_of_val(&task);
        assert!(bytes <= 1600, "the session task future is {bytes} bytes");
    }
}
