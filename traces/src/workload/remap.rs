//! Sequence sets rewritten for the mailbox at hand: the recorded set's shape over the messages that
//! exist.

use std::num::NonZeroU32;

use imap_types::core::Vec1;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

use super::model::MailboxState;

/// The numbers that name the messages of `mbox`, ascending: sequence numbers or UIDs.
pub(super) fn ids(mbox: &MailboxState, uid: bool) -> Vec<u32> {
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

/// The set of the messages at `positions` (not empty) among those `ids` name.
pub(super) fn set_at(
    ids: &[u32],
    positions: impl IntoIterator<Item = usize>,
) -> Option<SequenceSet> {
    let values: Vec<u32> = positions.into_iter().map(|p| ids[p]).collect();
    set_of(&values)
}

/// `set`'s shape over the messages named by `ids` (ascending, not empty). If the recorded
/// numbers all fit, they name the messages at those positions. Otherwise each element moves by a
/// seeded offset, modulo the count: a single stays a single, a range keeps its width (up to the
/// mailbox's size), and `N:*` ("what is new since N") starts among the last five messages. `*`
/// stays `*`. `None` for an empty mailbox.
pub(super) fn remap(set: &SequenceSet, ids: &[u32], rng: &mut ChaCha8Rng) -> Option<SequenceSet> {
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
}
