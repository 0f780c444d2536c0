//! K2V wire format (Garage's `doc/drafts/k2v-spec.md`): building each request and parsing its answer.
//! Values travel raw in InsertItem and in single-value ReadItem answers, base64 in every JSON body.

use std::fmt::Write as _;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::error::StorageError;
use super::model::{
    CausalityToken, PartitionPage, RangeChanges, RangePoll, Row, RowInsert, RowItem, RowPage,
    RowQuery,
};
use super::transport::{component, Api, Req, Resp};
use super::wire_error::{error_from_response, expect_success};

/// The header carrying causality tokens.
pub(crate) const CAUSALITY_TOKEN: &str = "x-garage-causality-token";

/// ReadItem asks for the raw value when there is one, JSON when values are concurrent.
const ACCEPT_ITEM: &str = "application/octet-stream, application/json";

fn item_target(bucket: &str, pk: &str, sk: &str) -> String {
    format!(
        "/{}/{}?sort_key={}",
        component(bucket),
        component(pk),
        component(sk)
    )
}

fn token_header(ct: &CausalityToken) -> Result<HeaderValue, StorageError> {
    HeaderValue::from_str(&ct.0).map_err(|_| {
        StorageError::Protocol(format!(
            "causality token {:?} cannot be sent in a header",
            ct.0
        ))
    })
}

/// ReadItem: `GET /bucket/pk?sort_key=sk`.
pub(crate) fn read_item(bucket: &str, pk: &str, sk: &str) -> Req {
    let mut req = Req::new(Method::GET, item_target(bucket, pk, sk));
    req.headers
        .insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_ITEM));
    req
}

/// PollItem: `GET /bucket/pk?sort_key=sk&causality_token=ct&timeout=s`.
pub(crate) fn poll_item(
    bucket: &str,
    pk: &str,
    sk: &str,
    ct: &CausalityToken,
    timeout_s: u32,
) -> Req {
    let mut target = item_target(bucket, pk, sk);
    // Writing to a String cannot fail.
    let _ = write!(
        target,
        "&causality_token={}&timeout={timeout_s}",
        component(&ct.0)
    );
    let mut req = Req::new(Method::GET, target);
    req.headers
        .insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_ITEM));
    req
}

/// InsertItem: `PUT /bucket/pk?sort_key=sk`, the value as the raw body.
pub(crate) fn insert_item(
    bucket: &str,
    pk: &str,
    sk: &str,
    ct: Option<&CausalityToken>,
    value: Bytes,
) -> Result<Req, StorageError> {
    let mut req = Req::new(Method::PUT, item_target(bucket, pk, sk));
    req.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(ct) = ct {
        req.headers.insert(CAUSALITY_TOKEN, token_header(ct)?);
    }
    req.body = value;
    Ok(req)
}

/// DeleteItem: `DELETE /bucket/pk?sort_key=sk` with the token.
pub(crate) fn delete_item(
    bucket: &str,
    pk: &str,
    sk: &str,
    ct: &CausalityToken,
) -> Result<Req, StorageError> {
    let mut req = Req::new(Method::DELETE, item_target(bucket, pk, sk));
    req.headers.insert(CAUSALITY_TOKEN, token_header(ct)?);
    Ok(req)
}

/// A ReadItem / PollItem answer: 200 raw value, 204 tombstone, 200 JSON array, 404 absent.
pub(crate) fn parse_read_item(resp: Resp) -> Result<Option<Row>, StorageError> {
    if !resp.status.is_success() {
        return match error_from_response(Api::K2v, resp.status, &resp.body) {
            StorageError::NoSuchKey => Ok(None),
            error => Err(error),
        };
    }
    let ct = resp
        .headers
        .get(CAUSALITY_TOKEN)
        .ok_or_else(|| {
            StorageError::Protocol("ReadItem answer without X-Garage-Causality-Token".into())
        })?
        .to_str()
        .map_err(|_| {
            StorageError::Protocol("X-Garage-Causality-Token is not visible ASCII".into())
        })?;
    let ct = CausalityToken(ct.to_string());
    if resp.status == StatusCode::NO_CONTENT {
        return Ok(Some(Row {
            ct,
            values: vec![None],
        }));
    }
    let json = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let values = if json {
        let values: Vec<Option<B64>> = parse_json("ReadItem", &resp.body)?;
        values.into_iter().map(|v| v.map(|b| b.0)).collect()
    } else {
        vec![Some(resp.body)]
    };
    Ok(Some(Row { ct, values }))
}

/// A PollItem answer: 304 means nothing new before the timeout.
pub(crate) fn parse_poll_item(resp: Resp) -> Result<Option<Row>, StorageError> {
    if resp.status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    parse_read_item(resp)
}

/// PollRange's body: the range and the marker of what was already seen.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PollRangeJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<&'a str>,
    timeout: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    seen_marker: Option<&'a str>,
}

/// PollRange: `POST /bucket/pk?poll_range` with the range, the timeout and the seen marker.
pub(crate) fn poll_range(
    bucket: &str,
    range: &RangePoll,
    seen: Option<&str>,
    timeout_s: u32,
) -> Result<Req, StorageError> {
    let json = PollRangeJson {
        prefix: range.prefix.as_deref(),
        start: range.start.as_deref(),
        end: range.end.as_deref(),
        timeout: timeout_s,
        seen_marker: seen,
    };
    let capacity = 96 + seen.map_or(0, str::len) + range.prefix.as_ref().map_or(0, String::len);
    let body = json_body("PollRange", &json, capacity)?;
    let target = format!("/{}/{}?poll_range", component(bucket), component(&range.pk));
    Ok(json_post(target, body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollRangeAnswerJson {
    items: Vec<ItemJson>,
    seen_marker: String,
}

/// A PollRange answer: 304 means nothing new before the timeout.
pub(crate) fn parse_poll_range(resp: Resp) -> Result<Option<RangeChanges>, StorageError> {
    if resp.status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let resp = expect_success(Api::K2v, resp)?;
    let answer: PollRangeAnswerJson = parse_json("PollRange", &resp.body)?;
    Ok(Some(RangeChanges {
        items: answer
            .items
            .into_iter()
            .map(ItemJson::into_row_item)
            .collect(),
        seen_marker: answer.seen_marker,
    }))
}

/// The range both ReadBatch and DeleteBatch searches start with, as JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RangeJson<'a> {
    partition_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<&'a str>,
}

impl<'a> RangeJson<'a> {
    fn of(q: &'a RowQuery) -> Self {
        RangeJson {
            partition_key: &q.pk,
            prefix: q.prefix.as_deref(),
            start: q.start.as_deref(),
            end: q.end.as_deref(),
        }
    }
}

/// One search of ReadBatch, as JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchJson<'a> {
    #[serde(flatten)]
    range: RangeJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    reverse: bool,
    single_item: bool,
    conflicts_only: bool,
    tombstones: bool,
}

/// One search of DeleteBatch, as JSON (only the fields DeleteBatch supports).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteJson<'a> {
    #[serde(flatten)]
    range: RangeJson<'a>,
    single_item: bool,
}

/// One write of InsertBatch, as JSON: `ct` and `v` are always present, `null` when absent.
#[derive(Serialize)]
struct InsertJson<'a> {
    pk: &'a str,
    sk: &'a str,
    ct: Option<&'a str>,
    #[serde(serialize_with = "base64_or_null")]
    v: &'a Option<Bytes>,
}

/// Writes a value as base64 straight into the JSON output, with no intermediate string.
fn base64_or_null<S: Serializer>(value: &&Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(bytes) => s.collect_str(&Base64Display::new(bytes, &STANDARD)),
        None => s.serialize_none(),
    }
}

fn json_body<T: Serialize>(what: &str, value: &T, capacity: usize) -> Result<Bytes, StorageError> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)
        .map_err(|e| StorageError::Protocol(format!("{what} body: {e}")))?;
    Ok(Bytes::from(out))
}

fn json_post(target: String, body: Bytes) -> Req {
    let mut req = Req::new(Method::POST, target);
    req.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    req.body = body;
    req
}

fn query_len(q: &RowQuery) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 16);
    q.pk.len() + opt(&q.prefix) + opt(&q.start) + opt(&q.end) + 128
}

/// ReadBatch: `POST /bucket?search` with a JSON list of searches.
pub(crate) fn read_batch(bucket: &str, queries: &[RowQuery]) -> Result<Req, StorageError> {
    let path = format!("/{}?search", component(bucket));
    searches_post("ReadBatch", path, queries, |q| SearchJson {
        range: RangeJson::of(q),
        limit: q.limit,
        reverse: q.reverse,
        single_item: q.single_item,
        conflicts_only: false,
        tombstones: q.tombstones,
    })
}

/// DeleteBatch: `POST /bucket?delete` with a JSON list of searches.
pub(crate) fn delete_batch(bucket: &str, queries: &[RowQuery]) -> Result<Req, StorageError> {
    let path = format!("/{}?delete", component(bucket));
    searches_post("DeleteBatch", path, queries, |q| DeleteJson {
        range: RangeJson::of(q),
        single_item: q.single_item,
    })
}

/// A POST of `queries` as a JSON list, each written by `json`.
fn searches_post<'a, T: Serialize>(
    what: &str,
    path: String,
    queries: &'a [RowQuery],
    json: impl Fn(&'a RowQuery) -> T,
) -> Result<Req, StorageError> {
    let searches: Vec<T> = queries.iter().map(json).collect();
    let capacity = queries.iter().map(query_len).sum::<usize>() + 2;
    let body = json_body(what, &searches, capacity)?;
    Ok(json_post(path, body))
}

/// InsertBatch: `POST /bucket` with a JSON list of writes.
pub(crate) fn insert_batch(bucket: &str, items: &[RowInsert]) -> Result<Req, StorageError> {
    let writes: Vec<InsertJson<'_>> = items
        .iter()
        .map(|i| InsertJson {
            pk: &i.pk,
            sk: &i.sk,
            ct: i.ct.as_ref().map(|c| c.0.as_str()),
            v: &i.value,
        })
        .collect();
    let capacity = items
        .iter()
        .map(|i| {
            let ct = i.ct.as_ref().map_or(0, |c| c.0.len());
            let v = i.value.as_ref().map_or(0, |v| v.len().div_ceil(3) * 4);
            i.pk.len() + i.sk.len() + ct + v + 40
        })
        .sum::<usize>()
        + 2;
    let body = json_body("InsertBatch", &writes, capacity)?;
    Ok(json_post(format!("/{}", component(bucket)), body))
}

/// ReadIndex: `GET /bucket?prefix=&start=&limit=`.
pub(crate) fn read_index(
    bucket: &str,
    prefix: &str,
    start: Option<&str>,
    limit: Option<u32>,
) -> Req {
    let mut target = format!("/{}", component(bucket));
    let mut sep = '?';
    // Writing to a String cannot fail.
    if !prefix.is_empty() {
        let _ = write!(target, "{sep}prefix={}", component(prefix));
        sep = '&';
    }
    if let Some(start) = start {
        let _ = write!(target, "{sep}start={}", component(start));
        sep = '&';
    }
    if let Some(limit) = limit {
        let _ = write!(target, "{sep}limit={limit}");
    }
    Req::new(Method::GET, target)
}

/// A base64 value of a JSON body, decoded as it is parsed.
struct B64(Bytes);

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<B64, D::Error> {
        struct B64Visitor;
        impl Visitor<'_> for B64Visitor {
            type Value = B64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<B64, E> {
                STANDARD
                    .decode(v)
                    .map(|v| B64(Bytes::from(v)))
                    .map_err(E::custom)
            }
        }
        d.deserialize_str(B64Visitor)
    }
}

#[derive(Deserialize)]
struct ItemJson {
    sk: String,
    ct: String,
    v: Vec<Option<B64>>,
}

impl ItemJson {
    /// The item as the client hands it out: values decoded, a tombstone's `None`.
    fn into_row_item(self) -> RowItem {
        RowItem {
            sk: self.sk,
            ct: CausalityToken(self.ct),
            values: self.v.into_iter().map(|v| v.map(|b| b.0)).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageJson {
    items: Vec<ItemJson>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    next_start: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedJson {
    deleted_items: u64,
}

#[derive(Deserialize)]
struct PartitionJson {
    pk: String,
    entries: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    partition_keys: Vec<PartitionJson>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    next_start: Option<String>,
}

fn parse_json<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, StorageError> {
    serde_json::from_slice(body).map_err(|e| StorageError::Protocol(format!("{what} answer: {e}")))
}

fn check_count(what: &str, got: usize, expected: usize) -> Result<(), StorageError> {
    if got == expected {
        Ok(())
    } else {
        Err(StorageError::Protocol(format!(
            "{what} answered {got} results for {expected} searches"
        )))
    }
}

/// A ReadBatch answer: one page per search.
pub(crate) fn parse_read_batch(resp: Resp, searches: usize) -> Result<Vec<RowPage>, StorageError> {
    let resp = expect_success(Api::K2v, resp)?;
    let pages: Vec<PageJson> = parse_json("ReadBatch", &resp.body)?;
    check_count("ReadBatch", pages.len(), searches)?;
    Ok(pages
        .into_iter()
        .map(|page| RowPage {
            items: page
                .items
                .into_iter()
                .map(ItemJson::into_row_item)
                .collect(),
            next_start: if page.more { page.next_start } else { None },
        })
        .collect())
}

/// A DeleteBatch answer: the number of items deleted per search.
pub(crate) fn parse_delete_batch(resp: Resp, searches: usize) -> Result<Vec<u64>, StorageError> {
    let resp = expect_success(Api::K2v, resp)?;
    let results: Vec<DeletedJson> = parse_json("DeleteBatch", &resp.body)?;
    check_count("DeleteBatch", results.len(), searches)?;
    Ok(results.into_iter().map(|r| r.deleted_items).collect())
}

/// A ReadIndex answer.
pub(crate) fn parse_read_index(resp: Resp) -> Result<PartitionPage, StorageError> {
    let resp = expect_success(Api::K2v, resp)?;
    let index: IndexJson = parse_json("ReadIndex", &resp.body)?;
    Ok(PartitionPage {
        partitions: index
            .partition_keys
            .into_iter()
            .map(|p| (p.pk, p.entries))
            .collect(),
        next_start: if index.more { index.next_start } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODD_TOKEN: &str = "AAECAw+/=_-.~ x";

    #[test]
    fn causality_token_is_sent_exactly_as_received() {
        let ct = CausalityToken(ODD_TOKEN.into());
        let insert = insert_item("b", "pk", "sk", Some(&ct), Bytes::from_static(b"v"))
            .expect("token fits a header");
        assert_eq!(
            insert.headers.get(CAUSALITY_TOKEN).expect("token header"),
            ODD_TOKEN
        );
        let delete = delete_item("b", "pk", "sk", &ct).expect("token fits a header");
        assert_eq!(
            delete.headers.get(CAUSALITY_TOKEN).expect("token header"),
            ODD_TOKEN
        );
        let poll = poll_item("b", "pk", "sk", &ct, 7);
        assert_eq!(
            poll.target,
            "/b/pk?sort_key=sk&causality_token=AAECAw%2B%2F%3D_-.~%20x&timeout=7"
        );
        let batch = insert_batch(
            "b",
            &[RowInsert {
                pk: "p".into(),
                sk: "s".into(),
                ct: Some(ct),
                value: None,
            }],
        )
        .expect("serialisable");
        assert_eq!(
            &batch.body[..],
            format!(r#"[{{"pk":"p","sk":"s","ct":"{ODD_TOKEN}","v":null}}]"#).as_bytes()
        );
    }

    #[test]
    fn causality_token_is_received_exactly_as_sent() {
        let r = Resp::canned(
            200,
            &[
                (CAUSALITY_TOKEN, ODD_TOKEN),
                ("content-type", "application/octet-stream"),
            ],
            b"raw",
        );
        let row = parse_read_item(r).expect("valid answer").expect("present");
        assert_eq!(row.ct, CausalityToken(ODD_TOKEN.into()));
        let page = br#"[{"partitionKey":"p","items":[{"sk":"s","ct":"AAECAw+/=_-.~ x","v":["aGk="]}],"more":false,"nextStart":null}]"#;
        let pages = parse_read_batch(Resp::canned(200, &[], page), 1).expect("valid answer");
        assert_eq!(pages[0].items[0].ct, CausalityToken(ODD_TOKEN.into()));
    }

    #[test]
    fn read_item_asks_for_both_formats_and_encodes_keys() {
        let req = read_item("imapsim", "user/a b", "s+k");
        assert_eq!(req.target, "/imapsim/user%2Fa%20b?sort_key=s%2Bk");
        assert_eq!(
            req.headers.get(header::ACCEPT).expect("accept"),
            ACCEPT_ITEM
        );
        assert_eq!(req.method, Method::GET);
    }

    #[test]
    fn read_item_answers_in_all_four_forms() {
        let raw = parse_read_item(Resp::canned(
            200,
            &[
                (CAUSALITY_TOKEN, "t1"),
                ("content-type", "application/octet-stream"),
            ],
            b"\x00\x01",
        ))
        .expect("valid")
        .expect("present");
        assert_eq!(raw.values, vec![Some(Bytes::from_static(b"\x00\x01"))]);
        let tomb = parse_read_item(Resp::canned(204, &[(CAUSALITY_TOKEN, "t2")], b""))
            .expect("valid")
            .expect("present");
        assert_eq!(
            tomb,
            Row {
                ct: CausalityToken("t2".into()),
                values: vec![None]
            }
        );
        let json = parse_read_item(Resp::canned(
            200,
            &[
                (CAUSALITY_TOKEN, "t3"),
                ("content-type", "application/json"),
            ],
            br#"["YQ==",null,"Yg=="]"#,
        ))
        .expect("valid")
        .expect("present");
        assert_eq!(
            json.values,
            vec![
                Some(Bytes::from_static(b"a")),
                None,
                Some(Bytes::from_static(b"b"))
            ]
        );
        let absent =
            br#"{"code":"NoSuchKey","message":"Key not found","region":"garage","path":"/b/pk"}"#;
        assert_eq!(
            parse_read_item(Resp::canned(
                404,
                &[("content-type", "application/json")],
                absent
            ))
            .expect("absent"),
            None
        );
    }

    #[test]
    fn read_item_without_token_is_a_protocol_error() {
        let r = Resp::canned(200, &[("content-type", "application/octet-stream")], b"v");
        assert!(matches!(parse_read_item(r), Err(StorageError::Protocol(_))));
    }

    #[test]
    fn poll_item_304_is_none_and_errors_keep_their_kind() {
        assert_eq!(
            parse_poll_item(Resp::canned(304, &[], b"")).expect("not modified"),
            None
        );
        let bad = br#"{"code":"InvalidCausalityToken","message":"Invalid causality token","region":"garage","path":"/"}"#;
        match parse_poll_item(Resp::canned(400, &[], bad)) {
            Err(StorageError::Http {
                status: 400, code, ..
            }) => assert_eq!(code, "InvalidCausalityToken"),
            other => panic!("expected Http 400, got {other:?}"),
        }
    }

    /// The JSON body of a request.
    fn json_of(req: &Req) -> serde_json::Value {
        serde_json::from_slice(&req.body).expect("the request body is JSON")
    }

    #[test]
    fn read_batch_request_follows_the_spec() {
        let q = RowQuery {
            pk: "mailbox:INBOX".into(),
            start: Some("001892831".into()),
            limit: Some(3),
            reverse: true,
            tombstones: true,
            ..RowQuery::default()
        };
        let req = read_batch("my_bucket", &[q]).expect("serialisable");
        assert_eq!(
            (req.method.clone(), req.target.as_str()),
            (Method::POST, "/my_bucket?search")
        );
        assert_eq!(
            json_of(&req),
            serde_json::json!([{
                "partitionKey": "mailbox:INBOX", "start": "001892831", "limit": 3, "reverse": true,
                "singleItem": false, "conflictsOnly": false, "tombstones": true
            }])
        );
    }

    #[test]
    fn delete_batch_sends_only_supported_fields() {
        let q = RowQuery {
            pk: "p".into(),
            prefix: Some("a".into()),
            limit: Some(3),
            single_item: true,
            ..RowQuery::default()
        };
        let req = delete_batch("b", &[q]).expect("serialisable");
        assert_eq!(req.target, "/b?delete");
        assert_eq!(
            json_of(&req),
            serde_json::json!([{"partitionKey": "p", "prefix": "a", "singleItem": true}])
        );
    }

    #[test]
    fn insert_batch_encodes_values_in_base64_and_tombstones_as_null() {
        let items = [
            RowInsert {
                pk: "p".into(),
                sk: "a".into(),
                ct: None,
                value: Some(Bytes::from_static(b"\xff\x00hello")),
            },
            RowInsert {
                pk: "p".into(),
                sk: "b".into(),
                ct: Some(CausalityToken("t".into())),
                value: None,
            },
        ];
        let req = insert_batch("b", &items).expect("serialisable");
        assert_eq!(req.target, "/b");
        assert_eq!(
            std::str::from_utf8(&req.body).expect("JSON is UTF-8"),
            r#"[{"pk":"p","sk":"a","ct":null,"v":"/wBoZWxsbw=="},{"pk":"p","sk":"b","ct":"t","v":null}]"#
        );
    }

    #[test]
    fn read_batch_answer_is_parsed_with_paging() {
        let body = br#"[{"partitionKey":"p","prefix":null,"start":"a","end":null,"limit":2,"reverse":false,
            "conflictsOnly":false,"tombstones":false,"singleItem":false,
            "items":[{"sk":"a","ct":"t1","v":["YQ==","Yg=="]},{"sk":"b","ct":"t2","v":[null]}],
            "more":true,"nextStart":"c"},
            {"partitionKey":"q","items":[],"more":false,"nextStart":null}]"#;
        let pages = parse_read_batch(Resp::canned(200, &[], body), 2).expect("valid answer");
        assert_eq!(pages[0].items.len(), 2);
        assert_eq!(
            pages[0].items[0].values,
            vec![
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"b"))
            ]
        );
        assert_eq!(pages[0].items[1].values, vec![None]);
        assert_eq!(pages[0].next_start.as_deref(), Some("c"));
        assert_eq!(pages[1], RowPage::default());
        assert!(matches!(
            parse_read_batch(Resp::canned(200, &[], body), 3),
            Err(StorageError::Protocol(_))
        ));
    }

    #[test]
    fn bad_base64_is_a_protocol_error() {
        let body =
            br#"[{"partitionKey":"p","items":[{"sk":"a","ct":"t","v":["***"]}],"more":false}]"#;
        assert!(matches!(
            parse_read_batch(Resp::canned(200, &[], body), 1),
            Err(StorageError::Protocol(_))
        ));
    }

    #[test]
    fn read_index_request_and_answer() {
        assert_eq!(
            read_index("b", "user:", Some("user:b"), Some(2)).target,
            "/b?prefix=user%3A&start=user%3Ab&limit=2"
        );
        assert_eq!(read_index("b", "", None, None).target, "/b");
        let body = br#"{"prefix":null,"start":null,"end":null,"limit":null,"reverse":false,
            "partitionKeys":[{"pk":"keys","entries":3043,"conflicts":0,"values":3043,"bytes":121720},
                             {"pk":"mailbox:INBOX","entries":42,"conflicts":1,"values":43,"bytes":142029}],
            "more":true,"nextStart":"mailbox:Junk"}"#;
        let page = parse_read_index(Resp::canned(200, &[], body)).expect("valid answer");
        assert_eq!(
            page.partitions,
            vec![("keys".into(), 3043), ("mailbox:INBOX".into(), 42)]
        );
        assert_eq!(page.next_start.as_deref(), Some("mailbox:Junk"));
    }

    #[test]
    fn delete_batch_answer_counts_per_search() {
        let body = br#"[{"partitionKey":"a","prefix":null,"start":null,"end":null,"singleItem":false,"deletedItems":35},
                        {"partitionKey":"b","prefix":null,"start":"x","end":null,"singleItem":true,"deletedItems":1}]"#;
        assert_eq!(
            parse_delete_batch(Resp::canned(200, &[], body), 2).expect("valid answer"),
            vec![35, 1]
        );
    }
}
