//! A proptest strategy drawing single sessions from the recorded variant pool, valid for the
//! state right after a configuration's setup, that shrinks toward fewer (and simpler) commands.

use std::sync::Arc;

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;

use super::config::{WorkloadConfig, WorkloadError};
use super::model::SessionState;
use super::plan::{names_messages, Planned};
use super::rewrite::{OpenHint, Realiser, SessionRun};
use super::steps::{Session, SetupStep, Step, User, Workload};
use super::variants::VariantPool;
use crate::trace::CommandName;

/// Names a drawn session may hold, simplest first (a shrunk name index moves toward NOOP).
const ORDER: [CommandName; 20] = [
    CommandName::Noop,
    CommandName::Capability,
    CommandName::Check,
    CommandName::Idle,
    CommandName::Unselect,
    CommandName::Close,
    CommandName::Enable,
    CommandName::List,
    CommandName::Lsub,
    CommandName::Status,
    CommandName::Select,
    CommandName::Examine,
    CommandName::Create,
    CommandName::Subscribe,
    CommandName::Search,
    CommandName::Fetch,
    CommandName::Store,
    CommandName::Append,
    CommandName::Move,
    CommandName::Expunge,
];

/// What every drawn session is built from.
#[derive(Debug)]
struct Shared {
    pool: VariantPool,
    config: WorkloadConfig,
    users: Vec<User>,
    setup: Vec<SetupStep>,
    dataset_seed: u64,
    /// Names with their cumulative weight (the configured counts).
    names: Vec<(CommandName, u64)>,
}

impl Shared {
    fn name_at(&self, w: u64) -> CommandName {
        self.names
            .iter()
            .find(|(_, upto)| w < *upto)
            .or(self.names.last())
            .map(|(n, _)| *n)
            .expect("a strategy is only built with names")
    }
}

/// Sessions of up to about `max_commands` commands (a selected-state command drawn without a
/// suitable mailbox open brings its SELECT), each starting with LOGIN and ending with LOGOUT or
/// not, for a user of `config`, valid for the state right after `config`'s setup
/// ([`Workload::setup_only`]): replay that setup, then the session. Command names are drawn in
/// proportion to `config.counts`, variants uniformly from the recorded log. A failing case
/// shrinks toward fewer commands, then simpler names (NOOP first) and earlier variants.
pub fn session_strategy(
    config: &WorkloadConfig,
    max_commands: usize,
) -> Result<impl Strategy<Value = Session>, WorkloadError> {
    let base = Workload::setup_only(config)?;
    if base.users.is_empty() {
        return Err(WorkloadError::NoUsers);
    }
    let pool = VariantPool::recorded();
    let mut total = 0u64;
    let mut names = Vec::new();
    for name in ORDER {
        let n = config.counts.get(&name).copied().unwrap_or(0) as u64;
        if n > 0 && !pool.variants(name).is_empty() {
            total += n;
            names.push((name, total));
        }
    }
    if names.is_empty() {
        names.push((CommandName::Noop, 1));
        total = 1;
    }
    let dataset_seed = base
        .setup
        .iter()
        .find_map(|s| match s {
            SetupStep::Deliver { email, .. } => Some(email.seed),
            SetupStep::Create { .. } => None,
        })
        .unwrap_or(config.seed);
    let shared = Arc::new(Shared {
        pool,
        config: config.clone(),
        users: base.users,
        setup: base.setup,
        dataset_seed,
        names,
    });
    let users = shared.users.len();
    let picks =
        proptest::collection::vec((0..total, any::<usize>(), any::<u64>()), 0..=max_commands);
    Ok((0..users, any::<u64>(), picks, any::<bool>())
        .prop_map(move |(user, login, picks, logout)| build(&shared, user, login, &picks, logout)))
}

fn build(
    shared: &Shared,
    user: usize,
    login: u64,
    picks: &[(u64, usize, u64)],
    logout: bool,
) -> Session {
    let mut realiser = Realiser::new(
        &shared.pool,
        &shared.config,
        &shared.users,
        &shared.setup,
        shared.dataset_seed,
    )
    .expect("the setup of a validated configuration applies");
    let mut st = SessionState::new(user);
    let mut run = SessionRun::default();
    let mut commands: Vec<Step> = Vec::new();
    let mut add = |realiser: &mut Realiser<'_>,
                   st: &mut SessionState,
                   run: &mut SessionRun,
                   name: CommandName,
                   salt: u64,
                   hint: OpenHint|
     -> bool {
        let n = shared.pool.variants(name).len().max(1);
        let p = Planned {
            name,
            variant: (salt % n as u64) as usize,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(salt);
        match realiser
            .step(st, p, hint, run, &mut rng)
            .expect("the realiser only makes steps the model accepts")
        {
            Some(step) => {
                commands.push(step);
                true
            }
            None => false,
        }
    };
    let none = OpenHint::default();
    add(
        &mut realiser,
        &mut st,
        &mut run,
        CommandName::Login,
        login,
        none,
    );
    for &(w, variant, salt) in picks {
        let name = shared.name_at(w);
        let salt = salt ^ variant as u64;
        let needs_selected = matches!(
            name,
            CommandName::Fetch
                | CommandName::Search
                | CommandName::Store
                | CommandName::Move
                | CommandName::Expunge
                | CommandName::Check
                | CommandName::Unselect
                | CommandName::Close
        );
        let modifies = matches!(
            name,
            CommandName::Store | CommandName::Move | CommandName::Expunge
        );
        if needs_selected {
            let empty = st.selected.as_ref().is_none_or(|s| {
                realiser
                    .model
                    .mailbox(user, &s.mailbox)
                    .is_none_or(|m| m.messages.is_empty())
            });
            let read_only = st.selected.as_ref().is_some_and(|s| s.read_only);
            let reopen =
                st.selected.is_none() || (names_messages(name) && empty) || (modifies && read_only);
            if reopen {
                let hint = OpenHint {
                    probe: false,
                    needs_messages: names_messages(name),
                };
                if !add(
                    &mut realiser,
                    &mut st,
                    &mut run,
                    CommandName::Select,
                    salt,
                    hint,
                ) || st.selected.is_none()
                {
                    continue;
                }
            }
        }
        let hint = OpenHint {
            probe: false,
            needs_messages: false,
        };
        add(&mut realiser, &mut st, &mut run, name, salt, hint);
    }
    if logout {
        add(
            &mut realiser,
            &mut st,
            &mut run,
            CommandName::Logout,
            0,
            none,
        );
    }
    let ends_with_logout = commands.last().map(|c| c.name) == Some(CommandName::Logout);
    Session {
        user,
        commands,
        ends_with_logout,
    }
}
