//! fakes3: an in-memory store speaking the subset of Garage's S3 and K2V HTTP APIs that imapsim's server
//! uses, with seeded fault injection. It serves connections handed to it (turmoil streams in a
//! simulation) or listens on loopback TCP; state is ordered (`BTreeMap`) and every random draw comes from one
//! `ChaCha8Rng` seeded by [`Config::seed`], so a run is reproducible.

pub mod causality;
mod config;
pub mod faults;
pub mod http;
pub mod k2v;
pub mod s3;
mod store;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use crate::config::{Api, Config, ConfigError, Faults, Op};
use crate::faults::Fault;
use crate::http::{check_credential, read_body, ApiError, Query, Resp};
use crate::k2v::K2vRequest;
use crate::s3::S3Request;
use crate::store::{Counters, Shared, State};

/// A fake S3 + K2V store. Cloning is cheap and every clone serves the same state.
#[derive(Clone)]
pub struct FakeS3 {
    inner: Arc<Shared>,
}

/// Counters of a store since it was built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Requests routed to each operation (every operation is listed, zeros included).
    pub requests: BTreeMap<Op, u64>,
    /// Requests answered with an error that was not injected (bad request, no such key, auth...).
    pub rejected_requests: u64,
    /// Injected 500/503 answers; the request was not applied.
    pub injected_errors: u64,
    /// Injected lost responses; the request was applied, then answered 500.
    pub injected_lost_responses: u64,
    /// Requests delayed by injected latency.
    pub injected_delays: u64,
    /// Total injected latency, in milliseconds.
    pub injected_delay_ms: u64,
    /// S3 objects stored.
    pub objects: u64,
    /// Bytes of S3 objects stored.
    pub object_bytes: u64,
    /// K2V items stored, tombstones included.
    pub items: u64,
    /// Bytes of K2V values stored (distinct concurrent values counted once).
    pub item_bytes: u64,
    /// K2V items that PollItem requests are waiting on right now.
    pub polled_items: u64,
}

impl Stats {
    /// Requests of every operation.
    pub fn requests_total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Bytes stored by both APIs.
    pub fn bytes_stored(&self) -> u64 {
        self.object_bytes + self.item_bytes
    }
}

/// A request after routing.
enum Route {
    S3(S3Request),
    K2v(K2vRequest),
}

impl Route {
    fn op(&self) -> Op {
        match self {
            Route::S3(r) => r.op(),
            Route::K2v(r) => r.op(),
        }
    }
}

impl FakeS3 {
    /// Builds an empty store after checking `config`.
    pub fn new(config: Config) -> Result<FakeS3, ConfigError> {
        config.validate()?;
        let state = State {
            objects: BTreeMap::new(),
            partitions: BTreeMap::new(),
            watchers: BTreeMap::new(),
            partition_watchers: BTreeMap::new(),
            k2v_writes: 0,
            faults: config.faults,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            counters: Counters::default(),
        };
        Ok(FakeS3 {
            inner: Arc::new(Shared {
                bucket: config.bucket,
                key_id: config.key_id,
                region: config.region,
                max_body_bytes: config.max_body_bytes,
                date_header: config.date_header,
                state: Mutex::new(state),
            }),
        })
    }

    /// Replaces the faults (fault scenarios change them at run time). The RNG carries on.
    pub fn set_faults(&self, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        self.inner.lock().faults = faults;
        Ok(())
    }

    /// The bucket both APIs serve.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The region clients must sign for.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Serves HTTP/1.1 requests of `api` on one connection until the peer closes it.
    pub async fn serve_connection<IO>(&self, api: Api, io: IO) -> Result<(), hyper::Error>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let fake = self.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.respond(api, req).await) }
        });
        http1::Builder::new()
            .auto_date_header(self.inner.date_header)
            .serve_connection(TokioIo::new(io), service)
            .await
    }

    /// Listens on two TCP addresses (port 0 picks a free one), S3 on the first and K2V on the second, and
    /// spawns accept loops on the current tokio runtime. Returns the bound addresses.
    pub async fn serve_loopback(
        &self,
        s3_addr: &str,
        k2v_addr: &str,
    ) -> std::io::Result<(SocketAddr, SocketAddr)> {
        let s3 = tokio::net::TcpListener::bind(s3_addr).await?;
        let k2v = tokio::net::TcpListener::bind(k2v_addr).await?;
        let addrs = (s3.local_addr()?, k2v.local_addr()?);
        for (listener, api) in [(s3, Api::S3), (k2v, Api::K2v)] {
            let fake = self.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let fake = fake.clone();
                            tokio::spawn(async move {
                                if let Err(e) = fake.serve_connection(api, stream).await {
                                    tracing::debug!(error = %e, "fakes3 connection ended with an error");
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "fakes3 accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        Ok(addrs)
    }

    /// Every S3 object, in key order.
    pub fn objects(&self) -> Vec<(String, Bytes)> {
        let state = self.inner.lock();
        state
            .objects
            .iter()
            .map(|(k, o)| (k.clone(), o.data.clone()))
            .collect()
    }

    /// Every K2V item as (partition key, sort key, distinct values with `None` for tombstones), in key order.
    pub fn rows(&self) -> Vec<(String, String, Vec<Option<Bytes>>)> {
        let state = self.inner.lock();
        let mut rows = Vec::new();
        for (pk, partition) in &state.partitions {
            for (sk, item) in &partition.items {
                rows.push((
                    pk.clone(),
                    sk.clone(),
                    item.values().into_iter().cloned().collect(),
                ));
            }
        }
        rows
    }

    /// Request, fault and storage counters.
    pub fn stats(&self) -> Stats {
        let state = self.inner.lock();
        let c = &state.counters;
        let mut stats = Stats {
            requests: Op::ALL
                .iter()
                .map(|op| (*op, c.requests[*op as usize]))
                .collect(),
            rejected_requests: c.rejected,
            injected_errors: c.injected_errors,
            injected_lost_responses: c.injected_lost_responses,
            injected_delays: c.injected_delays,
            injected_delay_ms: c.injected_delay_ms,
            objects: state.objects.len() as u64,
            object_bytes: state.objects.values().map(|o| o.data.len() as u64).sum(),
            polled_items: state.watchers.values().map(|m| m.len() as u64).sum(),
            ..Stats::default()
        };
        for partition in state.partitions.values() {
            stats.items += partition.items.len() as u64;
            stats.item_bytes += partition.counts.bytes;
        }
        stats
    }

    /// Answers one request; never fails (errors become S3 XML or K2V JSON responses).
    async fn respond(&self, api: Api, req: Request<Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let shared = &*self.inner;
        let error =
            |e: ApiError| e.into_response(api, &shared.region, parts.uri.path(), &parts.method);
        let reject = |e: ApiError| {
            shared.lock().counters.rejected += 1;
            error(e)
        };

        let (query, route) = match self.route(api, &parts) {
            Ok(r) => r,
            Err(e) => return reject(e),
        };
        let body = match read_body(body, &parts.headers, shared.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return reject(e),
        };
        let op = route.op();
        let decision = {
            let mut state = shared.lock();
            let state = &mut *state;
            state.counters.requests[op as usize] += 1;
            let decision = faults::decide(&state.faults, &mut state.rng, op);
            if decision.latency_ms > 0 {
                state.counters.injected_delays += 1;
                state.counters.injected_delay_ms += decision.latency_ms;
            }
            match decision.fault {
                Some(Fault::Error500 | Fault::Error503) => state.counters.injected_errors += 1,
                Some(Fault::LostResponse) => state.counters.injected_lost_responses += 1,
                None => {}
            }
            decision
        };
        if decision.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
        }
        match decision.fault {
            Some(Fault::Error500) => {
                return error(ApiError::InternalError(
                    "injected fault: the request was not applied".to_string(),
                ))
            }
            Some(Fault::Error503) => {
                return error(ApiError::ServiceUnavailable(
                    "injected fault: the request was not applied".to_string(),
                ))
            }
            _ => {}
        }

        let result = match route {
            Route::S3(request) => {
                let mut state = shared.lock();
                s3::handle(
                    &mut state,
                    &shared.bucket,
                    request,
                    &query,
                    &parts.headers,
                    body,
                )
            }
            Route::K2v(K2vRequest::PollItem {
                pk,
                sk,
                format,
                context,
                timeout_s,
            }) => k2v::poll_item(shared, &pk, &sk, format, &context, timeout_s).await,
            Route::K2v(K2vRequest::PollRange { pk }) => k2v::poll_range(shared, &pk, &body).await,
            Route::K2v(request) => {
                let mut state = shared.lock();
                k2v::handle(&mut state, request, body)
            }
        };
        if decision.fault == Some(Fault::LostResponse) {
            return error(ApiError::InternalError(
                "injected fault: the request was applied but its response was lost".to_string(),
            ));
        }
        match result {
            Ok(resp) => resp,
            Err(e) => reject(e),
        }
    }

    /// Checks credentials and finds the operation.
    fn route(&self, api: Api, parts: &::http::request::Parts) -> Result<(Query, Route), ApiError> {
        let shared = &*self.inner;
        let query = Query::parse(parts.uri.query())?;
        let service = match api {
            Api::S3 => "s3",
            Api::K2v => "k2v",
        };
        check_credential(
            &parts.headers,
            &query,
            &shared.key_id,
            &shared.region,
            service,
        )?;
        let (method, path, headers) = (&parts.method, parts.uri.path(), &parts.headers);
        let bucket = shared.bucket.as_str();
        let route = match api {
            Api::S3 => Route::S3(s3::route(method, path, &query, headers, bucket)?),
            Api::K2v => Route::K2v(k2v::route(method, path, &query, headers, bucket)?),
        };
        Ok((query, route))
    }
}
