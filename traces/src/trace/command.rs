//! The parsed trace's types: command names as the trace and its summary write them, a command
//! ready to send, and one line of the trace.

use imap_codec::encode::Encoder as _;
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody, SelectParameter};
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;

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

/// The tag given to the command of line `line`: `A<line>`.
pub fn line_tag(line: usize) -> Tag<'static> {
    Tag::try_from(format!("A{line}")).expect("A followed by digits is a valid tag")
}

/// A SELECT (`name` [`CommandName::Select`]) or an EXAMINE (any other name) of `mailbox`.
pub(crate) fn open_command(
    name: CommandName,
    mailbox: Mailbox<'static>,
    parameters: Vec<SelectParameter>,
) -> CommandBody<'static> {
    if name == CommandName::Select {
        CommandBody::Select {
            mailbox,
            parameters,
        }
    } else {
        CommandBody::Examine {
            mailbox,
            parameters,
        }
    }
}
