//! The shared storage test suite: every [`Store`] operation and its edge cases, run unchanged against
//! fakes3 (loopback or simulated) and a real Garage. Each case panics on the first broken expectation
//! and works under its own fresh key prefix, so cases do not interfere with each other or with
//! earlier runs on a persistent store.
//!
//! Built only with the `storage-suite` feature: the test crates that run it enable it.

mod batches;
mod blobs;
mod fixtures;
mod polls;
mod rows;

pub use batches::{
    batch_insert_read_delete, partitions_are_listed_with_counts, range_queries_and_paging,
};
pub use blobs::{
    blob_list_pages_with_continuation, blob_round_trip, missing_keys_are_none_or_no_such_key,
};
pub use polls::{poll_sees_a_new_value_then_times_out, range_poll_sees_writes_in_its_range};
pub use rows::{
    concurrent_values_resolve_with_token, delete_with_token_leaves_a_tombstone, row_round_trip,
    tombstones_show_only_when_asked,
};

use super::Store;

/// Runs every case, one after the other.
pub async fn run_all(store: &Store) {
    row_round_trip(store).await;
    concurrent_values_resolve_with_token(store).await;
    delete_with_token_leaves_a_tombstone(store).await;
    tombstones_show_only_when_asked(store).await;
    range_queries_and_paging(store).await;
    batch_insert_read_delete(store).await;
    partitions_are_listed_with_counts(store).await;
    poll_sees_a_new_value_then_times_out(store).await;
    range_poll_sees_writes_in_its_range(store).await;
    blob_round_trip(store).await;
    blob_list_pages_with_continuation(store).await;
    missing_keys_are_none_or_no_such_key(store).await;
}
