//! The storage client: K2V rows and S3 blobs over HTTP/1.1, signed with SigV4, as Garage speaks them.
//! The same client talks to fakes3 (in the simulation and on loopback) and to a real Garage cluster.
//!
//! Rows mirror K2V (ReadItem, InsertItem, DeleteItem, PollItem, ReadBatch, InsertBatch, DeleteBatch,
//! ReadIndex) and blobs mirror S3 (PutObject, GetObject, HeadObject, DeleteObject, CopyObject,
//! ListObjectsV2); causality tokens are opaque. Memory is bounded: at most `max_in_flight` requests at
//! once, at most `max_idle_connections` idle connections kept per endpoint, response bodies capped at
//! [`MAX_RESPONSE_BYTES`], one request and one response buffered per call. The client does not retry,
//! except once, on a fresh connection, a request that a reused connection failed to carry when it was
//! never sent or is a GET/HEAD.

mod config;
mod error;
mod k2v;
mod model;
mod s3;
mod sign;
#[cfg(feature = "storage-suite")]
pub mod suite;
mod transport;
mod wire_error;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::env::Env;
use transport::{Api, Endpoint, Pooling};
use wire_error::expect_success;

pub use config::{
    StorageConfig, MAX_RESPONSE_BYTES, POLL_GRACE, POLL_TIMEOUT_S_MAX, REQUEST_TIMEOUT,
};
pub use error::StorageError;
pub use model::{
    BlobPage, CausalityToken, PartitionPage, RangeChanges, RangePoll, Row, RowInsert, RowItem,
    RowPage, RowQuery,
};

/// The storage client. Cheap to clone: clones share connections and the in-flight bound.
#[derive(Clone)]
pub struct Store(Arc<Inner>);

struct Inner {
    env: Env,
    bucket: String,
    signer: sign::Signer,
    in_flight: Semaphore,
    s3: Endpoint,
    k2v: Endpoint,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("bucket", &self.0.bucket)
            .field("s3", &self.0.s3.authority())
            .field("k2v", &self.0.k2v.authority())
            .finish()
    }
}

impl Store {
    /// A client for `config`'s store, connecting through `env`. Connects lazily.
    pub fn new(config: StorageConfig, env: Env) -> Store {
        let signer = sign::Signer::new(&config.key_id, &config.secret, &config.region);
        let idle = config.max_idle_connections;
        Store(Arc::new(Inner {
            env,
            bucket: config.bucket,
            signer,
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            s3: Endpoint::new(Api::S3, &config.s3_endpoint, idle),
            k2v: Endpoint::new(Api::K2v, &config.k2v_endpoint, idle),
        }))
    }

    /// The environment the store connects through (its entropy names the shared suite's runs).
    pub fn env(&self) -> &Env {
        &self.0.env
    }

    /// Idle pooled connections per endpoint, `(s3, k2v)`: for tests and metrics.
    pub fn idle_connections(&self) -> (usize, usize) {
        (self.0.s3.idle_count(), self.0.k2v.idle_count())
    }

    // ---- K2V ----

    /// ReadItem: the item's values and token, `None` if it does not exist.
    pub async fn row_read(&self, pk: &str, sk: &str) -> Result<Option<Row>, StorageError> {
        let req = k2v::read_item(&self.0.bucket, pk, sk);
        let resp = self.send(Api::K2v, req).await?;
        k2v::parse_read_item(resp)
    }

    /// InsertItem: writes `value`, superseding the values `ct` was read with (none: a concurrent value).
    pub async fn row_insert(
        &self,
        pk: &str,
        sk: &str,
        ct: Option<&CausalityToken>,
        value: Bytes,
    ) -> Result<(), StorageError> {
        let req = k2v::insert_item(&self.0.bucket, pk, sk, ct, value)?;
        let resp = self.send(Api::K2v, req).await?;
        expect_success(Api::K2v, resp).map(drop)
    }

    /// DeleteItem: deletes the values `ct` was read with.
    pub async fn row_delete(
        &self,
        pk: &str,
        sk: &str,
        ct: &CausalityToken,
    ) -> Result<(), StorageError> {
        let req = k2v::delete_item(&self.0.bucket, pk, sk, ct)?;
        let resp = self.send(Api::K2v, req).await?;
        expect_success(Api::K2v, resp).map(drop)
    }

    /// PollItem: waits up to `timeout_s` seconds (at most 600) for a value newer than `ct`; `None` if
    /// none came (304). Uses its own connection and takes neither a pool slot nor an in-flight slot.
    pub async fn row_poll(
        &self,
        pk: &str,
        sk: &str,
        ct: &CausalityToken,
        timeout_s: u32,
    ) -> Result<Option<Row>, StorageError> {
        let timeout_s = timeout_s.min(POLL_TIMEOUT_S_MAX);
        let req = k2v::poll_item(&self.0.bucket, pk, sk, ct, timeout_s);
        let deadline = Duration::from_secs(u64::from(timeout_s)) + POLL_GRACE;
        let resp = self
            .exchange(Api::K2v, req, Pooling::Dedicated, deadline)
            .await?;
        k2v::parse_poll_item(resp)
    }

    /// PollRange: without `seen`, every item of the range at once; with it, waits up to `timeout_s`
    /// seconds (at most 600) for items written after it; `None` if none came (304). Like PollItem it uses
    /// its own connection and takes neither a pool slot nor an in-flight slot.
    pub async fn range_poll(
        &self,
        range: &RangePoll,
        seen: Option<&str>,
        timeout_s: u32,
    ) -> Result<Option<RangeChanges>, StorageError> {
        let timeout_s = timeout_s.min(POLL_TIMEOUT_S_MAX);
        let req = k2v::poll_range(&self.0.bucket, range, seen, timeout_s)?;
        let deadline = Duration::from_secs(u64::from(timeout_s)) + POLL_GRACE;
        let resp = self
            .exchange(Api::K2v, req, Pooling::Dedicated, deadline)
            .await?;
        k2v::parse_poll_range(resp)
    }

    /// ReadBatch with a single search.
    pub async fn rows_read(&self, query: &RowQuery) -> Result<RowPage, StorageError> {
        let mut pages = self.rows_read_batch(std::slice::from_ref(query)).await?;
        match pages.pop() {
            Some(page) if pages.is_empty() => Ok(page),
            _ => Err(StorageError::Protocol(
                "ReadBatch answered a number of searches other than 1".into(),
            )),
        }
    }

    /// ReadBatch: one page per query, in order.
    pub async fn rows_read_batch(
        &self,
        queries: &[RowQuery],
    ) -> Result<Vec<RowPage>, StorageError> {
        let req = k2v::read_batch(&self.0.bucket, queries)?;
        let resp = self.send(Api::K2v, req).await?;
        k2v::parse_read_batch(resp, queries.len())
    }

    /// InsertBatch: every write, in one request (not a transaction).
    pub async fn rows_insert_batch(&self, items: &[RowInsert]) -> Result<(), StorageError> {
        let req = k2v::insert_batch(&self.0.bucket, items)?;
        let resp = self.send(Api::K2v, req).await?;
        expect_success(Api::K2v, resp).map(drop)
    }

    /// DeleteBatch: deletes every item each query matches; returns how many per query.
    pub async fn rows_delete_batch(&self, queries: &[RowQuery]) -> Result<Vec<u64>, StorageError> {
        let req = k2v::delete_batch(&self.0.bucket, queries)?;
        let resp = self.send(Api::K2v, req).await?;
        k2v::parse_delete_batch(resp, queries.len())
    }

    /// ReadIndex: partition keys starting with `prefix`, from `start`, at most `limit` of them.
    pub async fn partitions(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: Option<u32>,
    ) -> Result<PartitionPage, StorageError> {
        let req = k2v::read_index(&self.0.bucket, prefix, start, limit);
        let resp = self.send(Api::K2v, req).await?;
        k2v::parse_read_index(resp)
    }

    // ---- S3 ----

    /// PutObject.
    pub async fn blob_put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        let req = s3::put_object(&self.0.bucket, key, body);
        let resp = self.send(Api::S3, req).await?;
        expect_success(Api::S3, resp).map(drop)
    }

    /// GetObject, whole or the byte `range` (end excluded; an empty range reads nothing and sends
    /// nothing). A missing object is [`StorageError::NoSuchKey`].
    pub async fn blob_get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, StorageError> {
        if let Some(r) = &range {
            if r.start > r.end {
                return Err(StorageError::Protocol(format!(
                    "inverted byte range {}..{}",
                    r.start, r.end
                )));
            }
            if r.start == r.end {
                return Ok(Bytes::new());
            }
        }
        let req = s3::get_object(&self.0.bucket, key, range.clone());
        let resp = self.send(Api::S3, req).await?;
        s3::parse_get_object(resp, range)
    }

    /// HeadObject: the object's size, `None` if it does not exist.
    pub async fn blob_head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let req = s3::head_object(&self.0.bucket, key);
        let resp = self.send(Api::S3, req).await?;
        s3::parse_head_object(resp)
    }

    /// DeleteObject (deleting a missing object succeeds, as in S3).
    pub async fn blob_delete(&self, key: &str) -> Result<(), StorageError> {
        let req = s3::delete_object(&self.0.bucket, key);
        let resp = self.send(Api::S3, req).await?;
        expect_success(Api::S3, resp).map(drop)
    }

    /// CopyObject within the bucket.
    pub async fn blob_copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let req = s3::copy_object(&self.0.bucket, from, to)?;
        let resp = self.send(Api::S3, req).await?;
        s3::parse_copy_object(resp)
    }

    /// ListObjectsV2: keys starting with `prefix`, at most `max_keys`, after `continuation`.
    pub async fn blob_list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<BlobPage, StorageError> {
        let req = s3::list_objects(&self.0.bucket, prefix, continuation, max_keys);
        let resp = self.send(Api::S3, req).await?;
        s3::parse_list_objects(resp)
    }

    // ---- transport ----

    /// One ordinary request: takes an in-flight slot, uses a pooled connection, has [`REQUEST_TIMEOUT`].
    async fn send(&self, api: Api, req: transport::Req) -> Result<transport::Resp, StorageError> {
        let _permit = self
            .0
            .in_flight
            .acquire()
            .await
            .expect("the in-flight semaphore is never closed");
        self.exchange(api, req, Pooling::Pooled, REQUEST_TIMEOUT)
            .await
    }

    async fn exchange(
        &self,
        api: Api,
        req: transport::Req,
        pooling: Pooling,
        deadline: Duration,
    ) -> Result<transport::Resp, StorageError> {
        let endpoint = match api {
            Api::S3 => &self.0.s3,
            Api::K2v => &self.0.k2v,
        };
        let sign = |r: &transport::Req| self.0.signer.sign(r, endpoint, self.0.env.clock.now());
        match tokio::time::timeout(
            deadline,
            endpoint.exchange(&self.0.env, req, pooling, &sign),
        )
        .await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(StorageError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests;
