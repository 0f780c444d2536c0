//! Mailbox names and strings written as a recorded variant writes them: as an atom where it used
//! one and the name allows, quoted otherwise.

use imap_types::core::{AString, AtomExt, IString, Quoted};
use imap_types::mailbox::{Mailbox, MailboxOther};

use super::model::mailbox_name;

/// How a variant writes a mailbox name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Atom,
    Quoted,
}

pub(super) fn style_of(mailbox: &Mailbox<'_>) -> Style {
    match mailbox {
        Mailbox::Other(o) if matches!(o.inner(), AString::String(_)) => Style::Quoted,
        _ => Style::Atom,
    }
}

pub(super) fn is_inbox(mailbox: &Mailbox<'_>) -> bool {
    mailbox_name(mailbox) == "INBOX"
}

pub(super) fn astring(s: &str, style: Style) -> Option<AString<'static>> {
    if style == Style::Atom {
        if let Ok(a) = AtomExt::try_from(s.to_owned()) {
            return Some(AString::Atom(a));
        }
    }
    Quoted::try_from(s.to_owned())
        .ok()
        .map(|q| AString::String(IString::Quoted(q)))
}

/// `name` written in `style` (`INBOX` as the INBOX atom).
pub(super) fn in_style(name: &str, style: Style) -> Option<Mailbox<'static>> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Some(Mailbox::Inbox);
    }
    MailboxOther::try_from(astring(name, style)?)
        .ok()
        .map(Mailbox::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_keep_the_variants_quoting() {
        assert_eq!(in_style("INBOX", Style::Quoted), Some(Mailbox::Inbox));
        let atom = in_style("Sent", Style::Atom).expect("valid");
        assert!(matches!(&atom, Mailbox::Other(o) if matches!(o.inner(), AString::Atom(_))));
        let quoted = in_style("Sent", Style::Quoted).expect("valid");
        assert_eq!(style_of(&quoted), Style::Quoted);
        let spaced = in_style("My Folder", Style::Atom).expect("quoted instead");
        assert_eq!(style_of(&spaced), Style::Quoted);
    }
}
