//! Encryption of everything the store holds: sealed rows and blobs (XChaCha20-Poly1305 with a random
//! nonce), message bodies as a chunked AEAD stream (the STREAM construction, so a body is written and
//! read one chunk at a time, in any order, with truncation and reordering detected), and the user's
//! secret key wrapped by a key derived from the password with argon2id.

use aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::KdfParams;
use crate::env::Env;

/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes of the Poly1305 tag added to each sealed value or chunk.
pub const TAG_BYTES: usize = 16;
/// Bytes of the per-body nonce prefix of the STREAM construction (24 - 5).
pub const STREAM_PREFIX_BYTES: usize = 19;

/// Why a sealed value could not be opened.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext is too short, was altered, or was sealed under another key or context.
    #[error("decryption failed: wrong key, wrong context or corrupted data")]
    Open,
    /// Key derivation failed (parameters out of range).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// A user's 256-bit secret key; everything of the user is sealed under it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate(env: &Env) -> Self {
        SecretKey(env.random())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Seals `plain`, bound to `context` (e.g. the row's key), as `nonce || ciphertext || tag`.
    pub fn seal(&self, env: &Env, context: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = env.random();
        let mut out = Vec::with_capacity(NONCE_BYTES + plain.len() + TAG_BYTES);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), context, &mut out[NONCE_BYTES..])
            .expect("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens what [`SecretKey::seal`] produced with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_BYTES);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Open)
    }

    /// The STREAM construction for one body, keyed by this key and the body's random nonce prefix.
    pub fn body_stream(&self, prefix: &[u8; STREAM_PREFIX_BYTES]) -> BodyStream {
        BodyStream(StreamBE32::from_aead(self.cipher(), prefix.into()))
    }
}

/// Encrypts and decrypts the chunks of one message body. Chunk `i` is sealed with its position and a
/// last-chunk flag in the nonce, so chunks can be read in any order and a truncated body is detected.
pub struct BodyStream(StreamBE32<XChaCha20Poly1305>);

impl BodyStream {
    /// Encrypts chunk `position` in place (appends the tag).
    pub fn seal_chunk(&self, position: u32, last: bool, buf: &mut Vec<u8>) {
        self.0
            .encrypt_in_place(position, last, b"", buf)
            .expect("chunk sizes are far below the AEAD limit");
    }

    /// Decrypts chunk `position` in place (removes the tag).
    pub fn open_chunk(
        &self,
        position: u32,
        last: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.0
            .decrypt_in_place(position, last, b"", buf)
            .map_err(|_| CryptoError::Open)
    }
}

/// BLAKE2b with an `N`-byte output of `parts`, one after the other: the ids, salts and keys
/// derived from names and keys.
pub fn blake2b<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    use blake2::digest::{Update, VariableOutput};
    let mut hasher = blake2::Blake2bVar::new(N)
        .expect("every caller asks for 16 to 32 bytes, within BLAKE2b's 1 to 64");
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; N];
    hasher
        .finalize_variable(&mut out)
        .expect("the buffer has the requested size");
    out
}

/// The user's key for mail delivered without their password (LMTP): an X25519 key pair whose secret
/// half is derived from the user's secret key, whose public half is stored in clear.
impl SecretKey {
    /// The derived X25519 secret key.
    pub fn delivery_secret(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from_bytes(blake2b(&[b"imapsim delivery key v1\0", &self.0]))
    }

    /// The public half of [`SecretKey::delivery_secret`].
    pub fn delivery_public(&self) -> [u8; 32] {
        *self.delivery_secret().public_key().as_bytes()
    }

    /// Opens a value sealed with [`seal_to`] for this user.
    pub fn open_delivered(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.delivery_secret()
            .unseal(sealed)
            .map_err(|_| CryptoError::Open)
    }

    /// A key from raw bytes (per-message body keys kept in sealed records).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    /// The raw bytes, to be stored only inside sealed values.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// Seals `plain` to a user's public delivery key (an anonymous sealed box).
pub fn seal_to(env: &Env, public: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let public = crypto_box::PublicKey::from_bytes(*public);
    public
        .seal(&mut EnvRng(env), plain)
        .expect("sealing to a valid public key cannot fail")
}

/// The environment's entropy as a `rand_core` RNG, for crates that take one.
pub struct EnvRng<'a>(pub &'a Env);

impl rand_core::RngCore for EnvRng<'_> {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0.random())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0.random())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.entropy.fill(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.entropy.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for EnvRng<'_> {}

/// The user's secret key wrapped under a key derived from their password; stored in K2V as is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrappedKey {
    /// Format version.
    pub version: u8,
    /// Argon2 salt.
    pub salt: [u8; 16],
    /// Argon2 memory cost in KiB.
    pub memory_kib: u32,
    /// Argon2 iterations.
    pub iterations: u32,
    /// Argon2 lanes.
    pub parallelism: u32,
    /// `nonce || sealed secret key || tag`.
    pub sealed: Vec<u8>,
}

const WRAP_CONTEXT: &[u8] = b"imapsim user key v1";

fn derive_kek(
    password: &[u8],
    salt: &[u8; 16],
    params: &KdfParams,
) -> Result<SecretKey, CryptoError> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut out = [0u8; 32];
    argon
        .hash_password_into(password, salt, &mut out)
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(SecretKey(out))
}

impl SecretKey {
    /// The key a user gets at provisioning: derived from the password with a salt fixed by the
    /// user, so that two instances provisioning the same user at once (concurrent first logins)
    /// agree on it. Later password changes re-wrap this key; it is not derived again.
    pub fn provisioned(
        user: &str,
        password: &[u8],
        params: &KdfParams,
    ) -> Result<SecretKey, CryptoError> {
        let salt: [u8; 16] = blake2b(&[b"imapsim provisioning salt v1\0", user.as_bytes()]);
        derive_kek(password, &salt, params)
    }
}

impl WrappedKey {
    /// Wraps `key` under `password` with fresh salt.
    pub fn wrap(
        env: &Env,
        key: &SecretKey,
        password: &[u8],
        params: &KdfParams,
    ) -> Result<Self, CryptoError> {
        let salt: [u8; 16] = env.random();
        let kek = derive_kek(password, &salt, params)?;
        Ok(WrappedKey {
            version: 1,
            salt,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            sealed: kek.seal(env, WRAP_CONTEXT, &key.0),
        })
    }

    /// Unwraps the secret key; a wrong password gives [`CryptoError::Open`].
    pub fn unwrap_key(&self, password: &[u8]) -> Result<SecretKey, CryptoError> {
        let params = KdfParams {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        };
        let kek = derive_kek(password, &self.salt, &params)?;
        let plain = kek.open(WRAP_CONTEXT, &self.sealed)?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| CryptoError::Open)?;
        Ok(SecretKey(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededEntropy;
    use std::sync::Arc;

    fn env() -> Env {
        let mut env = Env::production();
        env.entropy = Arc::new(SeededEntropy::new(7));
        env
    }

    fn small_kdf() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn sealed_value_opens_only_in_its_context() {
        let env = env();
        let key = SecretKey::generate(&env);
        let sealed = key.seal(&env, b"pk/sk", b"hello");
        assert_eq!(key.open(b"pk/sk", &sealed).unwrap(), b"hello");
        assert_eq!(key.open(b"pk/other", &sealed), Err(CryptoError::Open));
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn wrapped_key_needs_the_right_password() {
        let env = env();
        let key = SecretKey::generate(&env);
        let wrapped = WrappedKey::wrap(&env, &key, b"pw", &small_kdf()).unwrap();
        assert_eq!(wrapped.unwrap_key(b"pw").unwrap().0, key.0);
        assert!(wrapped.unwrap_key(b"wrong").is_err());
    }

    #[test]
    fn delivered_values_open_only_for_their_user() {
        let env = env();
        let alice = SecretKey::generate(&env);
        let bob = SecretKey::generate(&env);
        let sealed = seal_to(&env, &alice.delivery_public(), b"mail");
        assert_eq!(alice.open_delivered(&sealed).unwrap(), b"mail");
        assert_eq!(bob.open_delivered(&sealed), Err(CryptoError::Open));
    }

    #[test]
    fn body_chunks_detect_reordering_and_truncation() {
        let env = env();
        let key = SecretKey::generate(&env);
        let stream = key.body_stream(&env.random());
        let mut c0 = b"first".to_vec();
        let mut c1 = b"second".to_vec();
        stream.seal_chunk(0, false, &mut c0);
        stream.seal_chunk(1, true, &mut c1);
        let mut swapped = c1.clone();
        assert!(stream.open_chunk(0, false, &mut swapped).is_err());
        let mut not_last = c1.clone();
        assert!(stream.open_chunk(1, false, &mut not_last).is_err());
        stream.open_chunk(1, true, &mut c1).unwrap();
        assert_eq!(c1, b"second");
    }
}
