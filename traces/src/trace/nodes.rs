//! Readers of notation nodes: struct fields, calls, strings, lists, options and numbers, and the
//! imap-types values built from them (atoms, strings, mailboxes, sequence sets, flags, dates).

use std::num::{NonZeroU32, NonZeroU64};

use imap_types::core::{AString, Atom, AtomExt, IString, Literal, Quoted, Vec1};
use imap_types::datetime::{DateTime, NaiveDate};
use imap_types::flag::Flag;
use imap_types::mailbox::{ListCharString, ListMailbox, Mailbox, MailboxOther};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::error::{invalid, unexpected, ParseErrorKind, R};
use crate::notation::Node;

/// Fields of a `Name { .. }` node, checked to be exactly `names`, in any order.
pub(super) struct Fields<'a> {
    name: &'a str,
    fields: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    pub(super) fn new(name: &'a str, fields: &'a [(String, Node)], names: &[&str]) -> R<Self> {
        for (f, v) in fields {
            if !names.contains(&f.as_str()) {
                return Err(ParseErrorKind::Unexpected {
                    what: "field",
                    found: format!("{name}.{f}: {v:?}"),
                });
            }
        }
        Ok(Self { name, fields })
    }

    pub(super) fn get(&self, field: &str) -> R<&'a Node> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v)
            .ok_or_else(|| ParseErrorKind::Unexpected {
                what: "missing field",
                found: format!("{}.{field}", self.name),
            })
    }
}

/// The table of identifiers named as the variants of `$ty` they stand for:
/// `named![Flag: Seen, Draft]` is `[("Seen", Flag::Seen), ("Draft", Flag::Draft)]`.
macro_rules! named {
    ($ty:ident: $($variant:ident),+ $(,)?) => {
        [$((stringify!($variant), $ty::$variant)),+]
    };
}
pub(super) use named;

/// The value `table` pairs with the identifier `node` (`Seen`, `Uid`, ...), if it is one of them.
pub(super) fn ident<T: Clone>(node: &Node, table: &[(&str, T)]) -> Option<T> {
    let Node::Ident(i) = node else {
        return None;
    };
    table.iter().find(|(n, _)| n == i).map(|(_, v)| v.clone())
}

/// `x`, or an `Unexpected` error showing `node`.
pub(super) fn need<T>(x: Option<T>, what: &'static str, node: &Node) -> R<T> {
    match x {
        Some(x) => Ok(x),
        None => unexpected(what, node),
    }
}

pub(super) fn call<'a>(node: &'a Node, name: &str) -> Option<&'a [Node]> {
    match node {
        Node::Call(n, args) if n == name => Some(args),
        _ => None,
    }
}

pub(super) fn one<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    match call(node, name) {
        Some([x]) => Some(x),
        _ => None,
    }
}

pub(super) fn string(node: &Node) -> R<&str> {
    match node {
        Node::Str(s) => Ok(s),
        n => unexpected("string", n),
    }
}

pub(super) fn boolean(node: &Node) -> R<bool> {
    match node {
        Node::Ident(b) if b == "true" => Ok(true),
        Node::Ident(b) if b == "false" => Ok(false),
        n => unexpected("boolean", n),
    }
}

pub(super) fn list(node: &Node) -> R<&[Node]> {
    match node {
        Node::List(items, _) => Ok(items),
        n => unexpected("list", n),
    }
}

pub(super) fn vec1<T>(items: Vec<T>, node: &Node) -> R<Vec1<T>> {
    Vec1::try_from(items).map_err(|_| ParseErrorKind::Unexpected {
        what: "empty list",
        found: format!("{node:?}"),
    })
}

pub(super) fn option(node: &Node) -> R<Option<&Node>> {
    match node {
        Node::Ident(n) if n == "None" => Ok(None),
        n => need(one(n, "Some"), "option", n).map(Some),
    }
}

pub(super) fn number(node: &Node) -> R<u64> {
    match node {
        Node::Num(n) => Ok(*n),
        n => unexpected("number", n),
    }
}

pub(super) fn nz32(node: &Node) -> R<NonZeroU32> {
    let n = number(node)?;
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| invalid("non-zero u32", &n.to_string())(n))
}

pub(super) fn nz64(node: &Node) -> R<NonZeroU64> {
    let n = number(node)?;
    NonZeroU64::new(n).ok_or_else(|| invalid("non-zero u64", "0")(n))
}

pub(super) fn atom(node: &Node) -> R<Atom<'static>> {
    let s = string(need(one(node, "Atom"), "Atom", node)?)?;
    Atom::try_from(s.to_owned()).map_err(invalid("atom", s))
}

pub(super) fn quoted(s: &str) -> R<Quoted<'static>> {
    Quoted::try_from(s.to_owned()).map_err(invalid("quoted string", s))
}

/// `Quoted(Quoted("x"))` or `Literal(..)`.
pub(super) fn istring(node: &Node) -> R<IString<'static>> {
    if let Some(q) = one(node, "Quoted") {
        let s = string(one(q, "Quoted").unwrap_or(q))?;
        return Ok(IString::Quoted(quoted(s)?));
    }
    if let Some(l) = one(node, "Literal") {
        let s = string(one(l, "Literal").unwrap_or(l))?;
        return Ok(IString::Literal(
            Literal::try_from(s.to_owned()).map_err(invalid("literal", s))?,
        ));
    }
    unexpected("IString", node)
}

/// `Atom(AtomExt("x"))` or `String(Quoted(Quoted("x")))`, with `REDACTED` inside replaced by `map`.
pub(super) fn astring_with(node: &Node, map: &dyn Fn(&str) -> String) -> R<AString<'static>> {
    if let Some(a) = one(node, "Atom") {
        let s = map(string(need(one(a, "AtomExt"), "AtomExt", a)?)?);
        return match AtomExt::try_from(s.clone()) {
            Ok(a) => Ok(AString::Atom(a)),
            // A generated replacement that is no atom is sent quoted.
            Err(_) => Ok(AString::String(IString::Quoted(quoted(&s)?))),
        };
    }
    if let Some(s) = one(node, "String") {
        return match istring(s)? {
            IString::Quoted(q) => Ok(AString::String(IString::Quoted(quoted(&map(q.inner()))?))),
            other => Ok(AString::String(other)),
        };
    }
    unexpected("AString", node)
}

pub(super) fn astring(node: &Node) -> R<AString<'static>> {
    astring_with(node, &|s| s.to_owned())
}

pub(super) fn mailbox(node: &Node) -> R<Mailbox<'static>> {
    match node {
        Node::Ident(i) if i == "Inbox" => Ok(Mailbox::Inbox),
        n => {
            let inner = one(n, "Other").and_then(|o| one(o, "MailboxOther"));
            let Some(inner) = inner else {
                return unexpected("Mailbox", n);
            };
            let a = astring(inner)?;
            let shown = format!("{a:?}");
            Ok(Mailbox::Other(
                MailboxOther::try_from(a).map_err(invalid("mailbox", &shown))?,
            ))
        }
    }
}

pub(super) fn list_mailbox(node: &Node) -> R<ListMailbox<'static>> {
    if let Some(t) = one(node, "Token") {
        let s = string(one(t, "ListCharString").unwrap_or(t))?;
        return Ok(ListMailbox::Token(
            ListCharString::try_from(s.to_owned()).map_err(invalid("list-char", s))?,
        ));
    }
    if let Some(s) = one(node, "String") {
        return Ok(ListMailbox::String(istring(s)?));
    }
    unexpected("ListMailbox", node)
}

pub(super) fn seq_or_uid(node: &Node) -> R<SeqOrUid> {
    if let Some(a) = ident(node, &named![SeqOrUid: Asterisk]) {
        return Ok(a);
    }
    let value = need(one(node, "Value"), "sequence number", node)?;
    Ok(SeqOrUid::Value(nz32(value)?))
}

pub(super) fn sequence_set(node: &Node) -> R<SequenceSet> {
    let Some(items) = one(node, "SequenceSet") else {
        return unexpected("SequenceSet", node);
    };
    let mut out = Vec::new();
    for item in list(items)? {
        out.push(match item {
            Node::Call(r, args) if r == "Single" && args.len() == 1 => {
                Sequence::Single(seq_or_uid(&args[0])?)
            }
            Node::Call(r, args) if r == "Range" && args.len() == 2 => {
                Sequence::Range(seq_or_uid(&args[0])?, seq_or_uid(&args[1])?)
            }
            n => return unexpected("sequence", n),
        });
    }
    // imap-codec (default feature `quirk_always_normalize_sequence_sets`) writes sets normalized:
    // `1,2` as `1:2`, `*:5` as `5:*`, `1:1` as `1`, the same messages (RFC 3501 sequence-set).
    // Normalizing here keeps the command equal to what the wire decodes back to.
    let mut set = SequenceSet(vec1(out, node)?);
    set.normalize();
    Ok(set)
}

pub(super) fn flag(node: &Node) -> R<Flag<'static>> {
    let system = named![Flag: Seen, Answered, Flagged, Deleted, Draft];
    if let Some(f) = ident(node, &system) {
        return Ok(f);
    }
    match one(node, "Keyword") {
        Some(k) => Ok(Flag::Keyword(atom(k)?)),
        None => unexpected("flag", node),
    }
}

pub(super) fn flags(node: &Node) -> R<Vec<Flag<'static>>> {
    list(node)?.iter().map(flag).collect()
}

pub(super) fn naive_date(node: &Node) -> R<NaiveDate> {
    let Node::Date(d) = node else {
        return unexpected("date", node);
    };
    let c = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(invalid("date", d))?;
    NaiveDate::try_from(c).map_err(invalid("date", d))
}

pub(super) fn date_time(node: &Node) -> R<DateTime> {
    let Node::Date(d) = node else {
        return unexpected("date-time", node);
    };
    let c = chrono::DateTime::parse_from_rfc3339(d).map_err(invalid("date-time", d))?;
    DateTime::try_from(c).map_err(invalid("date-time", d))
}
