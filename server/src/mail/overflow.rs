//! Keywords beyond a message's flags word. A mailbox's keyword table keeps every keyword, but the
//! flags word of an index `Entry` has bits for the first `flag::KEYWORD_BITS` only; a later
//! keyword set on a message is a (UID, table position) pair in one sorted list per mailbox.
//! `Entry` stays 48 bytes, and a mailbox that never has that many keywords (every session's view
//! holds an index) pays one null pointer.

use serde::{Deserialize, Serialize};

/// How a flag operation treats the keywords it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Added to the message's.
    Add,
    /// Removed from the message's.
    Remove,
    /// The message's become exactly these.
    Set,
}

/// The overflow keywords of a mailbox's live messages: (UID, table position), sorted, 8 bytes
/// each; stored (and serialised) as a plain list, held boxed and only when not empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(u32, u32)>", into = "Vec<(u32, u32)>")]
pub struct Overflow(Option<Box<Vec<(u32, u32)>>>);

impl From<Vec<(u32, u32)>> for Overflow {
    fn from(mut pairs: Vec<(u32, u32)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        Overflow((!pairs.is_empty()).then(|| Box::new(pairs)))
    }
}

impl From<Overflow> for Vec<(u32, u32)> {
    fn from(overflow: Overflow) -> Self {
        overflow.0.map(|pairs| *pairs).unwrap_or_default()
    }
}

impl Overflow {
    fn pairs(&self) -> &[(u32, u32)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    fn range(&self, uid: u32) -> std::ops::Range<usize> {
        let pairs = self.pairs();
        pairs.partition_point(|p| p.0 < uid)..pairs.partition_point(|p| p.0 <= uid)
    }

    /// The table positions of the overflow keywords of message `uid`, in table order.
    pub fn of(&self, uid: u32) -> impl Iterator<Item = u32> + '_ {
        self.pairs()[self.range(uid)].iter().map(|p| p.1)
    }

    /// Whether message `uid` has the keyword at table position `keyword`.
    pub fn has(&self, uid: u32, keyword: u32) -> bool {
        self.pairs().binary_search(&(uid, keyword)).is_ok()
    }

    /// Applies `edit` of `keywords` (table positions) to message `uid`; whether anything changed.
    pub fn edit(&mut self, uid: u32, edit: Edit, keywords: &[u32]) -> bool {
        let mut changed = false;
        if edit == Edit::Set {
            changed = !self.of(uid).eq(sorted(keywords));
            self.remove(uid);
        }
        if keywords.is_empty() || (edit == Edit::Remove && self.0.is_none()) {
            return changed;
        }
        let pairs = self.0.get_or_insert_with(Box::default);
        for &k in keywords {
            match (pairs.binary_search(&(uid, k)), edit) {
                (Err(at), Edit::Add | Edit::Set) => {
                    pairs.insert(at, (uid, k));
                    changed |= edit == Edit::Add;
                }
                (Ok(at), Edit::Remove) => {
                    pairs.remove(at);
                    changed = true;
                }
                _ => {}
            }
        }
        self.compact();
        changed
    }

    /// Forgets message `uid` (expunged).
    pub fn remove(&mut self, uid: u32) {
        let range = self.range(uid);
        if let Some(pairs) = self.0.as_mut().filter(|_| !range.is_empty()) {
            pairs.drain(range);
            self.compact();
        }
    }

    /// Kept compact: every selected view of the mailbox holds it.
    fn compact(&mut self) {
        match &mut self.0 {
            Some(pairs) if pairs.is_empty() => self.0 = None,
            Some(pairs) if pairs.capacity() > 2 * pairs.len() + 8 => pairs.shrink_to_fit(),
            _ => {}
        }
    }

    /// Whether no message has an overflow keyword.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

fn sorted(keywords: &[u32]) -> impl Iterator<Item = u32> {
    let mut keywords = keywords.to_vec();
    keywords.sort_unstable();
    keywords.dedup();
    keywords.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_report_changes_and_keep_messages_apart() {
        let mut o = Overflow::default();
        assert!(o.edit(7, Edit::Add, &[60, 57]));
        assert!(o.edit(3, Edit::Set, &[58]));
        assert!(!o.edit(7, Edit::Add, &[57]));
        assert_eq!(o.of(7).collect::<Vec<_>>(), [57, 60]);
        assert!(!o.edit(7, Edit::Set, &[60, 57, 60]));
        assert!(o.edit(7, Edit::Remove, &[57, 99]));
        assert!(!o.edit(7, Edit::Remove, &[57]));
        assert!(o.has(7, 60) && !o.has(7, 57) && o.has(3, 58));
        o.remove(7);
        assert_eq!(o.of(7).count(), 0);
        assert!(o.edit(3, Edit::Set, &[]) && o.is_empty());
        let listed: Vec<(u32, u32)> = Overflow::from(vec![(2, 70), (1, 60)]).into();
        assert_eq!(listed, [(1, 60), (2, 70)]);
    }
}
