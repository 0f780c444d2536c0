//! Readers of the composite command arguments: body sections and FETCH items, SEARCH keys, STATUS
//! items, ENABLE capabilities, SELECT parameters and LIST RETURN options.

use imap_types::command::{FetchModifier, SelectParameter};
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::extensions::utf8::Utf8Kind;
use imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section};
use imap_types::search::SearchKey;
use imap_types::status::StatusDataItemName;

use super::error::{invalid, unexpected, R};
use super::nodes::{
    astring, atom, boolean, ident, list, naive_date, named, need, number, nz32, nz64, one, option,
    sequence_set, vec1, Fields,
};
use crate::notation::Node;

pub(super) fn part(node: &Node) -> R<Part> {
    let Some(inner) = one(node, "Part") else {
        return unexpected("Part", node);
    };
    let nums = list(inner)?.iter().map(nz32).collect::<R<Vec<_>>>()?;
    Ok(Part(vec1(nums, inner)?))
}

pub(super) fn opt_part(node: &Node) -> R<Option<Part>> {
    option(node)?.map(part).transpose()
}

pub(super) fn section(node: &Node) -> R<Section<'static>> {
    match node {
        Node::Call(name, args) => match (name.as_str(), args.as_slice()) {
            ("Part", [p]) => Ok(Section::Part(part(p)?)),
            ("Header", [p]) => Ok(Section::Header(opt_part(p)?)),
            ("Text", [p]) => Ok(Section::Text(opt_part(p)?)),
            ("Mime", [p]) => Ok(Section::Mime(part(p)?)),
            ("HeaderFields" | "HeaderFieldsNot", [p, fields]) => {
                let fs = list(fields)?.iter().map(astring).collect::<R<Vec<_>>>()?;
                let fs = vec1(fs, fields)?;
                if name == "HeaderFields" {
                    Ok(Section::HeaderFields(opt_part(p)?, fs))
                } else {
                    Ok(Section::HeaderFieldsNot(opt_part(p)?, fs))
                }
            }
            _ => unexpected("section", node),
        },
        n => unexpected("section", n),
    }
}

pub(super) fn item_name(node: &Node) -> R<MessageDataItemName<'static>> {
    use MessageDataItemName as I;
    let simple = named![I: Body, BodyStructure, Envelope, Flags, InternalDate, Rfc822,
        Rfc822Header, Rfc822Size, Rfc822Text, Uid, ModSeq];
    if let Some(item) = ident(node, &simple) {
        return Ok(item);
    }
    Ok(match node {
        Node::Struct(name, fields) if name == "BodyExt" => {
            let f = Fields::new(name, fields, &["section", "partial", "peek"])?;
            let partial = match option(f.get("partial")?)? {
                None => None,
                Some(Node::Tuple(t)) if t.len() == 2 => {
                    let start =
                        u32::try_from(number(&t[0])?).map_err(invalid("partial start", "u32"))?;
                    Some((start, nz32(&t[1])?))
                }
                Some(n) => return unexpected("partial", n),
            };
            I::BodyExt {
                section: option(f.get("section")?)?.map(section).transpose()?,
                partial,
                peek: boolean(f.get("peek")?)?,
            }
        }
        n => return unexpected("fetch item", n),
    })
}

pub(super) fn macro_or_items(node: &Node) -> R<MacroOrMessageDataItemNames<'static>> {
    if let Some(items) = one(node, "MessageDataItemNames") {
        let items = list(items)?.iter().map(item_name).collect::<R<Vec<_>>>()?;
        return Ok(MacroOrMessageDataItemNames::MessageDataItemNames(items));
    }
    let macros = named![Macro: All, Fast, Full];
    let found = one(node, "Macro").and_then(|m| ident(m, &macros));
    need(found, "fetch items", node).map(MacroOrMessageDataItemNames::Macro)
}

pub(super) fn fetch_modifier(node: &Node) -> R<FetchModifier> {
    if let Some(m) = ident(node, &named![FetchModifier: Vanished]) {
        return Ok(m);
    }
    let since = need(one(node, "ChangedSince"), "fetch modifier", node)?;
    Ok(FetchModifier::ChangedSince(nz64(since)?))
}

pub(super) fn search_key(node: &Node) -> R<SearchKey<'static>> {
    use SearchKey as K;
    let flags = named![K: All, Answered, Deleted, Draft, Flagged, New, Old, Recent, Seen,
        Unanswered, Undeleted, Undraft, Unflagged, Unseen];
    if let Some(key) = ident(node, &flags) {
        return Ok(key);
    }
    Ok(match node {
        Node::Call(name, args) => match (name.as_str(), args.as_slice()) {
            ("And", [l]) => K::And(vec1(
                list(l)?.iter().map(search_key).collect::<R<Vec<_>>>()?,
                l,
            )?),
            ("Or", [a, b]) => K::Or(Box::new(search_key(a)?), Box::new(search_key(b)?)),
            ("Not", [k]) => K::Not(Box::new(search_key(k)?)),
            ("SequenceSet", [s]) => K::SequenceSet(sequence_set(s)?),
            ("Uid", [s]) => K::Uid(sequence_set(s)?),
            ("Header", [h, v]) => K::Header(astring(h)?, astring(v)?),
            ("Since", [d]) => K::Since(naive_date(d)?),
            ("Before", [d]) => K::Before(naive_date(d)?),
            ("On", [d]) => K::On(naive_date(d)?),
            ("SentSince", [d]) => K::SentSince(naive_date(d)?),
            ("SentBefore", [d]) => K::SentBefore(naive_date(d)?),
            ("SentOn", [d]) => K::SentOn(naive_date(d)?),
            ("From", [s]) => K::From(astring(s)?),
            ("To", [s]) => K::To(astring(s)?),
            ("Cc", [s]) => K::Cc(astring(s)?),
            ("Bcc", [s]) => K::Bcc(astring(s)?),
            ("Subject", [s]) => K::Subject(astring(s)?),
            ("Body", [s]) => K::Body(astring(s)?),
            ("Text", [s]) => K::Text(astring(s)?),
            ("Keyword", [a]) => K::Keyword(atom(a)?),
            ("Unkeyword", [a]) => K::Unkeyword(atom(a)?),
            ("Larger", [n]) => {
                K::Larger(u32::try_from(number(n)?).map_err(invalid("size", "u32"))?)
            }
            ("Smaller", [n]) => {
                K::Smaller(u32::try_from(number(n)?).map_err(invalid("size", "u32"))?)
            }
            _ => return unexpected("search key", node),
        },
        n => return unexpected("search key", n),
    })
}

/// STATUS items: as the trace names them, and as the wire does.
const STATUS_ITEMS: [(&str, StatusDataItemName, &str); 8] = [
    ("Messages", StatusDataItemName::Messages, "MESSAGES"),
    ("Recent", StatusDataItemName::Recent, "RECENT"),
    ("UidNext", StatusDataItemName::UidNext, "UIDNEXT"),
    (
        "UidValidity",
        StatusDataItemName::UidValidity,
        "UIDVALIDITY",
    ),
    ("Unseen", StatusDataItemName::Unseen, "UNSEEN"),
    ("Deleted", StatusDataItemName::Deleted, "DELETED"),
    (
        "DeletedStorage",
        StatusDataItemName::DeletedStorage,
        "DELETED-STORAGE",
    ),
    (
        "HighestModSeq",
        StatusDataItemName::HighestModSeq,
        "HIGHESTMODSEQ",
    ),
];

/// The STATUS item `node` names, with its wire form.
fn status_entry(node: &Node) -> R<(StatusDataItemName, &'static str)> {
    let entries = STATUS_ITEMS.map(|(name, item, wire)| (name, (item, wire)));
    need(ident(node, &entries), "status item", node)
}

pub(super) fn status_item(node: &Node) -> R<StatusDataItemName> {
    status_entry(node).map(|(item, _)| item)
}

pub(super) fn capability_enable(node: &Node) -> R<CapabilityEnable<'static>> {
    match node {
        Node::Ident(c) if c == "CondStore" => Ok(CapabilityEnable::CondStore),
        n => match one(n, "Utf8") {
            Some(Node::Ident(k)) if k == "Accept" => Ok(CapabilityEnable::Utf8(Utf8Kind::Accept)),
            Some(Node::Ident(k)) if k == "Only" => Ok(CapabilityEnable::Utf8(Utf8Kind::Only)),
            _ => unexpected("capability to enable", n),
        },
    }
}

pub(super) fn select_parameters(node: &Node) -> R<Vec<SelectParameter>> {
    list(node)?
        .iter()
        .map(|p| match p {
            Node::Ident(c) if c == "Condstore" || c == "CondStore" => {
                Ok(SelectParameter::CondStore)
            }
            n => unexpected("select modifier", n),
        })
        .collect()
}

/// RFC 5258 / 5819 LIST return options, as wire text.
pub(super) fn list_return_options(node: &Node) -> R<Vec<String>> {
    list(node)?
        .iter()
        .map(|o| match o {
            Node::Ident(i) if i == "Subscribed" => Ok("SUBSCRIBED".to_owned()),
            Node::Ident(i) if i == "Children" => Ok("CHILDREN".to_owned()),
            Node::Ident(i) if i == "SpecialUse" => Ok("SPECIAL-USE".to_owned()),
            n => match one(n, "Status") {
                Some(items) => {
                    let items = list(items)?
                        .iter()
                        .map(|i| status_entry(i).map(|(_, wire)| wire))
                        .collect::<R<Vec<_>>>()?;
                    Ok(format!("STATUS ({})", items.join(" ")))
                }
                None => unexpected("LIST return option", n),
            },
        })
        .collect()
}
