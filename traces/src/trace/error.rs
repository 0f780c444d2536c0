//! Why a trace line does not become a command, and the constructors of those errors that the
//! readers share.

use std::fmt::Debug;

use crate::notation::Node;

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

pub(super) type R<T> = Result<T, ParseErrorKind>;

pub(super) fn unexpected<T>(what: &'static str, found: &Node) -> R<T> {
    let mut found = format!("{found:?}");
    found.truncate(200);
    Err(ParseErrorKind::Unexpected { what, found })
}

pub(super) fn invalid<'v, E: Debug>(
    what: &'static str,
    value: &'v str,
) -> impl FnOnce(E) -> ParseErrorKind + 'v {
    move |e| ParseErrorKind::Invalid {
        what,
        value: value.to_owned(),
        reason: format!("{e:?}"),
    }
}
