//! A tiny raw hyper client for the fakes3 tests: in-memory duplex connections (so paused tokio time works)
//! or loopback TCP, with a SigV4-shaped `Authorization` header (signatures are not checked).

#![allow(dead_code)]

use bytes::Bytes;
use fakes3::{Api, Config, FakeS3};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// The access key id of [`Config::default`].
pub fn key_id() -> String {
    Config::default().key_id
}

/// A store with default settings.
pub fn fake() -> FakeS3 {
    FakeS3::new(Config::default()).expect("default config is valid")
}

/// An `Authorization` header value naming `key_id` for `service`.
pub fn authorization(key_id: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={key_id}/20240101/garage/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

/// One HTTP/1.1 connection to a store.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    service: &'static str,
}

/// A response, body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts an S3 error answer: `status`, and `code` in its XML.
    pub fn assert_s3_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.xml("Code").as_deref(), Some(code), "{}", self.text());
    }

    /// Asserts a K2V error answer: `status`, and `code` in its JSON.
    pub fn assert_k2v_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.json()["code"], code, "{}", self.text());
    }

    /// The text between the first `<tag>` and `</tag>`.
    pub fn xml(&self, tag: &str) -> Option<String> {
        let text = self.text();
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].to_string())
    }

    /// Every text between `<tag>` and `</tag>`.
    pub fn xml_all(&self, tag: &str) -> Vec<String> {
        let text = self.text();
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let Some(j) = rest.find(&close) else { break };
            out.push(rest[..j].to_string());
            rest = &rest[j..];
        }
        out
    }
}

/// A request with exactly these headers (plus Host).
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "fakes3");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(body.into()))
        .expect("test request is well formed")
}

impl Client {
    /// Connects over an in-memory pipe to a new connection served by `fake`.
    pub async fn connect(fake: &FakeS3, api: Api) -> Client {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let server = fake.clone();
        tokio::spawn(async move {
            let _ = server.serve_connection(api, server_io).await;
        });
        Client::over(client_io, api).await
    }

    /// Speaks HTTP/1.1 over `io`.
    pub async fn over<IO>(io: IO, api: Api) -> Client
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let service = match api {
            Api::S3 => "s3",
            Api::K2v => "k2v",
        };
        Client { sender, service }
    }

    /// Sends a request signed for the default key.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let auth = authorization(&key_id(), self.service);
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.send(request(method, path, &all, body)).await
    }

    /// A GET with no body.
    pub async fn get(&mut self, path: &str) -> Reply {
        self.call("GET", path, &[], "").await
    }

    /// A GET whose `Accept` header is `accept`.
    pub async fn get_accepting(&mut self, path: &str, accept: &str) -> Reply {
        self.call("GET", path, &[("accept", accept)], "").await
    }

    /// A POST of `body`.
    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.call("POST", path, &[], body).await
    }

    /// A PUT of `body` with one more header.
    pub async fn put_with(
        &mut self,
        path: &str,
        header: (&str, &str),
        body: impl Into<Bytes>,
    ) -> Reply {
        self.call("PUT", path, &[header], body).await
    }

    /// A request carrying the K2V causality token `token`.
    pub async fn with_token(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: impl Into<Bytes>,
    ) -> Reply {
        let headers = [("x-garage-causality-token", token)];
        self.call(method, path, &headers, body).await
    }

    /// Sends `request` as it is.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.expect("connection is ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("response arrives");
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .expect("response body arrives")
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}
