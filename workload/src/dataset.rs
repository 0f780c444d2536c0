//! The users and emails a workload works with: generated users, and the emails of a mailbox,
//! made on demand from the recorded sizes (a set is never held whole).

/// Name of user `i` (1-based) and their password.
pub fn user(i: usize) -> (String, String) {
    (format!("user{i}"), format!("password-{i}"))
}

/// Users 1..=n.
pub fn users(n: usize) -> Vec<(String, String)> {
    (1..=n).map(user).collect()
}

/// Which emails a mailbox is filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// `count` emails at the 100 recorded sizes in turn; each pass over them is a copy with its
    /// own content ("x10": 1,000 emails).
    Recorded {
        /// How many.
        count: usize,
    },
    /// `count` generated emails of `bytes` bytes each (scaling runs: the index, not the bodies).
    Small {
        /// How many.
        count: usize,
        /// Size of each.
        bytes: u64,
    },
}

/// The 100 emails at the recorded sizes.
pub const X1: Dataset = Dataset::Recorded { count: 100 };
/// 1,000 emails: the recorded sizes ten times.
pub const X10: Dataset = Dataset::Recorded { count: 1_000 };

impl Dataset {
    /// Emails in the set.
    pub fn len(&self) -> usize {
        match *self {
            Dataset::Recorded { count } | Dataset::Small { count, .. } => count,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Email `k` of the set, made from the dataset seed `seed`.
    pub fn email(&self, seed: u64, sizes: &[u64], k: usize) -> Vec<u8> {
        match *self {
            Dataset::Recorded { .. } => {
                let (copy, i) = (k / sizes.len(), k % sizes.len());
                traces::dataset::email(traces::dataset::copy_seed(seed, copy), i, sizes[i]).bytes
            }
            Dataset::Small { bytes, .. } => traces::dataset::email(seed, k, bytes).bytes,
        }
    }

    /// Total bytes of the set.
    pub fn total_bytes(&self, sizes: &[u64]) -> u64 {
        match *self {
            Dataset::Recorded { count } => (0..count).map(|k| sizes[k % sizes.len()]).sum(),
            Dataset::Small { count, bytes } => count as u64 * bytes,
        }
    }
}
