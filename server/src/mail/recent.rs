//! \Recent (RFC 3501 2.3.2): a mailbox's watermark of UIDs claimed by sessions, so that no
//! message is recent in two sessions.

use serde::{Deserialize, Serialize};

use super::error::MailError;
use super::layout;
use super::records::{decode, encode, MailboxEntry};
use super::user::UserStore;
use crate::storage::CausalityToken;

/// A mailbox's recent watermark as stored, sealed, in its [`layout::recent_row`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct RecentMark {
    /// The first UID that no session has claimed as \Recent.
    next_uid: u32,
    /// Random id of the claim that wrote it, so that a session tells its own write from another's.
    claim: [u8; 16],
}

impl UserStore {
    /// The recent watermark of a mailbox (1 when no session ever claimed any) and the row's token.
    async fn read_recent(
        &self,
        mailbox: &MailboxEntry,
    ) -> Result<(u32, Option<CausalityToken>), MailError> {
        let (pk, sk) = layout::recent_row(&self.user, &mailbox.id);
        let Some(row) = self.store.row_read(&pk, sk).await? else {
            return Ok((1, None));
        };
        // Concurrent claims leave several values: the watermark is the highest.
        let mut watermark = 1;
        for value in row.values.iter().flatten() {
            let mark: RecentMark = decode("recent watermark", &self.open(&pk, sk, value)?)?;
            watermark = watermark.max(mark.next_uid);
        }
        Ok((watermark, Some(row.ct)))
    }

    /// The first UID of `mailbox` that no session has claimed as \Recent: messages from it on are
    /// recent for the next session that SELECTs the mailbox.
    pub async fn recent_watermark(&self, mailbox: &MailboxEntry) -> Result<u32, MailError> {
        Ok(self.read_recent(mailbox).await?.0)
    }

    /// Claims as \Recent, for the calling session, the UIDs from the mailbox's recent watermark up
    /// to `upto` (excluded), moving the watermark to `upto`; returns the UIDs won (maybe none).
    ///
    /// The write carries the causality token of the read, so two sessions claiming at once leave
    /// two concurrent values. Each reads the row back and has won only if its own value is alone
    /// there: whichever wrote second sees both, so no UID is ever recent in two sessions (in a
    /// close race both may lose, and those UIDs are recent in none).
    pub async fn claim_recent(
        &self,
        mailbox: &MailboxEntry,
        upto: u32,
    ) -> Result<std::ops::Range<u32>, MailError> {
        let (watermark, token) = self.read_recent(mailbox).await?;
        if watermark >= upto {
            return Ok(upto..upto);
        }
        let (pk, sk) = layout::recent_row(&self.user, &mailbox.id);
        let mark = RecentMark {
            next_uid: upto,
            claim: self.env().random(),
        };
        let sealed = self.seal(&pk, sk, &encode(&mark));
        self.store
            .row_insert(&pk, sk, token.as_ref(), sealed)
            .await?;
        let alone = match self.store.row_read(&pk, sk).await? {
            Some(row) => match row.values.as_slice() {
                [Some(value)] => {
                    decode::<RecentMark>("recent watermark", &self.open(&pk, sk, value)?)? == mark
                }
                _ => false,
            },
            None => false,
        };
        Ok(if alone { watermark..upto } else { upto..upto })
    }
}
