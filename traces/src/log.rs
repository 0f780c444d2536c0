//! Parser of the recorded trace (`data/imap_commands_dataset.log`): each line, written in the Debug
//! notation of an older imap-types fork, becomes a real IMAP command: an imap-types
//! [`Command`] that imap-codec encodes, or, for the LIST forms imap-codec 2.0.0-alpha.10 cannot
//! express (RFC 5258 selection / RFC 5819 RETURN options), wire bytes built here.

use std::borrow::Cow;
use std::fmt::Debug;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::encode::Encoder as _;
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody, FetchModifier, SelectParameter};
use imap_types::core::{AString, Atom, AtomExt, IString, Literal, Quoted, Tag, Vec1};
use imap_types::datetime::{DateTime, NaiveDate};
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::extensions::utf8::Utf8Kind;
use imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section};
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::mailbox::{ListCharString, ListMailbox, Mailbox, MailboxOther};
use imap_types::search::SearchKey;
use imap_types::secret::Secret;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_types::status::StatusDataItemName;
use rand::{Rng as _, SeedableRng as _};

use crate::notation::{self, Node};

/// The embedded trace: 240 distinct commands, one a line.
pub const RECORDED_LOG: &str = include_str!("../data/imap_commands_dataset.log");

/// The embedded `count,command,aggregation` table.
pub const RECORDED_SUMMARY: &str = include_str!("../data/imap_commands_summary.csv");

/// IMAP command names, as the trace and its summary name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommandName {
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Create,
    Delete,
    Enable,
    Examine,
    Expunge,
    Fetch,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Search,
    Select,
    Status,
    Store,
    Subscribe,
    Unselect,
    Unsubscribe,
}

impl CommandName {
    /// Every name, in order.
    pub const ALL: [CommandName; 27] = [
        Self::Append,
        Self::Authenticate,
        Self::Capability,
        Self::Check,
        Self::Close,
        Self::Create,
        Self::Delete,
        Self::Enable,
        Self::Examine,
        Self::Expunge,
        Self::Fetch,
        Self::Id,
        Self::Idle,
        Self::List,
        Self::Login,
        Self::Logout,
        Self::Lsub,
        Self::Move,
        Self::Namespace,
        Self::Noop,
        Self::Search,
        Self::Select,
        Self::Status,
        Self::Store,
        Self::Subscribe,
        Self::Unselect,
        Self::Unsubscribe,
    ];

    /// The name as the trace writes it (`Fetch`, `Select`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Append => "Append",
            Self::Authenticate => "Authenticate",
            Self::Capability => "Capability",
            Self::Check => "Check",
            Self::Close => "Close",
            Self::Create => "Create",
            Self::Delete => "Delete",
            Self::Enable => "Enable",
            Self::Examine => "Examine",
            Self::Expunge => "Expunge",
            Self::Fetch => "Fetch",
            Self::Id => "Id",
            Self::Idle => "Idle",
            Self::List => "List",
            Self::Login => "Login",
            Self::Logout => "Logout",
            Self::Lsub => "Lsub",
            Self::Move => "Move",
            Self::Namespace => "Namespace",
            Self::Noop => "Noop",
            Self::Search => "Search",
            Self::Select => "Select",
            Self::Status => "Status",
            Self::Store => "Store",
            Self::Subscribe => "Subscribe",
            Self::Unselect => "Unselect",
            Self::Unsubscribe => "Unsubscribe",
        }
    }

    /// The name of `s` as the trace writes it, if known.
    pub fn parse(s: &str) -> Option<CommandName> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl std::fmt::Display for CommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One command of the trace, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceCommand {
    /// A command imap-codec encodes (and decodes back to an equal value).
    Codec(Command<'static>),
    /// A command imap-codec 2.0.0-alpha.10 cannot express (LIST with RETURN options, RFC 5258 /
    /// 5819): its wire bytes, tag first, CRLF last.
    Raw { name: CommandName, wire: Vec<u8> },
}

impl TraceCommand {
    /// The wire bytes, with the line's tag (`A<line>`); literals are inline, after `{n}\r\n`.
    pub fn wire(&self) -> Vec<u8> {
        match self {
            Self::Codec(c) => CommandCodec::default().encode(c).dump(),
            Self::Raw { wire, .. } => wire.clone(),
        }
    }

    /// The wire bytes with another tag.
    pub fn wire_with_tag(&self, tag: &Tag<'_>) -> Vec<u8> {
        match self {
            Self::Codec(c) => {
                let mut c = c.clone();
                c.tag = Tag::try_from(tag.inner().to_owned()).expect("a valid tag stays valid");
                CommandCodec::default().encode(&c).dump()
            }
            Self::Raw { wire, .. } => {
                let rest = wire
                    .iter()
                    .position(|&b| b == b' ')
                    .map_or(&wire[..], |p| &wire[p..]);
                let mut out = tag.inner().as_bytes().to_vec();
                out.extend_from_slice(rest);
                out
            }
        }
    }
}

/// One line of the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// 1-based line number in the log.
    pub line: usize,
    /// The command's name.
    pub name: CommandName,
    /// The command.
    pub command: TraceCommand,
}

/// Values the recording removed, supplied by the caller. `line` is the 1-based line number.
pub trait Redacted {
    /// The user name for a LOGIN; `recorded` is the redacted form (`REDACTED`,
    /// `REDACTED@saint-ex.deuxfleurs.org`).
    fn username(&self, line: usize, recorded: &str) -> String;
    /// The password for a LOGIN.
    fn password(&self, line: usize) -> String;
    /// The message of an APPEND (no NUL byte).
    fn message(&self, line: usize) -> Vec<u8>;
}

/// Generated stand-ins for the redacted values: one user and password for every LOGIN, and an
/// APPEND message from the dataset generator, 1,000 to 20,000 bytes, drawn from `seed` and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRedacted {
    /// Seed of the APPEND messages. Default 0.
    pub seed: u64,
    /// User name of every LOGIN. Default `alice`.
    pub username: String,
    /// Password of every LOGIN. Default `alice-password`.
    pub password: String,
}

impl Default for SeededRedacted {
    fn default() -> Self {
        Self {
            seed: 0,
            username: "alice".into(),
            password: "alice-password".into(),
        }
    }
}

impl Redacted for SeededRedacted {
    fn username(&self, _line: usize, _recorded: &str) -> String {
        self.username.clone()
    }

    fn password(&self, _line: usize) -> String {
        self.password.clone()
    }

    fn message(&self, line: usize) -> Vec<u8> {
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ (line as u64).rotate_left(32));
        crate::dataset::email(self.seed, line, rng.gen_range(1_000..=20_000)).bytes
    }
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The notation itself does not parse.
    #[error("syntax: expected {expected} at column {column}")]
    Syntax {
        column: usize,
        expected: &'static str,
    },
    /// The notation parses but is not a command form this parser knows.
    #[error("unexpected {what}: {found}")]
    Unexpected { what: &'static str, found: String },
    /// A value that imap-types refuses.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// A line of the trace that does not become a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

type R<T> = Result<T, ParseErrorKind>;

fn unexpected<T>(what: &'static str, found: &Node) -> R<T> {
    let mut found = format!("{found:?}");
    found.truncate(200);
    Err(ParseErrorKind::Unexpected { what, found })
}

fn invalid<'v, E: Debug>(
    what: &'static str,
    value: &'v str,
) -> impl FnOnce(E) -> ParseErrorKind + 'v {
    move |e| ParseErrorKind::Invalid {
        what,
        value: value.to_owned(),
        reason: format!("{e:?}"),
    }
}

/// Fields of a `Name { .. }` node, checked to be exactly `names`, in any order.
struct Fields<'a> {
    name: &'a str,
    fields: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    fn new(name: &'a str, fields: &'a [(String, Node)], names: &[&str]) -> R<Self> {
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

    fn get(&self, field: &str) -> R<&'a Node> {
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

/// `x`, or an `Unexpected` error showing `node`.
fn need<T>(x: Option<T>, what: &'static str, node: &Node) -> R<T> {
    match x {
        Some(x) => Ok(x),
        None => unexpected(what, node),
    }
}

fn call<'a>(node: &'a Node, name: &str) -> Option<&'a [Node]> {
    match node {
        Node::Call(n, args) if n == name => Some(args),
        _ => None,
    }
}

fn one<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    match call(node, name) {
        Some([x]) => Some(x),
        _ => None,
    }
}

fn string(node: &Node) -> R<&str> {
    match node {
        Node::Str(s) => Ok(s),
        n => unexpected("string", n),
    }
}

fn boolean(node: &Node) -> R<bool> {
    match node {
        Node::Ident(b) if b == "true" => Ok(true),
        Node::Ident(b) if b == "false" => Ok(false),
        n => unexpected("boolean", n),
    }
}

fn list(node: &Node) -> R<&[Node]> {
    match node {
        Node::List(items, _) => Ok(items),
        n => unexpected("list", n),
    }
}

fn vec1<T>(items: Vec<T>, node: &Node) -> R<Vec1<T>> {
    Vec1::try_from(items).map_err(|_| ParseErrorKind::Unexpected {
        what: "empty list",
        found: format!("{node:?}"),
    })
}

fn option(node: &Node) -> R<Option<&Node>> {
    match node {
        Node::Ident(n) if n == "None" => Ok(None),
        n => need(one(n, "Some"), "option", n).map(Some),
    }
}

fn number(node: &Node) -> R<u64> {
    match node {
        Node::Num(n) => Ok(*n),
        n => unexpected("number", n),
    }
}

fn nz32(node: &Node) -> R<NonZeroU32> {
    let n = number(node)?;
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| invalid("non-zero u32", &n.to_string())(n))
}

fn nz64(node: &Node) -> R<NonZeroU64> {
    let n = number(node)?;
    NonZeroU64::new(n).ok_or_else(|| invalid("non-zero u64", "0")(n))
}

fn atom(node: &Node) -> R<Atom<'static>> {
    let s = string(need(one(node, "Atom"), "Atom", node)?)?;
    Atom::try_from(s.to_owned()).map_err(invalid("atom", s))
}

fn quoted(s: &str) -> R<Quoted<'static>> {
    Quoted::try_from(s.to_owned()).map_err(invalid("quoted string", s))
}

/// `Quoted(Quoted("x"))` or `Literal(..)`.
fn istring(node: &Node) -> R<IString<'static>> {
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
fn astring_with(node: &Node, map: &dyn Fn(&str) -> String) -> R<AString<'static>> {
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

fn astring(node: &Node) -> R<AString<'static>> {
    astring_with(node, &|s| s.to_owned())
}

fn mailbox(node: &Node) -> R<Mailbox<'static>> {
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

fn list_mailbox(node: &Node) -> R<ListMailbox<'static>> {
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

fn seq_or_uid(node: &Node) -> R<SeqOrUid> {
    match node {
        Node::Ident(a) if a == "Asterisk" => Ok(SeqOrUid::Asterisk),
        n => match one(n, "Value") {
            Some(v) => Ok(SeqOrUid::Value(nz32(v)?)),
            None => unexpected("sequence number", n),
        },
    }
}

fn sequence_set(node: &Node) -> R<SequenceSet> {
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

fn flag(node: &Node) -> R<Flag<'static>> {
    Ok(match node {
        Node::Ident(f) => match f.as_str() {
            "Seen" => Flag::Seen,
            "Answered" => Flag::Answered,
            "Flagged" => Flag::Flagged,
            "Deleted" => Flag::Deleted,
            "Draft" => Flag::Draft,
            _ => return unexpected("flag", node),
        },
        n => match one(n, "Keyword") {
            Some(k) => Flag::Keyword(atom(k)?),
            None => return unexpected("flag", n),
        },
    })
}

fn flags(node: &Node) -> R<Vec<Flag<'static>>> {
    list(node)?.iter().map(flag).collect()
}

fn naive_date(node: &Node) -> R<NaiveDate> {
    let Node::Date(d) = node else {
        return unexpected("date", node);
    };
    let c = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(invalid("date", d))?;
    NaiveDate::try_from(c).map_err(invalid("date", d))
}

fn date_time(node: &Node) -> R<DateTime> {
    let Node::Date(d) = node else {
        return unexpected("date-time", node);
    };
    let c = chrono::DateTime::parse_from_rfc3339(d).map_err(invalid("date-time", d))?;
    DateTime::try_from(c).map_err(invalid("date-time", d))
}

fn part(node: &Node) -> R<Part> {
    let Some(inner) = one(node, "Part") else {
        return unexpected("Part", node);
    };
    let nums = list(inner)?.iter().map(nz32).collect::<R<Vec<_>>>()?;
    Ok(Part(vec1(nums, inner)?))
}

fn opt_part(node: &Node) -> R<Option<Part>> {
    option(node)?.map(part).transpose()
}

fn section(node: &Node) -> R<Section<'static>> {
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

fn item_name(node: &Node) -> R<MessageDataItemName<'static>> {
    use MessageDataItemName as I;
    Ok(match node {
        Node::Ident(i) => match i.as_str() {
            "Body" => I::Body,
            "BodyStructure" => I::BodyStructure,
            "Envelope" => I::Envelope,
            "Flags" => I::Flags,
            "InternalDate" => I::InternalDate,
            "Rfc822" => I::Rfc822,
            "Rfc822Header" => I::Rfc822Header,
            "Rfc822Size" => I::Rfc822Size,
            "Rfc822Text" => I::Rfc822Text,
            "Uid" => I::Uid,
            "ModSeq" => I::ModSeq,
            _ => return unexpected("fetch item", node),
        },
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

fn macro_or_items(node: &Node) -> R<MacroOrMessageDataItemNames<'static>> {
    if let Some(items) = one(node, "MessageDataItemNames") {
        let items = list(items)?.iter().map(item_name).collect::<R<Vec<_>>>()?;
        return Ok(MacroOrMessageDataItemNames::MessageDataItemNames(items));
    }
    match one(node, "Macro") {
        Some(Node::Ident(m)) if m == "All" => Ok(MacroOrMessageDataItemNames::Macro(Macro::All)),
        Some(Node::Ident(m)) if m == "Fast" => Ok(MacroOrMessageDataItemNames::Macro(Macro::Fast)),
        Some(Node::Ident(m)) if m == "Full" => Ok(MacroOrMessageDataItemNames::Macro(Macro::Full)),
        _ => unexpected("fetch items", node),
    }
}

fn fetch_modifier(node: &Node) -> R<FetchModifier> {
    match node {
        Node::Ident(v) if v == "Vanished" => Ok(FetchModifier::Vanished),
        n => match one(n, "ChangedSince") {
            Some(m) => Ok(FetchModifier::ChangedSince(nz64(m)?)),
            None => unexpected("fetch modifier", n),
        },
    }
}

fn search_key(node: &Node) -> R<SearchKey<'static>> {
    use SearchKey as K;
    Ok(match node {
        Node::Ident(i) => match i.as_str() {
            "All" => K::All,
            "Answered" => K::Answered,
            "Deleted" => K::Deleted,
            "Draft" => K::Draft,
            "Flagged" => K::Flagged,
            "New" => K::New,
            "Old" => K::Old,
            "Recent" => K::Recent,
            "Seen" => K::Seen,
            "Unanswered" => K::Unanswered,
            "Undeleted" => K::Undeleted,
            "Undraft" => K::Undraft,
            "Unflagged" => K::Unflagged,
            "Unseen" => K::Unseen,
            _ => return unexpected("search key", node),
        },
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

fn status_item(node: &Node) -> R<StatusDataItemName> {
    use StatusDataItemName as S;
    Ok(match node {
        Node::Ident(i) => match i.as_str() {
            "Messages" => S::Messages,
            "Recent" => S::Recent,
            "UidNext" => S::UidNext,
            "UidValidity" => S::UidValidity,
            "Unseen" => S::Unseen,
            "Deleted" => S::Deleted,
            "DeletedStorage" => S::DeletedStorage,
            "HighestModSeq" => S::HighestModSeq,
            _ => return unexpected("status item", node),
        },
        n => return unexpected("status item", n),
    })
}

fn status_item_wire(item: StatusDataItemName) -> &'static str {
    use StatusDataItemName as S;
    match item {
        S::Messages => "MESSAGES",
        S::Recent => "RECENT",
        S::UidNext => "UIDNEXT",
        S::UidValidity => "UIDVALIDITY",
        S::Unseen => "UNSEEN",
        S::Deleted => "DELETED",
        S::DeletedStorage => "DELETED-STORAGE",
        S::HighestModSeq => "HIGHESTMODSEQ",
    }
}

fn capability_enable(node: &Node) -> R<CapabilityEnable<'static>> {
    match node {
        Node::Ident(c) if c == "CondStore" => Ok(CapabilityEnable::CondStore),
        n => match one(n, "Utf8") {
            Some(Node::Ident(k)) if k == "Accept" => Ok(CapabilityEnable::Utf8(Utf8Kind::Accept)),
            Some(Node::Ident(k)) if k == "Only" => Ok(CapabilityEnable::Utf8(Utf8Kind::Only)),
            _ => unexpected("capability to enable", n),
        },
    }
}

fn select_parameters(node: &Node) -> R<Vec<SelectParameter>> {
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
fn list_return_options(node: &Node) -> R<Vec<String>> {
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
                        .map(|i| status_item(i).map(status_item_wire))
                        .collect::<R<Vec<_>>>()?;
                    Ok(format!("STATUS ({})", items.join(" ")))
                }
                None => unexpected("LIST return option", n),
            },
        })
        .collect()
}

/// A command body, or a LIST with RETURN options (as the body without them, plus the options).
enum Mapped {
    Body(CommandBody<'static>),
    ListReturn(CommandBody<'static>, Vec<String>),
}

fn map_command(node: &Node, line: usize, redacted: &dyn Redacted) -> R<(CommandName, Mapped)> {
    let (name, body) = match node {
        Node::Ident(n) => {
            let name = need(CommandName::parse(n), "command", node)?;
            let body = match name {
                CommandName::Capability => CommandBody::Capability,
                CommandName::Noop => CommandBody::Noop,
                CommandName::Logout => CommandBody::Logout,
                CommandName::Check => CommandBody::Check,
                CommandName::Close => CommandBody::Close,
                CommandName::Unselect => CommandBody::Unselect,
                CommandName::Idle => CommandBody::Idle,
                CommandName::Namespace => CommandBody::Namespace,
                CommandName::Expunge => CommandBody::Expunge,
                _ => return unexpected("command without arguments", node),
            };
            return Ok((name, Mapped::Body(body)));
        }
        Node::Struct(n, fields) => (n.as_str(), fields.as_slice()),
        n => return unexpected("command", n),
    };
    let cmd = need(CommandName::parse(name), "command", node)?;
    let f = |names: &[&str]| Fields::new(name, body, names);
    let mapped = match cmd {
        CommandName::Login => {
            let f = f(&["username", "password"])?;
            let username = astring_with(f.get("username")?, &|recorded| {
                redacted.username(line, recorded)
            })?;
            if f.get("password")? != &Node::Redacted {
                return unexpected("password (the recording redacts them)", f.get("password")?);
            }
            let pw = redacted.password(line);
            let password = match AtomExt::try_from(pw.clone()) {
                Ok(a) => AString::Atom(a),
                Err(_) => AString::String(IString::Quoted(quoted(&pw)?)),
            };
            Mapped::Body(CommandBody::Login {
                username,
                password: Secret::new(password),
            })
        }
        CommandName::Select | CommandName::Examine => {
            let f = f(&["mailbox", "modifiers"])?;
            let mailbox = mailbox(f.get("mailbox")?)?;
            let parameters = select_parameters(f.get("modifiers")?)?;
            Mapped::Body(if cmd == CommandName::Select {
                CommandBody::Select {
                    mailbox,
                    parameters,
                }
            } else {
                CommandBody::Examine {
                    mailbox,
                    parameters,
                }
            })
        }
        CommandName::Create
        | CommandName::Delete
        | CommandName::Subscribe
        | CommandName::Unsubscribe => {
            let mailbox = mailbox(f(&["mailbox"])?.get("mailbox")?)?;
            Mapped::Body(match cmd {
                CommandName::Create => CommandBody::Create { mailbox },
                CommandName::Delete => CommandBody::Delete { mailbox },
                CommandName::Subscribe => CommandBody::Subscribe { mailbox },
                _ => CommandBody::Unsubscribe { mailbox },
            })
        }
        CommandName::Enable => {
            let caps = f(&["capabilities"])?.get("capabilities")?;
            let list_ = list(caps)?
                .iter()
                .map(capability_enable)
                .collect::<R<Vec<_>>>()?;
            Mapped::Body(CommandBody::Enable {
                capabilities: vec1(list_, caps)?,
            })
        }
        CommandName::Expunge => match option(f(&["uid_sequence_set"])?.get("uid_sequence_set")?)? {
            None => Mapped::Body(CommandBody::Expunge),
            Some(s) => Mapped::Body(CommandBody::ExpungeUid {
                sequence_set: sequence_set(s)?,
            }),
        },
        CommandName::List | CommandName::Lsub => {
            let f = f(&["reference", "mailbox_wildcard", "return"])?;
            let reference = mailbox(f.get("reference")?)?;
            let mailbox_wildcard = list_mailbox(f.get("mailbox_wildcard")?)?;
            if cmd == CommandName::Lsub {
                if f.get("return").is_ok() {
                    return unexpected("field", f.get("return")?);
                }
                Mapped::Body(CommandBody::Lsub {
                    reference,
                    mailbox_wildcard,
                })
            } else {
                let options = list_return_options(f.get("return")?)?;
                let body = CommandBody::List {
                    reference,
                    mailbox_wildcard,
                };
                if options.is_empty() {
                    Mapped::Body(body)
                } else {
                    Mapped::ListReturn(body, options)
                }
            }
        }
        CommandName::Status => {
            let f = f(&["mailbox", "item_names"])?;
            let items = list(f.get("item_names")?)?
                .iter()
                .map(status_item)
                .collect::<R<Vec<_>>>()?;
            Mapped::Body(CommandBody::Status {
                mailbox: mailbox(f.get("mailbox")?)?,
                item_names: Cow::Owned(items),
            })
        }
        CommandName::Append => {
            let f = f(&["mailbox", "flags", "date", "message"])?;
            if f.get("message")? != &Node::Redacted {
                return unexpected("message (the recording redacts them)", f.get("message")?);
            }
            let bytes = redacted.message(line);
            let literal =
                Literal::try_from(bytes).map_err(invalid("APPEND message", "generated"))?;
            Mapped::Body(CommandBody::Append {
                mailbox: mailbox(f.get("mailbox")?)?,
                flags: flags(f.get("flags")?)?,
                date: option(f.get("date")?)?.map(date_time).transpose()?,
                message: LiteralOrLiteral8::Literal(literal),
            })
        }
        CommandName::Search => {
            let f = f(&["charset", "criteria", "uid"])?;
            let charset = match option(f.get("charset")?)? {
                None => None,
                Some(c) => {
                    let a = astring(c)?;
                    let s = String::from_utf8_lossy(a.as_ref()).into_owned();
                    Some(
                        imap_types::core::Charset::try_from(s.clone())
                            .map_err(invalid("charset", &s))?,
                    )
                }
            };
            // The older fork held one key; `And([..])` at the top is the command's list of keys.
            let c = f.get("criteria")?;
            let criteria = match search_key(c)? {
                SearchKey::And(keys) => keys,
                k => Vec1::from(k),
            };
            Mapped::Body(CommandBody::Search {
                charset,
                criteria,
                uid: boolean(f.get("uid")?)?,
            })
        }
        CommandName::Fetch => {
            let f = f(&["sequence_set", "modifiers", "macro_or_item_names", "uid"])?;
            Mapped::Body(CommandBody::Fetch {
                sequence_set: sequence_set(f.get("sequence_set")?)?,
                macro_or_item_names: macro_or_items(f.get("macro_or_item_names")?)?,
                uid: boolean(f.get("uid")?)?,
                modifiers: list(f.get("modifiers")?)?
                    .iter()
                    .map(fetch_modifier)
                    .collect::<R<Vec<_>>>()?,
            })
        }
        CommandName::Store => {
            let f = f(&[
                "sequence_set",
                "kind",
                "response",
                "flags",
                "modifiers",
                "uid",
            ])?;
            let kind = match f.get("kind")? {
                Node::Ident(k) if k == "Add" => StoreType::Add,
                Node::Ident(k) if k == "Remove" => StoreType::Remove,
                Node::Ident(k) if k == "Replace" => StoreType::Replace,
                n => return unexpected("store kind", n),
            };
            let response = match f.get("response")? {
                Node::Ident(r) if r == "Answer" => StoreResponse::Answer,
                Node::Ident(r) if r == "Silent" => StoreResponse::Silent,
                n => return unexpected("store response", n),
            };
            let modifiers = f.get("modifiers")?;
            if !list(modifiers)?.is_empty() {
                return unexpected("store modifiers", modifiers);
            }
            Mapped::Body(CommandBody::Store {
                sequence_set: sequence_set(f.get("sequence_set")?)?,
                kind,
                response,
                flags: flags(f.get("flags")?)?,
                uid: boolean(f.get("uid")?)?,
                modifiers: Vec::new(),
            })
        }
        CommandName::Move => {
            let f = f(&["sequence_set", "mailbox", "uid"])?;
            Mapped::Body(CommandBody::Move {
                sequence_set: sequence_set(f.get("sequence_set")?)?,
                mailbox: mailbox(f.get("mailbox")?)?,
                uid: boolean(f.get("uid")?)?,
            })
        }
        _ => return unexpected("command form", node),
    };
    Ok((cmd, mapped))
}

/// The tag given to the command of line `line`: `A<line>`.
pub fn line_tag(line: usize) -> Tag<'static> {
    Tag::try_from(format!("A{line}")).expect("A followed by digits is a valid tag")
}

fn parse_one(text: &str, line: usize, redacted: &dyn Redacted) -> R<TraceLine> {
    let node = notation::parse_line(text).map_err(|e| ParseErrorKind::Syntax {
        column: e.column,
        expected: e.expected,
    })?;
    let (name, mapped) = map_command(&node, line, redacted)?;
    let command = match mapped {
        Mapped::Body(body) => TraceCommand::Codec(Command {
            tag: line_tag(line),
            body,
        }),
        Mapped::ListReturn(body, options) => {
            // imap-codec writes `TAG LIST ref pattern\r\n`; RFC 5258 puts RETURN (..) after the pattern.
            let mut wire = CommandCodec::default()
                .encode(&Command {
                    tag: line_tag(line),
                    body,
                })
                .dump();
            if !wire.ends_with(b"\r\n") {
                return Err(ParseErrorKind::Invalid {
                    what: "LIST encoding",
                    value: String::from_utf8_lossy(&wire).into_owned(),
                    reason: "does not end in CRLF".into(),
                });
            }
            wire.truncate(wire.len() - 2);
            wire.extend_from_slice(format!(" RETURN ({})\r\n", options.join(" ")).as_bytes());
            TraceCommand::Raw { name, wire }
        }
    };
    Ok(TraceLine {
        line,
        name,
        command,
    })
}

/// Parses a whole trace log, one command a line (blank lines are refused too: the log has none).
pub fn parse_log(text: &str, redacted: &dyn Redacted) -> Result<Vec<TraceLine>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            parse_one(l, i + 1, redacted).map_err(|kind| ParseError { line: i + 1, kind })
        })
        .collect()
}

/// The embedded trace, with [`SeededRedacted::default`] values for what the recording redacted.
pub fn recorded() -> Vec<TraceLine> {
    parse_log(RECORDED_LOG, &SeededRedacted::default()).expect("the embedded log parses (tested)")
}

/// How a summary row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aggregation {
    /// Occurrences of the command among the 4,619 recorded.
    Raw,
    /// Distinct variants of the command among them.
    Unique,
}

/// One row of `imap_commands_summary.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRow {
    pub count: u64,
    pub command: CommandName,
    pub aggregation: Aggregation,
}

/// A summary row that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("summary line {line}: {reason}: {text:?}")]
pub struct SummaryError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Parses a `count,command,aggregation` table (with its header line).
pub fn parse_summary(text: &str) -> Result<Vec<SummaryRow>, SummaryError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "count,command,aggregation")) => {}
        other => {
            return Err(SummaryError {
                line: 1,
                reason: "missing header",
                text: other.map(|(_, t)| t.to_owned()).unwrap_or_default(),
            })
        }
    }
    lines
        .map(|(i, l)| {
            let err = |reason| SummaryError {
                line: i + 1,
                reason,
                text: l.to_owned(),
            };
            let cols: Vec<&str> = l.split(',').collect();
            let [count, command, aggregation] = cols[..] else {
                return Err(err("not three columns"));
            };
            Ok(SummaryRow {
                count: count.parse().map_err(|_| err("bad count"))?,
                command: CommandName::parse(command).ok_or_else(|| err("unknown command"))?,
                aggregation: match aggregation {
                    "Raw" => Aggregation::Raw,
                    "Unique" => Aggregation::Unique,
                    _ => return Err(err("unknown aggregation")),
                },
            })
        })
        .collect()
}

/// The embedded summary.
pub fn summary() -> Vec<SummaryRow> {
    parse_summary(RECORDED_SUMMARY).expect("the embedded summary parses (tested)")
}
