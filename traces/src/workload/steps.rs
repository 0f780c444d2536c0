//! What a workload holds: its users, the setup of their mailboxes, and sessions of steps (each a
//! command, by value or as an APPEND of a dataset email named by reference, and its expected answer).

use std::collections::BTreeMap;

use imap_codec::encode::{Encoder as _, Fragment};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::{Literal, Tag};
use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::Flag;
use imap_types::mailbox::Mailbox;

use crate::dataset::{self, DatasetError, Email};
use crate::trace::{CommandName, TraceCommand};

/// A user of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (`user0@imapsim.test`, ...).
    pub name: String,
    /// Password.
    pub password: String,
}

impl User {
    /// User `index` of a generated workload.
    pub fn numbered(index: usize) -> Self {
        Self {
            name: format!("user{index}@imapsim.test"),
            password: format!("password-{index}"),
        }
    }
}

/// A dataset email, named rather than held: `dataset::email(seed, index, size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailRef {
    /// Dataset seed.
    pub seed: u64,
    /// Index in the dataset.
    pub index: usize,
    /// Exact size in bytes.
    pub size: u64,
}

impl EmailRef {
    /// Generates the email.
    pub fn email(&self) -> Result<Email, DatasetError> {
        dataset::try_email(self.seed, self.index, self.size)
    }
}

/// One step of the setup, done before the sessions (by LMTP delivery or APPEND, as the replayer
/// likes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    /// Create a mailbox of a user (INBOX always exists).
    Create { user: usize, mailbox: String },
    /// Put a dataset email with these flags in a mailbox of a user.
    Deliver {
        user: usize,
        mailbox: String,
        flags: Vec<Flag<'static>>,
        email: EmailRef,
    },
}

/// The answer a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expect {
    /// Tagged OK.
    Ok,
    /// Tagged NO (e.g. SELECT of a mailbox that does not exist, CREATE of one that does).
    No,
    /// Tagged BAD.
    Bad,
}

impl Expect {
    /// `ok`, `no` or `bad`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::No => "no",
            Self::Bad => "bad",
        }
    }
}

/// An APPEND whose message is a dataset email, generated when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendStep {
    /// The command's tag.
    pub tag: Tag<'static>,
    /// Target mailbox.
    pub mailbox: Mailbox<'static>,
    /// Flags of the new message.
    pub flags: Vec<Flag<'static>>,
    /// Internal date, if the command gives one.
    pub date: Option<DateTime>,
    /// The message.
    pub email: EmailRef,
}

impl AppendStep {
    fn command_with(&self, tag: Tag<'static>, message: Vec<u8>) -> Command<'static> {
        let literal = Literal::try_from(message).expect("dataset emails hold no NUL byte");
        Command {
            tag,
            body: CommandBody::Append {
                mailbox: self.mailbox.clone(),
                flags: self.flags.clone(),
                date: self.date.clone(),
                message: LiteralOrLiteral8::Literal(literal),
            },
        }
    }

    /// The whole command, the email generated.
    pub fn command(&self) -> Result<Command<'static>, DatasetError> {
        Ok(self.command_with(self.tag.clone(), self.email.email()?.bytes))
    }

    /// The command line up to and including `{size}\r\n`, with `tag`: what goes before the
    /// literal (a synchronizing literal: wait for the server's continuation, then send the
    /// email's bytes and `\r\n`).
    pub fn wire_prefix_with_tag(&self, tag: &Tag<'_>) -> Vec<u8> {
        let tag = Tag::try_from(tag.inner().to_owned()).expect("a valid tag stays valid");
        let placeholder = self.command_with(tag, b"x".to_vec());
        let first = CommandCodec::default().encode(&placeholder).next();
        let Some(Fragment::Line { data: mut line }) = first else {
            unreachable!("an APPEND encodes to a line before its literal")
        };
        assert!(
            line.ends_with(b"{1}\r\n"),
            "the literal announcement ends the line"
        );
        line.truncate(line.len() - b"{1}\r\n".len());
        line.extend_from_slice(format!("{{{}}}\r\n", self.email.size).as_bytes());
        line
    }
}

/// What a step sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepCommand {
    /// A command as the trace holds them (no dataset email inside).
    Trace(TraceCommand),
    /// An APPEND of a dataset email.
    Append(AppendStep),
}

/// One command of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The command's name.
    pub name: CommandName,
    /// The command. IDLE is one step: the replayer sends `DONE` after its wait.
    pub command: StepCommand,
    /// The answer it expects.
    pub expect: Expect,
}

impl Step {
    /// The command's tag.
    pub fn tag(&self) -> Tag<'static> {
        match &self.command {
            StepCommand::Append(a) => a.tag.clone(),
            StepCommand::Trace(TraceCommand::Codec(c)) => c.tag.clone(),
            StepCommand::Trace(TraceCommand::Raw { wire, .. }) => {
                let end = wire.iter().position(|&b| b == b' ').unwrap_or(wire.len());
                Tag::try_from(String::from_utf8_lossy(&wire[..end]).into_owned())
                    .unwrap_or_else(|_| Tag::try_from("A").expect("`A` is a valid tag"))
            }
        }
    }

    /// The wire bytes with the step's own tag (an APPEND's email generated, literal inline).
    pub fn wire(&self) -> Result<Vec<u8>, DatasetError> {
        self.wire_with_tag(&self.tag())
    }

    /// The wire bytes with another tag.
    pub fn wire_with_tag(&self, tag: &Tag<'_>) -> Result<Vec<u8>, DatasetError> {
        match &self.command {
            StepCommand::Trace(t) => Ok(t.wire_with_tag(tag)),
            StepCommand::Append(a) => {
                let mut out = a.wire_prefix_with_tag(tag);
                out.extend_from_slice(&a.email.email()?.bytes);
                out.extend_from_slice(b"\r\n");
                Ok(out)
            }
        }
    }

    /// The step as a trace command (an APPEND's email generated).
    pub fn trace_command(&self) -> Result<TraceCommand, DatasetError> {
        match &self.command {
            StepCommand::Trace(t) => Ok(t.clone()),
            StepCommand::Append(a) => Ok(TraceCommand::Codec(a.command()?)),
        }
    }
}

/// One connection: LOGIN first, then commands as a client sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Index of the user in [`Workload::users`].
    pub user: usize,
    /// Its commands, in order.
    pub commands: Vec<Step>,
    /// Whether the last command is LOGOUT (otherwise the client just drops the connection).
    pub ends_with_logout: bool,
}

/// Users, their mailboxes' setup, and sessions to replay in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The users, by index.
    pub users: Vec<User>,
    /// What to put in the mailboxes before the sessions, in order.
    pub setup: Vec<SetupStep>,
    /// The sessions. Sessions of one user are valid when run one after another in this order;
    /// different users' sessions are independent.
    pub sessions: Vec<Session>,
}

impl Workload {
    /// How many commands the sessions hold.
    pub fn command_count(&self) -> usize {
        self.sessions.iter().map(|s| s.commands.len()).sum()
    }

    /// How many commands of each name the sessions hold.
    pub fn counts(&self) -> BTreeMap<CommandName, usize> {
        let mut out = BTreeMap::new();
        for step in self.sessions.iter().flat_map(|s| &s.commands) {
            *out.entry(step.name).or_insert(0) += 1;
        }
        out
    }
}
