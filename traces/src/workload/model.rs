//! A small model of the server's mailbox state (per user, per mailbox: UIDs, flags, MODSEQ) that a
//! workload is generated against and replayed on, to predict each command's answer (`OK`, `NO`,
//! `BAD`) and to check that every sequence number and UID a command names exists.
//!
//! Rules, as the server applies them: UIDs are assigned 1, 2, 3, ... per mailbox and never
//! reused; the k-th change of a mailbox (one message appended, one message whose flags change,
//! one message expunged) gets MODSEQ k, and the mailbox's HIGHESTMODSEQ is the last one given (0
//! before any change; servers report at least 1). A STORE that leaves a message's flags as they
//! were changes nothing. MOVE appends to the target, then expunges from the source, message by
//! message in UID order; CLOSE of a mailbox opened with SELECT expunges its `\Deleted` messages.
//! The model assumes that a user's sessions run one after another, in order (different users'
//! sessions are independent).

use std::collections::{BTreeMap, BTreeSet};

use imap_types::command::{CommandBody, FetchModifier};
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::{Flag, StoreType};
use imap_types::mailbox::Mailbox;
use imap_types::search::SearchKey;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::steps::{EmailRef, Expect, SetupStep, Step, StepCommand};
use crate::trace::{CommandName, TraceCommand};

/// One message of a modelled mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its UID.
    pub uid: u32,
    /// Its flags, by canonical name (see [`flag_key`]).
    pub flags: BTreeSet<String>,
    /// MODSEQ of its last change.
    pub modseq: u64,
    /// The dataset email it holds.
    pub email: EmailRef,
}

/// One modelled mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    /// Messages in UID order: message `i` has sequence number `i + 1`.
    pub messages: Vec<Message>,
    /// The UID the next appended message gets.
    pub uid_next: u32,
    /// The MODSEQ of the last change (0 before any).
    pub highest_modseq: u64,
}

impl Default for MailboxState {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            uid_next: 1,
            highest_modseq: 0,
        }
    }
}

impl MailboxState {
    /// The message UIDs, ascending.
    pub fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }

    fn bump(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// Appends a message: next UID, next MODSEQ.
    pub fn append(&mut self, flags: BTreeSet<String>, email: EmailRef) -> u32 {
        let uid = self.uid_next;
        self.uid_next += 1;
        let modseq = self.bump();
        self.messages.push(Message {
            uid,
            flags,
            modseq,
            email,
        });
        uid
    }

    /// Removes the messages at `positions` (0-based), one change each; returns them in UID order.
    fn remove(&mut self, positions: &BTreeSet<usize>) -> Vec<Message> {
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(self.messages.len());
        for (i, m) in std::mem::take(&mut self.messages).into_iter().enumerate() {
            if positions.contains(&i) {
                removed.push(m);
            } else {
                kept.push(m);
            }
        }
        self.messages = kept;
        for _ in &removed {
            self.bump();
        }
        removed
    }

    /// Expunges the `\Deleted` messages; returns how many.
    fn expunge_deleted(&mut self) -> usize {
        let deleted: BTreeSet<usize> = self
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.flags.contains(DELETED))
            .map(|(i, _)| i)
            .collect();
        self.remove(&deleted).len()
    }
}

/// The canonical name of a flag in the model: lowercase (`\seen`, `nonjunk`).
pub fn flag_key(flag: &Flag<'_>) -> String {
    flag.to_string().to_ascii_lowercase()
}

/// The canonical name of `\Deleted`.
pub(crate) const DELETED: &str = "\\deleted";

/// The canonical name of a mailbox: `INBOX` in any case is `INBOX`; other names as written.
pub fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_owned(),
        Mailbox::Other(o) => {
            let s = String::from_utf8_lossy(o.as_ref()).into_owned();
            if s.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_owned()
            } else {
                s
            }
        }
    }
}

/// One modelled user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserState {
    /// Mailboxes by canonical name.
    pub mailboxes: BTreeMap<String, MailboxState>,
    /// Subscribed mailbox names.
    pub subscribed: BTreeSet<String>,
}

/// The mailbox a session has open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Canonical name.
    pub mailbox: String,
    /// Opened with EXAMINE.
    pub read_only: bool,
}

/// The state of one session (connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The user the session belongs to.
    pub user: usize,
    /// LOGIN succeeded.
    pub authenticated: bool,
    /// The selected mailbox, if any.
    pub selected: Option<Selected>,
    /// LOGOUT was sent.
    pub logged_out: bool,
}

impl SessionState {
    /// A new connection of `user`, not yet logged in.
    pub fn new(user: usize) -> Self {
        Self {
            user,
            authenticated: false,
            selected: None,
            logged_out: false,
        }
    }
}

/// A step the model refuses: the generator never makes one, a hand-written capture might.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The session's user is not in the model.
    #[error("no user {user}")]
    NoSuchUser { user: usize },
    /// A command after LOGOUT.
    #[error("{name} after LOGOUT")]
    AfterLogout { name: CommandName },
    /// A command that needs LOGIN before it.
    #[error("{name} before LOGIN")]
    NotAuthenticated { name: CommandName },
    /// A second LOGIN.
    #[error("LOGIN in an authenticated session")]
    AlreadyAuthenticated,
    /// A command that needs a selected mailbox, without one.
    #[error("{name} with no mailbox selected")]
    NotSelected { name: CommandName },
    /// A sequence number beyond the mailbox's messages.
    #[error("{name}: sequence number {seq} with {exists} messages")]
    NoSuchSeq {
        name: CommandName,
        seq: u32,
        exists: usize,
    },
    /// A UID no message of the mailbox has.
    #[error("{name}: no message has UID {uid}")]
    NoSuchUid { name: CommandName, uid: u32 },
    /// `*` in an empty mailbox.
    #[error("{name}: `*` in an empty mailbox")]
    Empty { name: CommandName },
    /// A CHANGEDSINCE above the mailbox's HIGHESTMODSEQ: no client could have seen it.
    #[error("{name}: CHANGEDSINCE {value} above HIGHESTMODSEQ {highest}")]
    ChangedSinceAhead {
        name: CommandName,
        value: u64,
        highest: u64,
    },
    /// The step's name is not the name of its command.
    #[error("step named {name} holds a {actual} command")]
    NameMismatch { name: CommandName, actual: String },
    /// A command form the model does not know.
    #[error("command {0} is not modelled")]
    Unmodelled(String),
}

/// Server state of every user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Model {
    /// Users, by index.
    pub users: Vec<UserState>,
}

impl Model {
    /// `users` users with an empty INBOX each.
    pub fn new(users: usize) -> Self {
        let mut user = UserState::default();
        user.mailboxes
            .insert("INBOX".to_owned(), MailboxState::default());
        user.subscribed.insert("INBOX".to_owned());
        Self {
            users: vec![user; users],
        }
    }

    /// Applies one setup step.
    pub fn apply_setup(&mut self, step: &SetupStep) -> Result<(), ModelError> {
        match step {
            SetupStep::Create { user, mailbox } => {
                let u = self.user_mut(*user)?;
                u.mailboxes.entry(mailbox.clone()).or_default();
                u.subscribed.insert(mailbox.clone());
            }
            SetupStep::Deliver {
                user,
                mailbox,
                flags,
                email,
            } => {
                let u = self.user_mut(*user)?;
                let flags = flags.iter().map(flag_key).collect();
                u.mailboxes
                    .entry(mailbox.clone())
                    .or_default()
                    .append(flags, *email);
            }
        }
        Ok(())
    }

    fn user_mut(&mut self, user: usize) -> Result<&mut UserState, ModelError> {
        self.users
            .get_mut(user)
            .ok_or(ModelError::NoSuchUser { user })
    }

    /// The mailbox `name` of `user`, if it exists.
    pub fn mailbox(&self, user: usize, name: &str) -> Option<&MailboxState> {
        self.users.get(user)?.mailboxes.get(name)
    }

    /// Applies `step` in `session`: checks that it is well-formed for the current state and
    /// returns the answer the server gives.
    pub fn apply(&mut self, session: &mut SessionState, step: &Step) -> Result<Expect, ModelError> {
        let name = step.name;
        if session.logged_out {
            return Err(ModelError::AfterLogout { name });
        }
        let user = session.user;
        if user >= self.users.len() {
            return Err(ModelError::NoSuchUser { user });
        }
        let body = match &step.command {
            StepCommand::Append(a) => {
                return self.append(session, name, &a.mailbox, &a.flags, a.email);
            }
            StepCommand::Trace(TraceCommand::Raw { name: raw, .. }) => {
                if *raw != name {
                    return Err(ModelError::NameMismatch {
                        name,
                        actual: raw.to_string(),
                    });
                }
                if !session.authenticated {
                    return Err(ModelError::NotAuthenticated { name });
                }
                // The only raw form is LIST with RETURN options: it changes nothing.
                return match raw {
                    CommandName::List | CommandName::Lsub => Ok(Expect::Ok),
                    other => Err(ModelError::Unmodelled(other.to_string())),
                };
            }
            StepCommand::Trace(TraceCommand::Codec(c)) => &c.body,
        };
        let actual = body.name();
        if !name.as_str().eq_ignore_ascii_case(actual) {
            return Err(ModelError::NameMismatch {
                name,
                actual: actual.to_owned(),
            });
        }
        match body {
            CommandBody::Login { .. } => {
                if session.authenticated {
                    return Err(ModelError::AlreadyAuthenticated);
                }
                session.authenticated = true;
                return Ok(Expect::Ok);
            }
            CommandBody::Capability | CommandBody::Noop => return Ok(Expect::Ok),
            CommandBody::Logout => {
                session.logged_out = true;
                return Ok(Expect::Ok);
            }
            _ => {}
        }
        if !session.authenticated {
            return Err(ModelError::NotAuthenticated { name });
        }
        let u = &mut self.users[user];
        match body {
            CommandBody::Enable { .. }
            | CommandBody::Id { .. }
            | CommandBody::Namespace
            | CommandBody::List { .. }
            | CommandBody::Lsub { .. }
            | CommandBody::Idle => Ok(Expect::Ok),
            CommandBody::Select { mailbox, .. } | CommandBody::Examine { mailbox, .. } => {
                let m = mailbox_name(mailbox);
                // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
                session.selected = None;
                if u.mailboxes.contains_key(&m) {
                    session.selected = Some(Selected {
                        mailbox: m,
                        read_only: matches!(body, CommandBody::Examine { .. }),
                    });
                    Ok(Expect::Ok)
                } else {
                    Ok(Expect::No)
                }
            }
            CommandBody::Create { mailbox } => {
                let m = mailbox_name(mailbox);
                match u.mailboxes.entry(m) {
                    std::collections::btree_map::Entry::Occupied(_) => Ok(Expect::No),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(MailboxState::default());
                        Ok(Expect::Ok)
                    }
                }
            }
            CommandBody::Delete { mailbox } => {
                let m = mailbox_name(mailbox);
                if m == "INBOX" || u.mailboxes.remove(&m).is_none() {
                    Ok(Expect::No)
                } else {
                    if session.selected.as_ref().is_some_and(|s| s.mailbox == m) {
                        session.selected = None;
                    }
                    Ok(Expect::Ok)
                }
            }
            CommandBody::Subscribe { mailbox } => {
                u.subscribed.insert(mailbox_name(mailbox));
                Ok(Expect::Ok)
            }
            CommandBody::Unsubscribe { mailbox } => {
                u.subscribed.remove(&mailbox_name(mailbox));
                Ok(Expect::Ok)
            }
            CommandBody::Status { mailbox, .. } => {
                Ok(if u.mailboxes.contains_key(&mailbox_name(mailbox)) {
                    Expect::Ok
                } else {
                    Expect::No
                })
            }
            CommandBody::Append {
                mailbox,
                flags,
                message,
                ..
            } => {
                // A capture's APPEND with its own bytes: no dataset email (index `usize::MAX`).
                let size = match message {
                    LiteralOrLiteral8::Literal(l) => l.data().len(),
                    LiteralOrLiteral8::Literal8(l) => l.data.len(),
                };
                let email = EmailRef {
                    seed: 0,
                    index: usize::MAX,
                    size: size as u64,
                };
                self.append(session, name, mailbox, flags, email)
            }
            _ => self.apply_selected(session, name, body),
        }
    }

    fn append(
        &mut self,
        session: &SessionState,
        name: CommandName,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        email: EmailRef,
    ) -> Result<Expect, ModelError> {
        if !session.authenticated {
            return Err(ModelError::NotAuthenticated { name });
        }
        let u = self.user_mut(session.user)?;
        match u.mailboxes.get_mut(&mailbox_name(mailbox)) {
            Some(m) => {
                m.append(flags.iter().map(flag_key).collect(), email);
                Ok(Expect::Ok)
            }
            // NO [TRYCREATE].
            None => Ok(Expect::No),
        }
    }

    /// Commands of the selected state.
    fn apply_selected(
        &mut self,
        session: &mut SessionState,
        name: CommandName,
        body: &CommandBody<'_>,
    ) -> Result<Expect, ModelError> {
        let Some(selected) = session.selected.clone() else {
            return Err(ModelError::NotSelected { name });
        };
        let u = &mut self.users[session.user];
        let Some(mbox) = u.mailboxes.get_mut(&selected.mailbox) else {
            // Deleted by another session: the server answers NO.
            return Ok(Expect::No);
        };
        match body {
            CommandBody::Check => Ok(Expect::Ok),
            CommandBody::Unselect => {
                session.selected = None;
                Ok(Expect::Ok)
            }
            CommandBody::Close => {
                if !selected.read_only {
                    mbox.expunge_deleted();
                }
                session.selected = None;
                Ok(Expect::Ok)
            }
            CommandBody::Expunge => {
                if selected.read_only {
                    return Ok(Expect::No);
                }
                mbox.expunge_deleted();
                Ok(Expect::Ok)
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let targets = resolve(name, mbox, sequence_set, true)?;
                if selected.read_only {
                    return Ok(Expect::No);
                }
                let deleted: BTreeSet<usize> = targets
                    .into_iter()
                    .filter(|&i| mbox.messages[i].flags.contains(DELETED))
                    .collect();
                mbox.remove(&deleted);
                Ok(Expect::Ok)
            }
            CommandBody::Fetch {
                sequence_set,
                uid,
                modifiers,
                ..
            } => {
                resolve(name, mbox, sequence_set, *uid)?;
                for m in modifiers {
                    if let FetchModifier::ChangedSince(v) = m {
                        let highest = mbox.highest_modseq.max(1);
                        if v.get() > highest {
                            return Err(ModelError::ChangedSinceAhead {
                                name,
                                value: v.get(),
                                highest,
                            });
                        }
                    }
                }
                Ok(Expect::Ok)
            }
            CommandBody::Search { criteria, .. } => {
                for key in criteria.as_ref() {
                    check_key(name, mbox, key)?;
                }
                Ok(Expect::Ok)
            }
            CommandBody::Store {
                sequence_set,
                kind,
                flags,
                uid,
                ..
            } => {
                let targets = resolve(name, mbox, sequence_set, *uid)?;
                if selected.read_only {
                    return Ok(Expect::No);
                }
                let keys: BTreeSet<String> = flags.iter().map(flag_key).collect();
                for i in targets {
                    let old = mbox.messages[i].flags.clone();
                    let new: BTreeSet<String> = match kind {
                        StoreType::Add => old.union(&keys).cloned().collect(),
                        StoreType::Remove => old.difference(&keys).cloned().collect(),
                        StoreType::Replace => keys.clone(),
                    };
                    if new != old {
                        let modseq = mbox.bump();
                        let m = &mut mbox.messages[i];
                        m.flags = new;
                        m.modseq = modseq;
                    }
                }
                Ok(Expect::Ok)
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            }
            | CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                let targets = resolve(name, mbox, sequence_set, *uid)?;
                let is_move = matches!(body, CommandBody::Move { .. });
                if is_move && selected.read_only {
                    return Ok(Expect::No);
                }
                let dest = mailbox_name(mailbox);
                if !u.mailboxes.contains_key(&dest) {
                    // NO [TRYCREATE].
                    return Ok(Expect::No);
                }
                let src = u
                    .mailboxes
                    .get_mut(&selected.mailbox)
                    .expect("checked above: the selected mailbox exists");
                let moved: Vec<Message> =
                    targets.iter().map(|&i| src.messages[i].clone()).collect();
                if is_move {
                    src.remove(&targets);
                }
                let dst = u
                    .mailboxes
                    .get_mut(&dest)
                    .expect("checked above: the target mailbox exists");
                for m in moved {
                    dst.append(m.flags, m.email);
                }
                Ok(Expect::Ok)
            }
            other => Err(ModelError::Unmodelled(other.name().to_owned())),
        }
    }
}

/// The positions (0-based) of the messages `set` names, checking that every number it names
/// exists: sequence numbers within 1..=exists, UIDs of present messages, `*` in a non-empty
/// mailbox.
pub fn resolve(
    name: CommandName,
    mbox: &MailboxState,
    set: &SequenceSet,
    uid: bool,
) -> Result<BTreeSet<usize>, ModelError> {
    let n = mbox.messages.len();
    let number = |s: &SeqOrUid| -> Result<usize, ModelError> {
        match s {
            SeqOrUid::Asterisk => {
                if n == 0 {
                    Err(ModelError::Empty { name })
                } else {
                    Ok(n - 1)
                }
            }
            SeqOrUid::Value(v) => {
                let v = v.get();
                if uid {
                    mbox.messages
                        .binary_search_by_key(&v, |m| m.uid)
                        .map_err(|_| ModelError::NoSuchUid { name, uid: v })
                } else if (v as usize) <= n {
                    Ok(v as usize - 1)
                } else {
                    Err(ModelError::NoSuchSeq {
                        name,
                        seq: v,
                        exists: n,
                    })
                }
            }
        }
    };
    let mut out = BTreeSet::new();
    for s in set.0.as_ref() {
        match s {
            Sequence::Single(x) => {
                out.insert(number(x)?);
            }
            Sequence::Range(a, b) => {
                let (a, b) = (number(a)?, number(b)?);
                out.extend(a.min(b)..=a.max(b));
            }
        }
    }
    Ok(out)
}

fn check_key(
    name: CommandName,
    mbox: &MailboxState,
    key: &SearchKey<'_>,
) -> Result<(), ModelError> {
    match key {
        SearchKey::And(keys) => keys
            .as_ref()
            .iter()
            .try_for_each(|k| check_key(name, mbox, k)),
        SearchKey::Not(k) => check_key(name, mbox, k),
        SearchKey::Or(a, b) => {
            check_key(name, mbox, a)?;
            check_key(name, mbox, b)
        }
        SearchKey::SequenceSet(s) => resolve(name, mbox, s, false).map(drop),
        SearchKey::Uid(s) => resolve(name, mbox, s, true).map(drop),
        _ => Ok(()),
    }
}
