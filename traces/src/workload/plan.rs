//! Planning of a workload: the checks of its configuration, the setup of every user's mailboxes,
//! and the shape of every session (which client profile, which commands in which mailbox visit,
//! which recorded variant each) dealt so that the per-name counts are exactly the configured ones.

use std::collections::BTreeSet;

use imap_types::core::Quoted;
use imap_types::flag::Flag;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

use super::config::{WorkloadConfig, WorkloadError};
use super::steps::{EmailRef, SetupStep};
use super::variants::{visit_phase, VariantPool};
use crate::dataset;
use crate::trace::CommandName;

/// A command of a plan: its name and which recorded variant (index into the pool's variants of
/// that name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub name: CommandName,
    pub variant: usize,
}

/// One SELECT/EXAMINE and what follows it until the next one (or the session's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisitPlan {
    /// Authenticated-state commands sent before the opener (STATUS of other mailboxes, APPEND).
    pub before: Vec<Planned>,
    /// SELECT or EXAMINE.
    pub opener: Planned,
    /// Selected-state commands, in order.
    pub items: Vec<Planned>,
    /// UNSELECT or CLOSE, if the client sends one.
    pub closer: Option<Planned>,
}

impl VisitPlan {
    /// Whether a command names messages, so the visit needs a mailbox that has some.
    pub fn needs_messages(&self) -> bool {
        self.items.iter().any(|p| names_messages(p.name))
    }
}

/// Whether commands of this name carry sequence numbers or UIDs.
pub(crate) fn names_messages(name: CommandName) -> bool {
    matches!(
        name,
        CommandName::Fetch | CommandName::Search | CommandName::Store | CommandName::Move
    )
}

/// One session's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPlan {
    pub user: usize,
    pub profile: Profile,
    pub login: Planned,
    /// Authenticated-state commands right after LOGIN.
    pub pre: Vec<Planned>,
    pub visits: Vec<VisitPlan>,
    pub logout: Option<Planned>,
}

/// The kind of client a session imitates: it weighs which commands the session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Profile {
    /// CAPABILITY, ENABLE CONDSTORE, LIST/LSUB, STATUS of several mailboxes, SELECT (CONDSTORE),
    /// FETCH flags CHANGEDSINCE, headers, IDLE; several mailboxes a session.
    Thunderbird,
    /// EXAMINE-heavy, SEARCH and CHECK, UNSELECT.
    Geary,
    /// CREATE/SUBSCRIBE its folders, LIST, STATUS, many visits, IDLE.
    Mailspring,
    /// One or two mailboxes, FETCH and SEARCH, often a LOGOUT.
    Mobile,
    /// LOGIN, SELECT, NOOP, LOGOUT.
    QuickCheck,
}

impl Profile {
    const ALL: [Profile; 5] = [
        Self::Thunderbird,
        Self::Geary,
        Self::Mailspring,
        Self::Mobile,
        Self::QuickCheck,
    ];

    fn share(self) -> f64 {
        match self {
            Self::Thunderbird => 30.0,
            Self::Geary => 15.0,
            Self::Mailspring => 15.0,
            Self::Mobile => 20.0,
            Self::QuickCheck => 20.0,
        }
    }

    fn logout_weight(self) -> f64 {
        match self {
            Self::Thunderbird | Self::Mailspring | Self::Mobile => 1.0,
            Self::Geary => 1.5,
            Self::QuickCheck => 3.0,
        }
    }

    fn extra_visits_weight(self) -> f64 {
        match self {
            Self::Thunderbird | Self::Mailspring => 4.0,
            Self::Geary => 3.0,
            Self::Mobile => 1.5,
            Self::QuickCheck => 0.0,
        }
    }

    fn examine_weight(self) -> f64 {
        match self {
            Self::Thunderbird => 1.0,
            Self::Geary => 4.0,
            Self::Mailspring => 0.3,
            Self::Mobile | Self::QuickCheck => 0.5,
        }
    }

    /// Weight of an authenticated-state command in a session of this profile.
    fn session_weight(self, name: CommandName) -> f64 {
        use CommandName as C;
        match (self, name) {
            (Self::QuickCheck, C::Capability) => 0.2,
            (Self::QuickCheck, _) => 0.0,
            (Self::Thunderbird, C::Capability | C::Enable | C::List | C::Lsub) => 2.0,
            (Self::Thunderbird, C::Status) => 4.0,
            (Self::Geary, C::List | C::Status) => 2.0,
            (Self::Mailspring, C::Create | C::Subscribe) => 3.0,
            (Self::Mailspring, C::List | C::Status) => 2.0,
            (Self::Mailspring, C::Enable | C::Lsub) => 0.5,
            (Self::Mobile, C::Lsub | C::Create | C::Subscribe | C::Delete) => 0.2,
            _ => 1.0,
        }
    }

    /// Weight of a selected-state command (closers included) in a visit of this profile.
    fn visit_weight(self, name: CommandName) -> f64 {
        use CommandName as C;
        match (self, name) {
            (Self::QuickCheck, C::Noop) => 3.0,
            (Self::QuickCheck, C::Fetch | C::Search) => 0.1,
            (Self::QuickCheck, C::Store | C::Move | C::Expunge) => 0.0,
            (Self::QuickCheck, C::Idle) => 0.2,
            (Self::QuickCheck, _) => 0.5,
            (_, C::Fetch) => 3.0,
            (Self::Geary | Self::Mailspring, C::Search | C::Unselect) => 2.0,
            (Self::Geary, C::Check) => 2.0,
            (Self::Mailspring, C::Idle) => 1.5,
            (Self::Thunderbird, C::Noop) => 2.0,
            (Self::Thunderbird, C::Unselect | C::Check) => 0.5,
            (Self::Geary | Self::Mailspring, C::Close) => 0.2,
            (Self::Mailspring, C::Check) => 0.3,
            (Self::Mobile, C::Move | C::Expunge | C::Check | C::Close) => 0.5,
            _ => 1.0,
        }
    }
}

/// Authenticated-state commands a plan places after LOGIN or between visits, in the order a
/// client sends them.
const SESSION_LEVEL: [CommandName; 12] = [
    CommandName::Capability,
    CommandName::Id,
    CommandName::Enable,
    CommandName::Namespace,
    CommandName::List,
    CommandName::Lsub,
    CommandName::Create,
    CommandName::Subscribe,
    CommandName::Unsubscribe,
    CommandName::Delete,
    CommandName::Status,
    CommandName::Append,
];

/// Selected-state commands a plan deals to visits.
const VISIT_LEVEL: [CommandName; 8] = [
    CommandName::Fetch,
    CommandName::Search,
    CommandName::Store,
    CommandName::Move,
    CommandName::Expunge,
    CommandName::Check,
    CommandName::Noop,
    CommandName::Idle,
];

/// Commands that change the mailbox: never in an EXAMINE visit.
fn modifies(name: CommandName) -> bool {
    matches!(
        name,
        CommandName::Store | CommandName::Move | CommandName::Expunge
    )
}

fn session_phase(name: CommandName) -> usize {
    SESSION_LEVEL
        .iter()
        .position(|&n| n == name)
        .unwrap_or(SESSION_LEVEL.len())
}

/// Checks that `config` can be planned.
pub(crate) fn validate(config: &WorkloadConfig, pool: &VariantPool) -> Result<(), WorkloadError> {
    use CommandName as C;
    if config.mailboxes.len() != config.emails_per_mailbox.len() {
        return Err(WorkloadError::MailboxCounts {
            mailboxes: config.mailboxes.len(),
            counts: config.emails_per_mailbox.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for m in &config.mailboxes {
        if m.is_empty() || Quoted::try_from(m.as_str()).is_err() || !seen.insert(canonical(m)) {
            return Err(WorkloadError::MailboxName(m.clone()));
        }
    }
    let p = config.missing_mailbox_probability;
    if !(0.0..=1.0).contains(&p) {
        return Err(WorkloadError::Probability(p));
    }
    let count = |n: CommandName| config.counts.get(&n).copied().unwrap_or(0);
    let needs_emails = config.emails_per_mailbox.iter().any(|&n| n > 0) || count(C::Append) > 0;
    if needs_emails && config.email_sizes.is_empty() {
        return Err(WorkloadError::NoSizes);
    }
    if let Some(&size) = config.email_sizes.iter().find(|&&s| s < dataset::MIN_SIZE) {
        return Err(WorkloadError::SizeTooSmall {
            size,
            min: dataset::MIN_SIZE,
        });
    }
    let total: usize = config.counts.values().sum();
    if total == 0 {
        return Ok(());
    }
    if config.users == 0 {
        return Err(WorkloadError::NoUsers);
    }
    for (&name, &n) in &config.counts {
        if n > 0 && pool.variants(name).is_empty() {
            return Err(WorkloadError::NoVariant(name));
        }
    }
    if count(C::Login) == 0 {
        return Err(WorkloadError::Counts("commands need at least one LOGIN"));
    }
    if count(C::Logout) > count(C::Login) {
        return Err(WorkloadError::Counts("more LOGOUTs than LOGINs (sessions)"));
    }
    let visits = count(C::Select) + count(C::Examine);
    let selected_state = [
        C::Fetch,
        C::Search,
        C::Store,
        C::Move,
        C::Expunge,
        C::Check,
        C::Unselect,
        C::Close,
    ];
    if visits == 0 && selected_state.iter().any(|&n| count(n) > 0) {
        return Err(WorkloadError::Counts(
            "selected-state commands need a SELECT or EXAMINE",
        ));
    }
    if count(C::Select) == 0
        && [C::Store, C::Move, C::Expunge]
            .iter()
            .any(|&n| count(n) > 0)
    {
        return Err(WorkloadError::Counts(
            "STORE, MOVE and EXPUNGE need a SELECT",
        ));
    }
    if count(C::Unselect) + count(C::Close) > visits {
        return Err(WorkloadError::Counts(
            "more UNSELECT/CLOSE than SELECT/EXAMINE",
        ));
    }
    let names_messages = [C::Fetch, C::Search, C::Store, C::Move]
        .iter()
        .any(|&n| count(n) > 0);
    if names_messages && config.emails_per_mailbox.iter().all(|&n| n == 0) {
        return Err(WorkloadError::NoMessages);
    }
    let mailboxes: BTreeSet<String> = config
        .mailboxes
        .iter()
        .map(|m| canonical(m))
        .chain(["INBOX".to_owned()])
        .collect();
    if count(C::Move) > 0 && mailboxes.len() < 2 {
        return Err(WorkloadError::Counts("MOVE needs two mailboxes"));
    }
    Ok(())
}

/// The canonical form of a configured mailbox name.
pub(crate) fn canonical(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        name.to_owned()
    }
}

/// Flags a delivered email gets, by the kind of mailbox.
fn setup_flags(mailbox: &str, rng: &mut ChaCha8Rng) -> Vec<Flag<'static>> {
    let lower = mailbox.to_ascii_lowercase();
    if lower.contains("draft") {
        return vec![Flag::Seen, Flag::Draft];
    }
    if lower.contains("sent") {
        return vec![Flag::Seen];
    }
    let mut flags = Vec::new();
    let seen = if lower == "inbox" { 0.7 } else { 0.9 };
    if rng.gen_bool(seen) {
        flags.push(Flag::Seen);
    }
    if rng.gen_bool(0.1) {
        flags.push(Flag::Answered);
    }
    if rng.gen_bool(0.05) {
        flags.push(Flag::Flagged);
    }
    flags
}

/// The setup: per user, the configured mailboxes created, then filled with dataset emails
/// numbered from 0 across all users, sizes drawn from the configured ones.
pub(crate) fn setup(
    config: &WorkloadConfig,
    dataset_seed: u64,
    rng: &mut ChaCha8Rng,
) -> Vec<SetupStep> {
    let mut out = Vec::new();
    let mut index = 0;
    for user in 0..config.users {
        for m in &config.mailboxes {
            let m = canonical(m);
            if m != "INBOX" {
                out.push(SetupStep::Create { user, mailbox: m });
            }
        }
        for (m, &n) in config.mailboxes.iter().zip(&config.emails_per_mailbox) {
            let m = canonical(m);
            for _ in 0..n {
                let size = *config
                    .email_sizes
                    .choose(rng)
                    .expect("validated: sizes are given when emails are");
                out.push(SetupStep::Deliver {
                    user,
                    mailbox: m.clone(),
                    flags: setup_flags(&m, rng),
                    email: EmailRef {
                        seed: dataset_seed,
                        index,
                        size,
                    },
                });
                index += 1;
            }
        }
    }
    out
}

/// An index drawn by weight, `None` if every weight is 0.
pub(crate) fn weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.gen::<f64>() * total;
    let mut last = None;
    for (i, &w) in weights.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        last = Some(i);
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    last
}

/// `k` distinct indices drawn by weight without replacement (zero weights last, at random).
fn weighted_distinct(rng: &mut ChaCha8Rng, weights: &[f64], k: usize) -> Vec<usize> {
    let mut keys: Vec<(f64, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let u: f64 = rng.gen();
            (if w > 0.0 { u.powf(1.0 / w) } else { u - 1.0 }, i)
        })
        .collect();
    keys.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    keys.into_iter().take(k).map(|(_, i)| i).collect()
}

/// `count` variant indices of a name with `n` variants: each variant at least once when
/// `count >= n`, the rest weighted 1/rank over a seeded ranking; shuffled.
pub(crate) fn variant_draws(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let mut ranks: Vec<usize> = (0..n).collect();
    ranks.shuffle(rng);
    let mut out: Vec<usize>;
    if count < n {
        out = ranks[..count].to_vec();
    } else {
        let mut weights = vec![0.0; n];
        for (r, &v) in ranks.iter().enumerate() {
            weights[v] = 1.0 / (r + 1) as f64;
        }
        out = (0..n).collect();
        for _ in n..count {
            out.push(weighted(rng, &weights).expect("weights are positive"));
        }
    }
    out.shuffle(rng);
    out
}

/// The session plans of `config` (validated).
pub(crate) fn sessions(
    config: &WorkloadConfig,
    pool: &VariantPool,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<SessionPlan>, WorkloadError> {
    use CommandName as C;
    let count = |n: CommandName| config.counts.get(&n).copied().unwrap_or(0);
    let draws = |name: CommandName, rng: &mut ChaCha8Rng| -> Vec<Planned> {
        variant_draws(rng, pool.variants(name).len(), count(name))
            .into_iter()
            .map(|variant| Planned { name, variant })
            .collect()
    };
    let n = count(C::Login);
    let shares: Vec<f64> = Profile::ALL.iter().map(|p| p.share()).collect();
    let mut plans: Vec<SessionPlan> = draws(C::Login, rng)
        .into_iter()
        .map(|login| {
            let profile = Profile::ALL[weighted(rng, &shares).expect("shares are positive")];
            SessionPlan {
                user: rng.gen_range(0..config.users),
                profile,
                login,
                pre: Vec::new(),
                visits: Vec::new(),
                logout: None,
            }
        })
        .collect();

    // LOGOUT: which sessions end with one; the others just drop.
    let weights: Vec<f64> = plans.iter().map(|p| p.profile.logout_weight()).collect();
    let logouts = draws(C::Logout, rng);
    for (s, l) in weighted_distinct(rng, &weights, logouts.len())
        .into_iter()
        .zip(logouts)
    {
        plans[s].logout = Some(l);
    }

    // Visits: one per session while they last, the rest by profile.
    let mut openers = draws(C::Select, rng);
    let examines = draws(C::Examine, rng);
    let mut visits_of = vec![0usize; n];
    let total_visits = openers.len() + examines.len();
    let weights: Vec<f64> = plans
        .iter()
        .map(|p| p.profile.extra_visits_weight())
        .collect();
    let first: Vec<usize> = weighted_distinct(rng, &vec![1.0; n], total_visits.min(n));
    for &s in &first {
        visits_of[s] = 1;
    }
    for _ in first.len()..total_visits {
        let s = weighted(rng, &weights).unwrap_or_else(|| rng.gen_range(0..n));
        visits_of[s] += 1;
    }
    // Which visits are EXAMINE.
    let slots: Vec<(usize, usize)> = (0..n)
        .flat_map(|s| (0..visits_of[s]).map(move |v| (s, v)))
        .collect();
    let weights: Vec<f64> = slots
        .iter()
        .map(|&(s, _)| plans[s].profile.examine_weight())
        .collect();
    let examined: BTreeSet<usize> = weighted_distinct(rng, &weights, examines.len())
        .into_iter()
        .collect();
    let mut examines = examines.into_iter();
    for (i, &(s, _)) in slots.iter().enumerate() {
        let opener = if examined.contains(&i) {
            examines.next()
        } else {
            openers.pop()
        };
        let opener = opener.expect("as many openers as visit slots");
        plans[s].visits.push(VisitPlan {
            before: Vec::new(),
            opener,
            items: Vec::new(),
            closer: None,
        });
    }
    let slots: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(s, p)| (0..p.visits.len()).map(move |v| (s, v)))
        .collect();

    // Selected-state commands, to visits. A quick check's visit gets its NOOP first.
    let mut noops = draws(C::Noop, rng);
    for &(s, v) in &slots {
        if plans[s].profile == Profile::QuickCheck {
            if let Some(noop) = noops.pop() {
                plans[s].visits[v].items.push(noop);
            }
        }
    }
    for name in VISIT_LEVEL {
        let units = if name == C::Noop {
            std::mem::take(&mut noops)
        } else {
            draws(name, rng)
        };
        if slots.is_empty() {
            // NOOP and IDLE without any visit: authenticated state.
            for u in units {
                let s = rng.gen_range(0..n);
                plans[s].pre.push(u);
            }
            continue;
        }
        let eligible =
            |s: usize, v: usize| !modifies(name) || plans[s].visits[v].opener.name == C::Select;
        let mut weights: Vec<f64> = slots
            .iter()
            .map(|&(s, v)| {
                if eligible(s, v) {
                    plans[s].profile.visit_weight(name)
                } else {
                    0.0
                }
            })
            .collect();
        if weights.iter().all(|&w| w <= 0.0) {
            weights = slots
                .iter()
                .map(|&(s, v)| if eligible(s, v) { 1.0 } else { 0.0 })
                .collect();
        }
        for u in units {
            let i = weighted(rng, &weights).ok_or(WorkloadError::Counts(
                "no visit can hold a command that changes a mailbox",
            ))?;
            let (s, v) = slots[i];
            plans[s].visits[v].items.push(u);
        }
    }

    // UNSELECT / CLOSE: at most one per visit.
    let mut closers = draws(C::Unselect, rng);
    closers.extend(draws(C::Close, rng));
    closers.shuffle(rng);
    for c in closers {
        let weights: Vec<f64> = slots
            .iter()
            .map(|&(s, v)| {
                if plans[s].visits[v].closer.is_some() {
                    0.0
                } else {
                    plans[s].profile.visit_weight(c.name).max(0.01)
                }
            })
            .collect();
        let i = weighted(rng, &weights).ok_or(WorkloadError::Counts(
            "more UNSELECT/CLOSE than SELECT/EXAMINE",
        ))?;
        let (s, v) = slots[i];
        plans[s].visits[v].closer = Some(c);
    }

    // Authenticated-state commands, to sessions: after LOGIN, or STATUS/APPEND between visits.
    for name in SESSION_LEVEL {
        let units = draws(name, rng);
        let mut weights: Vec<f64> = plans
            .iter()
            .map(|p| p.profile.session_weight(name))
            .collect();
        if weights.iter().all(|&w| w <= 0.0) {
            weights = vec![1.0; n];
        }
        for u in units {
            let s = weighted(rng, &weights).expect("some session weighs");
            let between = match name {
                C::Status => 0.4,
                C::Append => 0.7,
                _ => 0.0,
            };
            let plan = &mut plans[s];
            if !plan.visits.is_empty() && rng.gen_bool(between) {
                let v = rng.gen_range(0..plan.visits.len());
                plan.visits[v].before.push(u);
            } else {
                plan.pre.push(u);
            }
        }
    }

    // Order: authenticated-state commands by phase; visit commands by phase (flags and
    // CHANGEDSINCE sync, SEARCH, headers, bodies, STORE, MOVE, EXPUNGE, then NOOP/CHECK/IDLE).
    for plan in &mut plans {
        plan.pre.shuffle(rng);
        plan.pre.sort_by_key(|p| session_phase(p.name));
        for visit in &mut plan.visits {
            visit.before.shuffle(rng);
            visit.before.sort_by_key(|p| session_phase(p.name));
            visit.items.shuffle(rng);
            visit
                .items
                .sort_by_key(|p| visit_phase(&pool.variants(p.name)[p.variant]));
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn variant_draws_use_every_variant_once_the_count_allows() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws = variant_draws(&mut rng, 128, 1_187);
        assert_eq!(draws.len(), 1_187);
        assert_eq!(draws.iter().collect::<BTreeSet<_>>().len(), 128);
        let few = variant_draws(&mut rng, 18, 5);
        assert_eq!(few.iter().collect::<BTreeSet<_>>().len(), 5, "distinct");
    }

    #[test]
    fn weighted_distinct_never_picks_a_zero_weight_before_a_positive_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..50 {
            let picked = weighted_distinct(&mut rng, &[0.0, 1.0, 0.0, 3.0], 2);
            assert_eq!(
                picked.iter().collect::<BTreeSet<_>>(),
                BTreeSet::from([&1, &3])
            );
        }
    }
}
