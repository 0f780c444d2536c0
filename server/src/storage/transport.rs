//! HTTP/1.1 transport of the storage client: per-endpoint pools of idle hyper connections, one
//! exchange (send, capped body collection, check-in), the single safe retry, and wire errors by kind.

use std::io;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, PercentEncode, NON_ALPHANUMERIC};

use super::config::MAX_RESPONSE_BYTES;
use super::error::StorageError;
use crate::env::Env;

/// Bytes of each connection's read buffer.
const READ_BUF_BYTES: usize = 8 * 1024;

/// Which of Garage's two APIs a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// The S3 API (blobs).
    S3,
    /// The K2V API (rows).
    K2v,
}

impl Api {
    /// The SigV4 service name Garage checks in the credential scope.
    pub(crate) fn service(self) -> &'static str {
        match self {
            Api::S3 => "s3",
            Api::K2v => "k2v",
        }
    }
}

/// Whether a request may use (and take) a pooled connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// Reuse an idle connection if there is one.
    Pooled,
    /// Open a connection of its own (a PollItem that blocks for minutes).
    Dedicated,
}

/// A request before signing: the origin-form target is already percent-encoded.
#[derive(Debug)]
pub(crate) struct Req {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/bucket/pk?sort_key=a%20b`.
    pub target: String,
    /// Headers to send and sign (Host and the SigV4 headers are added later).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Req {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, target: String) -> Req {
        Req {
            method,
            target,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// A response with its body collected.
#[derive(Debug)]
pub(crate) struct Resp {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

type Conn = SendRequest<Full<Bytes>>;

/// Turns a request into the signed one to send (signing again for a retry keeps the time current).
pub(crate) type SignFn<'a> = dyn Fn(&Req) -> Result<Request<Full<Bytes>>, StorageError> + Sync + 'a;

/// One API endpoint and its idle connections.
pub(crate) struct Endpoint {
    api: Api,
    authority: String,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
}

impl Endpoint {
    /// An endpoint at `address` ("host:port", an `http://` prefix and a trailing `/` accepted).
    pub fn new(api: Api, address: &str, max_idle: usize) -> Endpoint {
        let authority = address.trim();
        let authority = authority.strip_prefix("http://").unwrap_or(authority);
        let authority = authority.trim_end_matches('/').to_string();
        Endpoint {
            api,
            authority,
            max_idle,
            idle: Mutex::new(Vec::with_capacity(max_idle)),
        }
    }

    /// "host:port", as sent in `Host`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Which API this is.
    pub fn api(&self) -> Api {
        self.api
    }

    /// Idle connections in the pool.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // A poisoned pool only means a thread panicked while holding it; the Vec is still valid.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pooled connection ready for a request, if one is idle and still open.
    async fn checkout(&self) -> Option<Conn> {
        loop {
            let mut conn = self.lock().pop()?;
            if conn.is_closed() {
                continue;
            }
            if conn.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    /// Returns a connection whose exchange completed to the pool, or drops it if the pool is full.
    fn checkin(&self, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Opens a new connection through `env`'s connector and drives it in a task of its own.
    async fn connect(&self, env: &Env) -> Result<Conn, StorageError> {
        let io = env.connector.connect(&self.authority).await?;
        // A fixed, small read buffer: hyper's adaptive one grows to the largest body seen and
        // keeps that size while the connection idles in the pool.
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .read_buf_exact_size(Some(READ_BUF_BYTES))
            .handshake(TokioIo::new(io))
            .await
            .map_err(hyper_error)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "storage connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (signed by `sign`) and collects the response. A connection that fails is
    /// dropped; one that completes goes back to the pool. A reused connection that fails before
    /// answering is replaced once when the request was never sent, or is a GET or HEAD.
    pub async fn exchange(
        &self,
        env: &Env,
        req: Req,
        pooling: Pooling,
        sign: &SignFn<'_>,
    ) -> Result<Resp, StorageError> {
        let pooled = match pooling {
            Pooling::Pooled => self.checkout().await,
            Pooling::Dedicated => None,
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect(env).await?,
        };
        let response = match conn.try_send_request(sign(&req)?).await {
            Ok(response) => response,
            Err(mut failure) => {
                let unsent = failure.take_message().is_some();
                let error = failure.into_error();
                let idempotent = req.method == Method::GET || req.method == Method::HEAD;
                let peer_closed =
                    error.is_incomplete_message() || error.is_canceled() || error.is_closed();
                if !(reused && (unsent || (idempotent && peer_closed))) {
                    return Err(hyper_error(error));
                }
                tracing::debug!(error = %error, "pooled storage connection failed; retrying once on a new one");
                drop(conn);
                conn = self.connect(env).await?;
                conn.send_request(sign(&req)?).await.map_err(hyper_error)?
            }
        };
        let (parts, body) = response.into_parts();
        let expected = if req.method == Method::HEAD {
            None
        } else {
            content_length(&parts.headers)
        };
        let body = collect(body, expected, MAX_RESPONSE_BYTES, hyper_error).await?;
        let close = parts
            .headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !close {
            self.checkin(conn);
        }
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Characters left as they are in a URI component: AWS's unreserved set, as SigV4 encodes.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters left as they are in an S3 object key path: the unreserved set and `/`.
const KEY_PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Percent-encodes a path segment or query value (`/` included).
pub(crate) fn component(s: &str) -> PercentEncode<'_> {
    utf8_percent_encode(s, COMPONENT)
}

/// Percent-encodes an S3 key for the path, keeping its `/`.
pub(crate) fn key_path(s: &str) -> PercentEncode<'_> {
    utf8_percent_encode(s, KEY_PATH)
}

/// The `Content-Length` of a response, if it has a valid one.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a whole body, refusing more than `cap` bytes. A body that arrives in one chunk is returned
/// without copying; otherwise it is gathered into one buffer sized from `expected` when known.
pub(crate) async fn collect<B>(
    mut body: B,
    expected: Option<u64>,
    cap: usize,
    map_err: fn(B::Error) -> StorageError,
) -> Result<Bytes, StorageError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    if let Some(n) = expected {
        if n > cap as u64 {
            return Err(too_large(n, cap));
        }
    }
    let mut first: Option<Bytes> = None;
    let mut gathered: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(map_err)?.into_data() else {
            continue; // trailers carry nothing this client uses
        };
        if data.is_empty() {
            continue;
        }
        len = len.saturating_add(data.len());
        if len > cap {
            return Err(too_large(len as u64, cap));
        }
        if let Some(buf) = gathered.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            let hint = expected.map_or(0, |n| n as usize).max(len);
            let mut buf = BytesMut::with_capacity(hint);
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&data);
            gathered = Some(buf);
        } else {
            first = Some(data);
        }
    }
    Ok(gathered.map(BytesMut::freeze).or(first).unwrap_or_default())
}

fn too_large(n: u64, cap: usize) -> StorageError {
    StorageError::Protocol(format!(
        "response body of {n} bytes is over the {cap}-byte cap"
    ))
}

/// A hyper error as an I/O error of the matching kind, keeping it as the cause.
pub(crate) fn hyper_error(error: hyper::Error) -> StorageError {
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        io::ErrorKind::ConnectionAborted
    } else if let Some(inner) =
        std::error::Error::source(&error).and_then(|s| s.downcast_ref::<io::Error>())
    {
        inner.kind()
    } else {
        io::ErrorKind::Other
    };
    StorageError::Io(io::Error::new(kind, error))
}

#[cfg(test)]
impl Resp {
    /// A response as the parsers of both APIs see it, for their tests.
    pub(crate) fn canned(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: &'static [u8],
    ) -> Resp {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, http::HeaderValue::from_static(v));
        }
        Resp {
            status: StatusCode::from_u16(status).expect("a valid status in a test"),
            headers: map,
            body: Bytes::from_static(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_as_sigv4_expects() {
        assert_eq!(
            component("a b+c/d=é~-_.").to_string(),
            "a%20b%2Bc%2Fd%3D%C3%A9~-_."
        );
        assert_eq!(key_path("dir/a b").to_string(), "dir/a%20b");
    }

    #[test]
    fn endpoint_accepts_bare_and_http_prefixed_addresses() {
        assert_eq!(
            Endpoint::new(Api::S3, "127.0.0.1:3900", 1).authority(),
            "127.0.0.1:3900"
        );
        assert_eq!(
            Endpoint::new(Api::K2v, "http://garage:3904/", 1).authority(),
            "garage:3904"
        );
    }

    /// A body that yields the given chunks one by one.
    struct Chunks(Vec<Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            let next = if self.0.is_empty() {
                None
            } else {
                Some(Ok(hyper::body::Frame::data(self.0.remove(0))))
            };
            std::task::Poll::Ready(next)
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Chunks {
        Chunks(parts.iter().map(|p| Bytes::from_static(p)).collect())
    }

    fn never(e: std::convert::Infallible) -> StorageError {
        match e {}
    }

    #[tokio::test]
    async fn collect_refuses_a_body_over_the_cap() {
        let err = collect(chunks(&[b"01234", b"56789", b"x"]), None, 10, never).await;
        assert!(
            matches!(err, Err(StorageError::Protocol(_))),
            "11 bytes over a 10-byte cap"
        );
        let early = collect(chunks(&[]), Some(11), 10, never).await;
        assert!(
            matches!(early, Err(StorageError::Protocol(_))),
            "a Content-Length over the cap fails early"
        );
    }

    #[tokio::test]
    async fn collect_joins_chunks_and_keeps_a_single_chunk_as_is() {
        let joined = collect(chunks(&[b"0123", b"", b"456", b"789"]), Some(10), 10, never).await;
        assert_eq!(&joined.expect("exactly at the cap")[..], b"0123456789");
        let single = Bytes::from_static(b"one chunk");
        let got = collect(Chunks(vec![single.clone()]), None, 64, never)
            .await
            .expect("small body");
        assert_eq!(
            got.as_ptr(),
            single.as_ptr(),
            "a single chunk is not copied"
        );
        let empty = collect(chunks(&[]), Some(0), 64, never)
            .await
            .expect("empty body");
        assert!(empty.is_empty());
    }
}
