//! Server configuration: storage endpoint, users, limits and key-derivation parameters.

use crate::storage::StorageConfig;

/// A user the server knows, with the password it provisions their key with on first login.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Password (only used to wrap the user's secret key at provisioning and to unwrap it at login).
    pub password: String,
}

/// Bounds that keep every session's memory small (DESIGN.md, memory principle 4).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest command line accepted, in bytes. Default 64 KiB.
    pub line_bytes_max: usize,
    /// Largest literal (APPEND message) accepted, in bytes; larger ones are refused before being read. Default 64 MiB.
    pub literal_bytes_max: u64,
    /// Size of each encrypted body chunk in storage, in bytes. Default 64 KiB.
    pub chunk_bytes: usize,
    /// Key derivations (argon2) running at once; logins beyond wait. Default 2.
    pub kdf_concurrency: usize,
    /// Logins waiting for a key derivation at most; beyond, a login gets NO at once. Default 64.
    pub kdf_queue_max: usize,
    /// Delay before answering NO to a wrong password, in milliseconds. Default 1000.
    pub auth_failure_delay_ms: u64,
    /// Before login, the longest command line, and the most literal bytes in one command, in
    /// bytes; APPEND is refused then. Keeps an unauthenticated connection small. Default 8 KiB.
    pub unauthenticated_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_bytes_max: 64 * 1024,
            literal_bytes_max: 64 * 1024 * 1024,
            chunk_bytes: 64 * 1024,
            kdf_concurrency: 2,
            kdf_queue_max: 64,
            auth_failure_delay_ms: 1000,
            unauthenticated_bytes_max: 8 * 1024,
        }
    }
}

/// Argon2id parameters for deriving a user's key-encryption key from their password.
#[derive(Clone, Debug)]
pub struct KdfParams {
    /// Memory cost in KiB. Default 19,456 (19 MiB, argon2's recommended default).
    pub memory_kib: u32,
    /// Iterations. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Everything a server instance needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where mail is stored (S3 + K2V endpoints and credentials).
    pub storage: StorageConfig,
    /// Known users.
    pub users: Vec<UserConfig>,
    /// Memory bounds.
    pub limits: Limits,
    /// Key derivation parameters.
    pub kdf: KdfParams,
    /// Host name announced in the greeting and LMTP banner. Default "imapsim".
    pub hostname: String,
}
