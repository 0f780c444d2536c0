//! The workload text format: one line per user, setup step and command, so that a workload can
//! be kept in a file and a user can write their own capture in it.
//!
//! ```text
//! imapsim-workload 1
//! # comments and blank lines are ignored
//! user 0 user0@imapsim.test password-0
//! create 0 Sent
//! deliver 0 INBOX \Seen,\Answered 7 0 51234      (user mailbox flags|- seed index size)
//! step 0 0 ok Login A1 LOGIN user0@imapsim.test password-0%0D%0A
//! step 0 0 no Select A2 SELECT Test%0D%0A
//! append 0 0 ok 7 78 5000 A3 APPEND Sent (\Seen) {5000}%0D%0A
//! ```
//!
//! `step SESSION USER EXPECT NAME WIRE`: `EXPECT` is `ok`, `no` or `bad`; `NAME` as the trace
//! writes it (`Fetch`); `WIRE`, the rest of the line, is the command's bytes with its tag, CRLF
//! added if missing (literals inline, after `{n}%0D%0A`). IDLE is one step (the replayer sends
//! DONE). `append SESSION USER EXPECT SEED INDEX SIZE PREFIX`: an APPEND of the dataset email
//! `(SEED, INDEX, SIZE)`, `PREFIX` being the command up to `{SIZE}%0D%0A`. Sessions are numbered
//! from 0 in order, their lines contiguous. Bytes outside printable ASCII and `%` itself are
//! written `%HH`; in the other fields spaces and `,` too.

use std::io::{self, BufRead, Write};

use imap_codec::decode::Decoder as _;
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::flag::Flag;
use imap_types::IntoStatic as _;

use super::steps::{
    AppendStep, EmailRef, Expect, Session, SetupStep, Step, StepCommand, User, Workload,
};
use crate::dataset;
use crate::trace::{CommandName, TraceCommand};

const HEADER: &str = "imapsim-workload 1";

/// What is wrong with a line of a workload file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadErrorKind {
    /// Reading failed.
    #[error("i/o: {0}")]
    Io(String),
    /// The first line is not `imapsim-workload 1`.
    #[error("not a workload file (first line must be `{HEADER}`)")]
    Header,
    /// A line starting with an unknown word.
    #[error("unknown line kind {0:?}")]
    Kind(String),
    /// A field is missing.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field that should be a number.
    #[error("{field} is not a number: {value:?}")]
    Number { field: &'static str, value: String },
    /// A `%` not followed by two hex digits.
    #[error("bad %-escape in {0:?}")]
    Escape(String),
    /// A field that should be UTF-8.
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    /// A flag IMAP does not accept.
    #[error("bad flag {0:?}")]
    Flag(String),
    /// A command name the trace does not know.
    #[error("unknown command name {0:?}")]
    Name(String),
    /// An expectation other than ok, no, bad.
    #[error("unknown expectation {0:?} (ok, no, bad)")]
    Expect(String),
    /// Wire bytes that are no command of that name.
    #[error("wire is not a {name} command: {reason}")]
    Wire { name: CommandName, reason: String },
    /// An APPEND prefix that does not end with `{SIZE}\r\n`.
    #[error("APPEND prefix does not end with {{{0}}}\\r\\n")]
    AppendPrefix(u64),
    /// An email size below the dataset's smallest.
    #[error("email size {0} is below {min}", min = dataset::MIN_SIZE)]
    Size(u64),
    /// A user index that is not the next one, or not declared.
    #[error("user {0} is not declared (users are numbered from 0, declared first)")]
    User(usize),
    /// A session number out of order, or a session that changes user.
    #[error("session {0} out of order (numbered from 0, lines contiguous, one user)")]
    Session(usize),
}

/// A line of a workload file that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ReadError {
    /// 1-based line number (0 for errors before any line).
    pub line: usize,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

/// `%HH` for bytes outside printable ASCII, `%`, and the bytes of `extra`.
fn escape(bytes: &[u8], extra: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'%' && !extra.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> Result<Vec<u8>, ReadErrorKind> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ReadErrorKind::Escape(s.to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn token(s: &str) -> String {
    escape(s.as_bytes(), b" ,")
}

fn untoken(s: &str, field: &'static str) -> Result<String, ReadErrorKind> {
    String::from_utf8(unescape(s)?).map_err(|_| ReadErrorKind::Utf8(field))
}

fn flags_token(flags: &[Flag<'_>]) -> String {
    if flags.is_empty() {
        return "-".to_owned();
    }
    flags
        .iter()
        .map(|f| token(&f.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_flags(s: &str) -> Result<Vec<Flag<'static>>, ReadErrorKind> {
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|f| {
            let f = untoken(f, "flag")?;
            Flag::try_from(f.as_str())
                .map(|f| f.into_static())
                .map_err(|_| ReadErrorKind::Flag(f.clone()))
        })
        .collect()
}

impl Workload {
    /// Writes the workload in the [text format](self): one line per user, setup step and command.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{HEADER}")?;
        writeln!(
            out,
            "# {} users, {} setup steps, {} sessions, {} commands",
            self.users.len(),
            self.setup.len(),
            self.sessions.len(),
            self.command_count()
        )?;
        for (i, u) in self.users.iter().enumerate() {
            writeln!(out, "user {i} {} {}", token(&u.name), token(&u.password))?;
        }
        for s in &self.setup {
            match s {
                SetupStep::Create { user, mailbox } => {
                    writeln!(out, "create {user} {}", token(mailbox))?
                }
                SetupStep::Deliver {
                    user,
                    mailbox,
                    flags,
                    email,
                } => writeln!(
                    out,
                    "deliver {user} {} {} {} {} {}",
                    token(mailbox),
                    flags_token(flags),
                    email.seed,
                    email.index,
                    email.size
                )?,
            }
        }
        for (si, session) in self.sessions.iter().enumerate() {
            let user = session.user;
            for step in &session.commands {
                let expect = step.expect.as_str();
                match &step.command {
                    StepCommand::Trace(t) => writeln!(
                        out,
                        "step {si} {user} {expect} {} {}",
                        step.name,
                        escape(&t.wire(), b"")
                    )?,
                    StepCommand::Append(a) => writeln!(
                        out,
                        "append {si} {user} {expect} {} {} {} {}",
                        a.email.seed,
                        a.email.index,
                        a.email.size,
                        escape(&a.wire_prefix_with_tag(&a.tag), b"")
                    )?,
                }
            }
        }
        Ok(())
    }

    /// Reads a workload written by [`Workload::write_to`] (or by hand).
    pub fn read_from(input: impl BufRead) -> Result<Workload, ReadError> {
        let mut w = Workload {
            users: Vec::new(),
            setup: Vec::new(),
            sessions: Vec::new(),
        };
        let mut header = false;
        for (i, line) in input.lines().enumerate() {
            let at = |kind| ReadError { line: i + 1, kind };
            let line = line.map_err(|e| at(ReadErrorKind::Io(e.to_string())))?;
            if !header {
                if line.trim_end() != HEADER {
                    return Err(at(ReadErrorKind::Header));
                }
                header = true;
                continue;
            }
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            read_line(&mut w, &line).map_err(at)?;
        }
        if !header {
            return Err(ReadError {
                line: 0,
                kind: ReadErrorKind::Header,
            });
        }
        for s in &mut w.sessions {
            s.ends_with_logout = s.commands.last().map(|c| c.name) == Some(CommandName::Logout);
        }
        Ok(w)
    }
}

/// The fields of a line: `n` space-separated ones, then the rest.
struct Fields<'a> {
    parts: std::str::SplitN<'a, char>,
}

impl<'a> Fields<'a> {
    fn next(&mut self, field: &'static str) -> Result<&'a str, ReadErrorKind> {
        self.parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or(ReadErrorKind::Missing(field))
    }

    fn number<T: std::str::FromStr>(&mut self, field: &'static str) -> Result<T, ReadErrorKind> {
        let s = self.next(field)?;
        s.parse().map_err(|_| ReadErrorKind::Number {
            field,
            value: s.to_owned(),
        })
    }
}

fn read_line(w: &mut Workload, line: &str) -> Result<(), ReadErrorKind> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    let n = match kind {
        "user" => 3,
        "create" => 2,
        "deliver" => 6,
        "step" => 5,
        "append" => 7,
        other => return Err(ReadErrorKind::Kind(other.to_owned())),
    };
    let mut f = Fields {
        parts: rest.splitn(n, ' '),
    };
    let user_of = |w: &Workload, user: usize| {
        if user < w.users.len() {
            Ok(user)
        } else {
            Err(ReadErrorKind::User(user))
        }
    };
    match kind {
        "user" => {
            let index: usize = f.number("user")?;
            if index != w.users.len() {
                return Err(ReadErrorKind::User(index));
            }
            let name = untoken(f.next("name")?, "name")?;
            let password = untoken(f.next("password")?, "password")?;
            w.users.push(User { name, password });
        }
        "create" => {
            let user = user_of(w, f.number("user")?)?;
            let mailbox = untoken(f.next("mailbox")?, "mailbox")?;
            w.setup.push(SetupStep::Create { user, mailbox });
        }
        "deliver" => {
            let user = user_of(w, f.number("user")?)?;
            let mailbox = untoken(f.next("mailbox")?, "mailbox")?;
            let flags = parse_flags(f.next("flags")?)?;
            let email = email_ref(&mut f)?;
            w.setup.push(SetupStep::Deliver {
                user,
                mailbox,
                flags,
                email,
            });
        }
        _ => {
            let session: usize = f.number("session")?;
            let user = user_of(w, f.number("user")?)?;
            let expect = match f.next("expect")? {
                "ok" => Expect::Ok,
                "no" => Expect::No,
                "bad" => Expect::Bad,
                other => return Err(ReadErrorKind::Expect(other.to_owned())),
            };
            let step = if kind == "step" {
                let name_s = f.next("name")?;
                let name = CommandName::parse(name_s)
                    .ok_or_else(|| ReadErrorKind::Name(name_s.to_owned()))?;
                let wire = with_crlf(unescape(f.next("wire")?)?);
                Step {
                    name,
                    command: StepCommand::Trace(decode(name, wire)?),
                    expect,
                }
            } else {
                let email = email_ref(&mut f)?;
                let prefix = with_crlf(unescape(f.next("wire")?)?);
                Step {
                    name: CommandName::Append,
                    command: StepCommand::Append(decode_append(&prefix, email)?),
                    expect,
                }
            };
            match w.sessions.len().checked_sub(1) {
                Some(last) if session == last => {
                    if w.sessions[last].user != user {
                        return Err(ReadErrorKind::Session(session));
                    }
                    w.sessions[last].commands.push(step);
                }
                _ if session == w.sessions.len() => w.sessions.push(Session {
                    user,
                    commands: vec![step],
                    ends_with_logout: false,
                }),
                _ => return Err(ReadErrorKind::Session(session)),
            }
        }
    }
    Ok(())
}

fn email_ref(f: &mut Fields<'_>) -> Result<EmailRef, ReadErrorKind> {
    let email = EmailRef {
        seed: f.number("seed")?,
        index: f.number("index")?,
        size: f.number("size")?,
    };
    if email.size < dataset::MIN_SIZE {
        return Err(ReadErrorKind::Size(email.size));
    }
    Ok(email)
}

fn with_crlf(mut wire: Vec<u8>) -> Vec<u8> {
    if !wire.ends_with(b"\r\n") {
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

/// The name of a command body, as the trace writes it.
fn body_name(body: &CommandBody<'_>) -> Option<CommandName> {
    CommandName::ALL
        .into_iter()
        .find(|n| n.as_str().eq_ignore_ascii_case(body.name()))
}

fn decode(name: CommandName, wire: Vec<u8>) -> Result<TraceCommand, ReadErrorKind> {
    match CommandCodec::default().decode_static(&wire) {
        Ok((b"", command)) => {
            let actual = body_name(&command.body);
            if actual != Some(name) {
                return Err(ReadErrorKind::Wire {
                    name,
                    reason: format!("it is a {}", command.body.name()),
                });
            }
            Ok(TraceCommand::Codec(command))
        }
        Ok(_) => Err(ReadErrorKind::Wire {
            name,
            reason: "bytes after the command".into(),
        }),
        Err(e) => {
            // A form imap-codec cannot express (LIST ... RETURN (...)): kept as bytes when its
            // second word is the command's name.
            let second = wire
                .split(|&b| b == b' ' || b == b'\r')
                .nth(1)
                .unwrap_or_default();
            if second.eq_ignore_ascii_case(name.as_str().as_bytes())
                && !wire[..wire.len() - 2].contains(&b'\n')
            {
                Ok(TraceCommand::Raw { name, wire })
            } else {
                Err(ReadErrorKind::Wire {
                    name,
                    reason: format!("{e:?}"),
                })
            }
        }
    }
}

fn decode_append(prefix: &[u8], email: EmailRef) -> Result<AppendStep, ReadErrorKind> {
    let announce = format!("{{{}}}\r\n", email.size);
    let Some(head) = prefix.strip_suffix(announce.as_bytes()) else {
        return Err(ReadErrorKind::AppendPrefix(email.size));
    };
    let mut probe = head.to_vec();
    probe.extend_from_slice(b"{1}\r\nx\r\n");
    let wire_err = |reason: String| ReadErrorKind::Wire {
        name: CommandName::Append,
        reason,
    };
    let (rest, command): (_, Command<'static>) = CommandCodec::default()
        .decode_static(&probe)
        .map_err(|e| wire_err(format!("{e:?}")))?;
    if !rest.is_empty() {
        return Err(wire_err("bytes after the command".into()));
    }
    let CommandBody::Append {
        mailbox,
        flags,
        date,
        ..
    } = command.body
    else {
        return Err(wire_err(format!("it is a {}", command.body.name())));
    };
    Ok(AppendStep {
        tag: command.tag,
        mailbox,
        flags,
        date,
        email,
    })
}
