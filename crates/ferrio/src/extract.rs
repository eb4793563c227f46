//! The extractors of connect, event and disconnect handlers.

use std::convert::Infallible;
use std::fmt;

use ferrio_engine::Utf8Bytes;
use serde::de::DeserializeOwned;

use crate::error::DisconnectReason;
use crate::handler::{FromConnectParts, FromDisconnectParts, FromEventParts, log_error};
use crate::io::Io;
use crate::payload::{Payload, PayloadError};
use crate::socket::AckSender;
use crate::socket::SocketRef;

/// An event as it reaches an event handler's extractors.
pub struct EventParts {
    socket: SocketRef,
    event: Utf8Bytes,
    args: Payload,
    ack: Option<u64>,
}

impl EventParts {
    pub(crate) fn new(
        socket: SocketRef,
        event: Utf8Bytes,
        args: Payload,
        ack: Option<u64>,
    ) -> Self {
        Self {
            socket,
            event,
            args,
            ack,
        }
    }

    /// The socket that sent the event.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The arguments.
    pub fn args(&self) -> &Payload {
        &self.args
    }

    /// The sender of the client's acknowledgement. A handler answers at most once (sending
    /// consumes the sender); if a later extractor refuses the event, the refusal answers it.
    pub fn ack_sender(&self) -> AckSender {
        AckSender::new(self.socket.clone(), self.ack)
    }

    /// An extractor refused the event: answer the client's ack with the error, or log it.
    pub(crate) fn reject(self, error: &dyn fmt::Display) {
        match self.ack {
            Some(id) => {
                let body = serde_json::json!({ "error": error.to_string() });
                let _ = self.socket.send_ack(id, &(body,));
            }
            None => log_error(&self.socket, &self.event, error),
        }
    }

    pub(crate) fn into_origin(self) -> (SocketRef, Utf8Bytes) {
        (self.socket, self.event)
    }
}

impl fmt::Debug for EventParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventParts")
            .field("socket", &self.socket.id())
            .field("event", &self.event)
            .field("args", &self.args)
            .field("ack", &self.ack)
            .finish()
    }
}

impl FromConnectParts for SocketRef {
    type Rejection = Infallible;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, Infallible> {
        Ok(socket.clone())
    }
}

impl FromEventParts for SocketRef {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(parts.socket.clone())
    }
}

impl FromDisconnectParts for SocketRef {
    type Rejection = Infallible;
    fn from_disconnect_parts(socket: &SocketRef, _: DisconnectReason) -> Result<Self, Infallible> {
        Ok(socket.clone())
    }
}

impl FromDisconnectParts for DisconnectReason {
    type Rejection = Infallible;
    fn from_disconnect_parts(_: &SocketRef, reason: DisconnectReason) -> Result<Self, Infallible> {
        Ok(reason)
    }
}

/// Typed data: in an event handler the first argument, in a connect handler or middleware
/// the `auth` payload. When it does not deserialize, the client's ack gets
/// `{"error": "..."}` (or the event is logged and skipped); in a connect middleware the
/// connection is refused with the error. A connect *handler* runs once the socket is admitted,
/// so validate `auth` in a middleware ([`ConnectHandler::with`](crate::ConnectHandler::with)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromEventParts for Data<T> {
    type Rejection = PayloadError;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, PayloadError> {
        parts.args.get(0).map(Data)
    }
}

impl<T: DeserializeOwned> FromConnectParts for Data<T> {
    type Rejection = PayloadError;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, PayloadError> {
        socket.auth().get(0).map(Data)
    }
}

/// Like [`Data`], but hands the handler the deserialization error instead of refusing.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, PayloadError>);

impl<T: DeserializeOwned> FromEventParts for TryData<T> {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(TryData(parts.args.get(0)))
    }
}

impl<T: DeserializeOwned> FromConnectParts for TryData<T> {
    type Rejection = Infallible;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, Infallible> {
        Ok(TryData(socket.auth().get(0)))
    }
}

/// All the arguments of an event as one typed sequence: `Args<(String, u32)>`,
/// `Args<Vec<serde_json::Value>>`...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args<T>(pub T);

impl<T: DeserializeOwned> FromEventParts for Args<T> {
    type Rejection = PayloadError;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, PayloadError> {
        parts.args.deserialize().map(Args)
    }
}

impl FromEventParts for Payload {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(parts.args.clone())
    }
}

impl FromEventParts for AckSender {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(parts.ack_sender())
    }
}

/// The event's name (useful in a handler shared by several events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub String);

impl FromEventParts for Event {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(Event(parts.event.to_string()))
    }
}

/// Application state given to [`IoBuilder::with_state`](crate::IoBuilder::with_state).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// The state of that type was never given to the server.
#[derive(Debug)]
pub struct MissingState(&'static str);

impl fmt::Display for MissingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no state of type {} was given to the server", self.0)
    }
}

impl std::error::Error for MissingState {}

fn state<T: Clone + Send + Sync + 'static>(socket: &SocketRef) -> Result<State<T>, MissingState> {
    socket
        .0
        .ns
        .shared
        .state
        .get::<T>()
        .cloned()
        .map(State)
        .ok_or(MissingState(std::any::type_name::<T>()))
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for State<T> {
    type Rejection = MissingState;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, MissingState> {
        state(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromEventParts for State<T> {
    type Rejection = MissingState;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, MissingState> {
        state(&parts.socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for State<T> {
    type Rejection = MissingState;
    fn from_disconnect_parts(
        socket: &SocketRef,
        _: DisconnectReason,
    ) -> Result<Self, MissingState> {
        state(socket)
    }
}

/// A copy of the socket's data of type `T` (stored with [`SocketRef::insert`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

/// The socket holds no data of that type.
#[derive(Debug)]
pub struct MissingExtension(&'static str);

impl fmt::Display for MissingExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the socket holds no data of type {}", self.0)
    }
}

impl std::error::Error for MissingExtension {}

fn extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<Extension<T>, MissingExtension> {
    socket
        .get::<T>()
        .map(Extension)
        .ok_or(MissingExtension(std::any::type_name::<T>()))
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for Extension<T> {
    type Rejection = MissingExtension;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, MissingExtension> {
        extension(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromEventParts for Extension<T> {
    type Rejection = MissingExtension;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, MissingExtension> {
        extension(&parts.socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for Extension<T> {
    type Rejection = MissingExtension;
    fn from_disconnect_parts(
        socket: &SocketRef,
        _: DisconnectReason,
    ) -> Result<Self, MissingExtension> {
        extension(socket)
    }
}

impl<T: FromEventParts> FromEventParts for Option<T> {
    type Rejection = Infallible;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Infallible> {
        Ok(T::from_event_parts(parts).ok())
    }
}

/// The server has been dropped (only possible while it shuts down).
#[derive(Debug)]
pub struct ServerGone;

impl fmt::Display for ServerGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Socket.IO server is gone")
    }
}

impl std::error::Error for ServerGone {}

fn io(socket: &SocketRef) -> Result<Io, ServerGone> {
    socket.0.ns.server.upgrade().map(Io).ok_or(ServerGone)
}

impl FromConnectParts for Io {
    type Rejection = ServerGone;
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, ServerGone> {
        io(socket)
    }
}

impl FromEventParts for Io {
    type Rejection = ServerGone;
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, ServerGone> {
        io(&parts.socket)
    }
}

impl FromDisconnectParts for Io {
    type Rejection = ServerGone;
    fn from_disconnect_parts(socket: &SocketRef, _: DisconnectReason) -> Result<Self, ServerGone> {
        io(socket)
    }
}
