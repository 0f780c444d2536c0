//! Listings of a sorted map as ReadIndex, ReadBatch, DeleteBatch and PollRange make them: prefix,
//! start, end, limit and direction.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Serialize;

use crate::http::ApiError;

/// Parameters of a listing: ReadIndex over partition keys, ReadBatch/DeleteBatch over sort keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RangeParams {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// First key (highest when reverse).
    pub start: Option<String>,
    /// Key where the listing stops, excluded.
    pub end: Option<String>,
    /// Most keys returned.
    pub limit: Option<u64>,
    /// Decreasing order.
    pub reverse: bool,
}

/// The smallest string above every string starting with `prefix`, if there is one.
pub(super) fn key_after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            char::MAX => continue,
            '\u{D7FF}' => '\u{E000}',
            c => char::from_u32(c as u32 + 1).unwrap_or(char::MAX),
        };
        chars.push(next);
        return Some(chars.into_iter().collect());
    }
    None
}

/// Entries of a listing, and the first key not returned when the limit cut it short.
pub(super) type Listing<'m, V> = (Vec<(&'m String, &'m V)>, Option<String>);

/// Lists `map` as ReadIndex/ReadBatch do: entries passing `keep`, from `start` (or the prefix), stopping
/// at `end` or at keys leaving the prefix. Returns the entries and, when `limit` cut the listing short,
/// the first key not returned (`nextStart`).
pub(super) fn read_range<'m, V>(
    map: &'m BTreeMap<String, V>,
    params: &RangeParams,
    mut keep: impl FnMut(&V) -> bool,
) -> Result<Listing<'m, V>, ApiError> {
    let prefix = params.prefix.as_deref();
    let start = params.start.as_deref();
    if let (Some(p), Some(s)) = (prefix, start) {
        if !s.starts_with(p) {
            return Err(ApiError::InvalidRequest(format!(
                "Start key '{s}' does not start with prefix '{p}'"
            )));
        }
    }
    let after_prefix = match (params.reverse, start, prefix) {
        (true, None, Some(p)) => key_after_prefix(p),
        _ => None,
    };
    let iter: Box<dyn Iterator<Item = (&'m String, &'m V)> + '_> = if params.reverse {
        let upper = match (start, after_prefix.as_deref()) {
            (Some(s), _) => Bound::Included(s),
            (None, Some(a)) => Bound::Excluded(a),
            (None, None) => Bound::Unbounded,
        };
        Box::new(map.range::<str, _>((Bound::Unbounded, upper)).rev())
    } else {
        let lower = start.or(prefix).map_or(Bound::Unbounded, Bound::Included);
        Box::new(map.range::<str, _>((lower, Bound::Unbounded)))
    };
    let mut entries = Vec::new();
    for (key, value) in iter {
        if !keep(value) {
            continue;
        }
        if prefix.is_some_and(|p| !key.starts_with(p)) {
            break;
        }
        if let Some(end) = params.end.as_deref() {
            let finished = if params.reverse {
                key.as_str() <= end
            } else {
                key.as_str() >= end
            };
            if finished {
                break;
            }
        }
        if params.limit.is_some_and(|l| entries.len() as u64 >= l) {
            return Ok((entries, Some(key.clone())));
        }
        entries.push((key, value));
    }
    Ok((entries, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, u32> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), i as u32))
            .collect()
    }

    fn keys(result: &Listing<'_, u32>) -> Vec<String> {
        result.0.iter().map(|(k, _)| k.to_string()).collect()
    }

    #[test]
    fn range_honours_prefix_start_end_limit_and_reverse() {
        let m = map(&["a", "b1", "b2", "b3", "c"]);
        let all = |p: RangeParams| read_range(&m, &p, |_| true).expect("valid params");
        let r = all(RangeParams {
            prefix: Some("b".into()),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b1", "b2", "b3"]);
        assert_eq!(r.1, None);
        let r = all(RangeParams {
            start: Some("b2".into()),
            limit: Some(2),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b2", "b3"]);
        assert_eq!(r.1, Some("c".to_string()));
        let r = all(RangeParams {
            end: Some("b2".into()),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["a", "b1"]);
        let r = all(RangeParams {
            prefix: Some("b".into()),
            reverse: true,
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b3", "b2", "b1"]);
        let r = all(RangeParams {
            start: Some("b3".into()),
            end: Some("a".into()),
            reverse: true,
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b3", "b2", "b1"]);
        assert!(read_range(
            &m,
            &RangeParams {
                prefix: Some("b".into()),
                start: Some("a".into()),
                ..Default::default()
            },
            |_| true
        )
        .is_err());
    }

    #[test]
    fn key_after_prefix_is_the_next_string() {
        assert_eq!(key_after_prefix("ab"), Some("ac".to_string()));
        assert_eq!(key_after_prefix("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(key_after_prefix(""), None);
    }
}
