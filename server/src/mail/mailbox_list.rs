//! The user's mailbox list: names and their entries, one sealed row merged across concurrent
//! writers; CREATE, DELETE, RENAME and SUBSCRIBE edit it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::MailError;
use super::layout;
use super::records::{decode, encode, MailboxEntry};
use super::retry::read_retrying;
use super::user::UserStore;
use crate::crypto::blake2b;
use crate::storage::CausalityToken;

/// The hierarchy separator of mailbox names (Dovecot's and Aerogramme's, which the trace's clients used).
pub const SEPARATOR: char = '.';

/// Mailboxes every new user gets, with their RFC 6154 special use.
pub const SPECIAL_MAILBOXES: [(&str, &str); 5] = [
    ("Archive", "\\Archive"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
];

/// The user's mailboxes by name (UTF-8, [`SEPARATOR`] between hierarchy levels).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxList {
    /// Name to entry.
    pub mailboxes: BTreeMap<String, MailboxEntry>,
}

/// IMAP mailbox names: INBOX in any case is INBOX.
pub fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

impl UserStore {
    /// The mailbox list and the token to update it; INBOX always exists.
    pub async fn mailbox_list(&self) -> Result<(MailboxList, Option<CausalityToken>), MailError> {
        let (pk, sk) = layout::mailboxes_row(&self.user);
        let mut list = MailboxList::default();
        let mut token = None;
        if let Some(row) = read_retrying(|| self.store.row_read(&pk, sk)).await? {
            // Concurrent values (two instances created mailboxes at once) merge by union; on a
            // name clash the smaller id wins on every instance alike.
            for value in row.values.iter().flatten() {
                let other: MailboxList = decode("mailbox list", &self.open(&pk, sk, value)?)?;
                for (name, entry) in other.mailboxes {
                    match list.mailboxes.get(&name) {
                        Some(existing) if existing.id <= entry.id => {}
                        _ => {
                            list.mailboxes.insert(name, entry);
                        }
                    }
                }
            }
            token = Some(row.ct);
        }
        if token.is_none() {
            // A new user: INBOX and the special-use mailboxes clients expect, with ids derived from
            // the user's key so that instances creating the list at once agree on them.
            list.mailboxes
                .insert("INBOX".to_string(), self.default_entry("INBOX"));
            for (name, special) in SPECIAL_MAILBOXES {
                let mut entry = self.default_entry(name);
                entry.special_use = Some(special.to_string());
                list.mailboxes.insert(name.to_string(), entry);
            }
            token = Some(self.write_list(&list, token.as_ref()).await?);
        } else if !list.mailboxes.contains_key("INBOX") {
            list.mailboxes
                .insert("INBOX".to_string(), self.default_entry("INBOX"));
            token = Some(self.write_list(&list, token.as_ref()).await?);
        }
        Ok((list, token))
    }

    /// The entry of a mailbox every user starts with: id and UIDVALIDITY are a keyed hash of its name.
    fn default_entry(&self, name: &str) -> MailboxEntry {
        let key = self.key.to_bytes();
        let out: [u8; 20] = blake2b(&[b"imapsim default mailbox v1\0", &key, name.as_bytes()]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[..16]);
        let uidvalidity = u32::from_be_bytes([out[16], out[17], out[18], out[19]]) | 1;
        MailboxEntry {
            id,
            uidvalidity,
            subscribed: true,
            special_use: None,
        }
    }

    fn new_entry(&self) -> MailboxEntry {
        let uidvalidity = u32::from_be_bytes(self.env().random()) | 1;
        MailboxEntry {
            id: self.env().random(),
            uidvalidity,
            subscribed: true,
            special_use: None,
        }
    }

    async fn write_list(
        &self,
        list: &MailboxList,
        ct: Option<&CausalityToken>,
    ) -> Result<CausalityToken, MailError> {
        let (pk, sk) = layout::mailboxes_row(&self.user);
        let sealed = self.seal(&pk, sk, &encode(list));
        self.insert_verified(&pk, sk, ct, sealed).await?;
        // Read back for the new token (K2V returns none on insert). Retried: the list is written
        // already, and failing now would answer NO to a CREATE (RENAME, DELETE...) that happened.
        let row = read_retrying(|| self.store.row_read(&pk, sk)).await?;
        Ok(row
            .map(|r| r.ct)
            .unwrap_or_else(|| CausalityToken(String::new())))
    }

    /// Finds a mailbox by name (INBOX case-insensitively).
    pub async fn find_mailbox(&self, name: &str) -> Result<MailboxEntry, MailError> {
        let (list, _) = self.mailbox_list().await?;
        list.mailboxes
            .get(canonical(name))
            .cloned()
            .ok_or(MailError::NoSuchMailbox)
    }

    /// Creates a mailbox.
    pub async fn create_mailbox(&self, name: &str) -> Result<MailboxEntry, MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let name = canonical(name);
        if list.mailboxes.contains_key(name) {
            return Err(MailError::MailboxExists);
        }
        let entry = self.new_entry();
        list.mailboxes.insert(name.to_string(), entry.clone());
        self.write_list(&list, token.as_ref()).await?;
        Ok(entry)
    }

    /// Deletes a mailbox from the list (its log and messages become unreachable).
    pub async fn delete_mailbox(&self, name: &str) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        if list.mailboxes.remove(canonical(name)).is_none() {
            return Err(MailError::NoSuchMailbox);
        }
        self.write_list(&list, token.as_ref()).await?;
        Ok(())
    }

    /// Renames a mailbox and its children; renaming INBOX moves its messages to a new mailbox and
    /// leaves an empty INBOX, as RFC 3501 says.
    pub async fn rename_mailbox(&self, from: &str, to: &str) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let (from, to) = (canonical(from), canonical(to));
        if !list.mailboxes.contains_key(from) {
            return Err(MailError::NoSuchMailbox);
        }
        if list.mailboxes.contains_key(to) {
            return Err(MailError::MailboxExists);
        }
        let child_prefix = format!("{from}{SEPARATOR}");
        let moved: Vec<String> = list
            .mailboxes
            .keys()
            .filter(|n| n.as_str() == from || (from != "INBOX" && n.starts_with(&child_prefix)))
            .cloned()
            .collect();
        for name in moved {
            let entry = list.mailboxes.remove(&name).expect("listed just above");
            let new_name = format!("{to}{}", &name[from.len()..]);
            list.mailboxes.insert(new_name, entry);
        }
        if from == "INBOX" {
            list.mailboxes.insert("INBOX".to_string(), self.new_entry());
        }
        self.write_list(&list, token.as_ref()).await?;
        Ok(())
    }

    /// Marks a mailbox (un)subscribed.
    pub async fn set_subscribed(&self, name: &str, subscribed: bool) -> Result<(), MailError> {
        let (mut list, token) = self.mailbox_list().await?;
        let entry = list
            .mailboxes
            .get_mut(canonical(name))
            .ok_or(MailError::NoSuchMailbox)?;
        if entry.subscribed != subscribed {
            entry.subscribed = subscribed;
            self.write_list(&list, token.as_ref()).await?;
        }
        Ok(())
    }
}
