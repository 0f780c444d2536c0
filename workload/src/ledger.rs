//! The invariants every fault scenario checks: a ledger of what the simulated clients were told
//! (which APPENDs and LMTP deliveries were acknowledged, which STOREs, EXPUNGEs, COPYs and MOVEs
//! completed, which failed or were cut off), observations checked as they arrive (UIDVALIDITY
//! stable, MODSEQ never going back within a session, a UID never naming two messages), and the
//! final check that a fresh session runs once the faults are off:
//!
//! - every acknowledged APPEND and LMTP delivery is present exactly once, with identical bytes
//!   and the flags the acknowledged commands left it with;
//! - a message whose APPEND or delivery was refused (NO, 4xx) is absent, one whose command was cut
//!   off is present at most once, an EXPUNGEd or MOVEd-out message stays gone;
//! - UIDs are unique and increasing, never change, and have no gap in a mailbox nothing was ever
//!   removed from; UIDVALIDITY is stable; HIGHESTMODSEQ never goes back;
//! - the server's live heap comes back to its idle level ([`HEAP_TOLERANCE_BYTES`]).
//!
//! Messages are known by the digest of their bytes: a scenario never puts two messages with the
//! same bytes in one mailbox. A violation is a sentence naming the mailbox, the message and what
//! the clients were told; it fails the run.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use blake2::{Blake2s256, Digest as _};
use imap_proto::Status;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{ClientError, ImapClient, Reply};
use crate::responses::{fetched, flag_key, select_figures};

/// How much the server's idle live heap may grow over a fault scenario, in bytes: at most this
/// much above the level measured before the faults, both measured the same way once every
/// session has ended (the storage client's pool full, see `scenarios::faults::warm`). The same
/// workloads without any fault end 0.1 to 0.8 KiB above that level; a leaked session, watcher,
/// pooled connection or storage request per fault goes beyond it.
pub const HEAP_TOLERANCE_BYTES: u64 = 8 * 1024;

/// What turmoil 0.7.2 keeps, on the connecting host's account, of each connection attempt that
/// fails or is given up (its socket stays in the host's table; measured 2,040 to 2,048 B each).
/// The heap check allows this much per abandoned attempt: a simulator artifact, not the server's.
pub const ABANDONED_CONNECT_BYTES: u64 = 2_048;

/// How many violation descriptions a ledger keeps (all are counted).
const VIOLATIONS_KEPT_MAX: usize = 64;

/// A message's identity: the BLAKE2s-256 digest of its bytes.
pub type Digest = [u8; 32];

/// The digest of `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    Blake2s256::digest(bytes).into()
}

/// How a command ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Tagged OK, or LMTP 250.
    Ok,
    /// Tagged NO, or an LMTP 4xx/5xx: the command must have had no effect (RFC 3501 for APPEND
    /// and COPY, RFC 5321 for delivery).
    Refused,
    /// No answer: the connection broke or the server crashed while the command ran.
    Unknown,
}

/// Whether a message must be in a mailbox at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Exactly once.
    Present,
    /// Not at all.
    Absent,
    /// At most once (the command that would add or remove it got no answer, or failed partway).
    Either,
}

/// What the clients know of one flag of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagState {
    /// Set by an acknowledged command.
    Set,
    /// Cleared by an acknowledged command.
    Unset,
    /// Touched by a command that failed or got no answer.
    Unknown,
}

/// How a STORE changes flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

/// One message the clients put in a mailbox (or tried to).
#[derive(Clone, Debug)]
pub struct Expected {
    /// Its size in bytes.
    pub size: usize,
    /// Whether it must be there.
    pub presence: Presence,
    /// Why, for violation messages.
    pub why: String,
    /// Flags by lowercase name; a flag not listed must be unset.
    pub flags: BTreeMap<String, FlagState>,
    /// The UID the server told a client (APPENDUID, COPYUID, FETCH), if any.
    pub uid: Option<u32>,
}

impl Expected {
    fn flags_as_set(&self) -> BTreeSet<String> {
        self.flags
            .iter()
            .filter(|(_, s)| **s == FlagState::Set)
            .map(|(f, _)| f.clone())
            .collect()
    }
}

/// What the clients know of one mailbox.
#[derive(Clone, Debug, Default)]
pub struct MailboxLedger {
    /// Messages by digest.
    pub messages: BTreeMap<Digest, Expected>,
    /// UIDVALIDITY, once seen.
    pub uidvalidity: Option<u32>,
    /// Highest HIGHESTMODSEQ a SELECT reported.
    pub highest_modseq: u64,
    /// UID -> the message it named when a client saw it.
    pub uids: BTreeMap<u32, Digest>,
    /// Whether a command that removes messages (EXPUNGE, MOVE out) ever ran on it.
    pub removals: bool,
}

/// One message as the final check listed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// Its UID.
    pub uid: u32,
    /// Flags, lowercase, `\recent` left out.
    pub flags: BTreeSet<String>,
    /// Its MODSEQ.
    pub modseq: u64,
    /// Digest of its bytes.
    pub digest: Digest,
}

/// A mailbox as the final check listed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Messages in sequence order.
    pub messages: Vec<Listed>,
}

/// One session's view of one selected mailbox: MODSEQ must never go back in it.
#[derive(Debug, Default)]
pub struct View {
    mailbox: String,
    highest_modseq: u64,
    modseqs: BTreeMap<u32, u64>,
}

impl View {
    /// A view of `mailbox` (after a SELECT).
    pub fn new(mailbox: &str) -> View {
        View {
            mailbox: mailbox.to_string(),
            ..View::default()
        }
    }

    /// The mailbox viewed.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }
}

/// The clients' knowledge and the violations found so far.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Mailboxes by name.
    pub mailboxes: BTreeMap<String, MailboxLedger>,
    /// MOVEs that failed partway: the message must be in at least one of the two mailboxes
    /// (RFC 6851 3.3: "no message can be lost").
    in_one_of: Vec<(Digest, String, String, String)>,
    violations: Vec<String>,
    violation_count: u64,
}

/// A ledger shared by a scenario's clients (the simulation is single-threaded).
pub type SharedLedger = Rc<RefCell<Ledger>>;

fn short(d: &Digest) -> String {
    hex::encode(&d[..4])
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A shared empty ledger.
    pub fn shared() -> SharedLedger {
        Rc::new(RefCell::new(Ledger::new()))
    }

    /// Records a violation.
    pub fn violation(&mut self, text: String) {
        self.violation_count += 1;
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(text);
        }
    }

    /// How many violations were found.
    pub fn violation_count(&self) -> u64 {
        self.violation_count
    }

    /// The first violations, described.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// The ledger of `mailbox` (created empty).
    pub fn mailbox(&mut self, mailbox: &str) -> &mut MailboxLedger {
        self.mailboxes.entry(mailbox.to_string()).or_default()
    }

    /// The digest of the message a client saw with `uid` in `mailbox`.
    pub fn digest_of(&self, mailbox: &str, uid: u32) -> Option<Digest> {
        self.mailboxes.get(mailbox)?.uids.get(&uid).copied()
    }

    /// Remembers that `uid` names `digest` in `mailbox`; a UID naming another message, or a
    /// message getting another UID, is a violation.
    pub fn note_uid(&mut self, mailbox: &str, uid: u32, digest: &Digest, context: &str) {
        let mb = self.mailbox(mailbox);
        let mut problems = Vec::new();
        match mb.uids.get(&uid) {
            Some(d) if d != digest => problems.push(format!(
                "{mailbox}: UID {uid} named message {} and now names {} ({context})",
                short(d),
                short(digest)
            )),
            _ => {
                mb.uids.insert(uid, *digest);
            }
        }
        if let Some(expected) = mb.messages.get_mut(digest) {
            match expected.uid {
                Some(u) if u != uid => problems.push(format!(
                    "{mailbox}: message {} ({}) had UID {u} and now has UID {uid} ({context})",
                    short(digest),
                    expected.why
                )),
                _ => expected.uid = Some(uid),
            }
        }
        for p in problems {
            self.violation(p);
        }
    }

    /// An APPEND (or any command adding one message, e.g. an LMTP delivery with `flags` empty) of
    /// `bytes` to `mailbox`, ended as `ack`; `uid` is the APPENDUID if the server gave one.
    pub fn add(
        &mut self,
        mailbox: &str,
        bytes: &[u8],
        flags: &[&str],
        ack: Ack,
        uid: Option<u32>,
        what: &str,
    ) {
        let d = digest(bytes);
        let mb = self.mailbox(mailbox);
        let entry = mb.messages.entry(d).or_insert_with(|| Expected {
            size: bytes.len(),
            presence: Presence::Absent,
            why: String::new(),
            flags: BTreeMap::new(),
            uid: None,
        });
        match ack {
            Ack::Ok => {
                entry.presence = Presence::Present;
                entry.why = format!("{what} was acknowledged");
                entry.flags = all_set(flags);
            }
            Ack::Refused if entry.presence != Presence::Present => {
                entry.presence = if entry.presence == Presence::Either {
                    Presence::Either
                } else {
                    Presence::Absent
                };
                entry.why = format!("{what} was refused or never completed");
                entry.flags = all_set(flags);
            }
            Ack::Unknown if entry.presence != Presence::Present => {
                entry.presence = Presence::Either;
                entry.why = format!("{what} got no answer");
                entry.flags = all_set(flags);
            }
            Ack::Refused | Ack::Unknown => {}
        }
        if let Some(uid) = uid {
            self.note_uid(mailbox, uid, &d, what);
        }
    }

    /// Sets what is known of `flag` on message `digest` of `mailbox` (e.g. `Unknown` for a flag
    /// a command the ledger does not model may have changed).
    pub fn set_flag_state(&mut self, mailbox: &str, digest: &Digest, flag: &str, state: FlagState) {
        if let Some(expected) = self.mailbox(mailbox).messages.get_mut(digest) {
            expected.flags.insert(flag_key(flag), state);
        }
    }

    /// A STORE of `flags` with `op` on the messages `targets` of `mailbox`, ended as `ack`.
    pub fn store(
        &mut self,
        mailbox: &str,
        targets: &[Digest],
        op: FlagOp,
        flags: &[&str],
        ack: Ack,
    ) {
        let keys: Vec<String> = flags.iter().map(|f| flag_key(f)).collect();
        let mb = self.mailbox(mailbox);
        for d in targets {
            let Some(expected) = mb.messages.get_mut(d) else {
                continue;
            };
            if ack != Ack::Ok {
                // Any flag the command could have touched is unknown now.
                let touched: Vec<String> = match op {
                    FlagOp::Replace => expected
                        .flags
                        .keys()
                        .cloned()
                        .chain(keys.iter().cloned())
                        .collect(),
                    _ => keys.clone(),
                };
                for k in touched {
                    expected.flags.insert(k, FlagState::Unknown);
                }
                continue;
            }
            match op {
                FlagOp::Add => {
                    for k in &keys {
                        expected.flags.insert(k.clone(), FlagState::Set);
                    }
                }
                FlagOp::Remove => {
                    for k in &keys {
                        expected.flags.insert(k.clone(), FlagState::Unset);
                    }
                }
                FlagOp::Replace => {
                    for state in expected.flags.values_mut() {
                        *state = FlagState::Unset;
                    }
                    for k in &keys {
                        expected.flags.insert(k.clone(), FlagState::Set);
                    }
                }
            }
        }
    }

    /// An EXPUNGE (or CLOSE; a UID EXPUNGE of `only`) of `mailbox`, ended as `ack`: messages
    /// marked `\Deleted` go; those whose `\Deleted` is unknown, or when the command failed, may go.
    pub fn expunge(&mut self, mailbox: &str, only: Option<&[Digest]>, ack: Ack, what: &str) {
        let mb = self.mailbox(mailbox);
        mb.removals = true;
        for (d, expected) in mb.messages.iter_mut() {
            if only.is_some_and(|set| !set.contains(d)) {
                continue;
            }
            let deleted = expected.flags.get("\\deleted").copied();
            if expected.presence == Presence::Absent {
                continue;
            }
            match (deleted, ack) {
                (Some(FlagState::Set), Ack::Ok) => {
                    expected.presence = Presence::Absent;
                    expected.why = format!("{what} expunged it");
                }
                (Some(FlagState::Set), _) | (Some(FlagState::Unknown), _) => {
                    expected.presence = Presence::Either;
                    expected.why = format!("{what} may have expunged it");
                }
                _ => {}
            }
        }
    }

    /// A COPY (`moved` false) or MOVE of the messages `targets` from `from` to `to`, ended as
    /// `ack`; `dest_uids` from COPYUID, in the order of `targets`, if the server gave them.
    pub fn transfer(
        &mut self,
        from: &str,
        to: &str,
        targets: &[Digest],
        moved: bool,
        ack: Ack,
        dest_uids: Option<&[u32]>,
        what: &str,
    ) {
        let sources: Vec<(Digest, Expected)> = {
            let src = self.mailbox(from);
            if moved {
                src.removals = true;
            }
            targets
                .iter()
                .filter_map(|d| src.messages.get(d).map(|e| (*d, e.clone())))
                .collect()
        };
        for (i, (d, source)) in sources.iter().enumerate() {
            {
                let dst = self.mailbox(to);
                let entry = dst.messages.entry(*d).or_insert_with(|| Expected {
                    size: source.size,
                    presence: Presence::Absent,
                    why: String::new(),
                    flags: source.flags.clone(),
                    uid: None,
                });
                match ack {
                    Ack::Ok => {
                        entry.presence = match source.presence {
                            Presence::Present => Presence::Present,
                            // A copy of a message that may not exist may not exist either.
                            _ => Presence::Either,
                        };
                        entry.why = format!("{what} was acknowledged");
                        entry.flags = source.flags.clone();
                    }
                    // RFC 3501 6.4.7: a failed COPY leaves the destination as it was. RFC 6851
                    // 3.3: a failed MOVE leaves each message in at least one of the two.
                    Ack::Refused if !moved => {
                        if entry.presence == Presence::Absent {
                            entry.why = format!("{what} was refused");
                        }
                    }
                    _ => {
                        if entry.presence != Presence::Present {
                            entry.presence = Presence::Either;
                            entry.why = format!("{what} failed or got no answer");
                            entry.flags = source.flags.clone();
                        }
                    }
                }
            }
            if let (Ack::Ok, Some(uids)) = (ack, dest_uids) {
                if let Some(uid) = uids.get(i) {
                    self.note_uid(to, *uid, d, what);
                }
            }
            if moved {
                let src = self.mailbox(from);
                if let Some(e) = src.messages.get_mut(d) {
                    match ack {
                        Ack::Ok => {
                            e.presence = Presence::Absent;
                            e.why = format!("{what} moved it out");
                        }
                        _ if e.presence != Presence::Absent => {
                            e.presence = Presence::Either;
                            e.why = format!("{what} may have moved it out");
                        }
                        _ => {}
                    }
                }
                if ack != Ack::Ok && source.presence == Presence::Present {
                    self.in_one_of
                        .push((*d, from.to_string(), to.to_string(), what.to_string()));
                }
            }
        }
    }

    /// Checks a SELECT reply: UIDVALIDITY stable, HIGHESTMODSEQ never below an earlier SELECT's.
    /// Returns the session's view of the mailbox.
    pub fn observe_select(&mut self, mailbox: &str, reply: &Reply, context: &str) -> View {
        let (validity, highest, _) = select_figures(reply);
        let mut problems = Vec::new();
        let mb = self.mailbox(mailbox);
        if let Some(v) = validity {
            match mb.uidvalidity {
                Some(old) if old != v => problems.push(format!(
                    "{mailbox}: UIDVALIDITY changed from {old} to {v} ({context})"
                )),
                _ => mb.uidvalidity = Some(v),
            }
        }
        if let Some(h) = highest {
            if h < mb.highest_modseq {
                problems.push(format!(
                    "{mailbox}: HIGHESTMODSEQ went back from {} to {h} ({context})",
                    mb.highest_modseq
                ));
            }
            mb.highest_modseq = mb.highest_modseq.max(h);
        }
        for p in problems {
            self.violation(p);
        }
        let mut view = View::new(mailbox);
        view.highest_modseq = highest.unwrap_or(0);
        view
    }

    /// Checks the FETCH responses of a reply seen in `view`: UIDs increasing with sequence
    /// numbers, MODSEQ never going back, fetched bytes those of the message the UID names.
    pub fn observe_fetch(&mut self, view: &mut View, reply: &Reply, context: &str) {
        let mailbox = view.mailbox.clone();
        let mut last: Option<(u32, u32)> = None;
        for f in fetched(reply) {
            if let (Some(uid), Some((seq, prev))) = (f.uid, last) {
                if f.seq > seq && uid <= prev {
                    self.violation(format!(
                        "{mailbox}: UID {uid} at sequence {} is not above UID {prev} at {seq} ({context})",
                        f.seq
                    ));
                }
            }
            if let Some(uid) = f.uid {
                last = Some((f.seq, uid));
                if let Some(m) = f.modseq {
                    let old = view.modseqs.insert(uid, m).unwrap_or(0);
                    if m < old {
                        self.violation(format!(
                            "{mailbox}: MODSEQ of UID {uid} went back from {old} to {m} ({context})"
                        ));
                        view.modseqs.insert(uid, old);
                    }
                    view.highest_modseq = view.highest_modseq.max(m);
                }
                if let Some(body) = &f.body {
                    let d = digest(body);
                    let known = self
                        .mailboxes
                        .get(&mailbox)
                        .is_some_and(|mb| mb.messages.contains_key(&d));
                    if known {
                        self.note_uid(&mailbox, uid, &d, context);
                    } else if let Some(expected) = self.digest_of(&mailbox, uid) {
                        self.violation(format!(
                            "{mailbox}: FETCH of UID {uid} gave {} bytes that are no message's; UID {uid} is message {} ({context})",
                            body.len(),
                            short(&expected)
                        ));
                    }
                }
            }
        }
    }

    /// Lists `mailbox` with a fresh session and checks it against the ledger.
    pub async fn verify<S: AsyncRead + AsyncWrite + Unpin>(
        ledger: &SharedLedger,
        client: &mut ImapClient<S>,
        mailbox: &str,
        context: &str,
    ) -> Result<Listing, ClientError> {
        let reply = client
            .command(&format!("SELECT \"{mailbox}\" (CONDSTORE)"))
            .await?;
        if reply.status != Some(Status::Ok) {
            ledger.borrow_mut().violation(format!(
                "{mailbox}: final SELECT did not succeed with faults off ({context})"
            ));
            return Ok(Listing::default());
        }
        let (validity, highest, exists) = select_figures(&reply);
        ledger.borrow_mut().observe_select(mailbox, &reply, context);
        let exists = exists.unwrap_or(0);
        let mut listing = Listing {
            uidvalidity: validity.unwrap_or(0),
            messages: Vec::new(),
        };
        if exists > 0 {
            let reply = client
                .command("UID FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[])")
                .await?;
            if reply.status != Some(Status::Ok) {
                ledger.borrow_mut().violation(format!(
                    "{mailbox}: final FETCH did not succeed with faults off ({context})"
                ));
                return Ok(listing);
            }
            for f in fetched(&reply) {
                listing.messages.push(Listed {
                    uid: f.uid.unwrap_or(0),
                    flags: f.flags.unwrap_or_default(),
                    modseq: f.modseq.unwrap_or(0),
                    digest: digest(f.body.as_deref().unwrap_or_default()),
                });
            }
        }
        let mut ledger = ledger.borrow_mut();
        if listing.messages.len() != exists as usize {
            ledger.violation(format!(
                "{mailbox}: SELECT said {exists} EXISTS, FETCH 1:* listed {} ({context})",
                listing.messages.len()
            ));
        }
        ledger.check_listing(mailbox, &listing, highest.unwrap_or(0), context);
        Ok(listing)
    }

    /// Checks a final listing of `mailbox` against what the clients were told.
    pub fn check_listing(
        &mut self,
        mailbox: &str,
        listing: &Listing,
        highest_modseq: u64,
        context: &str,
    ) {
        let mut problems = Vec::new();
        let mut counts: BTreeMap<Digest, usize> = BTreeMap::new();
        let mut previous = 0;
        for m in &listing.messages {
            if m.uid <= previous {
                problems.push(format!(
                    "{mailbox}: UID {} listed after UID {previous} ({context})",
                    m.uid
                ));
            }
            previous = m.uid;
            if m.modseq > highest_modseq {
                problems.push(format!(
                    "{mailbox}: UID {} has MODSEQ {} above HIGHESTMODSEQ {highest_modseq} ({context})",
                    m.uid, m.modseq
                ));
            }
            *counts.entry(m.digest).or_insert(0) += 1;
        }
        let empty = MailboxLedger::default();
        let mb = self.mailboxes.get(mailbox).unwrap_or(&empty);
        for (d, n) in &counts {
            if *n > 1 {
                let why = mb.messages.get(d).map_or("unknown", |e| e.why.as_str());
                problems.push(format!(
                    "{mailbox}: message {} ({why}) is there {n} times: a retry or a refused command was applied twice ({context})",
                    short(d)
                ));
            }
        }
        for m in &listing.messages {
            let Some(expected) = mb.messages.get(&m.digest) else {
                problems.push(format!(
                    "{mailbox}: UID {} holds {} that no client put there ({context})",
                    m.uid,
                    short(&m.digest)
                ));
                continue;
            };
            if expected.presence == Presence::Absent {
                problems.push(format!(
                    "{mailbox}: UID {} is message {} although {} ({context})",
                    m.uid,
                    short(&m.digest),
                    expected.why
                ));
            }
            if let Some(uid) = expected.uid {
                if uid != m.uid {
                    problems.push(format!(
                        "{mailbox}: message {} ({}) was told UID {uid} and is listed with UID {} ({context})",
                        short(&m.digest),
                        expected.why,
                        m.uid
                    ));
                }
            }
            if let Some(d) = mb.uids.get(&m.uid) {
                if *d != m.digest {
                    problems.push(format!(
                        "{mailbox}: UID {} named message {} and now names {} ({context})",
                        m.uid,
                        short(d),
                        short(&m.digest)
                    ));
                }
            }
            for flag in &m.flags {
                match expected.flags.get(flag) {
                    Some(FlagState::Set) | Some(FlagState::Unknown) => {}
                    Some(FlagState::Unset) | None => problems.push(format!(
                        "{mailbox}: UID {} has flag {flag} that no acknowledged command left set (expected {:?}; {}) ({context})",
                        m.uid,
                        expected.flags_as_set(),
                        expected.why
                    )),
                }
            }
            for (flag, state) in &expected.flags {
                if *state == FlagState::Set && !m.flags.contains(flag) {
                    problems.push(format!(
                        "{mailbox}: UID {} lacks flag {flag} that an acknowledged command set ({context})",
                        m.uid
                    ));
                }
            }
        }
        for (d, expected) in &mb.messages {
            if expected.presence == Presence::Present && !counts.contains_key(d) {
                problems.push(format!(
                    "{mailbox}: message {} ({} bytes) is missing although {} ({context})",
                    short(d),
                    expected.size,
                    expected.why
                ));
            }
        }
        if !mb.removals {
            let gap = listing
                .messages
                .iter()
                .enumerate()
                .find(|(i, m)| m.uid != *i as u32 + 1);
            if let Some((i, m)) = gap {
                problems.push(format!(
                    "{mailbox}: nothing was ever removed, yet message {} has UID {} (a UID gap) ({context})",
                    i + 1,
                    m.uid
                ));
            }
        }
        for p in problems {
            self.violation(p);
        }
    }

    /// Checks the MOVEs that failed partway, given every mailbox's final listing: each message
    /// must be in at least one of its two mailboxes.
    pub fn check_moves(&mut self, listings: &BTreeMap<String, Listing>) {
        let mut problems = Vec::new();
        for (d, from, to, what) in &self.in_one_of {
            let (Some(a), Some(b)) = (listings.get(from), listings.get(to)) else {
                continue;
            };
            let found = a.messages.iter().chain(&b.messages).any(|m| m.digest == *d);
            if !found {
                problems.push(format!(
                    "message {} is in neither {from} nor {to} after {what} failed (RFC 6851: no message can be lost)",
                    short(d)
                ));
            }
        }
        for p in problems {
            self.violation(p);
        }
    }

    /// Checks that `host`'s idle live heap came back within [`HEAP_TOLERANCE_BYTES`] of its level
    /// before the faults, plus [`ABANDONED_CONNECT_BYTES`] for each of `abandoned_connects`.
    pub fn check_heap(
        &mut self,
        host: &str,
        idle_before: u64,
        idle_after: u64,
        abandoned_connects: u64,
    ) {
        let allowed =
            idle_before + HEAP_TOLERANCE_BYTES + abandoned_connects * ABANDONED_CONNECT_BYTES;
        if idle_after > allowed {
            self.violation(format!(
                "{host}: idle live heap {idle_after} B after the faults vs {idle_before} B before (+{} B; allowed +{} B: tolerance {HEAP_TOLERANCE_BYTES} B and {abandoned_connects} abandoned connection attempts): something leaked",
                idle_after - idle_before,
                allowed - idle_before
            ));
        }
    }
}

/// `flags` (as written in a command) all set.
fn all_set(flags: &[&str]) -> BTreeMap<String, FlagState> {
    flags
        .iter()
        .map(|f| (flag_key(f), FlagState::Set))
        .collect()
}

#[cfg(test)]
mod tests;
