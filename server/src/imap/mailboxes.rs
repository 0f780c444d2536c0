//! Mailbox commands of the authenticated state: LIST (and its wildcard matching), DELETE, RENAME,
//! SUBSCRIBE, UNSUBSCRIBE, LSUB, STATUS.

use imap_types::mailbox::{ListMailbox, Mailbox};
use imap_types::status::StatusDataItemName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::input::decode_modified_utf7;
use super::output::push_astring;
use super::state::{Selected, Session};
use crate::mail::index::flag;
use crate::mail::SEPARATOR;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// LIST/LSUB reference as stored text.
    pub(super) fn list_text(&self, reference: &Mailbox<'_>) -> String {
        self.stored_text(list_text_mailbox(reference))
    }

    /// LIST/LSUB pattern as stored text.
    pub(super) fn pattern_text(&self, pattern: &ListMailbox<'_>) -> String {
        self.stored_text(list_text_pattern(pattern))
    }

    /// Text of a LIST/LSUB argument as stored (UTF-8): modified UTF-7 is decoded unless UTF8=ACCEPT;
    /// text that does not decode is kept as it came.
    fn stored_text(&self, text: String) -> String {
        if self.utf8 {
            text
        } else {
            decode_modified_utf7(&text).unwrap_or(text)
        }
    }

    pub(super) async fn delete(&mut self, tag: &str, mailbox: &Mailbox<'_>) {
        let user = self.user.clone().expect("authenticated");
        match self.name_of(mailbox) {
            Some(name) if name == "INBOX" => self.tagged(tag, "NO", "INBOX cannot be deleted"),
            Some(name) => {
                if self
                    .selected
                    .as_ref()
                    .is_some_and(|s| user_selected_is(&name, s))
                {
                    self.selected = None;
                }
                match user.delete_mailbox(&name).await {
                    Ok(()) => self.tagged(tag, "OK", "DELETE completed"),
                    Err(e) => self.storage_failure(tag, &e),
                }
            }
            None => self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox"),
        }
    }

    pub(super) async fn rename(&mut self, tag: &str, from: &Mailbox<'_>, to: &Mailbox<'_>) {
        let user = self.user.clone().expect("authenticated");
        let (Some(from), Some(to)) = (self.name_of(from), self.name_of(to)) else {
            return self.tagged(tag, "NO", "mailbox names must be UTF-8");
        };
        match user.rename_mailbox(&from, &to).await {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(e) => self.storage_failure(tag, &e),
        }
    }

    pub(super) async fn subscribe(&mut self, tag: &str, mailbox: &Mailbox<'_>, on: bool) {
        let user = self.user.clone().expect("authenticated");
        let Some(name) = self.name_of(mailbox) else {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
        };
        match user.set_subscribed(&name, on).await {
            Ok(()) => self.tagged(
                tag,
                "OK",
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.storage_failure(tag, &e),
        }
    }

    pub(super) async fn lsub(
        &mut self,
        tag: &str,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
    ) {
        let options = ListOptions {
            lsub: true,
            subscribed_only: true,
            ..ListOptions::default()
        };
        self.list(
            tag,
            &self.list_text(reference),
            &[&self.pattern_text(pattern)],
            &options,
        )
        .await
    }

    /// LIST, LSUB and LIST-EXTENDED (RFC 5258) with LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154),
    /// for one or more patterns, then the tagged status.
    pub(super) async fn list(
        &mut self,
        tag: &str,
        reference: &str,
        patterns: &[&str],
        options: &ListOptions,
    ) {
        let verb = if options.lsub { "LSUB" } else { "LIST" };
        for pattern in patterns {
            match self.list_untagged(reference, pattern, options).await {
                Ok(()) => {}
                Err(ListFailure::Unsupported) => {
                    return self.tagged(tag, "BAD", "status item not supported")
                }
                Err(ListFailure::Mail(e)) => return self.storage_failure(tag, &e),
            }
        }
        self.tagged(tag, "OK", &format!("{verb} completed"));
    }

    async fn list_untagged(
        &mut self,
        reference: &str,
        pattern: &str,
        options: &ListOptions,
    ) -> Result<(), ListFailure> {
        let user = self.user.clone().expect("authenticated");
        let verb = if options.lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() && !options.lsub {
            self.out
                .line(format!("* LIST (\\Noselect) \"{SEPARATOR}\" \"\"\r\n").as_bytes());
            return Ok(());
        }
        let full = format!("{reference}{pattern}");
        let (list, _) = user.mailbox_list().await.map_err(ListFailure::Mail)?;
        let selected = |entry: &crate::mail::MailboxEntry| {
            !(options.subscribed_only && !entry.subscribed
                || options.special_use_only && entry.special_use.is_none())
        };
        let parents = selected_parents(&list, full.as_bytes(), selected);
        for (name, entry) in &list.mailboxes {
            let parent = parents.contains(name.as_str());
            let matched = wildcard_match(full.as_bytes(), name.as_bytes()) && selected(entry);
            if !matched {
                if parent {
                    self.parent_line(name, true, options);
                }
                continue;
            }
            let prefix = format!("{name}{SEPARATOR}");
            let children = list
                .mailboxes
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(n, _)| n.starts_with(&prefix));
            let mut attrs = vec![if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(special) = &entry.special_use {
                attrs.push(special);
            }
            if options.return_subscribed && entry.subscribed {
                attrs.push("\\Subscribed");
            }
            let shown = self.name_out(name);
            self.out.line(&list_line(
                verb,
                &attrs,
                &shown,
                parent && options.childinfo(),
            ));
            if !options.status.is_empty() {
                let status = status_line(&user, &shown, entry, &options.status)
                    .await
                    .map_err(ListFailure::Mail)?;
                self.out.line(&status.ok_or(ListFailure::Unsupported)?);
            }
        }
        // Parents that are not mailboxes at all.
        for name in parents.iter().filter(|n| !list.mailboxes.contains_key(**n)) {
            self.parent_line(name, false, options);
        }
        Ok(())
    }

    /// The line of a name listed only for a descendant that the selection options select and
    /// the pattern does not match: LSUB's `\Noselect` (RFC 3501 6.3.9), or LIST's RECURSIVEMATCH
    /// `CHILDINFO` (RFC 5258 3.5), `\NonExistent` when it is no mailbox.
    fn parent_line(&mut self, name: &str, exists: bool, options: &ListOptions) {
        let shown = self.name_out(name);
        if options.lsub {
            self.out
                .line(&list_line("LSUB", &["\\Noselect"], &shown, false));
        } else if options.childinfo() {
            let attrs: &[&str] = if exists { &[] } else { &["\\NonExistent"] };
            self.out.line(&list_line("LIST", attrs, &shown, true));
        }
    }

    /// STATUS folds the mailbox's log into a throw-away index.
    pub(super) async fn status(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) {
        let user = self.user.clone().expect("authenticated");
        let Some(name) = self.name_of(mailbox) else {
            return self.tagged(tag, "NO", "[NONEXISTENT] no such mailbox");
        };
        let entry = match user.find_mailbox(&name).await {
            Ok(entry) => entry,
            Err(e) => return self.storage_failure(tag, &e),
        };
        match status_line(&user, &self.name_out(&name), &entry, items).await {
            Ok(Some(line)) => {
                self.out.line(&line);
                self.tagged(tag, "OK", "STATUS completed");
            }
            Ok(None) => self.tagged(tag, "BAD", "status item not supported"),
            Err(e) => self.storage_failure(tag, &e),
        }
    }
}

/// Why a LIST failed.
enum ListFailure {
    Unsupported,
    Mail(crate::mail::MailError),
}

/// Options of a LIST command (RFC 5258 selection and return options).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// LSUB rather than LIST.
    pub lsub: bool,
    /// Selection option SUBSCRIBED.
    pub subscribed_only: bool,
    /// Selection option SPECIAL-USE.
    pub special_use_only: bool,
    /// Selection option RECURSIVEMATCH (only beside SUBSCRIBED or SPECIAL-USE).
    pub recursive_match: bool,
    /// Return option SUBSCRIBED.
    pub return_subscribed: bool,
    /// Return option STATUS (RFC 5819).
    pub status: Vec<StatusDataItemName>,
}

/// `* LIST (attrs) "." name`, with `("CHILDINFO" ("SUBSCRIBED"))` if `childinfo`.
fn list_line(verb: &str, attrs: &[&str], shown: &str, childinfo: bool) -> Vec<u8> {
    let mut line = format!("* {verb} ({}) \"{SEPARATOR}\" ", attrs.join(" ")).into_bytes();
    push_astring(&mut line, shown.as_bytes());
    if childinfo {
        line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// The names that `pattern` matches and that are listed for a descendant the selection options
/// select while the pattern does not match it (a `%` that stops above it).
fn selected_parents<'a>(
    list: &'a crate::mail::MailboxList,
    pattern: &[u8],
    selected: impl Fn(&crate::mail::MailboxEntry) -> bool,
) -> std::collections::BTreeSet<&'a str> {
    let mut parents = std::collections::BTreeSet::new();
    for (name, entry) in &list.mailboxes {
        if !selected(entry) || wildcard_match(pattern, name.as_bytes()) {
            continue;
        }
        for (at, _) in name.match_indices(SEPARATOR) {
            let parent = &name[..at];
            if wildcard_match(pattern, parent.as_bytes()) {
                parents.insert(parent);
            }
        }
    }
    parents
}

impl ListOptions {
    /// Whether names with a subscribed descendant get `CHILDINFO ("SUBSCRIBED")`.
    fn childinfo(&self) -> bool {
        self.recursive_match && self.subscribed_only && !self.lsub
    }
}

/// The reference argument of LIST/LSUB as text.
pub(super) fn list_text_mailbox(reference: &Mailbox<'_>) -> String {
    match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

/// The pattern argument of LIST/LSUB as text.
pub(super) fn list_text_pattern(pattern: &ListMailbox<'_>) -> String {
    match pattern {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}

/// `* STATUS name (...)` for a mailbox; `None` if an item is not supported.
async fn status_line(
    user: &crate::mail::UserStore,
    name: &str,
    entry: &crate::mail::MailboxEntry,
    items: &[StatusDataItemName],
) -> Result<Option<Vec<u8>>, crate::mail::MailError> {
    let index = user.load_index(entry).await?;
    // RECENT: the messages no session has claimed yet (the next SELECT's).
    let watermark = if items
        .iter()
        .any(|i| matches!(i, StatusDataItemName::Recent))
    {
        user.recent_watermark(entry).await?
    } else {
        0
    };
    let mut parts = Vec::new();
    for item in items {
        parts.push(match item {
            StatusDataItemName::Messages => format!("MESSAGES {}", index.exists()),
            StatusDataItemName::Recent => format!(
                "RECENT {}",
                index.entries.iter().filter(|e| e.uid >= watermark).count()
            ),
            StatusDataItemName::UidNext => format!("UIDNEXT {}", index.uidnext),
            StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", entry.uidvalidity),
            StatusDataItemName::Unseen => {
                format!(
                    "UNSEEN {}",
                    index
                        .entries
                        .iter()
                        .filter(|e| e.flags & flag::SEEN == 0)
                        .count()
                )
            }
            StatusDataItemName::Deleted => {
                format!(
                    "DELETED {}",
                    index
                        .entries
                        .iter()
                        .filter(|e| e.flags & flag::DELETED != 0)
                        .count()
                )
            }
            StatusDataItemName::HighestModSeq => {
                format!("HIGHESTMODSEQ {}", index.highest_modseq.max(1))
            }
            _ => return Ok(None),
        });
    }
    let mut line = b"* STATUS ".to_vec();
    push_astring(&mut line, name.as_bytes());
    line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    Ok(Some(line))
}

fn user_selected_is(name: &str, selected: &Selected) -> bool {
    let _ = (name, selected);
    // The selected mailbox's name is not kept; deleting any mailbox while one is selected keeps
    // the selection, whose later commands then fail with NO as its log is unreachable.
    false
}

/// IMAP LIST matching: `*` matches anything, `%` anything but the hierarchy separator. Dynamic
/// programming over (pattern, name) positions, so hostile patterns cost O(pattern x name).
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    // reach[j]: the pattern prefix consumed so far matches name[..j].
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                let mut on = false;
                for j in 0..=name.len() {
                    on = reach[j]
                        || (on
                            && j > 0
                            && (p == b'*' || name[j - 1] != crate::mail::SEPARATOR as u8));
                    next[j] = on;
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = reach[j - 1] && name[j - 1] == c;
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards_follow_rfc3501() {
        assert!(wildcard_match(b"*", b"a.b"));
        assert!(!wildcard_match(b"%", b"a.b"));
        assert!(wildcard_match(b"a.%", b"a.b"));
        assert!(wildcard_match(b"INBOX", b"INBOX"));
        assert!(!wildcard_match(b"IN", b"INBOX"));
        assert!(wildcard_match(b"%.%", b"a.b"));
        assert!(!wildcard_match(b"a%", b"a.b"));
        let hostile = b"*a".repeat(200);
        assert!(!wildcard_match(&hostile, &b"a".repeat(150)));
    }
}
