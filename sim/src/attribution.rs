//! Per-host attribution: a tracing layer that makes the running turmoil host the current account.
//!
//! turmoil 0.7.2 enters a span named `node` (target `turmoil::sim`, field `name` = host name)
//! around each host's tick, which polls the host's software and every task it spawned. On enter
//! this layer makes that host's [`Account`](crate::alloc::Account) current on this thread; on exit
//! it restores the previous one. Install it with `tracing::subscriber::with_default` around the
//! run: that is thread-local, so simulations on other threads keep their own attribution.
//! Every other callsite is disabled by this subscriber, so the server's own spans and events cost
//! nothing (and allocate nothing) inside a simulation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::alloc::{self, Account};

/// The name of the span turmoil enters around a host's tick.
const NODE_SPAN: &str = "node";

/// Host name -> account id, filled by the harness; shared with the layer.
#[derive(Clone, Default, Debug)]
pub struct HostAccounts {
    map: Arc<Mutex<BTreeMap<String, u16>>>,
}

impl HostAccounts {
    /// An empty map: every host is unattributed until registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Charges what host `host` allocates to `account` (several hosts may share one account).
    pub fn register(&self, host: &str, account: &Account) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(host.to_string(), account.id());
    }

    pub(crate) fn lookup(&self, host: &str) -> Option<u16> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(host).copied()
    }

    /// A subscriber that only does attribution, to pass to `tracing::subscriber::with_default`.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync {
        tracing_subscriber::registry().with(AttributionLayer {
            hosts: self.clone(),
        })
    }
}

/// Stored in the `node` span's extensions: its account and the account it replaced on enter.
struct NodeAccount {
    id: u16,
    saved: AtomicU16,
}

/// The layer; build it through [`HostAccounts::subscriber`].
pub struct AttributionLayer {
    hosts: HostAccounts,
}

fn is_node_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.name() == NODE_SPAN && metadata.target().starts_with("turmoil")
}

/// Finds the account of a `node` span from its `name` field, without allocating.
struct NameVisitor<'a> {
    hosts: &'a HostAccounts,
    account: Option<u16>,
}

impl Visit for NameVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            self.account = self.hosts.lookup(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" && self.account.is_none() {
            let name = format!("{value:?}");
            self.account = self.hosts.lookup(name.trim_matches('"'));
        }
    }
}

impl<S> Layer<S> for AttributionLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_node_span(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        is_node_span(metadata)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_node_span(attrs.metadata()) {
            return;
        }
        let mut visitor = NameVisitor {
            hosts: &self.hosts,
            account: None,
        };
        attrs.record(&mut visitor);
        let Some(account) = visitor.account else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(NodeAccount {
                id: account,
                saved: AtomicU16::new(0),
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let extensions = span.extensions();
        if let Some(node) = extensions.get::<NodeAccount>() {
            node.saved
                .store(alloc::set_current(node.id), Ordering::Relaxed);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let extensions = span.extensions();
        if let Some(node) = extensions.get::<NodeAccount>() {
            alloc::set_current(node.saved.load(Ordering::Relaxed));
        }
    }
}

/// Runs `sim` to completion with `hosts` attributed: each host's allocations (its spawned tasks'
/// included) go to its account while turmoil ticks it. Only this thread is affected.
pub fn run_attributed(sim: &mut turmoil::Sim<'_>, hosts: &HostAccounts) -> turmoil::Result {
    let dispatch = tracing::Dispatch::new(hosts.subscriber());
    tracing::dispatcher::with_default(&dispatch, || sim.run())
}
