//! Configuration of the engine, with the protocol's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cors::Cors;
use crate::sid::SidPrefix;

/// A hook that decides, from the handshake request, whether a new session may open.
type AllowRequest = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Settings of an Engine.IO server. Every setter consumes and returns the config and documents
/// its default.
///
/// ```
/// use std::time::Duration;
/// use ferrio_engine::{Cors, EngineIoConfig};
///
/// let config = EngineIoConfig::default()
///     .path("/realtime/")
///     .ping_interval(Duration::from_secs(10))
///     .max_payload(64 * 1024)
///     .cors(Cors::allow_origins(["https://app.example"]));
/// assert_eq!(config.path_str(), "/realtime");
/// ```
#[derive(Clone)]
pub struct EngineIoConfig {
    pub(crate) path: String,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) max_payload: u64,
    pub(crate) polling: bool,
    pub(crate) websocket: bool,
    pub(crate) allow_upgrades: bool,
    pub(crate) allow_request: Option<AllowRequest>,
    pub(crate) outbound: OutboundLimits,
    pub(crate) cors: Cors,
    pub(crate) ws_read_buffer_size: usize,
    pub(crate) max_header_count: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) post_body_timeout: Duration,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) max_handshakes_per_second: Option<u32>,
    pub(crate) sid_prefix: Option<SidPrefix>,
}

impl Default for EngineIoConfig {
    fn default() -> Self {
        Self {
            path: "/engine.io".to_owned(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            max_payload: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            allow_request: None,
            outbound: OutboundLimits::default(),
            cors: Cors::default(),
            ws_read_buffer_size: 512,
            max_header_count: 64,
            max_header_bytes: 16 * 1024,
            post_body_timeout: Duration::from_secs(10),
            max_sessions: None,
            max_handshakes_per_second: None,
            sid_prefix: None,
        }
    }
}

/// The outbound flow control of every session (see [`EngineIoConfig::outbound_budget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutboundLimits {
    /// Unread bytes past which the client must show progress.
    pub(crate) budget: u64,
    /// How long a session over budget may make no progress.
    pub(crate) stall_timeout: Duration,
    /// Unread bytes past which sends are refused and the session closed.
    pub(crate) limit: u64,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        Self {
            budget: 8 * 1024 * 1024,
            stall_timeout: Duration::from_secs(1),
            limit: 128 * 1024 * 1024,
        }
    }
}

impl OutboundLimits {
    /// The hard limit, never below the budget.
    pub(crate) fn limit(&self) -> u64 {
        self.limit.max(self.budget)
    }
}

impl EngineIoConfig {
    /// The path the engine serves, matched with and without a trailing slash.
    /// Default: `/engine.io/`.
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        let trimmed = path.as_ref().trim_end_matches('/');
        self.path = if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// The served path without its trailing slash (`/engine.io` by default).
    pub fn path_str(&self) -> &str {
        &self.path
    }

    /// Time between two pings sent by the server, counted from the handshake and then from
    /// each pong. Default: 25 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// How long the server waits for the pong before it closes the session with
    /// "ping timeout". Default: 20 s.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// How long an upgrade to WebSocket may take, from the WebSocket's opening to the client's
    /// `upgrade` packet, before it is cancelled. Default: 10 s.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// The largest polling request body and the largest WebSocket message, in bytes; larger
    /// ones get `413` or close code 1009. Announced to clients as `maxPayload`.
    /// Default: 1 000 000.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Whether HTTP long-polling is enabled. Default: `true`.
    pub fn polling(mut self, enabled: bool) -> Self {
        self.polling = enabled;
        self
    }

    /// Whether WebSocket is enabled. Default: `true`.
    pub fn websocket(mut self, enabled: bool) -> Self {
        self.websocket = enabled;
        self
    }

    /// Whether a polling session may upgrade to WebSocket. Default: `true`.
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.allow_upgrades = allow;
        self
    }

    /// A hook run on every handshake request, polling or WebSocket, and on the WebSocket
    /// request that starts the upgrade of a polling session; returning `false` refuses the
    /// request with `403` and code 4 (a refused upgrade leaves the session on polling). Polls
    /// and posts of an open session do not run it. Default: none, every request is allowed.
    pub fn allow_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    {
        self.allow_request = Some(Arc::new(hook));
        self
    }

    /// How many bytes of messages a client may leave unread before it must show that it
    /// reads: a session over this budget whose transport takes nothing from its queue for
    /// [`outbound_stall_timeout`](Self::outbound_stall_timeout) is closed
    /// ([`CloseReason::SlowClient`](crate::CloseReason::SlowClient)) and its queue freed. A
    /// client that keeps reading may go over it for as long as it keeps up: a burst never
    /// costs it a message. Messages encoded once for many sessions
    /// ([`PreparedMessage`](crate::PreparedMessage)) count in each session's budget but are
    /// held in memory once. Default: 8 MiB.
    pub fn outbound_budget(mut self, bytes: usize) -> Self {
        self.outbound.budget = bytes as u64;
        self
    }

    /// How long a session over its [`outbound_budget`](Self::outbound_budget) may go without
    /// its transport taking anything from the queue (a WebSocket client that stopped reading,
    /// a polling client that stopped polling) before it is closed. Default: 1 s.
    pub fn outbound_stall_timeout(mut self, timeout: Duration) -> Self {
        self.outbound.stall_timeout = timeout;
        self
    }

    /// The most bytes of unread messages a session may hold, whether or not its client
    /// reads: a send past it is refused ([`SendError::Full`](crate::SendError::Full)) and
    /// the session closed ([`CloseReason::SlowClient`](crate::CloseReason::SlowClient)), so
    /// a client that reads slower than it is sent to cannot hold more than this. Never below
    /// the budget. Default: 128 MiB.
    pub fn outbound_limit(mut self, bytes: usize) -> Self {
        self.outbound.limit = bytes as u64;
        self
    }

    /// Which origins browsers may connect from. Default: [`Cors::disabled`].
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = cors;
        self
    }

    /// The read buffer of each WebSocket, in bytes (at least 256): every connection holds
    /// one for its whole life, so small buffers keep idle sockets cheap. It does not bound
    /// messages, which still arrive whole up to [`max_payload`](Self::max_payload), nor
    /// does it make large ones cost one read system call per buffer's worth: while data
    /// streams in, the engine reads the socket 64 KiB at a time into a buffer it frees
    /// once the socket has nothing more waiting. Default: 512.
    pub fn websocket_read_buffer_size(mut self, bytes: usize) -> Self {
        self.ws_read_buffer_size = bytes.max(256);
        self
    }

    /// The most header lines a request to the engine may carry (a header sent twice counts
    /// twice); a request with more is refused with `431`, before any session is looked up
    /// or opened. Default: 64.
    ///
    /// The HTTP server in front applies its own caps first: `axum::serve` (hyper) refuses
    /// HTTP/1.1 requests with more than 100 headers or a head larger than its read buffer
    /// (about 400 KiB), and HTTP/2 header lists over 16 KiB.
    pub fn max_header_count(mut self, count: usize) -> Self {
        self.max_header_count = count;
        self
    }

    /// The most header bytes (names plus values, summed over every header line) a request
    /// to the engine may carry; a request with more is refused with `431`, before any
    /// session is looked up or opened. Default: 16 KiB (16 384), as Node.js's
    /// `maxHttpHeaderSize`.
    ///
    /// The HTTP server in front applies its own caps first; see
    /// [`max_header_count`](Self::max_header_count).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// How long the body of a polling POST may take to arrive in full, counted from when the
    /// engine starts reading it. A post still incomplete then is answered `408`, none of its
    /// packets is delivered, and its session closes with "transport error": a client that
    /// trickles its body (slow loris) holds a connection no longer than this.
    /// Default: 10 s.
    pub fn post_body_timeout(mut self, timeout: Duration) -> Self {
        self.post_body_timeout = timeout;
        self
    }

    /// The most sessions open at once (at least 1). A handshake over the cap is refused with
    /// `503` and `{"code":6,"message":"Too many sessions"}`; open sessions are not
    /// affected, and a slot frees as soon as a session closes. A WebSocket handshake holds
    /// its slot from the request on. Default: none, no cap.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = Some(sessions.max(1));
        self
    }

    /// The most handshakes accepted per second (at least 1), as a token bucket that holds a
    /// second's worth: a burst of `rate` handshakes passes at once, then one more every
    /// `1/rate` seconds. A handshake over the rate is refused with `429`, `Retry-After: 1`
    /// and `{"code":7,"message":"Too many handshakes"}`; polls, posts and upgrades of open
    /// sessions are not counted. The rate is global, not per client. Default: none, no cap.
    ///
    /// tower's `RateLimitLayer` cannot stand in for it: it makes requests wait instead of
    /// refusing them, and it would count every poll.
    pub fn max_handshakes_per_second(mut self, rate: u32) -> Self {
        self.max_handshakes_per_second = Some(rate.max(1));
        self
    }

    /// Starts every session id this engine makes with `prefix` (the rest stays random), so
    /// that a cluster can tell from a sid which server owns the session. Default: none.
    ///
    /// ```
    /// use ferrio_engine::{EngineIoConfig, SidPrefix};
    ///
    /// let prefix = SidPrefix::new("n1a2").expect("URL-safe and short");
    /// let config = EngineIoConfig::default().sid_prefix(prefix);
    /// # let _ = config;
    /// ```
    pub fn sid_prefix(mut self, prefix: SidPrefix) -> Self {
        self.sid_prefix = Some(prefix);
        self
    }

    pub(crate) fn transport_enabled(&self, transport: crate::Transport) -> bool {
        match transport {
            crate::Transport::Polling => self.polling,
            crate::Transport::WebSocket => self.websocket,
        }
    }
}

impl fmt::Debug for EngineIoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineIoConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("allow_request", &self.allow_request.is_some())
            .field("outbound", &self.outbound)
            .field("cors", &self.cors)
            .field("ws_read_buffer_size", &self.ws_read_buffer_size)
            .field("max_header_count", &self.max_header_count)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("post_body_timeout", &self.post_body_timeout)
            .field("max_sessions", &self.max_sessions)
            .field("max_handshakes_per_second", &self.max_handshakes_per_second)
            .finish()
    }
}
