//! IDLE (RFC 2177): the session waits on its mailbox's shared watcher and on the client's DONE;
//! while it waits it holds no read buffer and no output buffer.

use tokio::io::{AsyncRead, AsyncWrite};

use super::state::{Next, Session};
use crate::mail::layout;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn idle(&mut self, tag: &str) -> std::io::Result<Next> {
        // Scoped so that nothing but the subscriptions lives across the wait.
        let mut subscription = {
            let user = self.user.as_ref().expect("idle runs only when selected");
            let selected = self
                .selected
                .as_ref()
                .expect("idle runs only when selected");
            let inner = self.server.inner();
            let mut keys = vec![layout::watch_key(user.user_id(), &selected.entry.id)];
            // INBOX also wakes on LMTP deliveries, which cannot know the mailbox's id.
            if selected.inbox {
                keys.push(layout::deliveries_watch_key(user.user_id()));
            }
            inner.watchers.subscribe(&inner.store, &keys)
        };
        self.out.line(b"+ idling\r\n");
        // Subscribed first, then a last look: nothing that lands in between is missed.
        if let Err(e) = Box::pin(self.refresh_selected()).await {
            tracing::debug!(error = %e, "refresh at idle start failed");
        }
        self.out.flush().await?;
        // Park: an idling session keeps only its log position, not the mailbox's index.
        let cursor = {
            let selected = self
                .selected
                .as_mut()
                .expect("idle runs only when selected");
            let cursor = selected.index.cursor.take();
            selected.index = crate::mail::index::Index::default();
            cursor
        };
        self.idle_wait(tag, &mut subscription, cursor).await
    }

    /// Brings the parked index back to `cursor`'s state; false if that is no longer possible.
    async fn unpark(&mut self, cursor: &Option<String>) -> bool {
        let user = self.user.clone().expect("idle runs only when selected");
        let Some(selected) = self.selected.as_mut() else {
            return false;
        };
        if selected.index.uidnext > 0 {
            return true; // not parked (a parked index is the zero default)
        }
        match Box::pin(user.load_index_at(&selected.entry, cursor.as_deref())).await {
            Ok(Some(index)) => {
                selected.index = index;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "reloading the index after idle failed");
                false
            }
        }
    }

    async fn idle_wait(
        &mut self,
        tag: &str,
        subscription: &mut crate::watch::Subscription,
        mut cursor: Option<String>,
    ) -> std::io::Result<Next> {
        loop {
            self.input.release();
            let event = tokio::select! {
                biased;
                line = self.input.idle_line() => Some(line?),
                _ = subscription.changed() => None,
            };
            match event {
                Some(Some(line)) => {
                    if !Box::pin(self.unpark(&cursor)).await {
                        return self.lost_track().await;
                    }
                    if line.eq_ignore_ascii_case(b"DONE") {
                        self.tagged(tag, "OK", "IDLE terminated");
                    } else {
                        self.tagged(tag, "BAD", "expected DONE");
                    }
                    return Ok(Next::Continue);
                }
                Some(None) => return Ok(Next::Close),
                None => {
                    if !Box::pin(self.unpark(&cursor)).await {
                        return self.lost_track().await;
                    }
                    // Boxed: the refresh's storage requests are large futures an idling task need not carry.
                    if let Err(e) = Box::pin(self.refresh_selected()).await {
                        tracing::debug!(error = %e, "refresh during idle failed");
                    }
                    self.out.flush().await?;
                    // Park again at the new position.
                    let selected = self.selected.as_mut().expect("still selected");
                    cursor = selected.index.cursor.take();
                    selected.index = crate::mail::index::Index::default();
                }
            }
        }
    }

    /// The mailbox moved past what this session can reconstruct: end the session cleanly.
    async fn lost_track(&mut self) -> std::io::Result<Next> {
        self.selected = None;
        self.out.line(b"* BYE mailbox state changed beyond what this session can follow; please reconnect\r\n");
        Ok(Next::Close)
    }
}
