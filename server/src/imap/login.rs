//! Logging in: LOGIN and AUTHENTICATE PLAIN (RFC 4616), rate limited per user and address.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use imap_types::auth::AuthMechanism;
use imap_types::secret::Secret;
use tokio::io::{AsyncRead, AsyncWrite};

use super::session::CAPABILITIES;
use super::state::{Next, Session};

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// LOGIN and AUTHENTICATE PLAIN: rate limited per user and address, NO after a delay on failure.
    pub(super) async fn login(&mut self, tag: &str, name: &str, password: &[u8]) {
        let inner = self.server.inner();
        let addr = self.peer.ip();
        let delay = Duration::from_millis(inner.config.limits.auth_failure_delay_ms);
        if !inner.login_limiter.allowed(name, &addr) {
            tokio::time::sleep(delay).await;
            return self.tagged(
                tag,
                "NO",
                "[AUTHENTICATIONFAILED] too many failed logins, try later",
            );
        }
        match crate::auth::login(&self.server, name, password).await {
            Ok(user) => {
                self.server.inner().login_limiter.succeeded(name);
                self.user = Some(user);
                self.input.logged_in();
                self.tagged(tag, "OK", &format!("[CAPABILITY {CAPABILITIES}] logged in"));
            }
            Err(crate::auth::AuthError::Busy) => {
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] too many logins in progress, try again later",
                );
            }
            Err(crate::auth::AuthError::InvalidCredentials) => {
                self.server.inner().login_limiter.failed(name, &addr);
                tokio::time::sleep(delay).await;
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials");
            }
            Err(e) => {
                tracing::warn!(error = %e, "login failed");
                self.tagged(tag, "NO", "[UNAVAILABLE] login temporarily unavailable");
            }
        }
    }

    /// AUTHENTICATE: PLAIN only, its response inline (SASL-IR) or on the next line.
    pub(super) async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: AuthMechanism<'static>,
        initial_response: Option<Secret<Cow<'static, [u8]>>>,
    ) -> std::io::Result<Next> {
        if !matches!(mechanism, AuthMechanism::Plain) {
            self.tagged(tag, "NO", "[CANNOT] only PLAIN is supported");
            return Ok(Next::Continue);
        }
        let response = match initial_response {
            Some(r) => r.declassify().to_vec(),
            None => {
                self.out.line(b"+ \r\n");
                self.out.flush().await?;
                let Some(line) = self.input.line(8 * 1024).await? else {
                    return Ok(Next::Close);
                };
                let Ok(line) = line else {
                    self.tagged(tag, "BAD", "line too long");
                    return Ok(Next::Continue);
                };
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if text == "*" {
                    self.tagged(tag, "BAD", "authentication cancelled");
                    return Ok(Next::Continue);
                }
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        self.tagged(tag, "BAD", "invalid base64");
                        return Ok(Next::Continue);
                    }
                }
            }
        };
        // PLAIN: authorization identity NUL authentication identity NUL password.
        let mut fields = response.split(|&b| b == 0);
        let (authz, authc, password) = (fields.next(), fields.next(), fields.next());
        match (
            authz,
            authc.and_then(|a| std::str::from_utf8(a).ok()),
            password,
            fields.next(),
        ) {
            (Some(authz), Some(name), Some(password), None)
                if authz.is_empty() || authz == name.as_bytes() =>
            {
                let name = name.to_string();
                self.login(tag, &name, password).await
            }
            _ => self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] invalid credentials"),
        }
        Ok(Next::Continue)
    }
}
