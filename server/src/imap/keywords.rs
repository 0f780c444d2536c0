//! Keywords as a client must learn them (RFC 3501 7.2.6): `* FLAGS` and PERMANENTFLAGS name every
//! keyword before a FETCH carries it, and `\*` is offered only while the mailbox's keyword table has
//! room. A keyword that does not fit is refused with NO [LIMIT], never dropped.

use tokio::io::AsyncWrite;

use super::output::Output;
use super::session::Selected;
use crate::mail::index::{flag, system_flag, Index};

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

/// Whether the keywords among `names` that the mailbox does not have yet fit in its table.
pub(super) fn fit(index: &Index, names: &[String]) -> bool {
    let mut new: Vec<&str> = Vec::new();
    for name in names.iter().filter(|n| system_flag(n).is_none()) {
        let known = |k: &&str| k.eq_ignore_ascii_case(name);
        if !index.keywords.iter().any(|k| known(&k.as_str())) && !new.iter().any(known) {
            new.push(name);
        }
    }
    index.keywords.len() + new.len() <= flag::KEYWORDS_MAX
}

/// Whether every keyword among `names` is in the mailbox's table (none was left out).
pub(super) fn all_kept(index: &Index, names: &[String]) -> bool {
    names
        .iter()
        .filter(|n| system_flag(n).is_none())
        .all(|n| index.keywords.iter().any(|k| k.eq_ignore_ascii_case(n)))
}

/// The answer to a command whose keywords do not fit.
pub(super) const NO_ROOM: &str = "[LIMIT] too many keywords in this mailbox";

/// Sends FLAGS and PERMANENTFLAGS again if the view's keyword table grew since they were sent.
pub(super) fn announce<W: AsyncWrite + Unpin>(selected: &mut Selected, out: &mut Output<W>) {
    let count = selected.index.keywords.len() as u8;
    if count != selected.keywords_announced {
        selected.keywords_announced = count;
        out.line(flags_responses(&selected.index).as_bytes());
    }
}
