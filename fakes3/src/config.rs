//! Configuration of a fake store: bucket, credentials, region, seed, body cap and fault options.

use thiserror::Error;

/// Settings of one fake S3 + K2V store.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The only bucket that exists, for both APIs. Default `"imapsim"`.
    pub bucket: String,
    /// The only access key id accepted in `Authorization` (SigV4 `Credential=`). Default `"GK0000000000000000000000"`.
    pub key_id: String,
    /// The secret of `key_id`; kept for clients to sign with, signatures are not verified. Default `"fakes3-secret"`.
    pub secret: String,
    /// Region expected in the credential scope and reported in errors. Default `"garage"`.
    pub region: String,
    /// Seed of the one RNG that draws every fault and latency. Default `0`.
    pub seed: u64,
    /// Fault injection; all off by default.
    pub faults: Faults,
    /// Largest request body accepted; larger ones get 400 EntityTooLarge. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Whether responses carry an HTTP `Date` header, as S3 and Garage send. hyper writes it from
    /// the wall clock, which must not reach a simulation: the harness turns it off. Default true.
    pub date_header: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bucket: "imapsim".to_string(),
            key_id: "GK0000000000000000000000".to_string(),
            secret: "fakes3-secret".to_string(),
            region: "garage".to_string(),
            seed: 0,
            faults: Faults::default(),
            max_body_bytes: 64 << 20,
            date_header: true,
        }
    }
}

impl Config {
    /// Checks the settings: non-empty names, a non-zero body cap, valid faults.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() || self.bucket.contains('/') {
            return Err(ConfigError::InvalidBucket(self.bucket.clone()));
        }
        if self.key_id.is_empty() || self.key_id.contains('/') {
            return Err(ConfigError::InvalidKeyId(self.key_id.clone()));
        }
        if self.region.is_empty() || self.region.contains('/') {
            return Err(ConfigError::InvalidRegion(self.region.clone()));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::ZeroMaxBody);
        }
        self.faults.validate()
    }
}

/// Injected faults. All off by default; checked when the store is built or the faults are changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// Probability that a request is answered 500 or 503 without being applied. Default `0.0`.
    pub error_probability: f64,
    /// Probability that a request is applied and then answered 500 (the response was lost). Default `0.0`.
    pub lost_response_probability: f64,
    /// Smallest latency added to each request, in milliseconds of tokio time. Default `0`.
    pub latency_ms_min: u64,
    /// Largest latency added to each request (drawn uniformly in min..=max). Default `0`.
    pub latency_ms_max: u64,
    /// Operations the faults apply to; `None` means all of them. Default `None`.
    pub ops: Option<Vec<Op>>,
}

impl Faults {
    /// Checks probabilities are in [0, 1] and `latency_ms_min <= latency_ms_max`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("error_probability", self.error_probability),
            ("lost_response_probability", self.lost_response_probability),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::InvalidProbability { field, value });
            }
        }
        if self.latency_ms_min > self.latency_ms_max {
            return Err(ConfigError::LatencyRange {
                min: self.latency_ms_min,
                max: self.latency_ms_max,
            });
        }
        Ok(())
    }

    /// Whether the faults apply to `op`.
    pub fn covers(&self, op: Op) -> bool {
        self.ops.as_ref().is_none_or(|ops| ops.contains(&op))
    }

    /// Whether any fault at all is configured.
    pub fn is_active(&self) -> bool {
        self.error_probability > 0.0
            || self.lost_response_probability > 0.0
            || self.latency_ms_max > 0
    }
}

/// One operation of either API, as counted in [`crate::Stats`] and selected by [`Faults::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// S3 `PUT /bucket/key`.
    PutObject,
    /// S3 `GET /bucket/key`, whole or ranged.
    GetObject,
    /// S3 `HEAD /bucket/key`.
    HeadObject,
    /// S3 `DELETE /bucket/key`.
    DeleteObject,
    /// S3 `PUT /bucket/key` with `x-amz-copy-source`.
    CopyObject,
    /// S3 `GET /bucket?list-type=2`.
    ListObjects,
    /// K2V `GET /bucket/pk?sort_key=`.
    ReadItem,
    /// K2V `GET /bucket/pk?sort_key=&causality_token=`.
    PollItem,
    /// K2V `POST /bucket/pk?poll_range` (or `SEARCH`).
    PollRange,
    /// K2V `PUT /bucket/pk?sort_key=`.
    InsertItem,
    /// K2V `DELETE /bucket/pk?sort_key=`.
    DeleteItem,
    /// K2V `GET /bucket`.
    ReadIndex,
    /// K2V `POST /bucket`.
    InsertBatch,
    /// K2V `POST /bucket?search` or `SEARCH /bucket`.
    ReadBatch,
    /// K2V `POST /bucket?delete`.
    DeleteBatch,
}

impl Op {
    /// Every operation, in declaration order.
    pub const ALL: [Op; 15] = [
        Op::PutObject,
        Op::GetObject,
        Op::HeadObject,
        Op::DeleteObject,
        Op::CopyObject,
        Op::ListObjects,
        Op::ReadItem,
        Op::PollItem,
        Op::PollRange,
        Op::InsertItem,
        Op::DeleteItem,
        Op::ReadIndex,
        Op::InsertBatch,
        Op::ReadBatch,
        Op::DeleteBatch,
    ];

    /// Whether the operation changes the store.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::PutObject
                | Op::DeleteObject
                | Op::CopyObject
                | Op::InsertItem
                | Op::DeleteItem
                | Op::InsertBatch
                | Op::DeleteBatch
        )
    }
}

/// Which of the two APIs a listener speaks (Garage serves them on two ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The S3 subset: objects.
    S3,
    /// The K2V API: items with causality tokens.
    K2v,
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A probability outside [0, 1] (or NaN).
    #[error("{field} must be in [0, 1], got {value}")]
    InvalidProbability {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// `latency_ms_min` above `latency_ms_max`.
    #[error("latency_ms_min ({min}) is above latency_ms_max ({max})")]
    LatencyRange {
        /// The minimum given.
        min: u64,
        /// The maximum given.
        max: u64,
    },
    /// An empty bucket name, or one with a slash.
    #[error("invalid bucket name {0:?}")]
    InvalidBucket(String),
    /// An empty access key id, or one with a slash.
    #[error("invalid access key id {0:?}")]
    InvalidKeyId(String),
    /// An empty region, or one with a slash.
    #[error("invalid region {0:?}")]
    InvalidRegion(String),
    /// `max_body_bytes` of zero.
    #[error("max_body_bytes must be above zero")]
    ZeroMaxBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_faults_are_off() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(!config.faults.is_active());
        assert_eq!(config.region, "garage");
        assert_eq!(config.max_body_bytes, 64 << 20);
    }

    #[test]
    fn faults_out_of_range_are_refused() {
        let faults = Faults {
            error_probability: 1.5,
            ..Faults::default()
        };
        assert!(matches!(
            faults.validate(),
            Err(ConfigError::InvalidProbability {
                field: "error_probability",
                ..
            })
        ));
        let faults = Faults {
            lost_response_probability: f64::NAN,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        let faults = Faults {
            latency_ms_min: 5,
            latency_ms_max: 4,
            ..Faults::default()
        };
        assert_eq!(
            faults.validate(),
            Err(ConfigError::LatencyRange { min: 5, max: 4 })
        );
    }

    #[test]
    fn faults_cover_only_listed_ops() {
        let faults = Faults {
            ops: Some(vec![Op::PutObject]),
            ..Faults::default()
        };
        assert!(faults.covers(Op::PutObject));
        assert!(!faults.covers(Op::GetObject));
        assert!(Faults::default().covers(Op::DeleteBatch));
    }
}
