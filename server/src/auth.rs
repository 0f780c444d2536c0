//! Login: derive the key-encryption key from the password with argon2id (bounded concurrency, as each
//! derivation takes ~19 MiB), unwrap the user's secret key. A configured user's key is created and
//! wrapped at their first login. A password change wraps the same key again under the new password.

use bytes::Bytes;
use thiserror::Error;

use crate::crypto::{CryptoError, SecretKey, WrappedKey};
use crate::mail::{layout, UserStore};
use crate::storage::{StorageError, Store};
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

/// Concurrent values of a key row tried at most (each costs a key derivation). Concurrent values
/// come from password changes racing each other; they all wrap the same secret key.
const KEY_VALUES_MAX: usize = 4;

/// Opens the secret key wrapped in one of a key row's values with `password`.
fn unwrap_any(values: &[Option<Bytes>], password: &[u8]) -> Result<SecretKey, AuthError> {
    let mut corrupt = None;
    let mut readable = false;
    for value in values.iter().flatten().take(KEY_VALUES_MAX) {
        let wrapped: WrappedKey = match postcard::from_bytes(value) {
            Ok(wrapped) => wrapped,
            Err(e) => {
                corrupt = Some(e.to_string());
                continue;
            }
        };
        match wrapped.unwrap_key(password) {
            Ok(key) => return Ok(key),
            Err(CryptoError::Open) => readable = true,
            Err(other) => corrupt = Some(other.to_string()),
        }
    }
    match corrupt {
        Some(e) if !readable => Err(AuthError::Corrupt(e)),
        _ => Err(AuthError::InvalidCredentials),
    }
}

/// Checks `password` for `login` and returns the user's store.
pub async fn login(server: &Server, login: &str, password: &[u8]) -> Result<UserStore, AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::keys_row(&user);
    let _slot = kdf_slot(server).await?;
    let key = match inner.store.row_read(&pk, sk).await? {
        Some(row) => unwrap_any(&row.values, password)?,
        None => match inner.config.users.iter().find(|u| u.name == login) {
            Some(u) if u.password.as_bytes() == password => {
                provision(server, &user, password).await?
            }
            _ => return Err(AuthError::InvalidCredentials),
        },
    };
    Ok(UserStore::new(
        inner.store.clone(),
        &user,
        key,
        inner.log_clock.clone(),
    ))
}

/// Changes `login`'s password from `old` to `new`: the user's secret key is unwrapped with `old` and
/// wrapped again under `new` with a fresh salt and the configured KDF parameters, so mail stays
/// readable and `old` stops working. Sessions already logged in keep their key.
///
/// The new value is written with the causality token of the row it was read from, so it supersedes
/// exactly the values that were opened; logins only read the row and never see a half-written one.
/// A value written concurrently survives beside it (K2V keeps concurrent values): one that opens
/// with `old` (a first-login provisioning racing the change) is superseded in a second write;
/// another change's value is kept, so both new passwords work until the next change.
/// A configured user who never logged in is provisioned under `old` first. A wrong `old` is not
/// rate limited here: this is an administrator's call, not a client's (IMAP logins are).
pub async fn change_password(
    server: &Server,
    login: &str,
    old: &[u8],
    new: &[u8],
) -> Result<(), AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::keys_row(&user);
    let _slot = kdf_slot(server).await?;
    let row =
        match inner.store.row_read(&pk, sk).await? {
            Some(row) => row,
            None => {
                match inner.config.users.iter().find(|u| u.name == login) {
                    Some(u) if u.password.as_bytes() == old => {
                        provision(server, &user, old).await?;
                    }
                    _ => return Err(AuthError::InvalidCredentials),
                }
                inner.store.row_read(&pk, sk).await?.ok_or_else(|| {
                    AuthError::Corrupt("key row missing after provisioning".into())
                })?
            }
        };
    let key = unwrap_any(&row.values, old)?;
    let wrapped = WrappedKey::wrap(&inner.env, &key, new, &inner.config.kdf)
        .map_err(|e| AuthError::Corrupt(e.to_string()))?;
    let ours =
        Bytes::from(postcard::to_allocvec(&wrapped).expect("serialising to a Vec cannot fail"));
    inner
        .store
        .row_insert(&pk, sk, Some(&row.ct), ours.clone())
        .await?;
    // Settle: values written concurrently with ours are still there beside it.
    let Some(row) = inner.store.row_read(&pk, sk).await? else {
        return Err(AuthError::Corrupt(
            "key row missing after a password change".into(),
        ));
    };
    let others: Vec<&Bytes> = row
        .values
        .iter()
        .flatten()
        .filter(|v| **v != ours)
        .collect();
    if others.is_empty() || others.len() == row.values.iter().flatten().count() {
        // Only ours, or ours already superseded by a later change that read it.
        return Ok(());
    }
    let stale = others.len() <= KEY_VALUES_MAX
        && others
            .iter()
            .all(|v| unwrap_any(&[Some((*v).clone())], old).is_ok());
    if stale {
        inner.store.row_insert(&pk, sk, Some(&row.ct), ours).await?;
    }
    Ok(())
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
    // Another login may have provisioned, and the password may have changed since, during the
    // derivations: a key row written meanwhile wins over this one (its key is the same).
    let (keys_pk, keys_sk) = layout::keys_row(user);
    if let Some(row) = inner.store.row_read(&keys_pk, keys_sk).await? {
        if row.values.iter().flatten().next().is_some() {
            return unwrap_any(&row.values, password);
        }
    }
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
    inner
        .store
        .row_insert(&keys_pk, keys_sk, None, Bytes::from(value))
        .await?;
    Ok(key)
}

/// The delivery key stored in the user's public key row, if any.
async fn stored_public_key(
    store: &Store,
    pk: &str,
    sk: &str,
) -> Result<Option<[u8; 32]>, AuthError> {
    let Some(row) = store.row_read(pk, sk).await? else {
        return Ok(None);
    };
    row.values
        .iter()
        .flatten()
        .next()
        .map(|value| {
            value
                .as_ref()
                .try_into()
                .map_err(|_| AuthError::Corrupt("public key size".into()))
        })
        .transpose()
}

/// The public delivery key of `login`, provisioning a configured user who never logged in.
/// `None` when there is no such user.
pub async fn delivery_key(server: &Server, login: &str) -> Result<Option<[u8; 32]>, AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::public_key_row(&user);
    if let Some(key) = stored_public_key(&inner.store, &pk, sk).await? {
        return Ok(Some(key));
    }
    let Some(configured) = inner.config.users.iter().find(|u| u.name == login) else {
        return Ok(None);
    };
    let _slot = kdf_slot(server).await?;
    // Another task may have provisioned meanwhile; check again under the slot.
    if let Some(key) = stored_public_key(&inner.store, &pk, sk).await? {
        return Ok(Some(key));
    }
    let key = provision(server, &user, configured.password.as_bytes()).await?;
    Ok(Some(key.delivery_public()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, ServerConfig};

    #[test]
    fn any_concurrent_value_of_a_key_row_opens_with_its_own_password() {
        let mut env = crate::env::Env::production();
        env.entropy = std::sync::Arc::new(crate::env::SeededEntropy::new(3));
        let kdf = crate::config::KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let key = SecretKey::generate(&env);
        let value = |password: &[u8]| {
            let wrapped = WrappedKey::wrap(&env, &key, password, &kdf).expect("valid parameters");
            Some(Bytes::from(
                postcard::to_allocvec(&wrapped).expect("serialises"),
            ))
        };
        let values = vec![value(b"one"), None, value(b"two")];
        for password in [b"one", b"two"] {
            let opened = unwrap_any(&values, password).expect("opens");
            assert_eq!(opened.to_bytes(), key.to_bytes());
        }
        assert!(matches!(
            unwrap_any(&values, b"three"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            unwrap_any(&[Some(Bytes::from_static(b"junk"))], b"x"),
            Err(AuthError::Corrupt(_))
        ));
    }

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
