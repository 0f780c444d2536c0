//! A mailbox's state as folded from its event log: UIDs, flags, MODSEQs, UIDVALIDITY, UIDNEXT.
//! Operations are applied in log order (sort keys are logical timestamps), so every server instance
//! that has read the same log computes the same UIDs. One entry is 48 bytes; the index exists only
//! while a mailbox is selected.

use serde::{Deserialize, Serialize};

use super::overflow::{Edit, Overflow};

/// System flags, as bits of [`Entry::flags`]; keyword `i` of the mailbox's table is bit `8 + i`
/// while `i` < [`flag::KEYWORD_BITS`], and in the mailbox's [`Overflow`] after that.
pub mod flag {
    /// `\Seen`
    pub const SEEN: u64 = 1 << 0;
    /// `\Answered`
    pub const ANSWERED: u64 = 1 << 1;
    /// `\Flagged`
    pub const FLAGGED: u64 = 1 << 2;
    /// `\Deleted`
    pub const DELETED: u64 = 1 << 3;
    /// `\Draft`
    pub const DRAFT: u64 = 1 << 4;
    /// Not a flag: expunged in the log but not yet announced to the session whose view this is
    /// (RFC 3501 7.4.1 forbids EXPUNGE during FETCH, STORE and SEARCH), so its sequence number stays.
    pub const EXPUNGED: u64 = 1 << 7;
    /// First bit used for keywords.
    pub const KEYWORD_SHIFT: u32 = 8;
    /// Keywords that have a bit in the flags word (the bits left in a u64).
    pub const KEYWORD_BITS: usize = 56;
}

/// A flag as stored in the log: system flags by name (`\Seen`), keywords as atoms.
pub type FlagName = String;

/// One operation of a mailbox's event log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Op {
    /// A message enters the mailbox.
    Append {
        /// Message id (its metadata row and body chunks).
        message: [u8; 16],
        /// RFC822.SIZE.
        size: u32,
        /// INTERNALDATE, seconds since the Unix epoch.
        internal_date: i64,
        /// Initial flags.
        flags: Vec<FlagName>,
    },
    /// A message leaves the mailbox.
    Expunge {
        /// Message id.
        message: [u8; 16],
    },
    /// Flags added to a message.
    FlagsAdd {
        /// Message id.
        message: [u8; 16],
        /// Flags.
        flags: Vec<FlagName>,
    },
    /// Flags removed from a message.
    FlagsRemove {
        /// Message id.
        message: [u8; 16],
        /// Flags.
        flags: Vec<FlagName>,
    },
    /// A message's flags replaced.
    FlagsSet {
        /// Message id.
        message: [u8; 16],
        /// Flags.
        flags: Vec<FlagName>,
    },
    /// Operations written as one log row, so that they are in the store all together or not at
    /// all: the copies of a COPY, and the expunges of a MOVE (see `mail::transaction`). Last, so
    /// that the other variants keep their encodings.
    Batch(Vec<Op>),
}

impl Op {
    /// The operations this one stands for, in order: a batch's, or itself.
    pub fn flatten(&self) -> &[Op] {
        match self {
            Op::Batch(ops) => ops,
            op => std::slice::from_ref(op),
        }
    }
}

/// One message of a selected mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Message id.
    pub message: [u8; 16],
    /// MODSEQ of the last change.
    pub modseq: u64,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
    /// UID.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u32,
    /// Flag bits (see [`flag`]).
    pub flags: u64,
}

/// The state of one mailbox.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Messages in UID order (= sequence number order).
    pub entries: Vec<Entry>,
    /// Next UID to assign.
    pub uidnext: u32,
    /// Highest MODSEQ.
    pub highest_modseq: u64,
    /// Keyword table: bit `8 + i` of [`Entry::flags`] is `keywords[i]`, for the first
    /// [`flag::KEYWORD_BITS`]; every keyword is kept.
    pub keywords: Vec<String>,
    /// Which messages have the keywords beyond the flags word.
    pub overflow: Overflow,
    /// Sort key of the last log row folded in.
    pub cursor: Option<String>,
    /// Log operations folded in since the checkpoint this index started from.
    pub ops_since_checkpoint: u32,
    /// Entries marked [`flag::EXPUNGED`], waiting to be announced.
    pub pending_expunges: u32,
}

/// The part of an [`Index`] a checkpoint stores.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    /// Messages.
    pub entries: Vec<Entry>,
    /// Next UID.
    pub uidnext: u32,
    /// Highest MODSEQ.
    pub highest_modseq: u64,
    /// Keyword table.
    pub keywords: Vec<String>,
    /// Sort key of the last operation included.
    pub cursor: String,
}

impl Index {
    /// The index a checkpoint describes.
    pub fn from_snapshot(s: Snapshot, overflow: Overflow) -> Index {
        Index {
            entries: s.entries,
            uidnext: s.uidnext,
            highest_modseq: s.highest_modseq,
            keywords: s.keywords,
            overflow,
            cursor: Some(s.cursor),
            ops_since_checkpoint: 0,
            pending_expunges: 0,
        }
    }
}

impl Index {
    /// An empty mailbox.
    pub fn new() -> Self {
        Index {
            uidnext: 1,
            ..Default::default()
        }
    }

    /// Flag names to bits and the table positions of the keywords past the bits, growing the
    /// keyword table: a keyword is never dropped.
    fn flag_bits(&mut self, names: &[FlagName]) -> (u64, Vec<u32>) {
        let mut bits = 0;
        let mut beyond = Vec::new();
        for name in names {
            if let Some(bit) = system_flag(name) {
                bits |= bit;
                continue;
            }
            let i = match self.keyword_position(name) {
                Some(i) => i,
                None => {
                    self.keywords.push(name.clone());
                    self.keywords.len() - 1
                }
            };
            match keyword_bit(i) {
                Some(bit) => bits |= bit,
                None => beyond.push(i as u32),
            }
        }
        (bits, beyond)
    }

    fn keyword_position(&self, name: &str) -> Option<usize> {
        self.keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
    }

    /// Whether the message has flag `name` (case-insensitive); never for one expunged.
    pub fn has_flag(&self, entry: &Entry, name: &str) -> bool {
        if let Some(bit) = system_flag(name) {
            return entry.flags & bit != 0;
        }
        match self.keyword_position(name) {
            Some(i) => match keyword_bit(i) {
                Some(bit) => entry.flags & bit != 0,
                None => entry.flags & flag::EXPUNGED == 0 && self.overflow.has(entry.uid, i as u32),
            },
            None => false,
        }
    }

    /// The names of a message's flags, in a stable order: system flags, then keywords in table order.
    pub fn flag_names<'a>(&'a self, entry: &Entry) -> impl Iterator<Item = &'a str> {
        let bits = entry.flags;
        // Only live messages are in the overflow list; a UID of an expunged one may be reused.
        let beyond = (bits & flag::EXPUNGED == 0).then(|| self.overflow.of(entry.uid));
        let beyond = beyond
            .into_iter()
            .flatten()
            .map(|i| self.keywords[i as usize].as_str());
        self.flag_word_names(bits).chain(beyond)
    }

    /// The names of the flags of a flags word.
    fn flag_word_names(&self, bits: u64) -> impl Iterator<Item = &str> {
        const SYSTEM: [(u64, &str); 5] = [
            (flag::SEEN, "\\Seen"),
            (flag::ANSWERED, "\\Answered"),
            (flag::FLAGGED, "\\Flagged"),
            (flag::DELETED, "\\Deleted"),
            (flag::DRAFT, "\\Draft"),
        ];
        let system = SYSTEM
            .into_iter()
            .filter(move |(b, _)| bits & b != 0)
            .map(|(_, n)| n);
        let keywords = self
            .keywords
            .iter()
            .take(flag::KEYWORD_BITS)
            .enumerate()
            .filter(move |(i, _)| bits & (1 << (flag::KEYWORD_SHIFT as usize + i)) != 0)
            .map(|(_, k)| k.as_str());
        system.chain(keywords)
    }

    fn position(&self, message: &[u8; 16]) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| &e.message == message && e.flags & flag::EXPUNGED == 0)
    }

    /// Applies one log operation; returns what changed, for untagged responses.
    pub fn apply(&mut self, op: &Op) -> Change {
        self.apply_as(op, false)
    }

    /// [`Index::apply`] on a session's view: an expunged message stays, marked
    /// [`flag::EXPUNGED`], until [`Index::announce_expunges`], so sequence numbers do not move.
    pub fn apply_in_view(&mut self, op: &Op) -> Change {
        self.apply_as(op, true)
    }

    /// Removes the messages marked expunged, from the highest sequence number down so that each
    /// number is right when the client reads it, and tells `on_expunge` each.
    pub fn announce_expunges(&mut self, mut on_expunge: impl FnMut(u32)) {
        if self.pending_expunges == 0 {
            return;
        }
        for pos in (0..self.entries.len()).rev() {
            if self.entries[pos].flags & flag::EXPUNGED != 0 {
                self.entries.remove(pos);
                // Its overflow keywords went when it was marked.
                on_expunge(pos as u32 + 1);
            }
        }
        self.pending_expunges = 0;
    }

    /// Whether the message at this sequence number (1-based) is expunged but not yet announced.
    pub fn is_expunged(&self, seq: u32) -> bool {
        self.entries[seq as usize - 1].flags & flag::EXPUNGED != 0
    }

    fn expunge_at(&mut self, pos: usize, keep: bool) {
        self.overflow.remove(self.entries[pos].uid);
        if keep {
            self.entries[pos].flags |= flag::EXPUNGED;
            self.pending_expunges += 1;
        } else {
            self.entries.remove(pos);
        }
    }

    fn apply_as(&mut self, op: &Op, keep_expunged: bool) -> Change {
        match op {
            Op::Append {
                message,
                size,
                internal_date,
                flags,
            } => {
                if self.position(message).is_some() {
                    return Change::None; // a retried append already applied
                }
                self.highest_modseq += 1;
                let (flags, beyond) = self.flag_bits(flags);
                let uid = self.uidnext;
                self.uidnext += 1;
                self.overflow.edit(uid, Edit::Set, &beyond);
                self.entries.push(Entry {
                    message: *message,
                    modseq: self.highest_modseq,
                    internal_date: *internal_date,
                    uid,
                    size: *size,
                    flags,
                });
                Change::Exists
            }
            Op::Expunge { message } => match self.position(message) {
                Some(pos) => {
                    self.highest_modseq += 1;
                    self.expunge_at(pos, keep_expunged);
                    Change::Expunged(pos as u32 + 1)
                }
                None => Change::None,
            },
            Op::FlagsAdd { message, flags }
            | Op::FlagsRemove { message, flags }
            | Op::FlagsSet { message, flags } => {
                let Some(pos) = self.position(message) else {
                    return Change::None;
                };
                let (bits, beyond) = self.flag_bits(flags);
                let entry = &mut self.entries[pos];
                let (new, edit) = match op {
                    Op::FlagsAdd { .. } => (entry.flags | bits, Edit::Add),
                    Op::FlagsRemove { .. } => (entry.flags & !bits, Edit::Remove),
                    _ => (bits, Edit::Set),
                };
                let beyond_changed = self.overflow.edit(entry.uid, edit, &beyond);
                if new == entry.flags && !beyond_changed {
                    return Change::None;
                }
                self.highest_modseq += 1;
                entry.flags = new;
                entry.modseq = self.highest_modseq;
                Change::Flags(pos as u32 + 1)
            }
            // Callers that report each change apply `op.flatten()` one by one instead.
            Op::Batch(ops) => {
                for op in ops {
                    self.apply_as(op, keep_expunged);
                }
                Change::None
            }
        }
    }

    /// The number of messages.
    pub fn exists(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Becomes `fresh`, the same mailbox loaded again, reporting the difference as changes a
    /// session can show: a message known under the same UID stays (with its new flags), every
    /// other known message is expunged (marked, as in [`Index::apply_in_view`]), and the rest of
    /// `fresh` arrives as new messages. When `fresh` has a message the session did not know below
    /// its UIDNEXT (an operation that reached the log late), every known message from that UID on
    /// is expunged and comes back as new, so that sequence numbers stay consistent.
    pub fn resync(&mut self, fresh: Index, on_change: &mut impl FnMut(&Index, Change)) {
        let live = |e: &Entry| e.flags & flag::EXPUNGED == 0;
        // Live entries are in UID order; marked ones may not be (after an earlier late operation).
        let known: Vec<(u32, [u8; 16])> = self
            .entries
            .iter()
            .filter(|e| live(e))
            .map(|e| (e.uid, e.message))
            .collect();
        let in_known = |e: &Entry| {
            known
                .binary_search_by_key(&e.uid, |k| k.0)
                .is_ok_and(|i| known[i].1 == e.message)
        };
        let in_fresh = |e: &Entry| {
            fresh
                .entries
                .binary_search_by_key(&e.uid, |x| x.uid)
                .is_ok_and(|i| fresh.entries[i].message == e.message)
        };
        let cut = fresh
            .entries
            .iter()
            .filter(|e| e.uid < self.uidnext && !in_known(e))
            .map(|e| e.uid)
            .min()
            .unwrap_or(self.uidnext);
        for pos in 0..self.entries.len() {
            let entry = self.entries[pos];
            if live(&entry) && (entry.uid >= cut || !in_fresh(&entry)) {
                self.expunge_at(pos, true);
                on_change(self, Change::Expunged(pos as u32 + 1));
            }
        }
        drop(known);
        // What stays live is the start of `fresh`, message for message; the rest of it is new.
        let mut kept = 0;
        let mut flagged = Vec::new();
        for pos in 0..self.entries.len() {
            if !live(&self.entries[pos]) {
                continue;
            }
            let new = fresh.entries[kept];
            if !self
                .flag_names(&self.entries[pos])
                .eq(fresh.flag_names(&new))
            {
                flagged.push(pos as u32 + 1);
            }
            self.entries[pos] = new;
            kept += 1;
        }
        self.entries.extend_from_slice(&fresh.entries[kept..]);
        let added = fresh.entries.len() - kept;
        let pending_expunges = self.pending_expunges;
        *self = Index {
            entries: std::mem::take(&mut self.entries),
            pending_expunges,
            ..fresh
        };
        for seq in flagged {
            on_change(self, Change::Flags(seq));
        }
        for _ in 0..added {
            on_change(self, Change::Exists);
        }
    }
}

/// The messages that are \Recent in one session (RFC 3501 2.3.2): UIDs `first..end`. A few bytes
/// per session, not a set: a session that SELECTs claims the UIDs from the mailbox's recent
/// watermark to its UIDNEXT, and then, while it stays selected, the messages that arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recent {
    /// First recent UID.
    pub first: u32,
    /// Just past the last recent UID (`u32::MAX`: every later UID, for a read-only session).
    pub end: u32,
    /// UIDs below this were offered to this session already: claimed by it, or by another.
    pub claimed_to: u32,
}

impl Recent {
    /// No message is recent; claims start at `uidnext`.
    pub fn none(uidnext: u32) -> Recent {
        Recent {
            first: uidnext,
            end: uidnext,
            claimed_to: uidnext,
        }
    }

    /// An EXAMINE session: what no session has claimed is recent, and nothing is claimed.
    pub fn read_only(watermark: u32) -> Recent {
        Recent {
            first: watermark,
            end: u32::MAX,
            claimed_to: u32::MAX,
        }
    }

    /// Whether the message of this UID is recent in the session.
    pub fn contains(&self, uid: u32) -> bool {
        (self.first..self.end).contains(&uid)
    }

    /// How many messages of `index` are recent in the session.
    pub fn count(&self, index: &Index) -> u32 {
        index
            .entries
            .iter()
            .filter(|e| self.contains(e.uid))
            .count() as u32
    }

    /// Folds in the outcome of a claim of the UIDs below `upto`: `won` is what this session got
    /// (empty when another session got them). A range that does not follow on from the recent
    /// range is kept only when the recent range is empty: one range per session.
    pub fn claimed(&mut self, won: std::ops::Range<u32>, upto: u32) {
        self.claimed_to = self.claimed_to.max(upto);
        if won.is_empty() {
            return;
        }
        if self.first == self.end {
            (self.first, self.end) = (won.start, won.end);
        } else if won.start == self.end {
            self.end = won.end;
        }
    }
}

/// What an operation changed, as a client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing visible.
    None,
    /// A message was added at the end.
    Exists,
    /// The message at this sequence number was removed.
    Expunged(u32),
    /// The flags of the message at this sequence number changed.
    Flags(u32),
}

/// The bit of the keyword at table position `i`, if it has one.
fn keyword_bit(i: usize) -> Option<u64> {
    (i < flag::KEYWORD_BITS).then(|| 1 << (flag::KEYWORD_SHIFT as usize + i))
}

/// The bit of a system flag, by its IMAP name (case-insensitive).
pub fn system_flag(name: &str) -> Option<u64> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "\\seen" => flag::SEEN,
        "\\answered" => flag::ANSWERED,
        "\\flagged" => flag::FLAGGED,
        "\\deleted" => flag::DELETED,
        "\\draft" => flag::DRAFT,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(n: u8, flags: &[&str]) -> Op {
        Op::Append {
            message: [n; 16],
            size: 10,
            internal_date: 0,
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn uids_follow_log_order_and_survive_expunge() {
        let mut index = Index::new();
        index.apply(&append(1, &[]));
        index.apply(&append(2, &["\\Seen"]));
        assert_eq!(
            index.apply(&Op::Expunge { message: [1; 16] }),
            Change::Expunged(1)
        );
        index.apply(&append(3, &[]));
        let uids: Vec<u32> = index.entries.iter().map(|e| e.uid).collect();
        assert_eq!(uids, [2, 3]);
        assert_eq!(index.uidnext, 4);
        assert_eq!(index.highest_modseq, 4);
    }

    #[test]
    fn a_view_keeps_expunged_messages_in_place_until_announced() {
        let mut index = Index::new();
        for n in 1..=3 {
            index.apply_in_view(&append(n, &[]));
        }
        assert_eq!(
            index.apply_in_view(&Op::Expunge { message: [1; 16] }),
            Change::Expunged(1)
        );
        // Flags of the message still refer to its unmoved sequence number.
        let flags = Op::FlagsAdd {
            message: [3; 16],
            flags: vec!["\\Seen".into()],
        };
        assert_eq!(index.apply_in_view(&flags), Change::Flags(3));
        assert_eq!(
            index.apply_in_view(&Op::Expunge { message: [1; 16] }),
            Change::None
        );
        assert!(index.is_expunged(1) && index.exists() == 3);
        let mut announced = Vec::new();
        index.announce_expunges(|seq| announced.push(seq));
        assert_eq!((announced, index.exists()), (vec![1], 2));
        assert_eq!(index.pending_expunges, 0);
    }

    #[test]
    fn replayed_append_is_ignored() {
        let mut index = Index::new();
        index.apply(&append(1, &[]));
        assert_eq!(index.apply(&append(1, &[])), Change::None);
        assert_eq!(index.exists(), 1);
    }

    #[test]
    fn flags_round_trip_with_keywords() {
        let mut index = Index::new();
        index.apply(&append(1, &["\\Seen", "$Forwarded"]));
        let names: Vec<&str> = index.flag_names(&index.entries[0]).collect();
        assert_eq!(names, ["\\Seen", "$Forwarded"]);
        let change = index.apply(&Op::FlagsRemove {
            message: [1; 16],
            flags: vec!["\\SEEN".into()],
        });
        assert_eq!(change, Change::Flags(1));
        assert_eq!(index.entries[0].modseq, 2);
    }

    #[test]
    fn recent_ranges_grow_only_contiguously() {
        let mut r = Recent::none(5);
        r.claimed(5..8, 8);
        assert!(r.contains(5) && r.contains(7) && !r.contains(8) && !r.contains(4));
        r.claimed(8..10, 10);
        assert_eq!((r.first, r.end, r.claimed_to), (5, 10, 10));
        // Another session claimed 10..12: this session's later win is not contiguous.
        r.claimed(12..13, 13);
        assert_eq!((r.first, r.end, r.claimed_to), (5, 10, 13));
        let mut lost = Recent::none(3);
        lost.claimed(3..3, 6);
        lost.claimed(6..9, 9);
        assert_eq!((lost.first, lost.end), (6, 9));
        assert!(Recent::read_only(4).contains(1_000_000));
    }

    fn changes(old: &mut Index, fresh: Index) -> Vec<Change> {
        let mut seen = Vec::new();
        old.resync(fresh, &mut |_, c| seen.push(c));
        seen
    }

    #[test]
    fn resync_reports_expunges_flags_and_new_messages() {
        let mut old = Index::new();
        for n in 1..=4 {
            old.apply(&append(n, &[]));
        }
        let mut fresh = old.clone();
        fresh.apply(&Op::Expunge { message: [2; 16] });
        fresh.apply(&Op::FlagsAdd {
            message: [4; 16],
            flags: vec!["\\Seen".into()],
        });
        fresh.apply(&append(5, &[]));
        fresh.apply(&append(6, &[]));
        let seen = changes(&mut old, fresh.clone());
        // The expunged message keeps its sequence number until announced.
        assert_eq!(
            seen,
            [
                Change::Expunged(2),
                Change::Flags(4),
                Change::Exists,
                Change::Exists
            ]
        );
        let mut announced = Vec::new();
        old.announce_expunges(|seq| announced.push(seq));
        assert_eq!(announced, [2]);
        assert_eq!(old.entries, fresh.entries);
    }

    #[test]
    fn resync_re_adds_messages_from_a_late_operation_on() {
        // The session folded 1, 2, 4; the log turned out to be 1, 3, 2, 4 (3 landed late).
        let mut old = Index::new();
        for n in [1, 2, 4] {
            old.apply(&append(n, &[]));
        }
        let mut fresh = Index::new();
        for n in [1, 3, 2, 4] {
            fresh.apply(&append(n, &[]));
        }
        let seen = changes(&mut old, fresh.clone());
        assert_eq!(
            seen,
            [
                Change::Expunged(2),
                Change::Expunged(3),
                Change::Exists,
                Change::Exists,
                Change::Exists
            ]
        );
        assert_eq!(old.exists(), 6);
        let mut announced = Vec::new();
        old.announce_expunges(|seq| announced.push(seq));
        assert_eq!(announced, [3, 2]);
        assert_eq!(old.entries, fresh.entries);
    }

    #[test]
    fn entry_is_at_most_48_bytes() {
        assert!(std::mem::size_of::<Entry>() <= 48);
    }
}
