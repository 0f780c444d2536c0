//! IDLE (RFC 2177): the session waits on its mailbox's shared watcher and on the client's DONE;
//! while it waits it holds no read buffer and no output buffer.

use tokio::io::{AsyncRead, AsyncWrite};

use super::session::{Next, Session};
use crate::mail::layout;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn idle(&mut self, tag: &str) -> std::io::Result<Next> {
        let user = self.user.clone().expect("idle runs only when selected");
        let selected = self.selected.as_ref().expect("idle runs only when selected");
        let (entry, inbox) = (selected.entry.clone(), selected.inbox);
        let (pk, sk) = layout::watch_row(user.user_id(), &entry.id);
        let inner = self.server.inner();
        let mut subscription = inner.watchers.subscribe(&inner.store, pk, sk);
        // INBOX also wakes on LMTP deliveries, which cannot know the mailbox's id.
        let mut deliveries = inbox.then(|| {
            let (pk, sk) = layout::deliveries_watch_row(user.user_id());
            inner.watchers.subscribe(&inner.store, pk, sk)
        });
        self.out.line(b"+ idling\r\n");
        self.out.flush().await?;
        loop {
            self.input.release();
            let event = tokio::select! {
                biased;
                line = self.input.idle_line() => Some(line?),
                _ = subscription.changed() => None,
                _ = async {
                    match deliveries.as_mut() {
                        Some(d) => d.changed().await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            match event {
                Some(Some(line)) if line.eq_ignore_ascii_case(b"DONE") => {
                    self.tagged(tag, "OK", "IDLE terminated");
                    return Ok(Next::Continue);
                }
                Some(Some(_)) => {
                    self.tagged(tag, "BAD", "expected DONE");
                    return Ok(Next::Continue);
                }
                Some(None) => return Ok(Next::Close),
                None => {
                    if let Err(e) = self.refresh_selected().await {
                        tracing::debug!(error = %e, "refresh during idle failed");
                    }
                    self.out.flush().await?;
                }
            }
        }
    }
}
