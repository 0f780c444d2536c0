//! SigV4 signing of storage requests with `aws-sigv4`: service "s3" or "k2v", the configured region,
//! the body's SHA-256 in `x-amz-content-sha256`, and the time read from the environment's clock.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::Full;

use super::error::StorageError;
use super::transport::{Endpoint, Req};

/// Signs requests as one access key in one region.
pub(crate) struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    /// A signer for `key_id`/`secret` in `region`.
    pub fn new(key_id: &str, secret: &str, region: &str) -> Signer {
        let credentials = Credentials::new(key_id, secret, None, None, "imapsim-config");
        Signer {
            identity: credentials.into(),
            region: region.to_string(),
        }
    }

    /// The request ready to send to `endpoint`: origin-form target, `Host`, and the SigV4 headers
    /// (`authorization`, `x-amz-date`, `x-amz-content-sha256`) for time `now`.
    pub fn sign(
        &self,
        req: &Req,
        endpoint: &Endpoint,
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, StorageError> {
        let uri = Uri::try_from(req.target.as_str())
            .map_err(|e| StorageError::Protocol(format!("request target {:?}: {e}", req.target)))?;
        let host = HeaderValue::from_str(endpoint.authority()).map_err(|e| {
            StorageError::Protocol(format!("endpoint {:?}: {e}", endpoint.authority()))
        })?;
        let mut request = Request::new(Full::new(req.body.clone()));
        *request.method_mut() = req.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = req.headers.clone();
        request.headers_mut().insert(header::HOST, host);

        let mut settings = SigningSettings::default();
        // Garage checks S3 signatures over the path exactly as sent (encoded once, not normalised),
        // but encodes the path a second time for every other API: a K2V key with a `%XX` in its
        // path (`alice%3Akeys`) is refused as "Invalid signature" unless signed double-encoded.
        settings.percent_encoding_mode = if endpoint.api() == super::transport::Api::K2v {
            PercentEncodingMode::Double
        } else {
            PercentEncodingMode::Single
        };
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(endpoint.api().service())
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| StorageError::Protocol(format!("signing parameters: {e}")))?
            .into();

        let url = format!("http://{}{}", endpoint.authority(), req.target);
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                value.to_str().map(|v| (name.as_str(), v)).map_err(|_| {
                    StorageError::Protocol(format!("header {name} is not visible ASCII"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let signable = SignableRequest::new(
            req.method.as_str(),
            &url,
            headers.into_iter(),
            SignableBody::Bytes(&req.body),
        )
        .map_err(|e| StorageError::Protocol(format!("signable request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| StorageError::Protocol(format!("signing: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::Method;

    use super::super::transport::Api;
    use super::*;

    fn signed(api: Api, req: &Req) -> Request<Full<Bytes>> {
        let endpoint = Endpoint::new(api, "127.0.0.1:3904", 1);
        let signer = Signer::new("GK0000000000000000000000", "fakes3-secret", "garage");
        // 2024-01-02T03:04:05Z, a fixed instant: signing never reads the system clock.
        let now = UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        signer.sign(req, &endpoint, now).expect("signable request")
    }

    fn header<'a>(r: &'a Request<Full<Bytes>>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn k2v_requests_are_signed_for_the_k2v_service() {
        let req = Req::new(Method::GET, "/imapsim/pk?sort_key=a%20b".into());
        let r = signed(Api::K2v, &req);
        let auth = header(&r, "authorization");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=GK0000000000000000000000/20240102/garage/k2v/aws4_request,"));
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
            "{auth}"
        );
        assert_eq!(header(&r, "x-amz-date"), "20240102T030405Z");
        assert_eq!(header(&r, "host"), "127.0.0.1:3904");
        assert_eq!(r.uri(), "/imapsim/pk?sort_key=a%20b");
    }

    #[test]
    fn s3_requests_are_signed_for_the_s3_service_with_the_body_hash() {
        let mut req = Req::new(Method::PUT, "/imapsim/some/key".into());
        req.body = Bytes::from_static(b"hello");
        let r = signed(Api::S3, &req);
        assert!(header(&r, "authorization").contains("/20240102/garage/s3/aws4_request,"));
        // SHA-256 of "hello".
        assert_eq!(
            header(&r, "x-amz-content-sha256"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn extra_headers_are_signed() {
        let mut req = Req::new(Method::PUT, "/imapsim/pk?sort_key=s".into());
        req.headers.insert(
            "x-garage-causality-token",
            HeaderValue::from_static("opaque+/="),
        );
        let r = signed(Api::K2v, &req);
        assert!(header(&r, "authorization").contains(
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-garage-causality-token,"
        ));
    }

    #[test]
    fn same_request_and_time_sign_identically() {
        let req = Req::new(Method::GET, "/imapsim?list-type=2&prefix=a".into());
        assert_eq!(
            header(&signed(Api::S3, &req), "authorization"),
            header(&signed(Api::S3, &req), "authorization")
        );
    }
}
