//! The K2V API as Garage specifies it (`doc/drafts/k2v-spec.md`): ReadItem, PollItem, InsertItem, DeleteItem,
//! ReadIndex, InsertBatch, ReadBatch and DeleteBatch, with JSON bodies and causality tokens.

mod batch;
mod codec;
mod poll;
mod range;
mod request;

pub use codec::{Format, CAUSALITY_TOKEN_HEADER};
pub use poll::{poll_item, poll_range, POLL_TIMEOUT_DEFAULT_S, POLL_TIMEOUT_MAX_S};
pub use range::RangeParams;
pub use request::{handle, route, K2vRequest};
