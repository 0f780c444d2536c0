//! S3 wire format as Garage serves it: path-style requests (`/bucket/key`, keys percent-encoded) and
//! their answers, ListObjectsV2 and `<Error>` bodies parsed from XML with quick-xml.

use std::fmt::Write as _;
use std::ops::Range;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::error::StorageError;
use super::model::BlobPage;
use super::transport::{component, content_length, key_path, Api, Req, Resp};
use super::wire_error::{classify, error_from_response, expect_success, parse_s3_error};

fn object_target(bucket: &str, key: &str) -> String {
    format!("/{}/{}", component(bucket), key_path(key))
}

/// PutObject: `PUT /bucket/key`.
pub(crate) fn put_object(bucket: &str, key: &str, body: Bytes) -> Req {
    let mut req = Req::new(Method::PUT, object_target(bucket, key));
    req.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    req.body = body;
    req
}

/// GetObject: `GET /bucket/key`, with `Range: bytes=first-last` for a non-empty `range`.
pub(crate) fn get_object(bucket: &str, key: &str, range: Option<Range<u64>>) -> Req {
    let mut req = Req::new(Method::GET, object_target(bucket, key));
    if let Some(r) = range.filter(|r| r.start < r.end) {
        let value = format!("bytes={}-{}", r.start, r.end - 1);
        req.headers.insert(
            header::RANGE,
            HeaderValue::from_str(&value).expect("digits and '-' are a valid header"),
        );
    }
    req
}

/// A GetObject answer. A server that ignored the range (200 instead of 206) is cut to it here.
pub(crate) fn parse_get_object(
    resp: Resp,
    range: Option<Range<u64>>,
) -> Result<Bytes, StorageError> {
    let resp = expect_success(Api::S3, resp)?;
    match range {
        Some(r) if resp.status == StatusCode::OK => {
            let len = resp.body.len() as u64;
            if r.start >= len {
                return Err(StorageError::Http {
                    status: 416,
                    code: "InvalidRange".into(),
                    message: format!("range {}..{} of an object of {len} bytes", r.start, r.end),
                });
            }
            // Both bounds are at most `len`, which is a usize.
            Ok(resp.body.slice(r.start as usize..r.end.min(len) as usize))
        }
        _ => Ok(resp.body),
    }
}

/// HeadObject: `HEAD /bucket/key`.
pub(crate) fn head_object(bucket: &str, key: &str) -> Req {
    Req::new(Method::HEAD, object_target(bucket, key))
}

/// A HeadObject answer: the size from `Content-Length`, `None` on 404.
pub(crate) fn parse_head_object(resp: Resp) -> Result<Option<u64>, StorageError> {
    if !resp.status.is_success() {
        return match error_from_response(Api::S3, resp.status, &resp.body) {
            StorageError::NoSuchKey => Ok(None),
            error => Err(error),
        };
    }
    content_length(&resp.headers)
        .map(Some)
        .ok_or_else(|| StorageError::Protocol("HeadObject answer without Content-Length".into()))
}

/// DeleteObject: `DELETE /bucket/key`.
pub(crate) fn delete_object(bucket: &str, key: &str) -> Req {
    Req::new(Method::DELETE, object_target(bucket, key))
}

/// CopyObject: `PUT /bucket/to` with `x-amz-copy-source: /bucket/from`.
pub(crate) fn copy_object(bucket: &str, from: &str, to: &str) -> Result<Req, StorageError> {
    let mut req = Req::new(Method::PUT, object_target(bucket, to));
    let source = object_target(bucket, from);
    let value = HeaderValue::from_str(&source).map_err(|_| {
        StorageError::Protocol(format!("copy source {source:?} cannot be sent in a header"))
    })?;
    req.headers.insert("x-amz-copy-source", value);
    Ok(req)
}

/// A CopyObject answer: S3 may report an error inside a 200 answer, so the body is checked.
pub(crate) fn parse_copy_object(resp: Resp) -> Result<(), StorageError> {
    let resp = expect_success(Api::S3, resp)?;
    match parse_s3_error(&resp.body) {
        Some((code, message)) => Err(classify(StatusCode::INTERNAL_SERVER_ERROR, code, message)),
        None => Ok(()),
    }
}

/// ListObjectsV2: `GET /bucket?list-type=2&prefix=&max-keys=&continuation-token=`.
pub(crate) fn list_objects(
    bucket: &str,
    prefix: &str,
    continuation: Option<&str>,
    max_keys: u32,
) -> Req {
    let mut target = format!("/{}?list-type=2&max-keys={max_keys}", component(bucket));
    // Writing to a String cannot fail.
    if !prefix.is_empty() {
        let _ = write!(target, "&prefix={}", component(prefix));
    }
    if let Some(token) = continuation {
        let _ = write!(target, "&continuation-token={}", component(token));
    }
    Req::new(Method::GET, target)
}

#[derive(Deserialize)]
struct ListBucketResult {
    #[serde(rename = "Contents", default)]
    contents: Vec<ListEntry>,
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextContinuationToken", default)]
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
struct ListEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: u64,
}

fn utf8<'a>(what: &str, body: &'a [u8]) -> Result<&'a str, StorageError> {
    std::str::from_utf8(body)
        .map_err(|e| StorageError::Protocol(format!("{what} answer is not UTF-8: {e}")))
}

/// A ListObjectsV2 answer.
pub(crate) fn parse_list_objects(resp: Resp) -> Result<BlobPage, StorageError> {
    let resp = expect_success(Api::S3, resp)?;
    let result: ListBucketResult = quick_xml::de::from_str(utf8("ListObjectsV2", &resp.body)?)
        .map_err(|e| StorageError::Protocol(format!("ListObjectsV2 answer: {e}")))?;
    let next_continuation = if result.is_truncated {
        let token = result.next_continuation_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Err(StorageError::Protocol(
                "truncated ListObjectsV2 answer without NextContinuationToken".into(),
            ));
        }
        token
    } else {
        None
    };
    Ok(BlobPage {
        keys: result
            .contents
            .into_iter()
            .map(|e| (e.key, e.size))
            .collect(),
        next_continuation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_path_style_and_percent_encoded() {
        let req = put_object("imapsim", "user/body chunk+1 é", Bytes::from_static(b"x"));
        assert_eq!(req.target, "/imapsim/user/body%20chunk%2B1%20%C3%A9");
        assert_eq!(req.method, Method::PUT);
    }

    #[test]
    fn ranges_are_inclusive_on_the_wire() {
        let req = get_object("b", "k", Some(6..11));
        assert_eq!(
            req.headers.get(header::RANGE).expect("range header"),
            "bytes=6-10"
        );
        assert!(get_object("b", "k", None)
            .headers
            .get(header::RANGE)
            .is_none());
    }

    #[test]
    fn a_whole_body_answering_a_range_is_cut_to_it() {
        let body = parse_get_object(Resp::canned(200, &[], b"hello world"), Some(6..100))
            .expect("in range");
        assert_eq!(&body[..], b"world");
        let partial =
            parse_get_object(Resp::canned(206, &[], b"wor"), Some(6..9)).expect("partial content");
        assert_eq!(&partial[..], b"wor");
        assert!(matches!(
            parse_get_object(Resp::canned(200, &[], b"hi"), Some(5..9)),
            Err(StorageError::Http { status: 416, .. })
        ));
    }

    #[test]
    fn head_reads_the_size_and_404_is_none() {
        assert_eq!(
            parse_head_object(Resp::canned(200, &[("content-length", "11")], b"")).expect("ok"),
            Some(11)
        );
        assert_eq!(
            parse_head_object(Resp::canned(404, &[], b"")).expect("absent"),
            None
        );
        assert!(matches!(
            parse_head_object(Resp::canned(403, &[], b"")),
            Err(StorageError::Http { status: 403, .. })
        ));
    }

    #[test]
    fn copy_names_its_source_in_the_bucket() {
        let req = copy_object("imapsim", "a b/c", "d").expect("ASCII source");
        assert_eq!(req.target, "/imapsim/d");
        assert_eq!(
            req.headers.get("x-amz-copy-source").expect("copy source"),
            "/imapsim/a%20b/c"
        );
    }

    #[test]
    fn copy_error_inside_a_200_is_an_error() {
        let ok = b"<CopyObjectResult><ETag>\"x\"</ETag><LastModified>2024-01-01T00:00:00Z</LastModified></CopyObjectResult>";
        assert!(parse_copy_object(Resp::canned(200, &[], ok)).is_ok());
        let err = b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>boom</Message></Error>";
        assert!(matches!(
            parse_copy_object(Resp::canned(200, &[], err)),
            Err(StorageError::Http { status: 500, .. })
        ));
        let nsk = b"<Error><Code>NoSuchKey</Code><Message>Key not found</Message></Error>";
        assert!(matches!(
            parse_copy_object(Resp::canned(404, &[], nsk)),
            Err(StorageError::NoSuchKey)
        ));
    }

    #[test]
    fn list_request_and_answer_with_continuation() {
        let req = list_objects("b", "u/a b", Some("tok+/="), 2);
        assert_eq!(
            req.target,
            "/b?list-type=2&max-keys=2&prefix=u%2Fa%20b&continuation-token=tok%2B%2F%3D"
        );
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Name>b</Name><Prefix>u/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>\
            <Contents><Key>u/a&amp;b</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>\
            <Contents><Key>u/c</Key><Size>0</Size></Contents>\
            <IsTruncated>true</IsTruncated><NextContinuationToken>next</NextContinuationToken></ListBucketResult>";
        let page = parse_list_objects(Resp::canned(200, &[], body)).expect("valid answer");
        assert_eq!(page.keys, vec![("u/a&b".into(), 3), ("u/c".into(), 0)]);
        assert_eq!(page.next_continuation.as_deref(), Some("next"));
        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(
            parse_list_objects(Resp::canned(200, &[], last)).expect("empty page"),
            BlobPage::default()
        );
    }
}
