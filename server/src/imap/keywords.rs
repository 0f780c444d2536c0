//! Keywords as a client must learn them (RFC 3501 7.2.6): `* FLAGS` and PERMANENTFLAGS name every
//! keyword before a FETCH carries it. `\*` is always offered, as Dovecot does: a mailbox keeps every
//! keyword (those past the flags word in its overflow list, see `mail::overflow`).

use tokio::io::AsyncWrite;

use super::output::Output;
use super::state::Selected;
use crate::mail::index::Index;

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The `* FLAGS` and `* OK [PERMANENTFLAGS]` responses for the mailbox's keywords.
pub(super) fn flags_responses(index: &Index) -> String {
    let keywords: String = index.keywords.iter().map(|k| format!(" {k}")).collect();
    format!(
        "* FLAGS ({SYSTEM_FLAGS}{keywords})\r\n\
         * OK [PERMANENTFLAGS ({SYSTEM_FLAGS}{keywords} \\*)] flags permitted\r\n"
    )
}

/// Sends FLAGS and PERMANENTFLAGS again if the view's keyword table grew since they were sent.
pub(super) fn announce<W: AsyncWrite + Unpin>(selected: &mut Selected, out: &mut Output<W>) {
    let count = selected.index.keywords.len() as u32;
    if count != selected.keywords_announced {
        selected.keywords_announced = count;
        out.line(flags_responses(&selected.index).as_bytes());
    }
}
