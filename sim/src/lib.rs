//! imapsim's deterministic simulation testbed: the turmoil harness, the counting allocator, the
//! scenarios (the `workload` crate's workloads on a simulated network, and the fault
//! scenarios), budgets, the report and the `imapsim` CLI's building blocks.
//!
//! Binaries and test binaries that run simulations must say so once:
//! `sim::simulation_binary!();` (the counting allocator and the entropy shims of [`entropy`]: a
//! library cannot set its users' global allocator or define their libc symbols).

pub mod alloc;
pub mod alloc_log;
pub mod attribution;
pub mod budget;
pub mod check;
pub mod driver;
pub mod entropy;
pub mod figures;
pub mod harness;
pub mod plots;
pub mod regression;
pub mod report;
pub mod scenarios;
pub mod serve;
pub mod verdict;

#[cfg(test)]
simulation_binary!();
