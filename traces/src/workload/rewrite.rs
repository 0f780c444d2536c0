//! The variant pool (the recorded log's distinct commands, by name) and the rewriting of a
//! variant into a concrete command for the state at that point: mailbox names become the user's
//! mailboxes (in the variant's own quoting), sequence sets keep their shape but name messages that
//! exist, CHANGEDSINCE is the modseq the client last synced, and the step expects the answer the
//! [`Model`] predicts.

use std::collections::{BTreeMap, BTreeSet};
use std::num::{NonZeroU32, NonZeroU64};

use imap_types::command::{Command, CommandBody, FetchModifier};
use imap_types::core::{AString, AtomExt, IString, Quoted, Tag, Vec1};
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_types::flag::{Flag, StoreType};
use imap_types::mailbox::{ListMailbox, Mailbox, MailboxOther};
use imap_types::search::SearchKey;
use imap_types::secret::Secret;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

use super::model::{self, mailbox_name, MailboxState, Model, ModelError, SessionState};
use super::plan::{self, Planned, SessionPlan};
use super::{
    AppendStep, EmailRef, Session, SetupStep, Step, StepCommand, User, WorkloadConfig,
    WorkloadError,
};
use crate::log::{self, CommandName, TraceCommand, TraceLine};

/// The recorded log's distinct commands, by name, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariantPool {
    by_name: BTreeMap<CommandName, Vec<TraceLine>>,
}

impl VariantPool {
    /// The embedded log's 240 lines.
    pub fn recorded() -> Self {
        let mut by_name: BTreeMap<CommandName, Vec<TraceLine>> = BTreeMap::new();
        for line in log::recorded() {
            by_name.entry(line.name).or_default().push(line);
        }
        Self { by_name }
    }

    /// The variants of `name` (none for names the log does not hold).
    pub fn variants(&self, name: CommandName) -> &[TraceLine] {
        self.by_name.get(&name).map_or(&[], Vec::as_slice)
    }
}

/// Where a selected-state variant goes in a visit: flag/CHANGEDSINCE sync first, then SEARCH,
/// header fetches, body fetches, STORE, MOVE, EXPUNGE, and NOOP/CHECK/IDLE last.
pub(crate) fn visit_phase(line: &TraceLine) -> u8 {
    let TraceCommand::Codec(c) = &line.command else {
        return 60;
    };
    match &c.body {
        CommandBody::Fetch {
            macro_or_item_names,
            modifiers,
            ..
        } => {
            if modifiers
                .iter()
                .any(|m| matches!(m, FetchModifier::ChangedSince(_)))
            {
                return 0;
            }
            let MacroOrMessageDataItemNames::MessageDataItemNames(items) = macro_or_item_names
            else {
                return 20;
            };
            let sync = items.iter().all(|i| {
                matches!(
                    i,
                    MessageDataItemName::Uid
                        | MessageDataItemName::Flags
                        | MessageDataItemName::ModSeq
                )
            });
            let body = items.iter().any(|i| match i {
                MessageDataItemName::BodyExt { section, .. } => matches!(
                    section,
                    None | Some(Section::Text(_) | Section::Part(_) | Section::Mime(_))
                ),
                MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Text
                | MessageDataItemName::Binary { .. } => true,
                _ => false,
            });
            if sync {
                0
            } else if body {
                30
            } else {
                20
            }
        }
        CommandBody::Search { .. } => 10,
        CommandBody::Store { .. } => 40,
        CommandBody::Move { .. } => 50,
        CommandBody::Expunge | CommandBody::ExpungeUid { .. } => 55,
        _ => 60,
    }
}

/// How a variant writes a mailbox name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Atom,
    Quoted,
}

fn style_of(mailbox: &Mailbox<'_>) -> Style {
    match mailbox {
        Mailbox::Other(o) if matches!(o.inner(), AString::String(_)) => Style::Quoted,
        _ => Style::Atom,
    }
}

fn is_inbox(mailbox: &Mailbox<'_>) -> bool {
    mailbox_name(mailbox) == "INBOX"
}

fn astring(s: &str, style: Style) -> Option<AString<'static>> {
    if style == Style::Atom {
        if let Ok(a) = AtomExt::try_from(s.to_owned()) {
            return Some(AString::Atom(a));
        }
    }
    Quoted::try_from(s.to_owned())
        .ok()
        .map(|q| AString::String(IString::Quoted(q)))
}

/// `name` written in `style` (`INBOX` as the INBOX atom).
fn in_style(name: &str, style: Style) -> Option<Mailbox<'static>> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Some(Mailbox::Inbox);
    }
    MailboxOther::try_from(astring(name, style)?)
        .ok()
        .map(Mailbox::Other)
}

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
            expect: super::Expect::Ok,
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
                let parameters = parameters.clone();
                if matches!(body, CommandBody::Select { .. }) {
                    CommandBody::Select {
                        mailbox,
                        parameters,
                    }
                } else {
                    CommandBody::Examine {
                        mailbox,
                        parameters,
                    }
                }
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
                let (mname, mbox) = self.selected(st)?;
                let ids = ids(mbox, *uid);
                let sequence_set = remap(sequence_set, &ids, rng)?;
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
                let (_, mbox) = self.selected(st)?;
                let ids = ids(mbox, *uid);
                let mut set = remap(sequence_set, &ids, rng)?;
                // Spare one message from \Deleted, so an EXPUNGE or CLOSE leaves the mailbox
                // with messages for later visits.
                if *kind != StoreType::Remove && flags.contains(&Flag::Deleted) {
                    let targets = model::resolve(name, mbox, &set, *uid).ok()?;
                    let alive: Vec<usize> = (0..mbox.messages.len())
                        .filter(|&i| !mbox.messages[i].flags.contains(model::DELETED))
                        .collect();
                    if alive.len() >= 2 && alive.iter().all(|i| targets.contains(i)) {
                        let spare = *alive.last().expect("at least two");
                        let kept: Vec<u32> = targets
                            .iter()
                            .filter(|&&i| i != spare)
                            .map(|&i| ids[i])
                            .collect();
                        set = set_of(&kept)?;
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
                let (mname, mbox) = self.selected(st)?;
                let ids = ids(mbox, *uid);
                let mut set = remap(sequence_set, &ids, rng)?;
                // Leave a message behind, so later commands of the visit still name some.
                let targets = model::resolve(name, mbox, &set, *uid).ok()?;
                if targets.len() >= ids.len() && ids.len() >= 2 {
                    let kept: Vec<u32> = targets
                        .iter()
                        .take(ids.len() - 1)
                        .map(|&i| ids[i])
                        .collect();
                    set = set_of(&kept)?;
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

/// The numbers that name the messages of `mbox`, ascending: sequence numbers or UIDs.
fn ids(mbox: &MailboxState, uid: bool) -> Vec<u32> {
    if uid {
        mbox.uids()
    } else {
        (1..=mbox.messages.len() as u32).collect()
    }
}

/// The set of `values` (not empty), normalized.
fn set_of(values: &[u32]) -> Option<SequenceSet> {
    let seqs = values
        .iter()
        .map(|&v| NonZeroU32::new(v).map(|v| Sequence::Single(SeqOrUid::Value(v))))
        .collect::<Option<Vec<_>>>()?;
    let mut set = SequenceSet(Vec1::try_from(seqs).ok()?);
    set.normalize();
    Some(set)
}

/// `set`'s shape over the messages named by `ids` (ascending, not empty). If the recorded
/// numbers all fit, they name the messages at those positions. Otherwise each element moves by a
/// seeded offset, modulo the count: a single stays a single, a range keeps its width (up to the
/// mailbox's size), and `N:*` ("what is new since N") starts among the last five messages. `*`
/// stays `*`. `None` for an empty mailbox.
fn remap(set: &SequenceSet, ids: &[u32], rng: &mut ChaCha8Rng) -> Option<SequenceSet> {
    let n = ids.len();
    if n == 0 {
        return None;
    }
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(v) => Some(v.get() as usize),
        SeqOrUid::Asterisk => None,
    };
    let max = set
        .0
        .as_ref()
        .iter()
        .flat_map(|s| match s {
            Sequence::Single(a) => [value(a), None],
            Sequence::Range(a, b) => [value(a), value(b)],
        })
        .flatten()
        .max()
        .unwrap_or(0);
    let fits = max <= n;
    let shift = if fits { 0 } else { rng.gen_range(0..n) };
    let at = |p: usize| NonZeroU32::new(ids[p]).map(SeqOrUid::Value);
    let mut seqs = Vec::with_capacity(set.0.as_ref().len());
    for s in set.0.as_ref() {
        seqs.push(match (s, fits) {
            (Sequence::Single(SeqOrUid::Asterisk), _) => Sequence::Single(SeqOrUid::Asterisk),
            (Sequence::Single(SeqOrUid::Value(v)), _) => {
                Sequence::Single(at((v.get() as usize - 1 + shift) % n)?)
            }
            (Sequence::Range(a, b), true) => {
                let map = |x: &SeqOrUid| match value(x) {
                    Some(v) => at(v - 1),
                    None => Some(SeqOrUid::Asterisk),
                };
                Sequence::Range(map(a)?, map(b)?)
            }
            (Sequence::Range(a, b), false) => match (value(a), value(b)) {
                (Some(a), Some(b)) => {
                    let width = a.abs_diff(b).min(n - 1);
                    let p = ((a.min(b) - 1 + shift) % n).min(n - 1 - width);
                    Sequence::Range(at(p)?, at(p + width)?)
                }
                (Some(_), None) | (None, Some(_)) => {
                    let p = n - 1 - rng.gen_range(0..n.min(5));
                    Sequence::Range(at(p)?, SeqOrUid::Asterisk)
                }
                (None, None) => Sequence::Range(SeqOrUid::Asterisk, SeqOrUid::Asterisk),
            },
        });
    }
    let mut out = SequenceSet(Vec1::try_from(seqs).ok()?);
    out.normalize();
    Some(out)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    fn set(s: &str) -> SequenceSet {
        s.try_into().expect("a valid sequence set")
    }

    #[test]
    fn remap_keeps_numbers_that_fit_and_the_shape_of_those_that_do_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let ids = [3, 5, 8, 9, 12, 13];
        assert_eq!(remap(&set("1:*"), &ids, &mut rng), Some(set("3:*")));
        assert_eq!(remap(&set("2,4:5"), &ids, &mut rng), Some(set("5,9:12")));
        for _ in 0..50 {
            let r = remap(&set("60:62"), &ids, &mut rng).expect("a non-empty mailbox");
            let [Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b))] = r.0.as_ref() else {
                panic!("a range stays a range: {r:?}");
            };
            let (pa, pb) = (
                ids.iter()
                    .position(|&i| i == a.get())
                    .expect("an existing UID"),
                ids.iter()
                    .position(|&i| i == b.get())
                    .expect("an existing UID"),
            );
            assert_eq!(pb - pa, 2, "the width is kept");
            let r = remap(&set("86:*"), &ids, &mut rng).expect("a non-empty mailbox");
            let [Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Asterisk)] = r.0.as_ref() else {
                panic!("N:* stays N:*: {r:?}");
            };
            assert!(a.get() >= 5, "among the last five");
        }
        assert_eq!(remap(&set("1"), &[], &mut rng), None);
    }

    #[test]
    fn mailbox_names_keep_the_variants_quoting() {
        assert_eq!(in_style("INBOX", Style::Quoted), Some(Mailbox::Inbox));
        let atom = in_style("Sent", Style::Atom).expect("valid");
        assert!(matches!(&atom, Mailbox::Other(o) if matches!(o.inner(), AString::Atom(_))));
        let quoted = in_style("Sent", Style::Quoted).expect("valid");
        assert_eq!(style_of(&quoted), Style::Quoted);
        let spaced = in_style("My Folder", Style::Atom).expect("quoted instead");
        assert_eq!(style_of(&spaced), Style::Quoted);
    }
}
