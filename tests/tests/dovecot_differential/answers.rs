//! Reading the answers: FETCH data items by name, body part paths, and SEARCH keys and hits.

use std::collections::{BTreeMap, BTreeSet};

use crate::imap_client::{astring, Reply};
use crate::value::{parse, Value};

/// A FETCH item name as both servers write it back: upper case, single spaces, no `.PEEK`.
pub fn item_key(name: &str) -> String {
    name.replace(".PEEK", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// FETCH data items by name.
pub type Items = BTreeMap<String, Value>;

/// The data items of every FETCH response for `seq`, merged.
pub fn fetch_items(reply: &Reply, seq: u32) -> Items {
    let mut out = BTreeMap::new();
    for r in &reply.untagged {
        let v = parse(r);
        let is_ours = matches!(&v[..], [Value::Atom(star), Value::Atom(n), Value::Atom(f), Value::List(_)]
            if star == "*" && n.parse() == Ok(seq) && f.eq_ignore_ascii_case("FETCH"));
        if !is_ours {
            continue;
        }
        let Some(Value::List(items)) = v.get(3) else {
            continue;
        };
        for pair in items.chunks(2) {
            if let [Value::Atom(k), v] = pair {
                out.insert(item_key(k), v.clone());
            }
        }
    }
    out
}

/// Whether an independent parser (imap-proto) reads every untagged response of `reply` whole.
pub fn parses(reply: &Reply) -> bool {
    reply
        .untagged
        .iter()
        .all(|r| imap_proto::Response::parse(r).is_ok_and(|(rest, _)| rest.is_empty()))
}

/// Part numbers of a BODYSTRUCTURE, depth first: children of multiparts, and the body of each
/// message/rfc822 (its children if multipart, else `n.1`).
pub fn part_paths(bs: &Value) -> Vec<(String, bool)> {
    pub fn is_multi(v: &Value) -> bool {
        v.list()
            .is_some_and(|l| matches!(l.first(), Some(Value::List(_))))
    }
    pub fn is_message(v: &Value) -> bool {
        let l = v.list().unwrap_or(&[]);
        let eq = |i: usize, s: &[u8]| {
            l.get(i)
                .and_then(Value::str)
                .is_some_and(|x| x.eq_ignore_ascii_case(s))
        };
        eq(0, b"message") && eq(1, b"rfc822") && l.len() > 8
    }
    pub fn children(v: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
        if out.len() > 200 {
            return;
        }
        let join = |i: usize| {
            if prefix.is_empty() {
                format!("{i}")
            } else {
                format!("{prefix}.{i}")
            }
        };
        if is_multi(v) {
            for (i, c) in v
                .list()
                .unwrap_or(&[])
                .iter()
                .take_while(|c| matches!(c, Value::List(_)))
                .enumerate()
            {
                let p = join(i + 1);
                out.push((p.clone(), is_message(c)));
                children(c, &p, out);
            }
        } else if is_message(v) && !prefix.is_empty() {
            let inner = &v.list().expect("a message part is a list")[8];
            if is_multi(inner) {
                children(inner, prefix, out);
            } else {
                let p = join(1);
                out.push((p.clone(), is_message(inner)));
                children(inner, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    if is_multi(bs) {
        children(bs, "", &mut out);
    } else {
        out.push(("1".to_string(), is_message(bs)));
        children(bs, "1", &mut out);
    }
    out
}

/// One SEARCH criterion.
pub struct SearchKey {
    pub command: Vec<u8>,
}

pub fn search_keys() -> Vec<SearchKey> {
    let plain = |s: &str| SearchKey {
        command: s.as_bytes().to_vec(),
    };
    let utf8 = |key: &str, word: &str| {
        let mut command = format!("CHARSET UTF-8 {key} ").into_bytes();
        command.extend_from_slice(&astring(word.as_bytes()));
        SearchKey { command }
    };
    vec![
        plain("ALL"),
        plain("FROM jane"),
        plain("FROM example.org"),
        plain("FROM \"Doe, John\""),
        plain("FROM mueller"),
        plain("FROM Pirard"),
        plain("TO alice"),
        plain("CC bob"),
        plain("SUBJECT bravo"),
        plain("SUBJECT \"alpha bravo\""),
        plain("SUBJECT hotel"),
        plain("SUBJECT test"),
        plain("SUBJECT re"),
        plain("BODY alpha"),
        plain("BODY echo"),
        plain("BODY lima"),
        plain("BODY the"),
        plain("BODY boundary"),
        plain("TEXT golf"),
        plain("TEXT jane"),
        plain("TEXT hotel"),
        plain("LARGER 1000"),
        plain("SMALLER 600"),
        plain("LARGER 5000"),
        plain("HEADER X-Tag lima"),
        plain("HEADER X-Tag india"),
        plain("HEADER X-Tag \"\""),
        plain("HEADER Message-ID example"),
        plain("HEADER X-Folded \"second line\""),
        plain("HEADER Content-Type mixed"),
        plain("OR SUBJECT alpha BODY bravo"),
        plain("NOT LARGER 2000"),
        plain("SENTBEFORE 2-Jan-2023"),
        plain("SENTON 2-Jan-2023"),
        plain("SENTSINCE 3-Jan-2023"),
        plain("RECENT"),
        utf8("SUBJECT", "café"),
        utf8("SUBJECT", "grüße"),
        utf8("FROM", "Müller"),
        utf8("BODY", "café"),
        utf8("BODY", "Zürich"),
        utf8("TEXT", "日本語"),
    ]
}

pub fn search_hits(reply: &Reply) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for r in &reply.untagged {
        let text = String::from_utf8_lossy(r);
        if let Some(rest) = text.strip_prefix("* SEARCH") {
            out.extend(
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok()),
            );
        }
    }
    out
}
