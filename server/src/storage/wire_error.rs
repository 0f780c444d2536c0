//! Error answers of both APIs by kind: S3's XML `<Error>` bodies and K2V's JSON ones become a
//! [`StorageError`] that keeps the wire error's status, code and message.

use http::StatusCode;
use serde::Deserialize;

use super::error::StorageError;
use super::transport::{Api, Resp};

#[derive(Deserialize)]
struct ErrorXml {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize)]
struct ErrorJson {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The `(code, message)` of an S3 `<Error>` body, if it is one.
pub(crate) fn parse_s3_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Error>")?;
    let error: ErrorXml = quick_xml::de::from_str(&text[start..]).ok()?;
    Some((error.code, error.message))
}

/// The `(code, message)` of a K2V JSON error body, if it is one.
pub(crate) fn parse_k2v_error(body: &[u8]) -> Option<(String, String)> {
    let error: ErrorJson = serde_json::from_slice(body).ok()?;
    Some((error.code, error.message))
}

/// The response if its status is a success, its error by kind otherwise.
pub(crate) fn expect_success(api: Api, resp: Resp) -> Result<Resp, StorageError> {
    if resp.status.is_success() {
        Ok(resp)
    } else {
        Err(error_from_response(api, resp.status, &resp.body))
    }
}

/// Maps an error answer to a [`StorageError`]: S3 bodies are XML `<Error>`, K2V bodies JSON.
pub(crate) fn error_from_response(api: Api, status: StatusCode, body: &[u8]) -> StorageError {
    let parsed = match api {
        Api::S3 => parse_s3_error(body),
        Api::K2v => parse_k2v_error(body),
    };
    let (code, message) = parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body[..body.len().min(256)])
            .trim()
            .to_string();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("").to_string()
        } else {
            text
        };
        (String::new(), message)
    });
    classify(status, code, message)
}

/// The kind of an error answer, from its status and code.
pub(crate) fn classify(status: StatusCode, code: String, message: String) -> StorageError {
    match (status.as_u16(), code.as_str()) {
        (_, "NoSuchKey") | (404, "") => StorageError::NoSuchKey,
        (409, _) | (_, "Conflict") => StorageError::Conflict,
        (408 | 504, _) | (_, "RequestTimeout") => StorageError::Timeout,
        (status, _) => StorageError::Http {
            status,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status, code and message of an answer that must map to [`StorageError::Http`].
    fn http_parts(api: Api, status: StatusCode, body: &[u8]) -> (u16, String, String) {
        match error_from_response(api, status, body) {
            StorageError::Http {
                status,
                code,
                message,
            } => (status, code, message),
            other => panic!("expected Http, got {other:?}"),
        }
    }

    #[test]
    fn s3_no_such_key_body_is_no_such_key() {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
                     <Message>Key not found</Message><Resource>/b/k</Resource><Region>garage</Region></Error>";
        assert!(matches!(
            error_from_response(Api::S3, StatusCode::NOT_FOUND, body),
            StorageError::NoSuchKey
        ));
    }

    #[test]
    fn s3_error_body_keeps_status_code_and_message() {
        let body = b"<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>";
        let (status, code, message) = http_parts(Api::S3, StatusCode::RANGE_NOT_SATISFIABLE, body);
        assert_eq!(status, 416);
        assert_eq!(code, "InvalidRange");
        assert_eq!(message, "The requested range is not satisfiable");
    }

    #[test]
    fn k2v_json_error_body_keeps_code() {
        let body = br#"{"code":"InvalidCausalityToken","message":"Invalid causality token","region":"garage","path":"/b/pk"}"#;
        let (status, code, message) = http_parts(Api::K2v, StatusCode::BAD_REQUEST, body);
        assert_eq!((status, code.as_str()), (400, "InvalidCausalityToken"));
        assert_eq!(message, "Invalid causality token");
    }

    #[test]
    fn k2v_404_and_409_and_504_map_to_their_kinds() {
        let nsk = br#"{"code":"NoSuchKey","message":"Key not found","region":"garage","path":"/"}"#;
        assert!(matches!(
            error_from_response(Api::K2v, StatusCode::NOT_FOUND, nsk),
            StorageError::NoSuchKey
        ));
        assert!(matches!(
            error_from_response(Api::K2v, StatusCode::CONFLICT, b""),
            StorageError::Conflict
        ));
        assert!(matches!(
            error_from_response(Api::S3, StatusCode::GATEWAY_TIMEOUT, b""),
            StorageError::Timeout
        ));
    }

    #[test]
    fn bodiless_head_404_is_no_such_key() {
        assert!(matches!(
            error_from_response(Api::S3, StatusCode::NOT_FOUND, b""),
            StorageError::NoSuchKey
        ));
    }

    #[test]
    fn no_such_bucket_is_not_no_such_key() {
        let body =
            b"<Error><Code>NoSuchBucket</Code><Message>Bucket not found: x</Message></Error>";
        assert!(matches!(
            error_from_response(Api::S3, StatusCode::NOT_FOUND, body),
            StorageError::Http { status: 404, .. }
        ));
    }

    #[test]
    fn unparsable_error_body_becomes_message() {
        let (status, code, message) =
            http_parts(Api::K2v, StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (502, "", "upstream down")
        );
    }
}
