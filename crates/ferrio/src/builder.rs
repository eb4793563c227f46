//! [`IoBuilder`]: the settings of a Socket.IO server, and how it is built.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrio_engine::{Cors, EngineIoConfig, EngineIoLayer, NotFound};
use tower::Layer;

use crate::adapter::{Adapter, AdapterContext, LocalAdapter, Recovery};
use crate::client::SocketIoHandler;
use crate::handler::{Guarded, IntoNamespaceHandler};
use crate::io::Io;
use crate::layer::{SocketIoLayer, SocketIoService};
use crate::observe::{Observer, Observers};
use crate::parser::Parser;
use crate::rate_limit::{EventLimiter, RateLimit};
use crate::registry::Registry;
use crate::server::{AdapterFactory, Server, Shared};

/// The settings of a Socket.IO server. Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use ferrio::Io;
///
/// let (layer, io) = Io::builder()
///     .ping_interval(Duration::from_secs(10))
///     .ack_timeout(Duration::from_secs(2))
///     .build_layer();
/// # let _ = (layer, io);
/// ```
pub struct IoBuilder {
    engine: EngineIoConfig,
    parser: Parser,
    ack_timeout: Duration,
    connect_timeout: Duration,
    max_handlers: u32,
    max_namespaces: usize,
    event_rate_limit: Option<RateLimit>,
    recovery: Option<Recovery>,
    state: http::Extensions,
    adapter: AdapterFactory,
    observers: Vec<Arc<dyn Observer>>,
}

impl Default for IoBuilder {
    fn default() -> Self {
        Self {
            engine: EngineIoConfig::default().path("/socket.io"),
            parser: Parser::default(),
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(45),
            max_handlers: 64,
            max_namespaces: 100,
            event_rate_limit: None,
            recovery: None,
            state: http::Extensions::new(),
            adapter: Arc::new(|ctx| Arc::new(LocalAdapter::new(ctx))),
            observers: Vec::new(),
        }
    }
}

impl IoBuilder {
    /// The path the server answers on, with or without a trailing slash.
    /// Default: `/socket.io/`.
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        self.engine = self.engine.path(path);
        self
    }

    /// Time between the server's pings. Default: 25 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.engine = self.engine.ping_interval(interval);
        self
    }

    /// How long a client has to answer a ping. Default: 20 s.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.ping_timeout(timeout);
        self
    }

    /// The largest HTTP body or WebSocket message accepted, in bytes. Default: 1 000 000.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.engine = self.engine.max_payload(bytes);
        self
    }

    /// Which cross-origin requests browsers may make. Default: none.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.engine = self.engine.cors(cors);
        self
    }

    /// The most header lines a request to the server's path may carry; more get `431`.
    /// Default: 64. See [`EngineIoConfig::max_header_count`].
    pub fn max_header_count(mut self, count: usize) -> Self {
        self.engine = self.engine.max_header_count(count);
        self
    }

    /// The most header bytes (names plus values) a request to the server's path may carry;
    /// more get `431`. Default: 16 KiB. See [`EngineIoConfig::max_header_bytes`].
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.engine = self.engine.max_header_bytes(bytes);
        self
    }

    /// How long a polling POST body may take to arrive; a slower one gets `408` and its
    /// session closes ("transport error"). Default: 10 s.
    /// See [`EngineIoConfig::post_body_timeout`].
    pub fn post_body_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.post_body_timeout(timeout);
        self
    }

    /// The most Engine.IO sessions (client connections) open at once; a handshake over it
    /// gets `503`. Default: none. See [`EngineIoConfig::max_sessions`].
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.engine = self.engine.max_sessions(sessions);
        self
    }

    /// The most handshakes (new connections) accepted per second, over the whole server;
    /// excess ones get `429`. Default: none.
    /// See [`EngineIoConfig::max_handshakes_per_second`].
    pub fn max_handshakes_per_second(mut self, rate: u32) -> Self {
        self.engine = self.engine.max_handshakes_per_second(rate);
        self
    }

    /// Any other Engine.IO setting (transports, upgrade timeout, an allow-request hook...).
    pub fn engine(mut self, configure: impl FnOnce(EngineIoConfig) -> EngineIoConfig) -> Self {
        self.engine = configure(self.engine);
        self
    }

    /// The parser. Default: [`Parser::Json`].
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// How long an emit with an ack waits for the client when no timeout is given.
    /// Default: 5 s.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long a new connection may take to join a namespace before it is closed.
    /// Default: 45 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many handlers of one connection may be waiting at once: handlers (event,
    /// connect, disconnect, and connect middlewares) that reached an `.await` that was not
    /// ready, and so run on their own task. Handlers that finish without waiting do not
    /// count. At least 1. Default: 64.
    ///
    /// This is backpressure, not a refusal: while the connection has this many handlers
    /// waiting, the server reads nothing more from it (a WebSocket reads no further frame,
    /// a polling `POST` is answered only once its packets are delivered), and it reads on as
    /// soon as one of them ends. Nothing is dropped, and a client that sends faster than its
    /// handlers finish is slowed down to their pace instead of growing the server's memory
    /// with tasks.
    ///
    /// While reads are paused, the server still sends (pings included) but reads no pong:
    /// a connection paused for longer than [`ping_timeout`](Self::ping_timeout) after a
    /// ping is closed ("ping timeout"). So is one whose waiting handlers wait for a later
    /// message of the same client (an acknowledgement is one, but it times out after
    /// [`ack_timeout`](Self::ack_timeout), which ends the pause); raise the bound, or
    /// `tokio::spawn` such work yourself, when handlers legitimately wait long.
    pub fn max_concurrent_handlers(mut self, handlers: usize) -> Self {
        self.max_handlers = u32::try_from(handlers).unwrap_or(u32::MAX).max(1);
        self
    }

    /// How many namespaces one connection may be in (or joining) at once. A CONNECT
    /// beyond it gets a CONNECT_ERROR whose message says so (`connect_error` with
    /// "Too many namespaces: a connection may join at most N" in `socket.io-client`); the
    /// connection and its other namespaces are unaffected, and leaving a namespace makes
    /// room again. Dynamic namespaces are not created for refused CONNECTs. At least 1.
    /// Default: 100.
    pub fn max_namespaces_per_connection(mut self, namespaces: usize) -> Self {
        self.max_namespaces = namespaces.max(1);
        self
    }

    /// Limits the events each client sends on each socket ([`RateLimit`]: a token bucket
    /// per socket, and what to do with the excess). Default: no limit.
    ///
    /// Recommended in production: a limit a few times above what your own client sends at
    /// its busiest, such as `RateLimit::per_second(100).burst(200)` for an interactive app,
    /// with [`RateLimitPolicy::Drop`](crate::RateLimitPolicy::Drop) (a legitimate client
    /// that bursts loses a few events, not its connection); use
    /// [`Disconnect`](crate::RateLimitPolicy::Disconnect) where a client over the limit is
    /// misbehaving by definition. A client that streams, such as a game sending its
    /// position 60 times a second on several events, needs a correspondingly higher rate.
    pub fn event_rate_limit(mut self, limit: RateLimit) -> Self {
        self.event_rate_limit = Some(limit);
        self
    }

    /// Application state, reachable from every handler with the [`State`](crate::State)
    /// extractor. Call it once per type. Default: none.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// Turns connection state recovery on (default: off): a client that loses its
    /// connection for a moment gets back its socket id, rooms and shared data, and every
    /// event it missed, when it reconnects within
    /// [`Recovery::max_disconnection_duration`]. See [`Recovery`] for what is kept, and
    /// [`SocketRef::recovered`](crate::SocketRef::recovered).
    ///
    /// ```
    /// use ferrio::Io;
    /// use ferrio::adapter::Recovery;
    ///
    /// let (layer, io) = Io::builder()
    ///     .connection_state_recovery(Recovery::default())
    ///     .build_layer();
    /// # let _ = (layer, io);
    /// ```
    pub fn connection_state_recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// The adapter each namespace gets. Default: [`LocalAdapter`] (in memory).
    pub fn adapter<F, A>(mut self, factory: F) -> Self
    where
        F: Fn(AdapterContext) -> A + Send + Sync + 'static,
        A: Adapter,
    {
        self.adapter = Arc::new(move |ctx| Arc::new(factory(ctx)));
        self
    }

    /// Adds an [`Observer`]: it is told of connects, disconnects, rooms joined and left,
    /// events in and out, upgrades (metrics, the Admin UI...). Default: none, and a server
    /// without observers does not prepare anything for them.
    pub fn observe(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    fn build(self) -> (EngineIoLayer, Io) {
        let shared = Arc::new(Shared {
            parser: self.parser,
            ack_timeout: self.ack_timeout,
            connect_timeout: self.connect_timeout,
            max_handlers: self.max_handlers,
            max_namespaces: self.max_namespaces,
            event_rate_limit: self.event_rate_limit.map(EventLimiter::new),
            recovery: self.recovery,
            state: self.state,
            adapter: self.adapter,
            observers: Observers::new(self.observers),
        });
        let server = Arc::new(Server {
            shared,
            registry: Registry::default(),
            engine: OnceLock::new(),
            closing: AtomicBool::new(false),
        });
        server.registry.insert_static("/", admit_all(), |setup| {
            server.new_namespace("/", setup, false)
        });
        let layer = EngineIoLayer::new(
            self.engine,
            SocketIoHandler {
                server: server.clone(),
            },
        );
        let _ = server.engine.set(layer.engine().downgrade());
        (layer, Io(server))
    }

    /// The server as a layer for an axum `Router` (or any tower service).
    pub fn build_layer(self) -> (SocketIoLayer, Io) {
        let (engine, io) = self.build();
        (SocketIoLayer::new(engine, io.clone()), io)
    }

    /// The server alone, answering `404` outside its path: for `Router::route_service`,
    /// or `Router::nest_service` with [`path`](Self::path) set to `/`.
    pub fn build_service(self) -> (SocketIoService<NotFound>, Io) {
        let (layer, io) = self.build_layer();
        (layer.layer(NotFound), io)
    }
}

fn admit_all() -> Guarded {
    fn nothing() {}
    IntoNamespaceHandler::into_guarded(nothing)
}

impl fmt::Debug for IoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoBuilder")
            .field("engine", &self.engine)
            .field("parser", &self.parser)
            .field("ack_timeout", &self.ack_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_concurrent_handlers", &self.max_handlers)
            .field("max_namespaces_per_connection", &self.max_namespaces)
            .field("event_rate_limit", &self.event_rate_limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_reach_the_engine() {
        let (_layer, io) = IoBuilder::default()
            .max_header_count(10)
            .max_header_bytes(2048)
            .post_body_timeout(Duration::from_secs(3))
            .max_sessions(7)
            .max_handshakes_per_second(5)
            .build_layer();
        let engine = io.engine().expect("the engine is alive while its layer is");
        let config = format!("{:?}", engine.config());
        for field in [
            "max_header_count: 10",
            "max_header_bytes: 2048",
            "post_body_timeout: 3s",
            "max_sessions: Some(7)",
            "max_handshakes_per_second: Some(5)",
        ] {
            assert!(config.contains(field), "{field} missing from {config}");
        }
    }
}
