//! Tests of the simulation harness.

use super::*;

#[test]
fn seeds_are_a_function_of_the_root_seed() {
    assert_eq!(Seeds::derive(1), Seeds::derive(1));
    assert_ne!(Seeds::derive(1), Seeds::derive(2));
    let seeds = Seeds::derive(1);
    assert_ne!(seeds.turmoil, seeds.server_entropy);
}

#[test]
fn only_the_first_boot_of_the_first_server_uses_the_derived_seed() {
    let base = Seeds::derive(1).server_entropy;
    assert_eq!(server_entropy_seed(base, 0, 0), base);
    let others = [
        server_entropy_seed(base, 0, 1),
        server_entropy_seed(base, 1, 0),
        server_entropy_seed(base, 1, 1),
    ];
    let distinct: std::collections::BTreeSet<u64> = others.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each boot of each host draws its own seed"
    );
    assert!(!distinct.contains(&base));
    assert_eq!(
        server_entropy_seed(base, 1, 1),
        others[2],
        "a function of its inputs"
    );
}

#[test]
fn latency_bounds_are_checked() {
    let config = SimConfig {
        latency_ms_min: 10,
        latency_ms_max: 5,
        ..SimConfig::default()
    };
    assert!(matches!(
        config.validate(),
        Err(HarnessError::InvalidConfig(_))
    ));
    assert!(SimConfig::default().validate().is_ok());
}
