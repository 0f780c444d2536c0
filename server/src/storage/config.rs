//! Where and as whom the store is reached, and the client's fixed bounds (response size, timeouts).

use std::fmt;
use std::time::Duration;

/// Largest response body the client accepts (64 MiB); a larger one is a [`StorageError::Protocol`](super::error::StorageError::Protocol).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How long one ordinary request may take, connection included, before it fails with
/// [`StorageError::Timeout`](super::error::StorageError::Timeout) (simulated time in the simulation).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How much longer than its own `timeout` a PollItem may take before the client gives up on it.
pub const POLL_GRACE: Duration = Duration::from_secs(30);

/// Largest PollItem timeout Garage accepts, in seconds; larger ones are clamped to it.
pub const POLL_TIMEOUT_S_MAX: u32 = 600;

/// Where and as whom the store is reached.
#[derive(Clone)]
pub struct StorageConfig {
    /// S3 endpoint, "host:port" (an `http://` prefix is accepted). Default "127.0.0.1:3900" (Garage's).
    pub s3_endpoint: String,
    /// K2V endpoint, "host:port" (an `http://` prefix is accepted). Default "127.0.0.1:3904" (Garage's).
    pub k2v_endpoint: String,
    /// Region signed into every request. Default "garage" (Garage's default `s3_region`).
    pub region: String,
    /// The bucket holding both the rows and the blobs. Default "imapsim".
    pub bucket: String,
    /// Access key id. Default "" (must be set).
    pub key_id: String,
    /// Secret access key. Default "" (must be set).
    pub secret: String,
    /// Requests in flight at once, both APIs together (PollItems not counted; 0 counts as 1). Default 32.
    pub max_in_flight: usize,
    /// Idle HTTP/1 connections kept per endpoint for reuse (0: none, every request connects). Default 8.
    pub max_idle_connections: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            s3_endpoint: "127.0.0.1:3900".into(),
            k2v_endpoint: "127.0.0.1:3904".into(),
            region: "garage".into(),
            bucket: "imapsim".into(),
            key_id: String::new(),
            secret: String::new(),
            max_in_flight: 32,
            max_idle_connections: 8,
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("s3_endpoint", &self.s3_endpoint)
            .field("k2v_endpoint", &self.k2v_endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .field("max_in_flight", &self.max_in_flight)
            .field("max_idle_connections", &self.max_idle_connections)
            .finish()
    }
}
