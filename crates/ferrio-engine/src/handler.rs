//! What the engine tells the layer above: sessions opening, messages, and closes.

use std::fmt;

use crate::utf8::Utf8Bytes;
use bytes::Bytes;

use crate::socket::Socket;

/// Receives the events of every Engine.IO session.
///
/// For each session the calls come in this order: `on_open` once, `on_message` for each
/// message in the order the client sent them, then `on_close` exactly once. `on_close` never
/// runs inside another callback of the same session: a close requested meanwhile (by the
/// callback itself, another task or the heartbeat) is reported as soon as the callback returns.
///
/// Messages are delivered on the task that reads the client's transport, so the methods must
/// return quickly: spawn a task for slow work, and pause the session's reads
/// ([`Socket::pause_reading`]) while too much of it is under way. `on_close` runs on the task
/// that closed the session or, when a callback was running then, on that callback's task once
/// it returns. No internal lock is held during a call, so a method may freely send to or
/// close any socket. A method that panics closes its session ("transport error"); other
/// sessions and the server are unaffected.
pub trait EngineHandler: Send + Sync + 'static {
    /// A session has opened (its handshake is on its way to the client). Messages sent here
    /// reach the client right after the handshake. The session is already registered, so
    /// other tasks may reach it (and even close it) while this runs; a close is reported to
    /// `on_close` only after this returns.
    fn on_open(&self, socket: &Socket) {
        let _ = socket;
    }

    /// The session moved from HTTP long-polling to WebSocket (an upgrade completed). Does
    /// nothing unless overridden.
    fn on_upgrade(&self, socket: &Socket) {
        let _ = socket;
    }

    /// The client sent a message.
    fn on_message(&self, socket: &Socket, message: Message);

    /// The session has closed; called exactly once per session, after which the socket
    /// accepts no more messages.
    fn on_close(&self, socket: &Socket, reason: CloseReason) {
        let _ = (socket, reason);
    }
}

/// An Engine.IO message, as received from or sent to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (the data after the `4` packet type).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(Utf8Bytes::from(text))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(Utf8Bytes::from(text))
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(Bytes::from(data))
    }
}

/// Why a session closed, in the protocol's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The transport failed: an aborted poll, a broken connection, overlapping requests, an
    /// oversized WebSocket message.
    TransportError,
    /// The client closed the session (a `close` packet or a WebSocket close).
    TransportClose,
    /// The server closed the session ([`Socket::close`]).
    ForcedClose,
    /// The client did not answer a ping within `pingTimeout`.
    PingTimeout,
    /// The client sent something that is not valid Engine.IO.
    ParseError,
    /// The client left too much unread: over its
    /// [`outbound_budget`](crate::EngineIoConfig::outbound_budget) with nothing read for
    /// the [`outbound_stall_timeout`](crate::EngineIoConfig::outbound_stall_timeout), or at its
    /// [`outbound_limit`](crate::EngineIoConfig::outbound_limit). What it had not read is
    /// dropped with the session.
    SlowClient,
}

impl CloseReason {
    /// The reason as the reference implementation names it (`"ping timeout"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TransportError => "transport error",
            Self::TransportClose => "transport close",
            Self::ForcedClose => "forced close",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::SlowClient => "slow client",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// The transport's name on the wire (`polling`, `websocket`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "polling" => Some(Self::Polling),
            "websocket" => Some(Self::WebSocket),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
