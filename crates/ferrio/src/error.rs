//! Errors of the Socket.IO layer. A leaf module: it imports nothing else of the crate, so
//! every other module (the adapter seam included) may use it.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use ferrio_protocol::socketio::EncodeError;

/// Why a socket left a namespace, in the protocol's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The connection failed (an aborted poll, a broken connection, an oversized message).
    TransportError,
    /// The client closed the connection.
    TransportClose,
    /// The Engine.IO session was closed on the server side.
    ForcedClose,
    /// The client did not answer a ping in time.
    PingTimeout,
    /// The client sent something that is not valid Socket.IO: the connection was closed.
    ParseError,
    /// The server is shutting down ([`Io::close`](crate::Io::close)).
    ServerShuttingDown,
    /// The server closed the whole connection ([`SocketRef::close`](crate::SocketRef::close)).
    ForcedServerClose,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace
    /// ([`SocketRef::disconnect`](crate::SocketRef::disconnect)).
    ServerNamespaceDisconnect,
    /// The client left too much unread and stopped reading, or reached its outbound limit:
    /// the connection was closed and what it had not read dropped (see
    /// [`EngineIoConfig::outbound_budget`](crate::EngineIoConfig::outbound_budget)).
    SlowClient,
    /// The server removed the socket from the namespace because the client sent events over
    /// the [`RateLimit`](crate::RateLimit), with
    /// [`RateLimitPolicy::Disconnect`](crate::RateLimitPolicy::Disconnect). The client sees
    /// a server-side disconnect.
    RateLimited,
}

impl DisconnectReason {
    /// The reason as the reference implementation names it (`"transport close"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TransportError => "transport error",
            Self::TransportClose => "transport close",
            Self::ForcedClose => "forced close",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ServerShuttingDown => "server shutting down",
            Self::ForcedServerClose => "forced server close",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::SlowClient => "slow client",
            Self::RateLimited => "rate limited",
        }
    }

    pub(crate) fn from_engine(reason: ferrio_engine::CloseReason) -> Self {
        use ferrio_engine::CloseReason as C;
        match reason {
            C::TransportError => Self::TransportError,
            C::TransportClose => Self::TransportClose,
            C::PingTimeout => Self::PingTimeout,
            C::ParseError => Self::ParseError,
            C::SlowClient => Self::SlowClient,
            _ => Self::ForcedClose,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An emit that could not be queued.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized.
    Encode(EncodeError),
    /// The client has its [`outbound_limit`](crate::EngineIoConfig::outbound_limit) of
    /// unread messages: nothing more is queued for it, and it is being disconnected
    /// ([`DisconnectReason::SlowClient`]).
    Full,
    /// The socket is disconnected.
    Closed,
    /// The adapter could not deliver the broadcast (a distributed adapter lost its broker).
    Adapter(AdapterError),
    /// The event name is reserved by the protocol (`connect`, `disconnect`...): clients drop
    /// the connection on such an event.
    ReservedEvent(String),
}

impl From<EncodeError> for EmitError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode the packet: {e}"),
            Self::Full => f.write_str(
                "the client has too much unread: it is being disconnected as a slow client",
            ),
            Self::Closed => f.write_str("the socket is disconnected"),
            Self::Adapter(e) => write!(f, "the broadcast failed: {e}"),
            Self::ReservedEvent(name) => write!(f, "{name:?} is a reserved event name"),
        }
    }
}

impl std::error::Error for EmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(e),
            Self::Adapter(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ferrio_engine::SendError<()>> for EmitError {
    fn from(e: ferrio_engine::SendError<()>) -> Self {
        match e {
            ferrio_engine::SendError::Full(()) => Self::Full,
            _ => Self::Closed,
        }
    }
}

/// Why an acknowledgement expected from a client did not come.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer in time.
    Timeout,
    /// The socket disconnected before answering.
    Disconnected,
    /// The packet could not be sent.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the acknowledgement timed out"),
            Self::Disconnected => f.write_str("the socket disconnected before acknowledging"),
            Self::Emit(e) => write!(f, "the packet was not sent: {e}"),
        }
    }
}

impl std::error::Error for AckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Emit(e) => Some(e),
            _ => None,
        }
    }
}

/// A connect middleware's refusal: the client gets a `connect_error` with this message and,
/// when set, this data.
///
/// ```
/// use ferrio::ConnectRefusal;
/// let refusal = ConnectRefusal::new("unauthorized")
///     .with_data(&serde_json::json!({ "reason": "bad token" }));
/// # let _ = refusal;
/// ```
#[derive(Debug, Clone)]
pub struct ConnectRefusal {
    pub(crate) message: String,
    /// Kept as JSON text so the data's own field order reaches the client.
    pub(crate) data: Option<Box<serde_json::value::RawValue>>,
}

impl ConnectRefusal {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data for the client (`err.data` in `socket.io-client`): any serializable value,
    /// written in its own field order. Data that cannot be serialized is left out (and
    /// logged).
    pub fn with_data<T: serde::Serialize + ?Sized>(mut self, data: &T) -> Self {
        match serde_json::value::to_raw_value(data) {
            Ok(value) => self.data = Some(value),
            Err(e) => tracing::warn!(error = %e, "connect refusal data not serializable"),
        }
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectRefusal {}

impl From<&str> for ConnectRefusal {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<String> for ConnectRefusal {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

/// An adapter operation that failed: what kind of failure, a message, and the error that
/// caused it (a broker's I/O error...) as its [`source`](StdError::source).
///
/// Cheap to clone (the source is shared), so one failure can be reported to every caller
/// waiting on the same operation.
#[derive(Debug, Clone)]
pub struct AdapterError {
    kind: AdapterErrorKind,
    message: Cow<'static, str>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// What kind of failure an [`AdapterError`] is, for callers that decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdapterErrorKind {
    /// The broker or the other servers could not be reached.
    Unavailable,
    /// The other servers did not answer in time.
    Timeout,
    /// Something could not be encoded for the other servers.
    Encode,
    /// Something received from the other servers could not be decoded.
    Decode,
    /// The adapter was closed.
    Closed,
    /// Anything else.
    Other,
}

impl AdapterError {
    /// An error of `kind` with a message.
    pub fn new(kind: AdapterErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> AdapterErrorKind {
        self.kind
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for AdapterError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// A namespace pattern that is not a valid regular expression
/// ([`Io::dyn_ns`](crate::Io::dyn_ns)).
#[derive(Debug, Clone)]
pub struct InvalidPattern {
    pattern: String,
    reason: String,
}

impl InvalidPattern {
    pub(crate) fn new(pattern: &str, reason: impl fmt::Display) -> Self {
        Self {
            pattern: pattern.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for InvalidPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid namespace pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl StdError for InvalidPattern {}
