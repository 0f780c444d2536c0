//! The rewriting of a variant into a concrete command for the state at that point: mailbox names
//! become the user's mailboxes (in the variant's own quoting), sequence sets keep their shape but
//! name messages that exist, CHANGEDSINCE is the modseq the client last synced, and the step
//! expects the answer the [`Model`] predicts.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use imap_types::command::{Command, CommandBody, FetchModifier};
use imap_types::core::{AString, IString, Quoted, Tag, Vec1};
use imap_types::flag::{Flag, StoreType};
use imap_types::mailbox::{ListMailbox, Mailbox};
use imap_types::search::SearchKey;
use imap_types::secret::Secret;
use imap_types::sequence::SequenceSet;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

use super::config::{WorkloadConfig, WorkloadError};
use super::model::{self, mailbox_name, MailboxState, Model, ModelError, SessionState};
use super::plan::{self, Planned, SessionPlan};
use super::quoting::{astring, in_style, is_inbox, style_of, Style};
use super::remap::{ids, remap, set_at};
use super::steps::{AppendStep, EmailRef, Expect, Session, SetupStep, Step, StepCommand, User};
use super::variants::VariantPool;
use crate::trace::{open_command, CommandName, TraceCommand};

/// Names of mailboxes the recorded clients asked for that the generated users do not have (Junk is
/// not one: the server gives every user the special-use mailboxes, Junk included).
const MISSING: [&str; 3] = ["Test", "Test.Coucou", "INBOX.Pourriel"];

/// What the plan says about a SELECT or EXAMINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpenHint {
    /// Name a mailbox the user does not have (the server answers NO).
    pub probe: bool,
    /// Commands naming messages follow: open a mailbox that has some.
    pub needs_messages: bool,
}

/// Turns planned variants into steps, keeping the model of the mailboxes up to date.
#[derive(Debug, Clone)]
pub(crate) struct Realiser<'p> {
    pool: &'p VariantPool,
    users: Vec<User>,
    /// Server state.
    pub model: Model,
    /// Per (user, mailbox), the HIGHESTMODSEQ the client last synced with CHANGEDSINCE.
    client_modseq: BTreeMap<(usize, String), u64>,
    /// Message-IDs of dataset emails, computed once.
    message_ids: BTreeMap<EmailRef, String>,
    /// Dataset index of the next APPENDed email.
    next_email: usize,
    dataset_seed: u64,
    sizes: Vec<u64>,
    missing_probability: f64,
    /// Number of the next tag (`A<n>`).
    next_tag: usize,
}

impl<'p> Realiser<'p> {
    /// A realiser starting from the state after `setup`.
    pub fn new(
        pool: &'p VariantPool,
        config: &WorkloadConfig,
        users: &[User],
        setup: &[SetupStep],
        dataset_seed: u64,
    ) -> Result<Self, WorkloadError> {
        let mut model = Model::new(users.len());
        let mut next_email = 0;
        for (i, s) in setup.iter().enumerate() {
            model
                .apply_setup(s)
                .map_err(|source| WorkloadError::Setup { step: i, source })?;
            if let SetupStep::Deliver { email, .. } = s {
                next_email = next_email.max(email.index + 1);
            }
        }
        Ok(Self {
            pool,
            users: users.to_vec(),
            model,
            client_modseq: BTreeMap::new(),
            message_ids: BTreeMap::new(),
            next_email,
            dataset_seed,
            sizes: config.email_sizes.clone(),
            missing_probability: config.missing_mailbox_probability,
            next_tag: 1,
        })
    }

    /// The session of `plan` (number `index` of the workload).
    pub fn session(
        &mut self,
        index: usize,
        plan: &SessionPlan,
        rng: &mut ChaCha8Rng,
    ) -> Result<Session, WorkloadError> {
        let mut st = SessionState::new(plan.user);
        let mut run = SessionRun::default();
        let mut commands = Vec::new();
        let mut push = |this: &mut Self,
                        p: Planned,
                        hint: OpenHint,
                        st: &mut SessionState,
                        run: &mut SessionRun,
                        rng: &mut ChaCha8Rng|
         -> Result<(), WorkloadError> {
            match this.step(st, p, hint, run, rng) {
                Ok(Some(step)) => {
                    commands.push(step);
                    Ok(())
                }
                Ok(None) => Err(WorkloadError::Exhausted { user: st.user }),
                Err(source) => Err(WorkloadError::Invalid {
                    session: index,
                    command: commands.len(),
                    source,
                }),
            }
        };
        let none = OpenHint::default();
        push(self, plan.login, none, &mut st, &mut run, rng)?;
        for &p in &plan.pre {
            push(self, p, none, &mut st, &mut run, rng)?;
        }
        for visit in &plan.visits {
            for &p in &visit.before {
                push(self, p, none, &mut st, &mut run, rng)?;
            }
            let idle = visit.items.is_empty() && visit.closer.is_none();
            let hint = OpenHint {
                probe: idle && rng.gen_bool(self.missing_probability),
                needs_messages: visit.needs_messages(),
            };
            push(self, visit.opener, hint, &mut st, &mut run, rng)?;
            for &p in &visit.items {
                push(self, p, none, &mut st, &mut run, rng)?;
            }
            if let Some(c) = visit.closer {
                push(self, c, none, &mut st, &mut run, rng)?;
            }
        }
        if let Some(l) = plan.logout {
            push(self, l, none, &mut st, &mut run, rng)?;
        }
        Ok(Session {
            user: plan.user,
            ends_with_logout: plan.logout.is_some(),
            commands,
        })
    }

    /// The step of variant `p` for the current state, applied to the model: `Ok(None)` if the
    /// state cannot hold it (no mailbox selected for a selected-state command, or none with
    /// messages for one that names messages).
    pub fn step(
        &mut self,
        st: &mut SessionState,
        p: Planned,
        hint: OpenHint,
        run: &mut SessionRun,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Step>, ModelError> {
        let pool = self.pool;
        let Some(line) = pool.variants(p.name).get(p.variant) else {
            return Ok(None);
        };
        let tag = Tag::try_from(format!("A{}", self.next_tag)).expect("A<digits> is a valid tag");
        let command = match &line.command {
            TraceCommand::Raw { name, .. } => StepCommand::Trace(TraceCommand::Raw {
                name: *name,
                wire: line.command.wire_with_tag(&tag),
            }),
            TraceCommand::Codec(c) => match self.body(st, p.name, &c.body, hint, run, rng) {
                None => return Ok(None),
                Some(Rewritten::Body(body)) => {
                    StepCommand::Trace(TraceCommand::Codec(Command { tag, body }))
                }
                Some(Rewritten::Append {
                    mailbox,
                    flags,
                    date,
                    email,
                }) => StepCommand::Append(AppendStep {
                    tag,
                    mailbox,
                    flags,
                    date,
                    email,
                }),
            },
        };
        self.next_tag += 1;
        let mut step = Step {
            name: p.name,
            command,
            expect: Expect::Ok,
        };
        step.expect = self.model.apply(st, &step)?;
        Ok(Some(step))
    }

    fn selected<'a>(&'a self, st: &SessionState) -> Option<(&'a str, &'a MailboxState)> {
        let sel = st.selected.as_ref()?;
        let (name, mbox) = self
            .model
            .users
            .get(st.user)?
            .mailboxes
            .get_key_value(&sel.mailbox)?;
        Some((name.as_str(), mbox))
    }

    /// The selected mailbox (name and state), the numbers that name its messages (UIDs if `uid`)
    /// and `set` remapped over them.
    fn selected_set<'a>(
        &'a self,
        st: &SessionState,
        set: &SequenceSet,
        uid: bool,
        rng: &mut ChaCha8Rng,
    ) -> Option<(&'a str, &'a MailboxState, Vec<u32>, SequenceSet)> {
        let (name, mbox) = self.selected(st)?;
        let ids = ids(mbox, uid);
        let set = remap(set, &ids, rng)?;
        Some((name, mbox, ids, set))
    }

    fn existing(&self, user: usize) -> Vec<String> {
        self.model
            .users
            .get(user)
            .map(|u| u.mailboxes.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn missing_name(&self, user: usize, rng: &mut ChaCha8Rng) -> String {
        let existing = self.existing(user);
        let free: Vec<&str> = MISSING
            .iter()
            .copied()
            .filter(|m| !existing.iter().any(|e| e == m))
            .collect();
        match free.choose(rng) {
            Some(m) => (*m).to_owned(),
            None => (0..)
                .map(|i| format!("Missing{i}"))
                .find(|m| !existing.contains(m))
                .expect("some numbered name is free"),
        }
    }

    /// A mailbox of `user` among `candidates`, INBOX weighing three times another.
    fn pick(candidates: &[String], rng: &mut ChaCha8Rng) -> Option<String> {
        let weights: Vec<f64> = candidates
            .iter()
            .map(|c| if c == "INBOX" { 3.0 } else { 1.0 })
            .collect();
        plan::weighted(rng, &weights).map(|i| candidates[i].clone())
    }

    fn message_id(&mut self, email: EmailRef) -> Option<String> {
        if let Some(id) = self.message_ids.get(&email) {
            return Some(id.clone());
        }
        let id = email.email().ok()?.message_id;
        self.message_ids.insert(email, id.clone());
        Some(id)
    }

    fn body(
        &mut self,
        st: &SessionState,
        name: CommandName,
        body: &CommandBody<'static>,
        hint: OpenHint,
        run: &mut SessionRun,
        rng: &mut ChaCha8Rng,
    ) -> Option<Rewritten> {
        let user = st.user;
        let body = match body {
            CommandBody::Login { username, .. } => {
                let style = match username {
                    AString::Atom(_) => Style::Atom,
                    AString::String(_) => Style::Quoted,
                };
                let u = self.users.get(user)?;
                CommandBody::Login {
                    username: astring(&u.name, style)?,
                    password: Secret::new(astring(&u.password, Style::Atom)?),
                }
            }
            CommandBody::Select {
                mailbox,
                parameters,
            }
            | CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                let target = self.open_target(user, mailbox, hint, rng)?;
                let mailbox = in_style(&target, style_of(mailbox))?;
                open_command(name, mailbox, parameters.clone())
            }
            CommandBody::Subscribe { mailbox } => {
                let existing = self.existing(user);
                let m = mailbox_name(mailbox);
                let target = if existing.contains(&m) {
                    m
                } else {
                    let others: Vec<String> =
                        existing.iter().filter(|e| *e != "INBOX").cloned().collect();
                    others
                        .choose(rng)
                        .cloned()
                        .unwrap_or_else(|| "INBOX".to_owned())
                };
                CommandBody::Subscribe {
                    mailbox: in_style(&target, style_of(mailbox))?,
                }
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                let existing = self.existing(user);
                let target = if rng.gen_bool(self.missing_probability) {
                    self.missing_name(user, rng)
                } else if is_inbox(mailbox) && !run.status_done.contains("INBOX") {
                    "INBOX".to_owned()
                } else {
                    let fresh: Vec<String> = existing
                        .iter()
                        .filter(|e| !run.status_done.contains(*e))
                        .cloned()
                        .collect();
                    let from = if fresh.is_empty() { &existing } else { &fresh };
                    from.choose(rng)?.clone()
                };
                run.status_done.insert(target.clone());
                CommandBody::Status {
                    mailbox: in_style(&target, style_of(mailbox))?,
                    item_names: item_names.clone(),
                }
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let others: Vec<String> = self
                    .existing(user)
                    .into_iter()
                    .filter(|e| e != "INBOX")
                    .collect();
                let reference = match mailbox_name(reference).strip_suffix('.') {
                    Some(parent) if !parent.eq_ignore_ascii_case("INBOX") => {
                        match others.choose(rng) {
                            Some(o) => in_style(&format!("{o}."), style_of(reference))?,
                            None => reference.clone(),
                        }
                    }
                    _ => reference.clone(),
                };
                let mailbox_wildcard = match mailbox_wildcard {
                    ListMailbox::String(IString::Quoted(q))
                        if !q.inner().contains(['*', '%'])
                            && !q.inner().is_empty()
                            && !q.inner().eq_ignore_ascii_case("INBOX") =>
                    {
                        match others.choose(rng) {
                            Some(o) => ListMailbox::String(IString::Quoted(
                                Quoted::try_from(o.clone()).ok()?,
                            )),
                            None => mailbox_wildcard.clone(),
                        }
                    }
                    _ => mailbox_wildcard.clone(),
                };
                CommandBody::List {
                    reference,
                    mailbox_wildcard,
                }
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                ..
            } => {
                let existing = self.existing(user);
                let m = mailbox_name(mailbox);
                let target = if existing.contains(&m) {
                    m
                } else {
                    Self::pick(&existing, rng)?
                };
                let size = *self.sizes.choose(rng)?;
                let email = EmailRef {
                    seed: self.dataset_seed,
                    index: self.next_email,
                    size,
                };
                self.next_email += 1;
                return Some(Rewritten::Append {
                    mailbox: in_style(&target, style_of(mailbox))?,
                    flags: flags.clone(),
                    date: date.clone(),
                    email,
                });
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let (mname, mbox, _, sequence_set) =
                    self.selected_set(st, sequence_set, *uid, rng)?;
                let key = (user, mname.to_owned());
                let highest = mbox.highest_modseq;
                let mut synced = false;
                let modifiers = modifiers
                    .iter()
                    .map(|m| match m {
                        FetchModifier::ChangedSince(_) => {
                            synced = true;
                            let known = self
                                .client_modseq
                                .get(&key)
                                .copied()
                                .filter(|&k| k <= highest);
                            let v = known
                                .unwrap_or_else(|| highest.saturating_sub(rng.gen_range(0..=3)));
                            FetchModifier::ChangedSince(
                                NonZeroU64::new(v.max(1)).expect("at least 1"),
                            )
                        }
                        other => other.clone(),
                    })
                    .collect();
                if synced {
                    self.client_modseq.insert(key, highest);
                }
                CommandBody::Fetch {
                    sequence_set,
                    macro_or_item_names: macro_or_item_names.clone(),
                    uid: *uid,
                    modifiers,
                }
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                let (_, mbox) = self.selected(st)?;
                let mbox = mbox.clone();
                let keys = criteria
                    .as_ref()
                    .iter()
                    .map(|k| self.search_key(&mbox, k, rng))
                    .collect::<Option<Vec<_>>>()?;
                CommandBody::Search {
                    charset: charset.clone(),
                    criteria: Vec1::try_from(keys).ok()?,
                    uid: *uid,
                }
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let (_, mbox, ids, mut set) = self.selected_set(st, sequence_set, *uid, rng)?;
                // Spare one message from \Deleted, so an EXPUNGE or CLOSE leaves the mailbox
                // with messages for later visits.
                if *kind != StoreType::Remove && flags.contains(&Flag::Deleted) {
                    let targets = model::resolve(name, mbox, &set, *uid).ok()?;
                    let alive: Vec<usize> = (0..mbox.messages.len())
                        .filter(|&i| !mbox.messages[i].flags.contains(model::DELETED))
                        .collect();
                    if alive.len() >= 2 && alive.iter().all(|i| targets.contains(i)) {
                        let spare = *alive.last().expect("at least two");
                        set = set_at(&ids, targets.iter().copied().filter(|&i| i != spare))?;
                    }
                }
                CommandBody::Store {
                    sequence_set: set,
                    kind: *kind,
                    response: *response,
                    flags: flags.clone(),
                    uid: *uid,
                    modifiers: modifiers.clone(),
                }
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                let (mname, mbox, ids, mut set) = self.selected_set(st, sequence_set, *uid, rng)?;
                // Leave a message behind, so later commands of the visit still name some.
                let targets = model::resolve(name, mbox, &set, *uid).ok()?;
                if targets.len() >= ids.len() && ids.len() >= 2 {
                    set = set_at(&ids, targets.iter().copied().take(ids.len() - 1))?;
                }
                let m = mailbox_name(mailbox);
                let others: Vec<String> = self
                    .existing(user)
                    .into_iter()
                    .filter(|e| e != mname)
                    .collect();
                let target = if others.contains(&m) {
                    m
                } else {
                    others.choose(rng)?.clone()
                };
                CommandBody::Move {
                    sequence_set: set,
                    mailbox: in_style(&target, style_of(mailbox))?,
                    uid: *uid,
                }
            }
            CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
                if st.selected.is_none() =>
            {
                return None;
            }
            other => other.clone(),
        };
        Some(Rewritten::Body(body))
    }

    /// The mailbox a SELECT/EXAMINE opens.
    fn open_target(
        &self,
        user: usize,
        recorded: &Mailbox<'_>,
        hint: OpenHint,
        rng: &mut ChaCha8Rng,
    ) -> Option<String> {
        if hint.probe {
            return Some(self.missing_name(user, rng));
        }
        let u = self.model.users.get(user)?;
        let with = |min: usize| -> Vec<String> {
            u.mailboxes
                .iter()
                .filter(|(_, m)| m.messages.len() >= min)
                .map(|(n, _)| n.clone())
                .collect()
        };
        let candidates = if hint.needs_messages {
            let three = with(3);
            if three.is_empty() {
                with(1)
            } else {
                three
            }
        } else {
            with(0)
        };
        if is_inbox(recorded) && candidates.iter().any(|c| c == "INBOX") {
            return Some("INBOX".to_owned());
        }
        Self::pick(&candidates, rng)
    }

    fn search_key(
        &mut self,
        mbox: &MailboxState,
        key: &SearchKey<'static>,
        rng: &mut ChaCha8Rng,
    ) -> Option<SearchKey<'static>> {
        Some(match key {
            SearchKey::And(keys) => SearchKey::And(
                Vec1::try_from(
                    keys.as_ref()
                        .iter()
                        .map(|k| self.search_key(mbox, k, rng))
                        .collect::<Option<Vec<_>>>()?,
                )
                .ok()?,
            ),
            SearchKey::Not(k) => SearchKey::Not(Box::new(self.search_key(mbox, k, rng)?)),
            SearchKey::Or(a, b) => SearchKey::Or(
                Box::new(self.search_key(mbox, a, rng)?),
                Box::new(self.search_key(mbox, b, rng)?),
            ),
            SearchKey::SequenceSet(s) => SearchKey::SequenceSet(remap(s, &ids(mbox, false), rng)?),
            SearchKey::Uid(s) => SearchKey::Uid(remap(s, &ids(mbox, true), rng)?),
            SearchKey::Header(field, value)
                if field.as_ref().eq_ignore_ascii_case(b"message-id") =>
            {
                // Clients look up a message they know (e.g. the one they just sent).
                let id = mbox
                    .messages
                    .choose(rng)
                    .and_then(|m| self.message_id(m.email));
                let value = match id {
                    Some(id) => astring(&id, Style::Atom)?,
                    None => value.clone(),
                };
                SearchKey::Header(field.clone(), value)
            }
            other => other.clone(),
        })
    }
}

/// State of one session while it is realised.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionRun {
    /// Mailboxes a STATUS of this session named already.
    pub status_done: BTreeSet<String>,
}

/// A rewritten body, or an APPEND by reference.
enum Rewritten {
    Body(CommandBody<'static>),
    Append {
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<imap_types::datetime::DateTime>,
        email: EmailRef,
    },
}
