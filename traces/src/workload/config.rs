//! What a workload is generated from (its configuration and the recorded per-name counts), and
//! why one cannot be.

use std::collections::BTreeMap;

use super::model::ModelError;
use crate::dataset;
use crate::trace::{self, Aggregation, CommandName};

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
    trace::summary()
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
