//! Keywords as a client must learn them (RFC 3501 7.2.6): `* FLAGS` and PERMANENTFLAGS name every
//! keyword before a FETCH carries it, and `\*` is offered only while the mailbox's keyword table has
//! room (56 keywords, the bits of a message's flags word left after the system flags).

use tokio::io::AsyncWrite;

use super::output::Output;
use super::session::Selected;
use crate::mail::index::{flag, Index};

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The `* FLAGS` and `* OK [PERMANENTFLAGS]` responses for the mailbox's keywords.
pub(super) fn flags_responses(index: &Index) -> String {
    let keywords: String = index.keywords.iter().map(|k| format!(" {k}")).collect();
    let any = if index.keywords.len() < flag::KEYWORDS_MAX {
        " \\*"
    } else {
        ""
    };
    format!(
        "* FLAGS ({SYSTEM_FLAGS}{keywords})\r\n\
         * OK [PERMANENTFLAGS ({SYSTEM_FLAGS}{keywords}{any})] flags permitted\r\n"
    )
}

/// Sends FLAGS and PERMANENTFLAGS again if the view's keyword table grew since they were sent.
pub(super) fn announce<W: AsyncWrite + Unpin>(selected: &mut Selected, out: &mut Output<W>) {
    let count = selected.index.keywords.len() as u8;
    if count != selected.keywords_announced {
        selected.keywords_announced = count;
        out.line(flags_responses(&selected.index).as_bytes());
    }
}
