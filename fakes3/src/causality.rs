//! K2V causality: contexts (vector clocks) with their token encoding, and items as dotted version vector sets.
//!
//! One node writes every value (`NODE_ID`), so concurrent values come only from writes whose token did not
//! cover the values present. Timestamps are a per-item logical counter, never a clock.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;

/// The node id of this single-node store, as it appears in causality tokens.
pub const NODE_ID: u64 = 0x6661_6b65_7333_0001;

/// A causal context: for each node, the newest timestamp seen. Its text form is the causality token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CausalContext {
    /// Node id to timestamp.
    pub clock: BTreeMap<u64, u64>,
}

impl CausalContext {
    /// Encodes as base64 (URL-safe, unpadded, as Garage does) of `checksum, [node, ts]*`, all big-endian
    /// u64, where the checksum is the XOR of every node id and timestamp.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(8 + 16 * self.clock.len());
        let checksum = self.clock.iter().fold(0u64, |acc, (n, t)| acc ^ n ^ t);
        bytes.extend_from_slice(&checksum.to_be_bytes());
        for (node, ts) in &self.clock {
            bytes.extend_from_slice(&node.to_be_bytes());
            bytes.extend_from_slice(&ts.to_be_bytes());
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a token made by [`CausalContext::encode`]; `None` if it is not base64, has a bad length or a
    /// wrong checksum.
    pub fn decode(token: &str) -> Option<CausalContext> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() % 16 != 8 {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let checksum = word(0);
        let mut clock = BTreeMap::new();
        let mut check = 0u64;
        for pair in 0..(bytes.len() - 8) / 16 {
            let node = word(8 + pair * 16);
            let ts = word(16 + pair * 16);
            check ^= node ^ ts;
            clock.insert(node, ts);
        }
        (check == checksum).then_some(CausalContext { clock })
    }

    /// Whether this context has seen something `other` has not (some node's timestamp is larger).
    pub fn is_newer_than(&self, other: &CausalContext) -> bool {
        self.clock
            .iter()
            .any(|(n, t)| *t > other.clock.get(n).copied().unwrap_or(0))
    }
}

/// Counters of one item, summed per partition for ReadIndex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// 1 unless every value is a tombstone.
    pub entries: u64,
    /// 1 if the item holds several distinct concurrent values.
    pub conflicts: u64,
    /// Distinct non-tombstone values.
    pub values: u64,
    /// Bytes of those values.
    pub bytes: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: Counts) {
        self.entries += other.entries;
        self.conflicts += other.conflicts;
        self.values += other.values;
        self.bytes += other.bytes;
    }

    /// Removes `other`, which was added before.
    pub fn sub(&mut self, other: Counts) {
        assert!(
            self.entries >= other.entries
                && self.conflicts >= other.conflicts
                && self.values >= other.values
                && self.bytes >= other.bytes,
            "partition counts went below zero"
        );
        self.entries -= other.entries;
        self.conflicts -= other.conflicts;
        self.values -= other.values;
        self.bytes -= other.bytes;
    }

    /// Whether all counters are zero (the partition is not listed by ReadIndex).
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// One K2V item: the DVVS entry of this node, plus the discard times of other nodes seen in tokens
/// (which never hold values here, since only this node writes).
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// Values of this node with timestamps at or below this are obsolete.
    t_discard: u64,
    /// Current values of this node, `None` for a tombstone, with increasing timestamps all above `t_discard`.
    values: Vec<(u64, Option<Bytes>)>,
    /// Other nodes' discard times, echoed in the causal context.
    others: Vec<(u64, u64)>,
}

impl Item {
    fn max_time(&self) -> u64 {
        self.values
            .last()
            .map_or(self.t_discard, |(t, _)| *t)
            .max(self.t_discard)
    }

    /// The context to hand out with this item's values.
    pub fn context(&self) -> CausalContext {
        let mut clock: BTreeMap<u64, u64> = self.others.iter().copied().collect();
        clock.insert(NODE_ID, self.max_time());
        CausalContext { clock }
    }

    /// Writes `value` (`None` deletes) having seen `context`: values the context covers are discarded, the
    /// others stay as concurrent values, and the new one gets the next timestamp.
    pub fn update(&mut self, context: Option<&CausalContext>, value: Option<Bytes>) {
        if let Some(context) = context {
            for (&node, &ts) in &context.clock {
                if node == NODE_ID {
                    self.t_discard = self.t_discard.max(ts);
                } else {
                    match self.others.binary_search_by_key(&node, |(n, _)| *n) {
                        Ok(i) => self.others[i].1 = self.others[i].1.max(ts),
                        Err(i) => self.others.insert(i, (node, ts)),
                    }
                }
            }
        }
        let t_discard = self.t_discard;
        self.values.retain(|(t, _)| *t > t_discard);
        let t_new = self.max_time() + 1;
        self.values.push((t_new, value));
    }

    /// Distinct values, oldest first (`None` for tombstones); duplicates are returned once.
    pub fn values(&self) -> Vec<&Option<Bytes>> {
        let mut distinct: Vec<&Option<Bytes>> = Vec::with_capacity(self.values.len());
        for (_, v) in &self.values {
            if !distinct.contains(&v) {
                distinct.push(v);
            }
        }
        distinct
    }

    /// Whether every value is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.values.iter().all(|(_, v)| v.is_none())
    }

    /// Whether the item holds several distinct concurrent values.
    pub fn is_conflict(&self) -> bool {
        self.values().len() > 1
    }

    /// This item's counters.
    pub fn counts(&self) -> Counts {
        let values = self.values();
        let live = values.iter().filter_map(|v| v.as_ref());
        Counts {
            entries: u64::from(!self.is_tombstone()),
            conflicts: u64::from(values.len() > 1),
            values: live.clone().count() as u64,
            bytes: live.map(|b| b.len() as u64).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn token_encoding_round_trips() {
        let ctx = CausalContext {
            clock: [(4, 42), (1_928_131_023, 76), (0xefc0_c1c4_7f9d_e433, 2)]
                .into_iter()
                .collect(),
        };
        let token = ctx.encode();
        assert_eq!(CausalContext::decode(&token), Some(ctx));
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
    }

    #[test]
    fn token_layout_is_checksum_then_pairs_big_endian() {
        let ctx = CausalContext {
            clock: [(1, 2)].into_iter().collect(),
        };
        let raw = URL_SAFE_NO_PAD
            .decode(ctx.encode())
            .expect("own encoding is base64");
        let mut expected = Vec::new();
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2u64.to_be_bytes());
        assert_eq!(raw, expected);
    }

    #[test]
    fn bad_tokens_are_refused() {
        let good = CausalContext {
            clock: [(NODE_ID, 9)].into_iter().collect(),
        };
        let mut raw = URL_SAFE_NO_PAD
            .decode(good.encode())
            .expect("own encoding is base64");
        raw[0] ^= 1;
        assert_eq!(CausalContext::decode(&URL_SAFE_NO_PAD.encode(&raw)), None);
        assert_eq!(CausalContext::decode("not base64!"), None);
        assert_eq!(
            CausalContext::decode(&URL_SAFE_NO_PAD.encode([0u8; 12])),
            None
        );
        assert_eq!(CausalContext::decode(""), None);
    }

    #[test]
    fn writes_without_token_become_concurrent_and_a_token_write_resolves_them() {
        let mut item = Item::default();
        item.update(None, value("a"));
        let seen_a = item.context();
        item.update(None, value("b"));
        assert_eq!(item.values(), vec![&value("a"), &value("b")]);
        assert!(item.is_conflict());
        // A write that saw only "a" replaces "a" and keeps "b".
        item.update(Some(&seen_a), value("c"));
        assert_eq!(item.values(), vec![&value("b"), &value("c")]);
        // A write with the full context resolves everything.
        item.update(Some(&item.context()), value("d"));
        assert_eq!(item.values(), vec![&value("d")]);
        assert_eq!(item.context().clock.get(&NODE_ID), Some(&4));
    }

    #[test]
    fn identical_concurrent_values_are_deduplicated() {
        let mut item = Item::default();
        item.update(None, value("same"));
        item.update(None, value("same"));
        assert_eq!(item.values(), vec![&value("same")]);
        assert!(!item.is_conflict());
        assert_eq!(item.counts().values, 1);
    }

    #[test]
    fn delete_with_context_leaves_a_tombstone() {
        let mut item = Item::default();
        item.update(None, value("x"));
        item.update(Some(&item.context()), None);
        assert!(item.is_tombstone());
        assert_eq!(item.values(), vec![&None]);
        assert_eq!(
            item.counts(),
            Counts {
                entries: 0,
                conflicts: 0,
                values: 0,
                bytes: 0
            }
        );
    }

    #[test]
    fn foreign_nodes_in_tokens_are_echoed() {
        let mut item = Item::default();
        let ctx = CausalContext {
            clock: [(7, 3), (NODE_ID, 0)].into_iter().collect(),
        };
        item.update(Some(&ctx), value("v"));
        let out = item.context();
        assert_eq!(out.clock.get(&7), Some(&3));
        assert_eq!(out.clock.get(&NODE_ID), Some(&1));
        assert!(out.is_newer_than(&ctx));
        assert!(!ctx.is_newer_than(&out));
    }
}
