//! The generation of a workload from its configuration: one root seed split into the dataset's,
//! the setup's, the plan's and the realisation's.

use std::collections::BTreeMap;

use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::config::{WorkloadConfig, WorkloadError};
use super::steps::{User, Workload};
use super::variants::VariantPool;
use super::{plan, rewrite};

impl Workload {
    /// The workload of `config`.
    pub fn generate(config: &WorkloadConfig) -> Result<Workload, WorkloadError> {
        let pool = VariantPool::recorded();
        plan::validate(config, &pool)?;
        let mut root = ChaCha8Rng::seed_from_u64(config.seed);
        let dataset_seed = root.next_u64();
        let mut setup_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let mut plan_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let mut realise_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        let users: Vec<User> = (0..config.users).map(User::numbered).collect();
        let setup = plan::setup(config, dataset_seed, &mut setup_rng);
        let plans = plan::sessions(config, &pool, &mut plan_rng)?;
        let mut realiser = rewrite::Realiser::new(&pool, config, &users, &setup, dataset_seed)?;
        let sessions = plans
            .iter()
            .enumerate()
            .map(|(i, p)| realiser.session(i, p, &mut realise_rng))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workload {
            users,
            setup,
            sessions,
        })
    }

    /// The default workload of `seed`: the recorded counts over 4 users.
    pub fn recorded(seed: u64) -> Result<Workload, WorkloadError> {
        Self::generate(&WorkloadConfig::with_seed(seed))
    }

    /// The users and setup of `config`, with no session: the start state of the sessions
    /// [`session_strategy`](super::strategy::session_strategy) draws.
    pub fn setup_only(config: &WorkloadConfig) -> Result<Workload, WorkloadError> {
        let pool = VariantPool::recorded();
        let no_commands = WorkloadConfig {
            counts: BTreeMap::new(),
            ..config.clone()
        };
        plan::validate(&no_commands, &pool)?;
        let mut root = ChaCha8Rng::seed_from_u64(config.seed);
        let dataset_seed = root.next_u64();
        let mut setup_rng = ChaCha8Rng::seed_from_u64(root.next_u64());
        Ok(Workload {
            users: (0..config.users).map(User::numbered).collect(),
            setup: plan::setup(config, dataset_seed, &mut setup_rng),
            sessions: Vec::new(),
        })
    }
}
