//! Fault decisions: what happens to one request, drawn from the store's seeded RNG.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Faults, Op};

/// What to do with one request besides answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Latency to add before handling, in milliseconds.
    pub latency_ms: u64,
    /// The fault to inject, if any.
    pub fault: Option<Fault>,
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Answer 500 InternalError without applying the request.
    Error500,
    /// Answer 503 ServiceUnavailable without applying the request.
    Error503,
    /// Apply the request, then answer 500 InternalError.
    LostResponse,
}

/// Draws the decision for one request of kind `op`. Draws nothing for operations the faults do not cover
/// and for faults that are off, so a run's sequence depends only on the seed and the requests.
pub fn decide(faults: &Faults, rng: &mut ChaCha8Rng, op: Op) -> Decision {
    let mut decision = Decision::default();
    if !faults.is_active() || !faults.covers(op) {
        return decision;
    }
    if faults.latency_ms_max > 0 {
        decision.latency_ms = rng.gen_range(faults.latency_ms_min..=faults.latency_ms_max);
    }
    if faults.error_probability > 0.0 && rng.gen_bool(faults.error_probability) {
        decision.fault = Some(if rng.gen_bool(0.5) {
            Fault::Error500
        } else {
            Fault::Error503
        });
    } else if faults.lost_response_probability > 0.0
        && rng.gen_bool(faults.lost_response_probability)
    {
        decision.fault = Some(Fault::LostResponse);
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sequence(seed: u64, faults: &Faults, n: usize) -> Vec<Decision> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| decide(faults, &mut rng, Op::PutObject))
            .collect()
    }

    #[test]
    fn same_seed_gives_same_fault_sequence() {
        let faults = Faults {
            error_probability: 0.3,
            lost_response_probability: 0.3,
            latency_ms_min: 1,
            latency_ms_max: 50,
            ops: None,
        };
        let a = sequence(7, &faults, 200);
        assert_eq!(a, sequence(7, &faults, 200));
        assert_ne!(a, sequence(8, &faults, 200));
        assert!(a.iter().any(|d| d.fault == Some(Fault::LostResponse)));
        assert!(a.iter().any(|d| d.fault == Some(Fault::Error500)));
        assert!(a.iter().any(|d| d.fault == Some(Fault::Error503)));
        assert!(a.iter().all(|d| (1..=50).contains(&d.latency_ms)));
    }

    #[test]
    fn no_faults_draw_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let before = rng.clone();
        assert_eq!(
            decide(&Faults::default(), &mut rng, Op::GetObject),
            Decision::default()
        );
        assert_eq!(rng, before);
    }

    #[test]
    fn uncovered_ops_get_no_fault() {
        let faults = Faults {
            error_probability: 1.0,
            ops: Some(vec![Op::InsertItem]),
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(decide(&faults, &mut rng, Op::ReadItem).fault, None);
        assert!(decide(&faults, &mut rng, Op::InsertItem).fault.is_some());
    }
}
