//! The K2V API's encodings: the causality token header, the `Accept`ed format of ReadItem answers,
//! JSON bodies with base64 values, and the ReadItem answer itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::causality::{CausalContext, Item};
use crate::http::{empty, set_header, with_body, ApiError, Resp};

/// The header carrying causality tokens.
pub const CAUSALITY_TOKEN_HEADER: &str = "x-garage-causality-token";

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
    pub(super) fn from_headers(headers: &HeaderMap) -> Result<Format, ApiError> {
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

pub(super) fn parse_token(value: &str) -> Result<CausalContext, ApiError> {
    CausalContext::decode(value).ok_or(ApiError::InvalidCausalityToken)
}

pub(super) fn header_token(headers: &HeaderMap) -> Result<Option<CausalContext>, ApiError> {
    headers
        .get(CAUSALITY_TOKEN_HEADER)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidCausalityToken)
                .and_then(parse_token)
        })
        .transpose()
}

/// The ReadItem answer for `item` in `format`, with its causality token.
pub(super) fn item_response(item: &Item, format: Format) -> Result<Resp, ApiError> {
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

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::InternalError(format!("JSON encoding: {e}")))
}

pub(super) fn from_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest(format!("Invalid JSON: {e}")))
}

#[derive(Serialize)]
pub(super) struct ReadBatchItem {
    sk: String,
    ct: String,
    v: Vec<Option<String>>,
}

impl ReadBatchItem {
    pub(super) fn new(sk: &str, item: &Item) -> ReadBatchItem {
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

#[cfg(test)]
mod tests {
    use super::*;

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
