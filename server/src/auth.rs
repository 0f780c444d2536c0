//! Login: derive the key-encryption key from the password with argon2id (bounded concurrency, as each
//! derivation takes ~19 MiB), unwrap the user's secret key. A configured user's key is created and
//! wrapped at their first login.

use bytes::Bytes;
use thiserror::Error;

use crate::crypto::{CryptoError, SecretKey, WrappedKey};
use crate::mail::{layout, UserStore};
use crate::storage::StorageError;
use crate::Server;

/// Why a login failed.
#[derive(Debug, Error)]
pub enum AuthError {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many logins are waiting for a key derivation (a login flood): try again later.
    #[error("too many logins in progress")]
    Busy,
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The stored key record is unreadable.
    #[error("corrupt key record: {0}")]
    Corrupt(String),
}

/// Failed logins allowed per user and per client address within [`FAILURE_WINDOW`].
pub const FAILURES_MAX: u32 = 5;
/// The window over which failures are counted.
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// Keys (users plus addresses) the limiter tracks at most; the oldest go first.
const TRACKED_MAX: usize = 10_000;

/// Counts failed logins per user and per client address, so that password guessing is slowed
/// down and a flood of wrong passwords does not run a key derivation each.
#[derive(Default)]
pub struct RateLimiter {
    failures: std::sync::Mutex<std::collections::BTreeMap<String, (u32, tokio::time::Instant)>>,
}

impl RateLimiter {
    fn key_user(login: &str) -> String {
        format!("u:{login}")
    }

    fn key_addr(addr: &std::net::IpAddr) -> String {
        format!("a:{addr}")
    }

    /// Whether `login` from `addr` may try now.
    pub fn allowed(&self, login: &str, addr: &std::net::IpAddr) -> bool {
        let now = tokio::time::Instant::now();
        // Never poisoned in practice: the critical sections cannot panic.
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [Self::key_user(login), Self::key_addr(addr)]
            .iter()
            .all(|k| match map.get(k) {
                Some((n, since)) => {
                    *n < FAILURES_MAX || now.duration_since(*since) > FAILURE_WINDOW
                }
                None => true,
            })
    }

    /// Records a failure of `login` from `addr`.
    pub fn failed(&self, login: &str, addr: &std::net::IpAddr) {
        let now = tokio::time::Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in [Self::key_user(login), Self::key_addr(addr)] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) > FAILURE_WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
        if map.len() > TRACKED_MAX {
            // Drop the entries whose window started first.
            let mut by_age: Vec<(tokio::time::Instant, String)> =
                map.iter().map(|(k, v)| (v.1, k.clone())).collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(map.len() - TRACKED_MAX) {
                map.remove(&k);
            }
        }
    }

    /// Forgets the failures of `login` after a success.
    pub fn succeeded(&self, login: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key_user(login));
    }
}

/// A place in the bounded queue of logins waiting for a key derivation.
struct Queued<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Takes a KDF slot, waiting in a queue of bounded length: each derivation allocates ~19 MiB, so
/// a login flood must wait (or be refused), not derive keys all at once.
async fn kdf_slot(
    server: &Server,
) -> Result<(tokio::sync::SemaphorePermit<'_>, Queued<'_>), AuthError> {
    let inner = server.inner();
    let waiting = inner
        .kdf_waiting
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let queued = Queued(&inner.kdf_waiting);
    if waiting >= inner.config.limits.kdf_queue_max + inner.config.limits.kdf_concurrency {
        return Err(AuthError::Busy);
    }
    let permit = inner
        .kdf_slots
        .acquire()
        .await
        .expect("the KDF semaphore is never closed");
    Ok((permit, queued))
}

/// Checks `password` for `login` and returns the user's store.
pub async fn login(server: &Server, login: &str, password: &[u8]) -> Result<UserStore, AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::keys_row(&user);
    let _slot = kdf_slot(server).await?;
    let key = match inner.store.row_read(&pk, sk).await? {
        Some(row) => {
            let value = row
                .values
                .iter()
                .flatten()
                .next()
                .ok_or(AuthError::InvalidCredentials)?;
            let wrapped: WrappedKey =
                postcard::from_bytes(value).map_err(|e| AuthError::Corrupt(e.to_string()))?;
            wrapped.unwrap_key(password).map_err(|e| match e {
                CryptoError::Open => AuthError::InvalidCredentials,
                other => AuthError::Corrupt(other.to_string()),
            })?
        }
        None => match inner.config.users.iter().find(|u| u.name == login) {
            Some(u) if u.password.as_bytes() == password => {
                provision(server, &user, password).await?
            }
            _ => return Err(AuthError::InvalidCredentials),
        },
    };
    Ok(UserStore::new(
        inner.store.clone(),
        inner.env.clone(),
        &user,
        key,
        inner.log_clock.clone(),
    ))
}

/// Creates a configured user's keys: their secret key (see [`SecretKey::provisioned`]: concurrent
/// provisioners agree on it) wrapped under their password, and the public delivery key derived
/// from it. The caller holds a KDF slot.
async fn provision(server: &Server, user: &str, password: &[u8]) -> Result<SecretKey, AuthError> {
    let inner = server.inner();
    let key = SecretKey::provisioned(user, password, &inner.config.kdf)
        .map_err(|e| AuthError::Corrupt(e.to_string()))?;
    let wrapped = WrappedKey::wrap(&inner.env, &key, password, &inner.config.kdf)
        .map_err(|e| AuthError::Corrupt(e.to_string()))?;
    let value = postcard::to_allocvec(&wrapped).expect("serialising to a Vec cannot fail");
    // The public key first: a user with a wrapped key always has one.
    let (pk, sk) = layout::public_key_row(user);
    inner
        .store
        .row_insert(
            &pk,
            sk,
            None,
            Bytes::copy_from_slice(&key.delivery_public()),
        )
        .await?;
    let (pk, sk) = layout::keys_row(user);
    inner
        .store
        .row_insert(&pk, sk, None, Bytes::from(value))
        .await?;
    Ok(key)
}

/// The public delivery key of `login`, provisioning a configured user who never logged in.
/// `None` when there is no such user.
pub async fn delivery_key(server: &Server, login: &str) -> Result<Option<[u8; 32]>, AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::public_key_row(&user);
    if let Some(row) = inner.store.row_read(&pk, sk).await? {
        if let Some(value) = row.values.iter().flatten().next() {
            let key: [u8; 32] = value
                .as_ref()
                .try_into()
                .map_err(|_| AuthError::Corrupt("public key size".into()))?;
            return Ok(Some(key));
        }
    }
    let Some(configured) = inner.config.users.iter().find(|u| u.name == login) else {
        return Ok(None);
    };
    let _slot = kdf_slot(server).await?;
    // Another task may have provisioned meanwhile; check again under the slot.
    if let Some(row) = inner.store.row_read(&pk, sk).await? {
        if let Some(value) = row.values.iter().flatten().next() {
            let key: [u8; 32] = value
                .as_ref()
                .try_into()
                .map_err(|_| AuthError::Corrupt("public key size".into()))?;
            return Ok(Some(key));
        }
    }
    let key = provision(server, &user, configured.password.as_bytes()).await?;
    Ok(Some(key.delivery_public()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, ServerConfig};

    #[tokio::test]
    async fn a_login_flood_beyond_the_kdf_queue_is_refused_at_once() {
        let limits = Limits {
            kdf_concurrency: 1,
            kdf_queue_max: 1,
            ..Limits::default()
        };
        let config = ServerConfig {
            storage: crate::storage::StorageConfig::default(),
            users: vec![],
            limits,
            kdf: Default::default(),
            hostname: "test".into(),
        };
        let server = Server::new(config, crate::env::Env::production());
        // As if a derivation were running: the only slot is taken.
        let held = server
            .inner()
            .kdf_slots
            .acquire()
            .await
            .expect("open semaphore");
        let mut waiting = Vec::new();
        for name in ["a", "b"] {
            let server = server.clone();
            waiting.push(tokio::spawn(async move {
                login(&server, name, b"pw").await.map(|_| ())
            }));
        }
        while server
            .inner()
            .kdf_waiting
            .load(std::sync::atomic::Ordering::SeqCst)
            < 2
        {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            login(&server, "c", b"pw").await,
            Err(AuthError::Busy)
        ));
        drop(held);
        for task in waiting {
            task.abort();
        }
    }
}
