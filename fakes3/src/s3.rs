//! The S3 subset, path-style: PutObject, GetObject (ranged), HeadObject, DeleteObject, CopyObject and
//! ListObjectsV2, with S3's XML bodies. Everything else is answered 501 NotImplemented.

use std::ops::Bound;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, Method, StatusCode};
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::config::Op;
use crate::http::{decode_path, empty, set_header, with_body, xml_escape, ApiError, Query, Resp};
use crate::store::{Object, State};

/// Objects carry no clock: every object reports this modification time.
const LAST_MODIFIED_HTTP: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
/// The same time in the ISO 8601 form of XML bodies.
const LAST_MODIFIED_ISO: &str = "1970-01-01T00:00:00.000Z";
/// S3's limit on key length, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// S3's largest page of ListObjectsV2.
const MAX_LIST_KEYS: u64 = 1000;
/// Sub-resources of an object this fake does not implement (multipart upload, tags, ACLs, versions...).
const UNSUPPORTED_OBJECT_PARAMS: [&str; 12] = [
    "uploads",
    "uploadId",
    "partNumber",
    "tagging",
    "acl",
    "versionId",
    "retention",
    "legal-hold",
    "attributes",
    "torrent",
    "restore",
    "select",
];
/// What `encoding-type=url` leaves as is: unreserved characters and `/`.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One routed S3 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Request {
    /// PutObject.
    Put { key: String },
    /// CopyObject from `source` in the same bucket.
    Copy { key: String, source: String },
    /// GetObject.
    Get { key: String },
    /// HeadObject.
    Head { key: String },
    /// DeleteObject.
    Delete { key: String },
    /// ListObjectsV2.
    List,
}

impl S3Request {
    /// The operation, for counters and faults.
    pub fn op(&self) -> Op {
        match self {
            S3Request::Put { .. } => Op::PutObject,
            S3Request::Copy { .. } => Op::CopyObject,
            S3Request::Get { .. } => Op::GetObject,
            S3Request::Head { .. } => Op::HeadObject,
            S3Request::Delete { .. } => Op::DeleteObject,
            S3Request::List => Op::ListObjects,
        }
    }
}

/// Finds the operation of a request on `/{bucket}/{key}`.
pub fn route(
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    bucket: &str,
) -> Result<S3Request, ApiError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (raw_bucket, raw_key) = path.split_once('/').unwrap_or((path, ""));
    let request_bucket = decode_path(raw_bucket)?;
    if request_bucket.is_empty() {
        return Err(ApiError::NotImplemented("ListBuckets".to_string()));
    }
    if request_bucket != bucket {
        return Err(ApiError::NoSuchBucket(request_bucket));
    }
    let key = decode_path(raw_key)?;
    if key.is_empty() {
        return route_bucket(method, query);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::KeyTooLong);
    }
    if let Some(param) = UNSUPPORTED_OBJECT_PARAMS.iter().find(|p| query.has(p)) {
        return Err(ApiError::NotImplemented(format!(
            "object sub-resource ?{param}"
        )));
    }
    match *method {
        Method::PUT => match headers.get("x-amz-copy-source") {
            Some(source) => {
                let source = source.to_str().map_err(|_| {
                    ApiError::InvalidArgument("x-amz-copy-source is not ASCII".to_string())
                })?;
                Ok(S3Request::Copy {
                    key,
                    source: copy_source_key(source, bucket)?,
                })
            }
            None => Ok(S3Request::Put { key }),
        },
        Method::GET => Ok(S3Request::Get { key }),
        Method::HEAD => Ok(S3Request::Head { key }),
        Method::DELETE => Ok(S3Request::Delete { key }),
        Method::POST => Err(ApiError::NotImplemented("POST on an object".to_string())),
        _ => Err(ApiError::MethodNotAllowed(method.clone())),
    }
}

fn route_bucket(method: &Method, query: &Query) -> Result<S3Request, ApiError> {
    match *method {
        Method::GET => match query.get("list-type") {
            Some("2") => Ok(S3Request::List),
            Some(other) => Err(ApiError::InvalidArgument(format!("list-type {other:?}"))),
            None => Err(ApiError::NotImplemented(
                "bucket GET other than ListObjectsV2 (list-type=2)".to_string(),
            )),
        },
        Method::HEAD | Method::PUT | Method::DELETE | Method::POST => {
            Err(ApiError::NotImplemented(format!("{method} on a bucket")))
        }
        _ => Err(ApiError::MethodNotAllowed(method.clone())),
    }
}

/// The key named by `x-amz-copy-source: [/]bucket/key`, which must be in `bucket`.
fn copy_source_key(source: &str, bucket: &str) -> Result<String, ApiError> {
    let source = decode_path(source)?;
    let source = source.strip_prefix('/').unwrap_or(&source);
    if source.contains("?versionId=") {
        return Err(ApiError::NotImplemented(
            "copy of an object version".to_string(),
        ));
    }
    let (src_bucket, src_key) = source.split_once('/').ok_or_else(|| {
        ApiError::InvalidArgument("x-amz-copy-source is not bucket/key".to_string())
    })?;
    if src_bucket != bucket {
        return Err(ApiError::NoSuchBucket(src_bucket.to_string()));
    }
    if src_key.is_empty() {
        return Err(ApiError::InvalidArgument(
            "x-amz-copy-source has no key".to_string(),
        ));
    }
    Ok(src_key.to_string())
}

/// Applies a routed request to the state.
pub fn handle(
    state: &mut State,
    bucket: &str,
    request: S3Request,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Resp, ApiError> {
    match request {
        S3Request::Put { key } => put_object(state, key, headers, body),
        S3Request::Copy { key, source } => {
            let object = state
                .objects
                .get(&source)
                .ok_or(ApiError::NoSuchKey)?
                .clone();
            let etag = object.etag();
            state.objects.insert(key, object);
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>\
                 <LastModified>{LAST_MODIFIED_ISO}</LastModified><ETag>{}</ETag></CopyObjectResult>",
                xml_escape(&etag)
            );
            Ok(with_body("application/xml", xml))
        }
        S3Request::Get { key } => get_object(state, &key, headers, false),
        S3Request::Head { key } => get_object(state, &key, headers, true),
        S3Request::Delete { key } => {
            state.objects.remove(&key);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        S3Request::List => list_objects(state, bucket, query),
    }
}

fn put_object(
    state: &mut State,
    key: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let md5: [u8; 16] = Md5::digest(&body).into();
    if let Some(given) = headers.get("content-md5") {
        let given = given
            .to_str()
            .ok()
            .and_then(|s| STANDARD.decode(s.trim()).ok())
            .ok_or_else(|| ApiError::InvalidArgument("Content-MD5 is not base64".to_string()))?;
        if given != md5 {
            return Err(ApiError::BadDigest);
        }
    }
    let object = Object { data: body, md5 };
    let mut resp = empty(StatusCode::OK);
    set_header(&mut resp, "etag", &object.etag());
    state.objects.insert(key, object);
    Ok(resp)
}

fn get_object(state: &State, key: &str, headers: &HeaderMap, head: bool) -> Result<Resp, ApiError> {
    let object = state.objects.get(key).ok_or(ApiError::NoSuchKey)?;
    let size = object.data.len() as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => parse_range(value, size)?,
        None => None,
    };
    let (status, data) = match range {
        Some((first, last)) => (
            StatusCode::PARTIAL_CONTENT,
            object.data.slice(first as usize..=last as usize),
        ),
        None => (StatusCode::OK, object.data.clone()),
    };
    let length = data.len();
    let mut resp = with_body(
        "application/octet-stream",
        if head { Bytes::new() } else { data },
    );
    *resp.status_mut() = status;
    set_header(&mut resp, "etag", &object.etag());
    set_header(&mut resp, "last-modified", LAST_MODIFIED_HTTP);
    set_header(&mut resp, "accept-ranges", "bytes");
    if let Some((first, last)) = range {
        set_header(
            &mut resp,
            "content-range",
            &format!("bytes {first}-{last}/{size}"),
        );
    }
    if head {
        set_header(&mut resp, "content-length", &length.to_string());
    }
    Ok(resp)
}

/// Parses `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` into inclusive bounds within `size`. Forms it does
/// not understand (other units, several ranges, a > b) are ignored like S3 does, giving the whole object.
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => {
            let Some(n) = parse(last) else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(ApiError::InvalidRange);
            }
            Ok(Some((size.saturating_sub(n), size - 1)))
        }
        (false, true) => {
            let Some(a) = parse(first) else {
                return Ok(None);
            };
            if a >= size {
                return Err(ApiError::InvalidRange);
            }
            Ok(Some((a, size - 1)))
        }
        (false, false) => {
            let (Some(a), Some(b)) = (parse(first), parse(last)) else {
                return Ok(None);
            };
            if a > b {
                return Ok(None);
            }
            if a >= size {
                return Err(ApiError::InvalidRange);
            }
            Ok(Some((a, b.min(size - 1))))
        }
        (true, true) => Ok(None),
    }
}

/// Where a listing resumes: after a key, or after every key under a common prefix.
enum Marker {
    Key(String),
    CommonPrefix(String),
}

impl Marker {
    fn encode(&self) -> String {
        let (tag, s) = match self {
            Marker::Key(k) => ('K', k),
            Marker::CommonPrefix(p) => ('P', p),
        };
        URL_SAFE_NO_PAD.encode(format!("{tag}{s}"))
    }

    fn decode(token: &str) -> Option<Marker> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let mut chars = raw.chars();
        match chars.next()? {
            'K' => Some(Marker::Key(chars.as_str().to_string())),
            'P' => Some(Marker::CommonPrefix(chars.as_str().to_string())),
            _ => None,
        }
    }
}

fn list_objects(state: &State, bucket: &str, query: &Query) -> Result<Resp, ApiError> {
    let prefix = query.get("prefix").unwrap_or("");
    let delimiter = query.get("delimiter").filter(|d| !d.is_empty());
    let max_keys = query
        .get_u64("max-keys")?
        .unwrap_or(MAX_LIST_KEYS)
        .min(MAX_LIST_KEYS);
    let start_after = query.get("start-after").filter(|s| !s.is_empty());
    let token = query.get("continuation-token");
    let url_encoding = match query.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(ApiError::InvalidArgument(format!(
                "encoding-type {other:?}"
            )))
        }
    };
    let enc = |s: &str| {
        if url_encoding {
            utf8_percent_encode(s, KEY_ENCODE).to_string()
        } else {
            s.to_string()
        }
    };

    let (mut after, mut skip_prefix) = (start_after.map(str::to_string), None::<String>);
    if let Some(token) = token {
        match Marker::decode(token) {
            Some(Marker::Key(k)) => after = Some(k),
            Some(Marker::CommonPrefix(p)) => {
                after = Some(p.clone());
                skip_prefix = Some(p);
            }
            None => {
                return Err(ApiError::InvalidArgument(
                    "The continuation token provided is incorrect".to_string(),
                ))
            }
        }
    }
    let lower = match after.as_deref() {
        Some(a) if a >= prefix => Bound::Excluded(a),
        _ => Bound::Included(prefix),
    };

    let mut contents = String::new();
    let mut common = String::new();
    let mut count = 0u64;
    let mut last: Option<Marker> = None;
    let mut truncated = false;
    if max_keys > 0 {
        for (key, object) in state.objects.range::<str, _>((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if skip_prefix.as_deref().is_some_and(|p| key.starts_with(p)) {
                continue;
            }
            let common_prefix = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|pos| key[..prefix.len() + pos + d.len()].to_string())
            });
            if count == max_keys {
                truncated = true;
                break;
            }
            count += 1;
            match common_prefix {
                Some(cp) => {
                    common.push_str(&format!(
                        "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                        xml_escape(&enc(&cp))
                    ));
                    skip_prefix = Some(cp.clone());
                    last = Some(Marker::CommonPrefix(cp));
                }
                None => {
                    contents.push_str(&format!(
                        "<Contents><Key>{}</Key><LastModified>{LAST_MODIFIED_ISO}</LastModified>\
                         <ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                        xml_escape(&enc(key)),
                        xml_escape(&object.etag()),
                        object.data.len()
                    ));
                    last = Some(Marker::Key(key.clone()));
                }
            }
        }
    }

    let mut xml = String::with_capacity(256 + contents.len() + common.len());
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    xml.push_str(&format!("<Name>{}</Name>", xml_escape(bucket)));
    xml.push_str(&format!("<Prefix>{}</Prefix>", xml_escape(&enc(prefix))));
    if let Some(d) = delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", xml_escape(&enc(d))));
    }
    if let Some(s) = start_after {
        xml.push_str(&format!("<StartAfter>{}</StartAfter>", xml_escape(&enc(s))));
    }
    if let Some(t) = token {
        xml.push_str(&format!(
            "<ContinuationToken>{}</ContinuationToken>",
            xml_escape(t)
        ));
    }
    xml.push_str(&format!(
        "<KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
    ));
    if url_encoding {
        xml.push_str("<EncodingType>url</EncodingType>");
    }
    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if let (true, Some(marker)) = (truncated, &last) {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            marker.encode()
        ));
    }
    xml.push_str(&contents);
    xml.push_str(&common);
    xml.push_str("</ListBucketResult>");
    Ok(with_body("application/xml", xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms_are_parsed_within_the_object() {
        assert_eq!(parse_range("bytes=0-3", 10), Ok(Some((0, 3))));
        assert_eq!(parse_range("bytes=5-", 10), Ok(Some((5, 9))));
        assert_eq!(parse_range("bytes=-4", 10), Ok(Some((6, 9))));
        assert_eq!(parse_range("bytes=-40", 10), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=8-100", 10), Ok(Some((8, 9))));
    }

    #[test]
    fn unsatisfiable_ranges_are_invalid_range() {
        assert_eq!(parse_range("bytes=10-12", 10), Err(ApiError::InvalidRange));
        assert_eq!(parse_range("bytes=10-", 10), Err(ApiError::InvalidRange));
        assert_eq!(parse_range("bytes=-0", 10), Err(ApiError::InvalidRange));
        assert_eq!(parse_range("bytes=0-0", 0), Err(ApiError::InvalidRange));
    }

    #[test]
    fn ranges_not_understood_are_ignored() {
        assert_eq!(parse_range("items=0-3", 10), Ok(None));
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Ok(None));
        assert_eq!(parse_range("bytes=5-2", 10), Ok(None));
        assert_eq!(parse_range("bytes=x-2", 10), Ok(None));
    }

    #[test]
    fn routing_finds_each_operation() {
        let q = Query::default();
        let h = HeaderMap::new();
        let r = |m: &Method, p: &str| route(m, p, &q, &h, "b");
        let key = |k: &str| k.to_string();
        let found = [
            (Method::PUT, "/b/k%20x", S3Request::Put { key: key("k x") }),
            (Method::GET, "/b/a/b", S3Request::Get { key: key("a/b") }),
            (Method::HEAD, "/b/k", S3Request::Head { key: key("k") }),
            (Method::DELETE, "/b/k", S3Request::Delete { key: key("k") }),
        ];
        for (method, path, request) in found {
            assert_eq!(r(&method, path), Ok(request), "{method} {path}");
        }
        assert_eq!(
            r(&Method::GET, "/other/k"),
            Err(ApiError::NoSuchBucket("other".into()))
        );
        for path in ["/", "/b"] {
            let answer = r(&Method::GET, path);
            assert!(
                matches!(answer, Err(ApiError::NotImplemented(_))),
                "{path}: {answer:?}"
            );
        }
        assert!(matches!(
            r(&Method::PATCH, "/b/k"),
            Err(ApiError::MethodNotAllowed(_))
        ));
        let mut h = HeaderMap::new();
        h.insert("x-amz-copy-source", "/b/src%2Fkey".parse().expect("ASCII"));
        assert_eq!(
            route(&Method::PUT, "/b/dst", &q, &h, "b"),
            Ok(S3Request::Copy {
                key: "dst".into(),
                source: "src/key".into()
            })
        );
        let uploads = Query::parse(Some("uploads")).expect("valid query");
        assert!(matches!(
            route(&Method::POST, "/b/k", &uploads, &HeaderMap::new(), "b"),
            Err(ApiError::NotImplemented(_))
        ));
    }
}
