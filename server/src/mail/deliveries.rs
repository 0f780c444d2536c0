//! Importing mail delivered by LMTP (sealed to the user's public key) into INBOX.

use super::error::MailError;
use super::event_log::LOG_PAGE;
use super::index::Op;
use super::layout;
use super::records::{decode, Delivery, MailboxEntry};
use super::retry::read_retrying;
use super::user::UserStore;
use crate::storage::RowQuery;

impl UserStore {
    /// Moves mail delivered by LMTP (sealed to the user's public key) into INBOX: the record is
    /// re-sealed under the user's key, an Append joins INBOX's log, then the delivery row goes.
    /// Each step is idempotent, so an interrupted import is finished by the next one.
    pub async fn import_deliveries(
        &self,
        inbox: &MailboxEntry,
        after: Option<&str>,
    ) -> Result<usize, MailError> {
        let pk = layout::deliveries_partition(&self.user);
        let query = RowQuery {
            pk: pk.clone(),
            prefix: None,
            start: None,
            end: None,
            limit: Some(LOG_PAGE),
            reverse: false,
            single_item: false,
            tombstones: false,
        };
        let page = read_retrying(|| self.store.rows_read(&query)).await?;
        let mut imported = 0;
        for item in &page.items {
            for value in item.values.iter().flatten() {
                let plain = self.key.open_delivered(value)?;
                let delivery: Delivery = decode("delivery", &plain)?;
                self.put_record(&delivery.message, &delivery.record).await?;
                let op = Op::Append {
                    message: delivery.message,
                    size: delivery.record.body.size as u32,
                    internal_date: delivery.record.internal_date,
                    flags: Vec::new(),
                };
                self.log_append(inbox, &op, after).await?;
                imported += 1;
            }
            // A delete whose answer was lost must not leave the delivery to be imported again
            // after its message was expunged: check that the row is gone before failing.
            if let Err(e) = self.store.row_delete(&pk, &item.sk, &item.ct).await {
                match read_retrying(|| self.store.row_read(&pk, &item.sk)).await {
                    Ok(None) => {}
                    Ok(Some(row)) if row.values.iter().all(Option::is_none) => {}
                    _ => return Err(e.into()),
                }
            }
        }
        Ok(imported)
    }
}
