//! The values the recording removed (user names, passwords, APPEND messages) and seeded stand-ins
//! for them.

use rand::{Rng as _, SeedableRng as _};

/// Values the recording removed, supplied by the caller. `line` is the 1-based line number.
pub trait Redacted {
    /// The user name for a LOGIN; `recorded` is the redacted form (`REDACTED`,
    /// `REDACTED@saint-ex.deuxfleurs.org`).
    fn username(&self, line: usize, recorded: &str) -> String;
    /// The password for a LOGIN.
    fn password(&self, line: usize) -> String;
    /// The message of an APPEND (no NUL byte).
    fn message(&self, line: usize) -> Vec<u8>;
}

/// Generated stand-ins for the redacted values: one user and password for every LOGIN, and an
/// APPEND message from the dataset generator, 1,000 to 20,000 bytes, drawn from `seed` and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRedacted {
    /// Seed of the APPEND messages. Default 0.
    pub seed: u64,
    /// User name of every LOGIN. Default `alice`.
    pub username: String,
    /// Password of every LOGIN. Default `alice-password`.
    pub password: String,
}

impl Default for SeededRedacted {
    fn default() -> Self {
        Self {
            seed: 0,
            username: "alice".into(),
            password: "alice-password".into(),
        }
    }
}

impl Redacted for SeededRedacted {
    fn username(&self, _line: usize, _recorded: &str) -> String {
        self.username.clone()
    }

    fn password(&self, _line: usize) -> String {
        self.password.clone()
    }

    fn message(&self, line: usize) -> Vec<u8> {
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ (line as u64).rotate_left(32));
        crate::dataset::email(self.seed, line, rng.gen_range(1_000..=20_000)).bytes
    }
}
