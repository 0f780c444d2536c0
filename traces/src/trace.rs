//! The recorded IMAP trace (`data/imap_commands_dataset.log`) and its summary, parsed: each line,
//! written in the Debug notation of an older imap-types fork, becomes a real IMAP command: an
//! imap-types [`Command`](imap_types::command::Command) that imap-codec encodes, or, for the LIST
//! forms imap-codec 2.0.0-alpha.10 cannot express (RFC 5258 selection / RFC 5819 RETURN options),
//! wire bytes built here.

mod arguments;
mod command;
mod error;
mod nodes;
mod parse;
mod redacted;
mod summary;

pub(crate) use command::open_command;
pub use command::{line_tag, CommandName, TraceCommand, TraceLine};
pub use error::{ParseError, ParseErrorKind};
pub use parse::{parse_log, recorded, RECORDED_LOG};
pub use redacted::{Redacted, SeededRedacted};
pub use summary::{
    parse_summary, summary, Aggregation, SummaryError, SummaryRow, RECORDED_SUMMARY,
};
