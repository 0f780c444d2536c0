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
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The stored key record is unreadable.
    #[error("corrupt key record: {0}")]
    Corrupt(String),
}

/// Checks `password` for `login` and returns the user's store.
pub async fn login(server: &Server, login: &str, password: &[u8]) -> Result<UserStore, AuthError> {
    let inner = server.inner();
    let user = layout::user_id(login);
    let (pk, sk) = layout::keys_row(&user);
    let _slot = inner.kdf_slots.acquire().await.expect("the KDF semaphore is never closed");
    let key = match inner.store.row_read(&pk, sk).await? {
        Some(row) => {
            let value = row.values.iter().flatten().next().ok_or(AuthError::InvalidCredentials)?;
            let wrapped: WrappedKey = postcard::from_bytes(value).map_err(|e| AuthError::Corrupt(e.to_string()))?;
            wrapped.unwrap_key(password).map_err(|e| match e {
                CryptoError::Open => AuthError::InvalidCredentials,
                other => AuthError::Corrupt(other.to_string()),
            })?
        }
        None => {
            // First login of a configured user: create and wrap their key.
            let configured = inner.config.users.iter().find(|u| u.name == login);
            match configured {
                Some(u) if u.password.as_bytes() == password => {
                    let key = SecretKey::generate(&inner.env);
                    let wrapped = WrappedKey::wrap(&inner.env, &key, password, &inner.config.kdf)
                        .map_err(|e| AuthError::Corrupt(e.to_string()))?;
                    let value = postcard::to_allocvec(&wrapped).expect("serialising to a Vec cannot fail");
                    inner.store.row_insert(&pk, sk, None, Bytes::from(value)).await?;
                    key
                }
                _ => return Err(AuthError::InvalidCredentials),
            }
        }
    };
    Ok(UserStore::new(inner.store.clone(), inner.env.clone(), &user, key, inner.log_clock.clone()))
}
