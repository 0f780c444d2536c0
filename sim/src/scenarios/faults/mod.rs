//! Fault scenarios (issue #6, simulation half): storage errors and delays under the trace
//! workload, lost responses, partitions between the server and the store, server crashes and
//! restarts, client disconnects, and two servers serving one user. Each is a plain function of a
//! seed; a driver client runs the steps, a [`Ledger`](workload::ledger::Ledger) records what the
//! clients were told, and a fresh session checks the invariants once the faults are off. A
//! violation counts in [`Report::violations`](crate::figures::Report::violations) and fails the
//! run.
//!
//! What the scenarios share sits in sibling modules they import: [`run`] (the context and the
//! report), [`connect`] (sessions on the simulated hosts), [`setup`] (provision, preload, warm,
//! final check), [`link`] (steps retried until acknowledged), [`heap`] (idle-heap measurement),
//! [`arm`] (host faults on a request count) and [`delivery`] (LMTP under faults).

pub mod arm;
pub mod connect;
pub mod crash;
pub mod delivery;
pub mod disconnect;
pub mod heap;
pub mod link;
pub mod lost_response;
pub mod partition;
pub mod run;
pub mod setup;
pub mod storage;
pub mod two_servers;
