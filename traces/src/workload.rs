//! The seeded, session-structured workload: from one seed, the setup of several users' mailboxes
//! (dataset emails delivered before the trace) and sessions of IMAP commands arranged as real
//! clients send them, drawn from the recorded trace's distinct variants, whose per-command counts
//! equal the recorded summary (4,619 commands by default) and whose sequence numbers, UIDs and
//! CHANGEDSINCE values are valid for the mailbox state at that point (see [`model`]).
//!
//! A workload holds no email bytes: deliveries and APPENDs name a dataset email by
//! [`EmailRef`] (seed, index, size), generated when sent. [`Workload::write_to`] and
//! [`Workload::read_from`] keep one in a line-oriented text file, which a user can also write by
//! hand from their own capture.

pub mod model;
mod plan;
mod rewrite;
#[cfg(feature = "proptest")]
mod strategy;
pub mod text;

use std::collections::BTreeMap;

use imap_codec::encode::{Encoder as _, Fragment};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::{Literal, Tag};
use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::Flag;
use imap_types::mailbox::Mailbox;
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use crate::dataset::{self, DatasetError, Email};
use crate::log::{self, Aggregation, CommandName, TraceCommand};

pub use model::{Model, ModelError, SessionState};
#[cfg(feature = "proptest")]
pub use strategy::session_strategy;
pub use text::{ReadError, ReadErrorKind};

/// What a workload is generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// The root seed: every choice of the workload derives from it. Default 0.
    pub seed: u64,
    /// How many users the sessions spread over. Default 4.
    pub users: usize,
    /// The mailboxes every user has before the trace (`INBOX` exists even if not listed).
    /// Default `INBOX`, `Sent`, `Drafts`, `Trash`, `Archive`.
    pub mailboxes: Vec<String>,
    /// Dataset emails delivered to each of [`Self::mailboxes`] (same order) before the trace.
    /// Default 40, 10, 3, 5, 20 (78 per user).
    pub emails_per_mailbox: Vec<usize>,
    /// The sizes dataset emails are drawn from (delivered and APPENDed ones), each at least
    /// [`dataset::MIN_SIZE`]. Default [`dataset::recorded_sizes`] (the blog's 100 emails).
    pub email_sizes: Vec<u64>,
    /// How many commands of each name the sessions hold; LOGIN is one per session, LOGOUT ends
    /// that many sessions. Default the recorded summary's `Raw` rows (4,619 commands).
    pub counts: BTreeMap<CommandName, usize>,
    /// Probability that a STATUS, or a SELECT/EXAMINE with nothing to do after it, names a
    /// mailbox the user does not have (the server answers NO). Default 0.02.
    pub missing_mailbox_probability: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            users: 4,
            mailboxes: ["INBOX", "Sent", "Drafts", "Trash", "Archive"]
                .map(String::from)
                .to_vec(),
            emails_per_mailbox: vec![40, 10, 3, 5, 20],
            email_sizes: dataset::recorded_sizes(),
            counts: recorded_counts(),
            missing_mailbox_probability: 0.02,
        }
    }
}

impl WorkloadConfig {
    /// The default configuration with another seed.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }
}

/// Per command name, how often it occurs among the 4,619 recorded commands (the summary's `Raw`
/// rows).
pub fn recorded_counts() -> BTreeMap<CommandName, usize> {
    log::summary()
        .into_iter()
        .filter(|r| r.aggregation == Aggregation::Raw)
        .map(|r| (r.command, r.count as usize))
        .collect()
}

/// Why a workload cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// `mailboxes` and `emails_per_mailbox` differ in length.
    #[error("{mailboxes} mailboxes but {counts} email counts")]
    MailboxCounts { mailboxes: usize, counts: usize },
    /// A mailbox name IMAP cannot carry as a quoted string, or listed twice.
    #[error("invalid mailbox name {0:?}")]
    MailboxName(String),
    /// Emails are needed but `email_sizes` is empty.
    #[error("no email sizes to draw from")]
    NoSizes,
    /// A size below the smallest email the dataset can make.
    #[error("email size {size} is below {min}")]
    SizeTooSmall { size: u64, min: u64 },
    /// `missing_mailbox_probability` outside 0..=1.
    #[error("probability {0} is not within 0..=1")]
    Probability(f64),
    /// Commands but no user to send them.
    #[error("commands but no users")]
    NoUsers,
    /// Counts no session structure can hold.
    #[error("counts: {0}")]
    Counts(&'static str),
    /// A command name with a count but no variant in the recorded log (AUTHENTICATE, ID, ...).
    #[error("{0} has a count but no recorded variant")]
    NoVariant(CommandName),
    /// Commands that name messages, but no mailbox has any.
    #[error("commands name messages but no mailbox is filled")]
    NoMessages,
    /// A user has no mailbox with messages left for a visit that needs one.
    #[error("user {user} has no mailbox with messages left")]
    Exhausted { user: usize },
    /// A setup step the model refuses (a bug of the generator).
    #[error("setup step {step}: {source}")]
    Setup { step: usize, source: ModelError },
    /// A generated step the model refuses (a bug of the generator).
    #[error("session {session}, command {command}: {source}")]
    Invalid {
        session: usize,
        command: usize,
        source: ModelError,
    },
}

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

/// A session, replaying or generating, failed the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A setup step the model refuses.
    #[error("setup step {step}: {source}")]
    Setup { step: usize, source: ModelError },
    /// A command the model refuses.
    #[error("session {session}, command {command}: {source}")]
    Step {
        session: usize,
        command: usize,
        source: ModelError,
    },
    /// A command whose expected answer is not the model's.
    #[error(
        "session {session}, command {command}: expects {expected:?}, the model answers {model:?}"
    )]
    Expect {
        session: usize,
        command: usize,
        expected: Expect,
        model: Expect,
    },
    /// A session whose first command is not LOGIN, or whose `ends_with_logout` is wrong.
    #[error("session {session}: {reason}")]
    Shape {
        session: usize,
        reason: &'static str,
    },
}

impl Workload {
    /// The workload of `config`.
    pub fn generate(config: &WorkloadConfig) -> Result<Workload, WorkloadError> {
        let pool = rewrite::VariantPool::recorded();
        plan::validate(config, &pool)?;
        let mut root = ChaCha8Rng::seed_from_u64(config.seed);
        let dataset_seed = root.next_u64();
        let mut setup_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let mut plan_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let mut realise_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let users: Vec<User> = (0..config.users).map(User::numbered).collect();
        let setup = plan::setup(config, dataset_seed, &mut setup_rng);
        let plans = plan::sessions(config, &pool, &mut plan_rng)?;
        let mut realiser = rewrite::Realiser::new(&pool, config, &users, &setup, dataset_seed)?;
        let sessions = plans
            .iter()
            .enumerate()
            .map(|(i, p)| realiser.session(i, p, &mut realise_rng))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workload {
            users,
            setup,
            sessions,
        })
    }

    /// The default workload of `seed`: the recorded counts over 4 users.
    pub fn recorded(seed: u64) -> Result<Workload, WorkloadError> {
        Self::generate(&WorkloadConfig::with_seed(seed))
    }

    /// The users and setup of `config`, with no session: the start state of the sessions
    /// [`session_strategy`] draws.
    pub fn setup_only(config: &WorkloadConfig) -> Result<Workload, WorkloadError> {
        let pool = rewrite::VariantPool::recorded();
        let no_commands = WorkloadConfig {
            counts: BTreeMap::new(),
            ..config.clone()
        };
        plan::validate(&no_commands, &pool)?;
        let mut root = ChaCha8Rng::seed_from_u64(config.seed);
        let dataset_seed = root.next_u64();
        let mut setup_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        Ok(Workload {
            users: (0..config.users).map(User::numbered).collect(),
            setup: plan::setup(config, dataset_seed, &mut setup_rng),
            sessions: Vec::new(),
        })
    }

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

    /// The model after the setup.
    pub fn setup_model(&self) -> Result<Model, CheckError> {
        let mut model = Model::new(self.users.len());
        for (i, s) in self.setup.iter().enumerate() {
            model
                .apply_setup(s)
                .map_err(|source| CheckError::Setup { step: i, source })?;
        }
        Ok(model)
    }

    /// Replays the setup and the sessions, in order, on the [`Model`]: every session starts
    /// with LOGIN and ends with LOGOUT exactly when it says so, every command is valid for the
    /// state at that point (every sequence number and UID it names exists, CHANGEDSINCE is at
    /// most HIGHESTMODSEQ, selected-state commands follow a SELECT or EXAMINE), and expects the
    /// model's answer. Returns the final model.
    pub fn check(&self) -> Result<Model, CheckError> {
        let mut model = self.setup_model()?;
        for (si, session) in self.sessions.iter().enumerate() {
            if session.commands.first().map(|s| s.name) != Some(CommandName::Login) {
                return Err(CheckError::Shape {
                    session: si,
                    reason: "does not start with LOGIN",
                });
            }
            let last_is_logout =
                session.commands.last().map(|s| s.name) == Some(CommandName::Logout);
            if last_is_logout != session.ends_with_logout {
                return Err(CheckError::Shape {
                    session: si,
                    reason: "ends_with_logout disagrees with its last command",
                });
            }
            let mut state = SessionState::new(session.user);
            for (ci, step) in session.commands.iter().enumerate() {
                let answer = model
                    .apply(&mut state, step)
                    .map_err(|source| CheckError::Step {
                        session: si,
                        command: ci,
                        source,
                    })?;
                if answer != step.expect {
                    return Err(CheckError::Expect {
                        session: si,
                        command: ci,
                        expected: step.expect,
                        model: answer,
                    });
                }
            }
        }
        Ok(model)
    }
}
