//! HTTP plumbing shared by both APIs: wire errors and their S3 XML / K2V JSON bodies, query strings,
//! SigV4 credential checks, capped body reading and response builders.

use bytes::Bytes;
use http::{header, HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use thiserror::Error;

use crate::config::Api;

/// The response type of both APIs.
pub type Resp = Response<Full<Bytes>>;

/// A request that fails, named after the wire error it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// No credentials at all.
    #[error("{0}")]
    AccessDenied(String),
    /// Credentials naming another access key.
    #[error("The access key id {0:?} does not exist")]
    InvalidAccessKeyId(String),
    /// An `Authorization` header that cannot be parsed, or a wrong scope.
    #[error("Authorization header malformed: {0}")]
    AuthorizationHeaderMalformed(String),
    /// A bucket other than the configured one.
    #[error("Bucket not found: {0}")]
    NoSuchBucket(String),
    /// An absent object or item.
    #[error("Key not found")]
    NoSuchKey,
    /// A byte range outside the object.
    #[error("The requested range is not satisfiable")]
    InvalidRange,
    /// A request that is not well formed.
    #[error("Bad request: {0}")]
    InvalidRequest(String),
    /// An argument with a bad value.
    #[error("Invalid argument: {0}")]
    InvalidArgument(String),
    /// An object key longer than 1024 bytes.
    #[error("Your key is too long")]
    KeyTooLong,
    /// A Content-MD5 that does not match the body.
    #[error("The Content-MD5 you specified did not match what we received")]
    BadDigest,
    /// A causality token that does not parse.
    #[error("Invalid causality token")]
    InvalidCausalityToken,
    /// A body above the configured cap.
    #[error("Your proposed upload exceeds the maximum allowed size of {0} bytes")]
    EntityTooLarge(usize),
    /// A method the resource does not support.
    #[error("The specified method is not allowed against this resource: {0}")]
    MethodNotAllowed(Method),
    /// An operation of the real service this fake does not implement.
    #[error("Not implemented: {0}")]
    NotImplemented(String),
    /// An `Accept` header naming neither JSON nor octet-stream.
    #[error("Not acceptable: {0}")]
    NotAcceptable(String),
    /// An injected (or real) internal error.
    #[error("Internal error: {0}")]
    InternalError(String),
    /// An injected unavailability.
    #[error("Service unavailable: {0}")]
    ServiceUnavailable(String),
}

impl ApiError {
    /// The error code, as S3 and Garage name it.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::AccessDenied(_) => "AccessDenied",
            ApiError::InvalidAccessKeyId(_) => "InvalidAccessKeyId",
            ApiError::AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            ApiError::NoSuchBucket(_) => "NoSuchBucket",
            ApiError::NoSuchKey => "NoSuchKey",
            ApiError::InvalidRange => "InvalidRange",
            ApiError::InvalidRequest(_) => "InvalidRequest",
            ApiError::InvalidArgument(_) => "InvalidArgument",
            ApiError::KeyTooLong => "KeyTooLongError",
            ApiError::BadDigest => "BadDigest",
            ApiError::InvalidCausalityToken => "InvalidCausalityToken",
            ApiError::EntityTooLarge(_) => "EntityTooLarge",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotImplemented(_) => "NotImplemented",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::InternalError(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AccessDenied(_) | ApiError::InvalidAccessKeyId(_) => StatusCode::FORBIDDEN,
            ApiError::NoSuchBucket(_) | ApiError::NoSuchKey => StatusCode::NOT_FOUND,
            ApiError::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::AuthorizationHeaderMalformed(_)
            | ApiError::InvalidRequest(_)
            | ApiError::InvalidArgument(_)
            | ApiError::KeyTooLong
            | ApiError::BadDigest
            | ApiError::InvalidCausalityToken
            | ApiError::EntityTooLarge(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::InternalError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The response: S3 XML or K2V JSON, with no body for HEAD requests.
    pub fn into_response(self, api: Api, region: &str, path: &str, method: &Method) -> Resp {
        let message = self.to_string();
        let (content_type, body) = match api {
            Api::S3 => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>\
                     <Resource>{}</Resource><Region>{}</Region></Error>",
                    self.code(),
                    xml_escape(&message),
                    xml_escape(path),
                    xml_escape(region)
                ),
            ),
            Api::K2v => (
                "application/json",
                serde_json::json!({
                    "code": self.code(),
                    "message": message,
                    "region": region,
                    "path": path,
                })
                .to_string(),
            ),
        };
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(body)
        };
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        resp
    }
}

/// Escapes the five XML special characters.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-decodes a path segment as UTF-8.
pub fn decode_path(s: &str) -> Result<String, ApiError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::InvalidRequest("path is not valid UTF-8".to_string()))
}

/// The decoded query string (`+` is a space, as in forms), in the order given.
#[derive(Debug, Default)]
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b&c=%20`.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut params = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                percent_decode_str(&s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| ApiError::InvalidRequest("query is not valid UTF-8".to_string()))
            };
            params.push((decode(k)?, decode(v)?));
        }
        Ok(Query { params })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `name` parsed as an integer, if present.
    pub fn get_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::InvalidArgument(format!("{name} must be an integer, got {v:?}"))
                })
            })
            .transpose()
    }

    /// `name` parsed as `true`/`false`, if present.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::InvalidArgument(format!(
                    "{name} must be true or false, got {v:?}"
                ))),
            })
            .transpose()
    }
}

/// Checks the SigV4 credential (from the `Authorization` header or the presigned `X-Amz-Credential`
/// parameter) names `key_id` with scope `region/service/aws4_request`. The signature is not verified.
pub fn check_credential(
    headers: &HeaderMap,
    query: &Query,
    key_id: &str,
    region: &str,
    service: &str,
) -> Result<(), ApiError> {
    let credential = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::AuthorizationHeaderMalformed("not ASCII".to_string()))?;
            let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
                ApiError::AuthorizationHeaderMalformed("expected AWS4-HMAC-SHA256".to_string())
            })?;
            rest.split(',')
                .map(str::trim)
                .find_map(|part| part.strip_prefix("Credential="))
                .ok_or_else(|| {
                    ApiError::AuthorizationHeaderMalformed("no Credential=".to_string())
                })?
                .to_string()
        }
        None => match query.get("X-Amz-Credential") {
            Some(c) => c.to_string(),
            None => {
                return Err(ApiError::AccessDenied(
                    "Anonymous access is not allowed: no Authorization header".to_string(),
                ))
            }
        },
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [id, _date, cred_region, cred_service, terminator] = parts[..] else {
        return Err(ApiError::AuthorizationHeaderMalformed(format!(
            "credential {credential:?} is not KEYID/date/region/service/aws4_request"
        )));
    };
    if terminator != "aws4_request" {
        return Err(ApiError::AuthorizationHeaderMalformed(format!(
            "credential scope ends with {terminator:?}"
        )));
    }
    if id != key_id {
        return Err(ApiError::InvalidAccessKeyId(id.to_string()));
    }
    if cred_region != region {
        return Err(ApiError::AuthorizationHeaderMalformed(format!(
            "unexpected region {cred_region:?}, expected {region:?}"
        )));
    }
    if cred_service != service {
        return Err(ApiError::AuthorizationHeaderMalformed(format!(
            "unexpected service {cred_service:?}, expected {service:?}"
        )));
    }
    Ok(())
}

/// Reads a whole request body into an exactly sized buffer, refusing more than `max` bytes.
pub async fn read_body(body: Incoming, headers: &HeaderMap, max: usize) -> Result<Bytes, ApiError> {
    let declared = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::InvalidRequest("bad Content-Length".to_string()))?,
        ),
        None => None,
    };
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::EntityTooLarge(max));
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::InvalidRequest(format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(ApiError::EntityTooLarge(max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf.into_boxed_slice()))
}

/// A response with a status and no body.
pub fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// A 200 response with a body and its content type.
pub fn with_body(content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Sets a header whose value was built by this crate (always valid).
pub fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    match header::HeaderValue::from_str(value) {
        Ok(v) => {
            resp.headers_mut().insert(name, v);
        }
        Err(_) => tracing::warn!(name, value, "skipping a header value that is not valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            value.parse().expect("test header is ASCII"),
        );
        h
    }

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=GK1/20240101/garage/s3/aws4_request, \
                        SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn credential_with_the_right_key_passes() {
        assert_eq!(
            check_credential(&auth(GOOD), &Query::default(), "GK1", "garage", "s3"),
            Ok(())
        );
    }

    #[test]
    fn missing_credential_is_access_denied() {
        let err = check_credential(&HeaderMap::new(), &Query::default(), "GK1", "garage", "s3");
        assert!(matches!(err, Err(ApiError::AccessDenied(_))));
    }

    #[test]
    fn other_key_is_invalid_access_key_id() {
        let err = check_credential(&auth(GOOD), &Query::default(), "GK2", "garage", "s3");
        assert_eq!(err, Err(ApiError::InvalidAccessKeyId("GK1".to_string())));
    }

    #[test]
    fn wrong_service_or_garbage_is_malformed() {
        let err = check_credential(&auth(GOOD), &Query::default(), "GK1", "garage", "k2v");
        assert!(matches!(
            err,
            Err(ApiError::AuthorizationHeaderMalformed(_))
        ));
        let err = check_credential(&auth("Basic xyz"), &Query::default(), "GK1", "garage", "s3");
        assert!(matches!(
            err,
            Err(ApiError::AuthorizationHeaderMalformed(_))
        ));
    }

    #[test]
    fn presigned_credential_is_accepted() {
        let q = Query::parse(Some(
            "X-Amz-Credential=GK1%2F20240101%2Fgarage%2Fs3%2Faws4_request",
        ))
        .expect("valid query");
        assert_eq!(
            check_credential(&HeaderMap::new(), &q, "GK1", "garage", "s3"),
            Ok(())
        );
    }

    #[test]
    fn query_decodes_keywords_values_and_plus() {
        let q = Query::parse(Some("search&prefix=a%2Fb+c&limit=3")).expect("valid query");
        assert!(q.has("search"));
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get_u64("limit"), Ok(Some(3)));
        assert!(q.get_u64("prefix").is_err());
        assert_eq!(q.get("absent"), None);
    }

    #[test]
    fn s3_errors_are_xml_and_k2v_errors_are_json() {
        let resp = ApiError::NoSuchKey.into_response(Api::S3, "garage", "/b/k", &Method::GET);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = ApiError::NotAcceptable("x".into()).into_response(
            Api::K2v,
            "garage",
            "/b/p",
            &Method::GET,
        );
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn xml_escape_escapes_specials() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
