//! Prometheus metrics (feature `metrics`): an [`Observer`] that counts, and renders the
//! counts in the Prometheus text format (version 0.0.4).
//!
//! The Socket.IO names are those of the npm package `socket.io-prometheus-metrics`, with a
//! `namespace` label; the Engine.IO figures are read from the engine when rendering.
//!
//! ```
//! use ferrio::Io;
//! use ferrio::metrics::Metrics;
//!
//! let metrics = Metrics::new();
//! let (layer, io) = Io::builder().observe(metrics.clone()).build_layer();
//! let text = metrics.render(&io); // serve it on GET /metrics, as Metrics::CONTENT_TYPE
//! assert!(text.contains("engine_io_upgrades_total 0"));
//! # let _ = layer;
//! ```

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Weak};

use ferrio_engine::Transport;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::adapter::AdapterError;
use crate::error::DisconnectReason;
use crate::io::Io;
use crate::observe::{Observer, Sent};
use crate::payload::Payload;
use crate::socket::SocketRef;

/// Prometheus metrics of one server. Register it with
/// [`IoBuilder::observe`](crate::IoBuilder::observe) (a clone: clones share their counts),
/// and serve [`render`](Self::render).
///
/// | metric | type | labels |
/// |---|---|---|
/// | `socket_io_connected` | gauge | `namespace` |
/// | `socket_io_connect_total` | counter | `namespace` |
/// | `socket_io_disconnect_total` | counter | `namespace` |
/// | `socket_io_events_received_total` | counter | `namespace` |
/// | `socket_io_events_sent_total` | counter | `namespace` |
/// | `socket_io_recv_bytes` | counter | `namespace` |
/// | `socket_io_transmit_bytes` | counter | `namespace` |
/// | `socket_io_errors_total` | counter (refused connects) | `namespace` |
/// | `socket_io_volatile_dropped_total` | counter | `namespace` |
/// | `socket_io_adapter_errors_total` | counter | `namespace` |
/// | `engine_io_sessions` | gauge | `transport` (`polling`, `websocket`) |
/// | `engine_io_upgrades_total` | counter | |
/// | `engine_io_slow_client_closes_total` | counter | |
/// | `engine_io_outbound_high_water_bytes` | gauge | |
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    connected: IntGaugeVec,
    connects: IntCounterVec,
    disconnects: IntCounterVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    recv_bytes: IntCounterVec,
    transmit_bytes: IntCounterVec,
    errors: IntCounterVec,
    dropped: IntCounterVec,
    adapter_errors: IntCounterVec,
    sessions: IntGaugeVec,
    upgrades: IntCounter,
    slow_closes: IntCounter,
    high_water: IntGauge,
}

/// A namespace's event counters.
#[derive(Clone)]
struct Traffic {
    received: IntCounter,
    recv_bytes: IntCounter,
    sent: IntCounter,
    transmit_bytes: IntCounter,
}

/// Namespaces whose counters each thread keeps at hand; events of others (an application
/// with many dynamic namespaces) look theirs up each time.
const TRAFFIC_KEPT: usize = 16;

/// One server's counters for one namespace, kept by a thread.
type KeptTraffic = (Weak<Inner>, Box<str>, Traffic);

thread_local! {
    /// The event counters of the namespaces this thread counted for, by server: found
    /// without a lock or a label lookup (hashing) for every event. The `Weak` names the
    /// server's metrics and keeps their allocation from being reused by another while
    /// the entry exists.
    static TRAFFIC: RefCell<Vec<KeptTraffic>> = const { RefCell::new(Vec::new()) };
}

impl Metrics {
    fn traffic(&self, ns: &str, count: impl FnOnce(&Traffic)) {
        let me = Arc::as_ptr(&self.0);
        let mut count = Some(count);
        let _ = TRAFFIC.try_with(|kept| {
            let Ok(kept) = kept.try_borrow() else {
                return;
            };
            let found = kept
                .iter()
                .find(|(metrics, name, _)| std::ptr::eq(metrics.as_ptr(), me) && **name == *ns);
            if let Some((_, _, traffic)) = found {
                if let Some(count) = count.take() {
                    count(traffic);
                }
            }
        });
        let Some(count) = count else {
            return;
        };
        let labels = [ns];
        let inner = &self.0;
        let traffic = Traffic {
            received: inner.received.with_label_values(&labels),
            recv_bytes: inner.recv_bytes.with_label_values(&labels),
            sent: inner.sent.with_label_values(&labels),
            transmit_bytes: inner.transmit_bytes.with_label_values(&labels),
        };
        // `count` was not called above: the entry was missing (or the cache busy).
        let _ = TRAFFIC.try_with(|kept| {
            let Ok(mut kept) = kept.try_borrow_mut() else {
                return;
            };
            if kept.len() >= TRAFFIC_KEPT {
                // Forget the servers that are gone before giving up.
                kept.retain(|(metrics, _, _)| metrics.strong_count() > 0);
            }
            if kept.len() < TRAFFIC_KEPT {
                kept.push((Arc::downgrade(inner), ns.into(), traffic.clone()));
            }
        });
        count(&traffic);
    }
}

fn by_namespace(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &["namespace"])
        .expect("a valid metric name and label")
}

impl Metrics {
    /// The content type of [`render`](Self::render)'s text.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4";

    /// Metrics in a registry of their own.
    pub fn new() -> Self {
        Self::with_registry(Registry::new())
    }

    /// Metrics registered in `registry` (which may hold the application's own).
    ///
    /// # Panics
    /// If `registry` already holds metrics of these names.
    pub fn with_registry(registry: Registry) -> Self {
        let inner = Inner {
            connected: IntGaugeVec::new(
                Opts::new("socket_io_connected", "Sockets connected now"),
                &["namespace"],
            )
            .expect("a valid metric name and label"),
            connects: by_namespace("socket_io_connect_total", "Sockets admitted"),
            disconnects: by_namespace("socket_io_disconnect_total", "Sockets that left"),
            received: by_namespace(
                "socket_io_events_received_total",
                "Events received from clients",
            ),
            sent: by_namespace("socket_io_events_sent_total", "Events queued for clients"),
            recv_bytes: by_namespace("socket_io_recv_bytes", "Bytes of events received"),
            transmit_bytes: by_namespace(
                "socket_io_transmit_bytes",
                "Bytes of events queued for clients",
            ),
            errors: by_namespace("socket_io_errors_total", "Refused connects"),
            dropped: by_namespace(
                "socket_io_volatile_dropped_total",
                "Volatile packets dropped for lagging clients",
            ),
            adapter_errors: by_namespace(
                "socket_io_adapter_errors_total",
                "Failed adapter operations",
            ),
            sessions: IntGaugeVec::new(
                Opts::new("engine_io_sessions", "Engine.IO sessions open now"),
                &["transport"],
            )
            .expect("a valid metric name and label"),
            upgrades: IntCounter::new(
                "engine_io_upgrades_total",
                "Sessions upgraded from polling to WebSocket",
            )
            .expect("a valid metric name"),
            slow_closes: IntCounter::new(
                "engine_io_slow_client_closes_total",
                "Sessions closed as slow clients, their unread packets dropped",
            )
            .expect("a valid metric name"),
            high_water: IntGauge::new(
                "engine_io_outbound_high_water_bytes",
                "The most bytes one session ever had queued and unsent",
            )
            .expect("a valid metric name"),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 14] = [
            Box::new(inner.connected.clone()),
            Box::new(inner.connects.clone()),
            Box::new(inner.disconnects.clone()),
            Box::new(inner.received.clone()),
            Box::new(inner.sent.clone()),
            Box::new(inner.recv_bytes.clone()),
            Box::new(inner.transmit_bytes.clone()),
            Box::new(inner.errors.clone()),
            Box::new(inner.dropped.clone()),
            Box::new(inner.adapter_errors.clone()),
            Box::new(inner.sessions.clone()),
            Box::new(inner.upgrades.clone()),
            Box::new(inner.slow_closes.clone()),
            Box::new(inner.high_water.clone()),
        ];
        for collector in collectors {
            inner
                .registry
                .register(collector)
                .expect("the registry holds no metric of these names");
        }
        Self(Arc::new(inner))
    }

    /// The registry, to add the application's own metrics.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// The metrics of `io`'s server in the Prometheus text format, version 0.0.4; the
    /// engine's figures are read now.
    pub fn render(&self, io: &Io) -> String {
        let inner = &self.0;
        if let Some(engine) = io.engine() {
            let (mut polling, mut websocket) = (0, 0);
            for session in engine.sockets() {
                match session.transport() {
                    Transport::Polling => polling += 1,
                    Transport::WebSocket => websocket += 1,
                }
            }
            inner.sessions.with_label_values(&["polling"]).set(polling);
            inner
                .sessions
                .with_label_values(&["websocket"])
                .set(websocket);
            let stats = engine.stats();
            let catch_up = |counter: &IntCounter, total: u64| {
                let now = counter.get();
                if total > now {
                    counter.inc_by(total - now);
                }
            };
            catch_up(&inner.upgrades, stats.upgrades);
            catch_up(&inner.slow_closes, stats.slow_client_closes);
            inner
                .high_water
                .set(i64::try_from(stats.outbound_high_water).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&inner.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn bytes(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Observer for Metrics {
    fn socket_connected(&self, socket: &SocketRef) {
        let ns = [socket.ns()];
        self.0.connected.with_label_values(&ns).inc();
        self.0.connects.with_label_values(&ns).inc();
    }

    fn socket_disconnected(&self, socket: &SocketRef, _reason: DisconnectReason) {
        let ns = [socket.ns()];
        self.0.connected.with_label_values(&ns).dec();
        self.0.disconnects.with_label_values(&ns).inc();
    }

    fn connect_refused(&self, nsp: &str, _message: &str) {
        self.0.errors.with_label_values(&[nsp]).inc();
    }

    fn event_received(&self, socket: &SocketRef, _event: &str, _args: &Payload, size: usize) {
        self.traffic(socket.ns(), |traffic| {
            traffic.received.inc();
            traffic.recv_bytes.inc_by(bytes(size));
        });
    }

    fn event_sent(&self, socket: &SocketRef, sent: &Sent<'_>) {
        self.broadcast_sent(socket.ns(), sent, 1);
    }

    fn broadcast_sent(&self, nsp: &str, sent: &Sent<'_>, sockets: usize) {
        let sockets = bytes(sockets);
        self.traffic(nsp, |traffic| {
            traffic.sent.inc_by(sockets);
            traffic
                .transmit_bytes
                .inc_by(bytes(sent.bytes()).saturating_mul(sockets));
        });
    }

    fn takes_whole_broadcasts(&self) -> bool {
        true
    }

    fn packet_dropped(&self, socket: &SocketRef) {
        self.0.dropped.with_label_values(&[socket.ns()]).inc();
    }

    fn adapter_error(&self, nsp: &str, _error: &AdapterError) {
        self.0.adapter_errors.with_label_values(&[nsp]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(metrics: &Metrics, ns: &str) -> u64 {
        metrics.0.received.with_label_values(&[ns]).get()
    }

    #[test]
    fn kept_counters_belong_to_their_server_and_namespace() {
        let (a, b) = (Metrics::new(), Metrics::new());
        for _ in 0..3 {
            a.traffic("/", |t| t.received.inc());
        }
        b.traffic("/", |t| t.received.inc());
        a.traffic("/chat", |t| t.received.inc());
        assert_eq!(
            (received(&a, "/"), received(&b, "/"), received(&a, "/chat")),
            (3, 1, 1)
        );
        // More namespaces than a thread keeps: the others are still counted.
        for i in 0..2 * TRAFFIC_KEPT {
            a.traffic(&format!("/n{i}"), |t| t.received.inc());
            a.traffic(&format!("/n{i}"), |t| t.received.inc());
        }
        assert!((0..2 * TRAFFIC_KEPT).all(|i| received(&a, &format!("/n{i}")) == 2));
        // A server that is gone frees its place for a new one at the same address.
        drop(b);
        let c = Metrics::new();
        c.traffic("/", |t| t.received.inc());
        assert_eq!(received(&c, "/"), 1);
    }
}
