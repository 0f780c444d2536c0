//! The K2V API as Garage specifies it (`doc/drafts/k2v-spec.md`): ReadItem, PollItem, InsertItem, DeleteItem,
//! ReadIndex, InsertBatch, ReadBatch and DeleteBatch, with JSON bodies and causality tokens.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::causality::{CausalContext, Item};
use crate::config::Op;
use crate::http::{decode_path, empty, set_header, with_body, ApiError, Query, Resp};
use crate::store::{Shared, State};

/// The header carrying causality tokens.
pub const CAUSALITY_TOKEN_HEADER: &str = "x-garage-causality-token";
/// PollItem timeout when none is given, in seconds.
pub const POLL_TIMEOUT_DEFAULT_S: u64 = 300;
/// Largest PollItem timeout, in seconds.
pub const POLL_TIMEOUT_MAX_S: u64 = 600;

/// How ReadItem returns values, from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of base64 values (no `Accept`, or JSON only).
    Json,
    /// The single value as the body; 409 if there are concurrent values.
    Binary,
    /// The single value as the body, JSON when there are concurrent values.
    Either,
}

impl Format {
    fn from_headers(headers: &HeaderMap) -> Result<Format, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Ok(Format::Json);
        };
        let accept = accept
            .to_str()
            .map_err(|_| ApiError::InvalidRequest("Accept is not ASCII".to_string()))?;
        let types: Vec<&str> = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .collect();
        let json = types
            .iter()
            .any(|t| *t == "application/json" || *t == "*/*");
        let binary = types
            .iter()
            .any(|t| *t == "application/octet-stream" || *t == "*/*");
        match (json, binary) {
            (true, true) => Ok(Format::Either),
            (true, false) => Ok(Format::Json),
            (false, true) => Ok(Format::Binary),
            (false, false) => Err(ApiError::NotAcceptable(
                "Accept must contain application/json or application/octet-stream (or both)"
                    .to_string(),
            )),
        }
    }
}

/// One routed K2V request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum K2vRequest {
    /// ReadItem.
    ReadItem {
        pk: String,
        sk: String,
        format: Format,
    },
    /// PollItem: wait until the item is newer than `context`.
    PollItem {
        pk: String,
        sk: String,
        format: Format,
        context: CausalContext,
        timeout_s: u64,
    },
    /// PollRange: wait until an item of the range was written after the seen marker (JSON body).
    PollRange { pk: String },
    /// InsertItem.
    InsertItem {
        pk: String,
        sk: String,
        context: Option<CausalContext>,
    },
    /// DeleteItem.
    DeleteItem {
        pk: String,
        sk: String,
        context: CausalContext,
    },
    /// ReadIndex.
    ReadIndex(RangeParams),
    /// InsertBatch.
    InsertBatch,
    /// ReadBatch.
    ReadBatch,
    /// DeleteBatch.
    DeleteBatch,
}

impl K2vRequest {
    /// The operation, for counters and faults.
    pub fn op(&self) -> Op {
        match self {
            K2vRequest::ReadItem { .. } => Op::ReadItem,
            K2vRequest::PollItem { .. } => Op::PollItem,
            K2vRequest::PollRange { .. } => Op::PollRange,
            K2vRequest::InsertItem { .. } => Op::InsertItem,
            K2vRequest::DeleteItem { .. } => Op::DeleteItem,
            K2vRequest::ReadIndex(_) => Op::ReadIndex,
            K2vRequest::InsertBatch => Op::InsertBatch,
            K2vRequest::ReadBatch => Op::ReadBatch,
            K2vRequest::DeleteBatch => Op::DeleteBatch,
        }
    }
}

/// Parameters of a listing: ReadIndex over partition keys, ReadBatch/DeleteBatch over sort keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeParams {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// First key (highest when reverse).
    pub start: Option<String>,
    /// Key where the listing stops, excluded.
    pub end: Option<String>,
    /// Most keys returned.
    pub limit: Option<u64>,
    /// Decreasing order.
    pub reverse: bool,
}

fn parse_token(value: &str) -> Result<CausalContext, ApiError> {
    CausalContext::decode(value).ok_or(ApiError::InvalidCausalityToken)
}

fn header_token(headers: &HeaderMap) -> Result<Option<CausalContext>, ApiError> {
    headers
        .get(CAUSALITY_TOKEN_HEADER)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidCausalityToken)
                .and_then(parse_token)
        })
        .transpose()
}

/// Finds the operation of a request on `/{bucket}` or `/{bucket}/{partition key}`.
pub fn route(
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    bucket: &str,
) -> Result<K2vRequest, ApiError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (raw_bucket, raw_pk) = path
        .split_once('/')
        .map(|(b, p)| (b, p.trim_start_matches('/')))
        .unwrap_or((path, ""));
    let request_bucket = decode_path(raw_bucket)?;
    if request_bucket.is_empty() {
        return Err(ApiError::InvalidRequest("Missing bucket name".to_string()));
    }
    if request_bucket != bucket {
        return Err(ApiError::NoSuchBucket(request_bucket));
    }
    if *method == Method::OPTIONS {
        return Err(ApiError::NotImplemented("OPTIONS (CORS)".to_string()));
    }
    let pk = decode_path(raw_pk)?;
    let sort_key = || {
        query
            .get("sort_key")
            .map(str::to_string)
            .ok_or_else(|| ApiError::InvalidRequest("Missing sort_key".to_string()))
    };
    let is_search = method.as_str() == "SEARCH";
    if query.has("poll_range") && (is_search || *method == Method::POST) {
        if pk.is_empty() {
            return Err(ApiError::InvalidRequest(
                "PollRange needs a partition key".to_string(),
            ));
        }
        return Ok(K2vRequest::PollRange { pk });
    }
    match (method, pk.is_empty()) {
        (&Method::GET, false) => {
            let format = Format::from_headers(headers)?;
            match query.get("causality_token") {
                Some(token) => Ok(K2vRequest::PollItem {
                    sk: sort_key()?,
                    pk,
                    format,
                    context: parse_token(token)?,
                    timeout_s: query
                        .get_u64("timeout")?
                        .unwrap_or(POLL_TIMEOUT_DEFAULT_S)
                        .clamp(1, POLL_TIMEOUT_MAX_S),
                }),
                None => Ok(K2vRequest::ReadItem {
                    sk: sort_key()?,
                    pk,
                    format,
                }),
            }
        }
        (&Method::GET, true) => Ok(K2vRequest::ReadIndex(RangeParams {
            prefix: query.get("prefix").map(str::to_string),
            start: query.get("start").map(str::to_string),
            end: query.get("end").map(str::to_string),
            limit: query.get_u64("limit")?,
            reverse: query.get_bool("reverse")?.unwrap_or(false),
        })),
        (&Method::PUT, false) => Ok(K2vRequest::InsertItem {
            sk: sort_key()?,
            pk,
            context: header_token(headers)?,
        }),
        (&Method::DELETE, false) => Ok(K2vRequest::DeleteItem {
            sk: sort_key()?,
            pk,
            context: header_token(headers)?.ok_or_else(|| {
                ApiError::InvalidRequest(
                    "DeleteItem requires the X-Garage-Causality-Token header".to_string(),
                )
            })?,
        }),
        (&Method::POST, true) if query.has("delete") => Ok(K2vRequest::DeleteBatch),
        (&Method::POST, true) if query.has("search") => Ok(K2vRequest::ReadBatch),
        (&Method::POST, true) => Ok(K2vRequest::InsertBatch),
        (_, true) if is_search => Ok(K2vRequest::ReadBatch),
        _ => Err(ApiError::MethodNotAllowed(method.clone())),
    }
}

/// Applies a routed request other than PollItem (see [`poll_item`]) to the state.
pub fn handle(state: &mut State, request: K2vRequest, body: Bytes) -> Result<Resp, ApiError> {
    match request {
        K2vRequest::ReadItem { pk, sk, format } => {
            let item = state.item(&pk, &sk).ok_or(ApiError::NoSuchKey)?;
            item_response(item, format)
        }
        K2vRequest::PollItem { .. } | K2vRequest::PollRange { .. } => Err(ApiError::InternalError(
            "PollItem and PollRange are handled asynchronously".to_string(),
        )),
        K2vRequest::InsertItem { pk, sk, context } => {
            state.k2v_write(&pk, &sk, context.as_ref(), Some(body));
            Ok(empty(StatusCode::NO_CONTENT))
        }
        K2vRequest::DeleteItem { pk, sk, context } => {
            state.k2v_write(&pk, &sk, Some(&context), None);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        K2vRequest::ReadIndex(params) => read_index(state, params),
        K2vRequest::InsertBatch => insert_batch(state, &body),
        K2vRequest::ReadBatch => read_batch(state, &body),
        K2vRequest::DeleteBatch => delete_batch(state, &body),
    }
}

/// The ReadItem answer for `item` in `format`, with its causality token.
fn item_response(item: &Item, format: Format) -> Result<Resp, ApiError> {
    let values = item.values();
    let token = item.context().encode();
    let mut resp = match (format, values.as_slice()) {
        (Format::Binary, [_, _, ..]) => empty(StatusCode::CONFLICT),
        (Format::Binary | Format::Either, [single]) => match single {
            Some(v) => with_body("application/octet-stream", v.clone()),
            None => {
                let mut resp = with_body("application/octet-stream", Bytes::new());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
        },
        (_, []) => return Err(ApiError::NoSuchKey),
        _ => {
            let json: Vec<Option<String>> = values
                .iter()
                .map(|v| v.as_ref().map(|b| STANDARD.encode(b)))
                .collect();
            with_body("application/json", to_json(&json)?)
        }
    };
    set_header(&mut resp, CAUSALITY_TOKEN_HEADER, &token);
    Ok(resp)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::InternalError(format!("JSON encoding: {e}")))
}

fn from_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest(format!("Invalid JSON: {e}")))
}

/// The smallest string above every string starting with `prefix`, if there is one.
fn key_after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            char::MAX => continue,
            '\u{D7FF}' => '\u{E000}',
            c => char::from_u32(c as u32 + 1).unwrap_or(char::MAX),
        };
        chars.push(next);
        return Some(chars.into_iter().collect());
    }
    None
}

/// Entries of a listing, and the first key not returned when the limit cut it short.
type Listing<'m, V> = (Vec<(&'m String, &'m V)>, Option<String>);

/// Lists `map` as ReadIndex/ReadBatch do: entries passing `keep`, from `start` (or the prefix), stopping
/// at `end` or at keys leaving the prefix. Returns the entries and, when `limit` cut the listing short,
/// the first key not returned (`nextStart`).
fn read_range<'m, V>(
    map: &'m BTreeMap<String, V>,
    params: &RangeParams,
    mut keep: impl FnMut(&V) -> bool,
) -> Result<Listing<'m, V>, ApiError> {
    let prefix = params.prefix.as_deref();
    let start = params.start.as_deref();
    if let (Some(p), Some(s)) = (prefix, start) {
        if !s.starts_with(p) {
            return Err(ApiError::InvalidRequest(format!(
                "Start key '{s}' does not start with prefix '{p}'"
            )));
        }
    }
    let after_prefix = match (params.reverse, start, prefix) {
        (true, None, Some(p)) => key_after_prefix(p),
        _ => None,
    };
    let iter: Box<dyn Iterator<Item = (&'m String, &'m V)> + '_> = if params.reverse {
        let upper = match (start, after_prefix.as_deref()) {
            (Some(s), _) => Bound::Included(s),
            (None, Some(a)) => Bound::Excluded(a),
            (None, None) => Bound::Unbounded,
        };
        Box::new(map.range::<str, _>((Bound::Unbounded, upper)).rev())
    } else {
        let lower = start.or(prefix).map_or(Bound::Unbounded, Bound::Included);
        Box::new(map.range::<str, _>((lower, Bound::Unbounded)))
    };
    let mut entries = Vec::new();
    for (key, value) in iter {
        if !keep(value) {
            continue;
        }
        if prefix.is_some_and(|p| !key.starts_with(p)) {
            break;
        }
        if let Some(end) = params.end.as_deref() {
            let finished = if params.reverse {
                key.as_str() <= end
            } else {
                key.as_str() >= end
            };
            if finished {
                break;
            }
        }
        if params.limit.is_some_and(|l| entries.len() as u64 >= l) {
            return Ok((entries, Some(key.clone())));
        }
        entries.push((key, value));
    }
    Ok((entries, None))
}

#[derive(Serialize)]
struct ReadIndexResponse<'a> {
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<u64>,
    reverse: bool,
    #[serde(rename = "partitionKeys")]
    partition_keys: Vec<ReadIndexEntry<'a>>,
    more: bool,
    #[serde(rename = "nextStart")]
    next_start: Option<String>,
}

#[derive(Serialize)]
struct ReadIndexEntry<'a> {
    pk: &'a str,
    entries: u64,
    conflicts: u64,
    values: u64,
    bytes: u64,
}

fn read_index(state: &State, params: RangeParams) -> Result<Resp, ApiError> {
    let (partitions, next_start) = read_range(&state.partitions, &params, |p| !p.counts.is_zero())?;
    let resp = ReadIndexResponse {
        partition_keys: partitions
            .into_iter()
            .map(|(pk, p)| ReadIndexEntry {
                pk,
                entries: p.counts.entries,
                conflicts: p.counts.conflicts,
                values: p.counts.values,
                bytes: p.counts.bytes,
            })
            .collect(),
        more: next_start.is_some(),
        next_start,
        prefix: params.prefix,
        start: params.start,
        end: params.end,
        limit: params.limit,
        reverse: params.reverse,
    };
    Ok(with_body("application/json", to_json(&resp)?))
}

#[derive(Deserialize)]
struct InsertBatchItem {
    pk: String,
    sk: String,
    #[serde(default)]
    ct: Option<String>,
    #[serde(default)]
    v: Option<String>,
}

fn insert_batch(state: &mut State, body: &[u8]) -> Result<Resp, ApiError> {
    let items: Vec<InsertBatchItem> = from_json(body)?;
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let context = item.ct.as_deref().map(parse_token).transpose()?;
        let value = item
            .v
            .map(|v| {
                STANDARD
                    .decode(v)
                    .map(|raw| Bytes::from(raw.into_boxed_slice()))
                    .map_err(|_| ApiError::InvalidRequest("Invalid base64 value".to_string()))
            })
            .transpose()?;
        parsed.push((item.pk, item.sk, context, value));
    }
    for (pk, sk, context, value) in parsed {
        state.k2v_write(&pk, &sk, context.as_ref(), value);
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct ReadBatchQuery {
    #[serde(rename = "partitionKey")]
    partition_key: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    reverse: bool,
    #[serde(default, rename = "singleItem")]
    single_item: bool,
    #[serde(default, rename = "conflictsOnly")]
    conflicts_only: bool,
    #[serde(default)]
    tombstones: bool,
}

#[derive(Serialize)]
struct ReadBatchResponse {
    #[serde(rename = "partitionKey")]
    partition_key: String,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<u64>,
    reverse: bool,
    #[serde(rename = "singleItem")]
    single_item: bool,
    #[serde(rename = "conflictsOnly")]
    conflicts_only: bool,
    tombstones: bool,
    items: Vec<ReadBatchItem>,
    more: bool,
    #[serde(rename = "nextStart")]
    next_start: Option<String>,
}

#[derive(Serialize)]
struct ReadBatchItem {
    sk: String,
    ct: String,
    v: Vec<Option<String>>,
}

impl ReadBatchItem {
    fn new(sk: &str, item: &Item) -> ReadBatchItem {
        ReadBatchItem {
            sk: sk.to_string(),
            ct: item.context().encode(),
            v: item
                .values()
                .iter()
                .map(|v| v.as_ref().map(|b| STANDARD.encode(b)))
                .collect(),
        }
    }
}

fn read_batch(state: &State, body: &[u8]) -> Result<Resp, ApiError> {
    let queries: Vec<ReadBatchQuery> = from_json(body)?;
    let mut responses = Vec::with_capacity(queries.len());
    for q in queries {
        let keep = |item: &Item| {
            (!q.conflicts_only || item.is_conflict()) && (q.tombstones || !item.is_tombstone())
        };
        let partition = state.partitions.get(&q.partition_key);
        let (items, next_start) = if q.single_item {
            if q.prefix.is_some() || q.end.is_some() || q.limit.is_some() || q.reverse {
                return Err(ApiError::InvalidRequest(
                    "Batch query parameters 'prefix', 'end', 'limit' and 'reverse' must not be set when singleItem is true."
                        .to_string(),
                ));
            }
            let sk = q.start.as_deref().ok_or_else(|| {
                ApiError::InvalidRequest(
                    "start should be specified if singleItem is set".to_string(),
                )
            })?;
            let item = partition
                .and_then(|p| p.items.get_key_value(sk))
                .filter(|(_, i)| keep(i));
            (
                item.map(|(sk, i)| ReadBatchItem::new(sk, i))
                    .into_iter()
                    .collect(),
                None,
            )
        } else {
            let params = RangeParams {
                prefix: q.prefix.clone(),
                start: q.start.clone(),
                end: q.end.clone(),
                limit: q.limit,
                reverse: q.reverse,
            };
            let empty_items = BTreeMap::new();
            let items = partition.map_or(&empty_items, |p| &p.items);
            let (found, next_start) = read_range(items, &params, keep)?;
            let found = found
                .into_iter()
                .map(|(sk, i)| ReadBatchItem::new(sk, i))
                .collect();
            (found, next_start)
        };
        responses.push(ReadBatchResponse {
            partition_key: q.partition_key,
            prefix: q.prefix,
            start: q.start,
            end: q.end,
            limit: q.limit,
            reverse: q.reverse,
            single_item: q.single_item,
            conflicts_only: q.conflicts_only,
            tombstones: q.tombstones,
            items,
            more: next_start.is_some(),
            next_start,
        });
    }
    Ok(with_body("application/json", to_json(&responses)?))
}

#[derive(Deserialize)]
struct DeleteBatchQuery {
    #[serde(rename = "partitionKey")]
    partition_key: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default, rename = "singleItem")]
    single_item: bool,
}

#[derive(Serialize)]
struct DeleteBatchResponse {
    #[serde(rename = "partitionKey")]
    partition_key: String,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    #[serde(rename = "singleItem")]
    single_item: bool,
    #[serde(rename = "deletedItems")]
    deleted_items: u64,
}

fn delete_batch(state: &mut State, body: &[u8]) -> Result<Resp, ApiError> {
    let queries: Vec<DeleteBatchQuery> = from_json(body)?;
    // Every query is checked before anything is deleted.
    for q in &queries {
        if q.single_item && (q.prefix.is_some() || q.end.is_some()) {
            return Err(ApiError::InvalidRequest(
                "Batch query parameters 'prefix' and 'end' must not be set when singleItem is true."
                    .to_string(),
            ));
        }
        if q.single_item && q.start.is_none() {
            return Err(ApiError::InvalidRequest(
                "start should be specified if singleItem is set".to_string(),
            ));
        }
        if let (Some(p), Some(s)) = (&q.prefix, &q.start) {
            if !s.starts_with(p.as_str()) {
                return Err(ApiError::InvalidRequest(format!(
                    "Start key '{s}' does not start with prefix '{p}'"
                )));
            }
        }
    }
    let mut responses = Vec::with_capacity(queries.len());
    for q in queries {
        let targets: Vec<(String, CausalContext)> = match state.partitions.get(&q.partition_key) {
            None => Vec::new(),
            Some(partition) if q.single_item => {
                let sk = q.start.as_deref().unwrap_or_default();
                partition
                    .items
                    .get_key_value(sk)
                    .filter(|(_, i)| !i.is_tombstone())
                    .map(|(sk, i)| (sk.clone(), i.context()))
                    .into_iter()
                    .collect()
            }
            Some(partition) => {
                let params = RangeParams {
                    prefix: q.prefix.clone(),
                    start: q.start.clone(),
                    end: q.end.clone(),
                    limit: None,
                    reverse: false,
                };
                read_range(&partition.items, &params, |i| !i.is_tombstone())?
                    .0
                    .into_iter()
                    .map(|(sk, i)| (sk.clone(), i.context()))
                    .collect()
            }
        };
        let deleted_items = targets.len() as u64;
        for (sk, context) in targets {
            state.k2v_write(&q.partition_key, &sk, Some(&context), None);
        }
        responses.push(DeleteBatchResponse {
            partition_key: q.partition_key,
            prefix: q.prefix,
            start: q.start,
            end: q.end,
            single_item: q.single_item,
            deleted_items,
        });
    }
    Ok(with_body("application/json", to_json(&responses)?))
}

/// Removes this poller's wake-up from the state when it stops waiting (answer, timeout or dropped connection).
struct WatchGuard<'a> {
    shared: &'a Shared,
    pk: &'a str,
    sk: &'a str,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .lock()
            .release_watcher(self.pk, self.sk, &self.notify);
    }
}

/// The item's answer if it is newer than `context`.
fn poll_ready(
    state: &State,
    pk: &str,
    sk: &str,
    context: &CausalContext,
    format: Format,
) -> Option<Result<Resp, ApiError>> {
    let item = state.item(pk, sk)?;
    item.context()
        .is_newer_than(context)
        .then(|| item_response(item, format))
}

/// PollItem: answers as ReadItem as soon as the item is newer than `context`, or 304 after `timeout_s`
/// seconds of tokio time. Writes to the item wake the poller; nothing spins.
pub async fn poll_item(
    shared: &Shared,
    pk: &str,
    sk: &str,
    format: Format,
    context: &CausalContext,
    timeout_s: u64,
) -> Result<Resp, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    loop {
        let notify = {
            let mut state = shared.lock();
            if let Some(resp) = poll_ready(&state, pk, sk, context, format) {
                return resp;
            }
            state.watcher(pk, sk)
        };
        let guard = WatchGuard {
            shared,
            pk,
            sk,
            notify,
        };
        let notified = guard.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // A write between the check above and `enable` would otherwise be missed.
        let ready = poll_ready(&shared.lock(), pk, sk, context, format);
        if let Some(resp) = ready {
            return resp;
        }
        tokio::select! {
            biased;
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(empty(StatusCode::NOT_MODIFIED)),
        }
    }
}

#[derive(Deserialize)]
struct PollRangeQuery {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default, rename = "seenMarker")]
    seen_marker: Option<String>,
}

#[derive(Serialize)]
struct PollRangeResponse {
    items: Vec<ReadBatchItem>,
    #[serde(rename = "seenMarker")]
    seen_marker: String,
}

/// A seen marker is the store-wide write number it was issued at; opaque to clients, as Garage's is.
fn parse_seen_marker(marker: &str) -> Result<u64, ApiError> {
    marker
        .strip_prefix("w")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::InvalidRequest("Invalid seenMarker".to_string()))
}

/// The PollRange answer if the range has items written after `seen` (every item when there is no
/// marker), with the marker to poll with next.
fn poll_range_ready(
    state: &State,
    pk: &str,
    params: &RangeParams,
    seen: Option<u64>,
) -> Result<Option<Resp>, ApiError> {
    let items = match state.partitions.get(pk) {
        None => Vec::new(),
        Some(partition) => read_range(&partition.items, params, |_| true)?
            .0
            .into_iter()
            .filter(|(sk, _)| {
                seen.is_none_or(|seen| partition.written_at.get(*sk).is_some_and(|n| *n > seen))
            })
            .map(|(sk, item)| ReadBatchItem::new(sk, item))
            .collect(),
    };
    if seen.is_some() && items.is_empty() {
        return Ok(None);
    }
    let body = PollRangeResponse {
        items,
        seen_marker: format!("w{}", state.k2v_writes),
    };
    Ok(Some(with_body("application/json", to_json(&body)?)))
}

/// Removes a PollRange wake-up when its poller stops waiting.
struct PartitionWatchGuard<'a> {
    shared: &'a Shared,
    pk: &'a str,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for PartitionWatchGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .lock()
            .release_partition_watcher(self.pk, &self.notify);
    }
}

/// PollRange: answers at once without a seen marker (every item of the range); with one, as soon as an
/// item of the range is written after it, or 304 after the timeout (seconds of tokio time, 1 to 600).
pub async fn poll_range(shared: &Shared, pk: &str, body: &[u8]) -> Result<Resp, ApiError> {
    let query: PollRangeQuery = from_json(body)?;
    let seen = query
        .seen_marker
        .as_deref()
        .map(parse_seen_marker)
        .transpose()?;
    let params = RangeParams {
        prefix: query.prefix,
        start: query.start,
        end: query.end,
        limit: None,
        reverse: false,
    };
    let timeout_s = query
        .timeout
        .unwrap_or(POLL_TIMEOUT_DEFAULT_S)
        .clamp(1, POLL_TIMEOUT_MAX_S);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    loop {
        let notify = {
            let mut state = shared.lock();
            if let Some(resp) = poll_range_ready(&state, pk, &params, seen)? {
                return Ok(resp);
            }
            state.partition_watcher(pk)
        };
        let guard = PartitionWatchGuard { shared, pk, notify };
        let notified = guard.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // A write between the check above and `enable` would otherwise be missed.
        let ready = poll_range_ready(&shared.lock(), pk, &params, seen)?;
        if let Some(resp) = ready {
            return Ok(resp);
        }
        tokio::select! {
            biased;
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(empty(StatusCode::NOT_MODIFIED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, u32> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), i as u32))
            .collect()
    }

    fn keys(result: &Listing<'_, u32>) -> Vec<String> {
        result.0.iter().map(|(k, _)| k.to_string()).collect()
    }

    #[test]
    fn range_honours_prefix_start_end_limit_and_reverse() {
        let m = map(&["a", "b1", "b2", "b3", "c"]);
        let all = |p: RangeParams| read_range(&m, &p, |_| true).expect("valid params");
        let r = all(RangeParams {
            prefix: Some("b".into()),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b1", "b2", "b3"]);
        assert_eq!(r.1, None);
        let r = all(RangeParams {
            start: Some("b2".into()),
            limit: Some(2),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b2", "b3"]);
        assert_eq!(r.1, Some("c".to_string()));
        let r = all(RangeParams {
            end: Some("b2".into()),
            ..Default::default()
        });
        assert_eq!(keys(&r), ["a", "b1"]);
        let r = all(RangeParams {
            prefix: Some("b".into()),
            reverse: true,
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b3", "b2", "b1"]);
        let r = all(RangeParams {
            start: Some("b3".into()),
            end: Some("a".into()),
            reverse: true,
            ..Default::default()
        });
        assert_eq!(keys(&r), ["b3", "b2", "b1"]);
        assert!(read_range(
            &m,
            &RangeParams {
                prefix: Some("b".into()),
                start: Some("a".into()),
                ..Default::default()
            },
            |_| true
        )
        .is_err());
    }

    #[test]
    fn key_after_prefix_is_the_next_string() {
        assert_eq!(key_after_prefix("ab"), Some("ac".to_string()));
        assert_eq!(key_after_prefix("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(key_after_prefix(""), None);
    }

    #[test]
    fn accept_header_selects_the_format() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, v.parse().expect("ASCII"));
            h
        };
        assert_eq!(Format::from_headers(&HeaderMap::new()), Ok(Format::Json));
        assert_eq!(
            Format::from_headers(&h("application/json")),
            Ok(Format::Json)
        );
        assert_eq!(
            Format::from_headers(&h("application/octet-stream")),
            Ok(Format::Binary)
        );
        assert_eq!(
            Format::from_headers(&h("application/octet-stream, application/json")),
            Ok(Format::Either)
        );
        assert!(matches!(
            Format::from_headers(&h("text/plain")),
            Err(ApiError::NotAcceptable(_))
        ));
    }
}
