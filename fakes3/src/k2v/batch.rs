//! The operations on many items at once: ReadIndex (partition counts), InsertBatch, ReadBatch and
//! DeleteBatch.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::codec::{from_json, parse_token, to_json, ReadBatchItem};
use super::range::{read_range, RangeParams};
use crate::causality::{CausalContext, Item};
use crate::http::{empty, with_body, ApiError, Resp};
use crate::store::State;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadIndexResponse<'a> {
    /// The listing's parameters, echoed.
    #[serde(flatten)]
    params: RangeParams,
    partition_keys: Vec<ReadIndexEntry<'a>>,
    more: bool,
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

pub(super) fn read_index(state: &State, params: RangeParams) -> Result<Resp, ApiError> {
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
        params,
    };
    Ok(with_body("application/json", to_json(&resp)?))
}

#[derive(Deserialize)]
struct InsertBatchItem {
    pk: String,
    sk: String,
    ct: Option<String>,
    v: Option<String>,
}

pub(super) fn insert_batch(state: &mut State, body: &[u8]) -> Result<Resp, ApiError> {
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

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadBatchQuery {
    partition_key: String,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<u64>,
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    single_item: bool,
    #[serde(default)]
    conflicts_only: bool,
    #[serde(default)]
    tombstones: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadBatchResponse {
    /// The query, echoed.
    #[serde(flatten)]
    query: ReadBatchQuery,
    items: Vec<ReadBatchItem>,
    more: bool,
    next_start: Option<String>,
}

pub(super) fn read_batch(state: &State, body: &[u8]) -> Result<Resp, ApiError> {
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
            query: q,
            items,
            more: next_start.is_some(),
            next_start,
        });
    }
    Ok(with_body("application/json", to_json(&responses)?))
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBatchQuery {
    partition_key: String,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    single_item: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBatchResponse {
    /// The query, echoed.
    #[serde(flatten)]
    query: DeleteBatchQuery,
    deleted_items: u64,
}

pub(super) fn delete_batch(state: &mut State, body: &[u8]) -> Result<Resp, ApiError> {
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
            query: q,
            deleted_items,
        });
    }
    Ok(with_body("application/json", to_json(&responses)?))
}
