//! What the storage operations take and return: K2V rows, queries and pages (causality tokens
//! opaque), and S3 listing pages.

use bytes::Bytes;

/// A K2V causality token, passed back as received: the client never looks inside.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CausalityToken(pub String);

/// One K2V item: its causality token and its concurrent values (`None` is a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Token to pass to the next write that supersedes these values.
    pub ct: CausalityToken,
    /// Concurrent values; `None` is a deletion.
    pub values: Vec<Option<Bytes>>,
}

/// One search of a ReadBatch or DeleteBatch, within one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowQuery {
    /// Partition key.
    pub pk: String,
    /// Only sort keys starting with this.
    pub prefix: Option<String>,
    /// First sort key (included); with `single_item`, the only one.
    pub start: Option<String>,
    /// Last sort key (excluded).
    pub end: Option<String>,
    /// Most items to return (ignored by DeleteBatch).
    pub limit: Option<u32>,
    /// Descending sort-key order (ignored by DeleteBatch).
    pub reverse: bool,
    /// Only the item whose sort key is `start`.
    pub single_item: bool,
    /// Also return items whose values are all tombstones (ignored by DeleteBatch).
    pub tombstones: bool,
}

/// One item of a [`RowPage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowItem {
    /// Sort key.
    pub sk: String,
    /// Causality token.
    pub ct: CausalityToken,
    /// Concurrent values; `None` is a deletion.
    pub values: Vec<Option<Bytes>>,
}

/// The answer to one [`RowQuery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowPage {
    /// Items in the requested order.
    pub items: Vec<RowItem>,
    /// Where the next page starts, when `limit` cut this one short.
    pub next_start: Option<String>,
}

/// The range a PollRange watches, within one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangePoll {
    /// Partition key.
    pub pk: String,
    /// Only sort keys starting with this.
    pub prefix: Option<String>,
    /// First sort key (included).
    pub start: Option<String>,
    /// Last sort key (excluded).
    pub end: Option<String>,
}

/// A PollRange answer: the items written since the seen marker, and the marker to poll with next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeChanges {
    /// Items changed since the marker (every item of the range when polled without one).
    pub items: Vec<RowItem>,
    /// Opaque marker covering these changes.
    pub seen_marker: String,
}

/// One write of an InsertBatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowInsert {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Token of the values this write supersedes (`None` for a first write).
    pub ct: Option<CausalityToken>,
    /// The value, or `None` to delete.
    pub value: Option<Bytes>,
}

/// A page of ReadIndex: partition keys with their item counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionPage {
    /// `(partition key, number of items)`, in key order.
    pub partitions: Vec<(String, u64)>,
    /// Where the next page starts, when `limit` cut this one short.
    pub next_start: Option<String>,
}

/// A page of ListObjectsV2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobPage {
    /// `(key, size in bytes)`, in key order.
    pub keys: Vec<(String, u64)>,
    /// Continuation token of the next page, when there is one.
    pub next_continuation: Option<String>,
}
