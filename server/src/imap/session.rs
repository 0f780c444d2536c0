//! One IMAP connection: the state machine of RFC 3501 (not authenticated, authenticated, selected,
//! logout), reading each command and handing it to the handler of its state.

use std::net::SocketAddr;

use imap_types::command::{Command, CommandBody, FetchModifier, StoreModifier};
use imap_types::core::AString;
use imap_types::extensions::enable::CapabilityEnable;
use tokio::io::{AsyncRead, AsyncWrite};

use super::fetch;
use super::input::{Incoming, Input};
use super::mailboxes::ListOptions;
use super::output::Output;
use super::state::{Next, Session};
use crate::env::Io;
use crate::mail::SEPARATOR;
use crate::Server;

/// Capabilities advertised: only what is implemented.
pub const CAPABILITIES: &str = "IMAP4rev1 AUTH=PLAIN LITERAL+ UIDPLUS UNSELECT IDLE MOVE NAMESPACE ID ENABLE CONDSTORE LIST-EXTENDED LIST-STATUS SPECIAL-USE UTF8=ACCEPT";

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
                return self.authenticate(&tag, mechanism, initial_response).await;
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
                    Some(name) => match user.create_mailbox(name.trim_end_matches(SEPARATOR)).await
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
            } => self.select(&tag, &mailbox, &parameters, false).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(&tag, &mailbox, &parameters, true).await,
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
