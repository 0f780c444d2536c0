//! The parser of trace lines: each notation line mapped to an imap-types command (or, for a LIST
//! with RETURN options, to wire bytes built here), and the embedded trace parsed.

use std::borrow::Cow;

use imap_codec::encode::Encoder as _;
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::{AString, AtomExt, IString, Literal, Vec1};
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::{StoreResponse, StoreType};
use imap_types::search::SearchKey;
use imap_types::secret::Secret;

use super::arguments::{
    capability_enable, fetch_modifier, list_return_options, macro_or_items, search_key,
    select_parameters, status_item,
};
use super::command::{line_tag, open_command, CommandName, TraceCommand, TraceLine};
use super::error::{invalid, unexpected, ParseError, ParseErrorKind, R};
use super::nodes::{
    astring, astring_with, boolean, date_time, flags, ident, list, list_mailbox, mailbox, named,
    need, option, quoted, sequence_set, vec1, Fields,
};
use super::redacted::{Redacted, SeededRedacted};
use crate::notation;
use crate::notation::Node;

/// The embedded trace: 240 distinct commands, one a line.
pub const RECORDED_LOG: &str = include_str!("../../data/imap_commands_dataset.log");

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
            Mapped::Body(open_command(cmd, mailbox, parameters))
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
            let kinds = named![StoreType: Add, Remove, Replace];
            let kind = need(ident(f.get("kind")?, &kinds), "store kind", f.get("kind")?)?;
            let responses = named![StoreResponse: Answer, Silent];
            let response = f.get("response")?;
            let response = need(ident(response, &responses), "store response", response)?;
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
