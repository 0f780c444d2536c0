//! imapsim's deterministic simulation testbed: turmoil harness, counting allocator, scenarios,
//! budgets, the report and the `imapsim` CLI's building blocks.
//!
//! Binaries and test binaries that want allocation figures must declare the counting allocator:
//! `sim::counting_allocator!();` (a library cannot set its users' global allocator).

pub mod alloc;
pub mod attribution;
pub mod budget;
pub mod client;
pub mod compare;
pub mod dovecot;
pub mod harness;
pub mod invariants;
pub mod load;
pub mod plots;
pub mod regression;
pub mod report;
pub mod scenario;
pub mod scenarios;
pub mod serve;

#[cfg(test)]
counting_allocator!();
