//! The K2V requests: routing a request to its operation, and applying the operations that answer at
//! once.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use super::batch::{delete_batch, insert_batch, read_batch, read_index};
use super::codec::{header_token, item_response, parse_token, Format};
use super::poll::{POLL_TIMEOUT_DEFAULT_S, POLL_TIMEOUT_MAX_S};
use super::range::RangeParams;
use crate::causality::CausalContext;
use crate::config::Op;
use crate::http::{decode_path, empty, ApiError, Query, Resp};
use crate::store::State;

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

/// Applies a routed request other than PollItem and PollRange (see
/// [`poll_item`](super::poll::poll_item)) to the state.
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
