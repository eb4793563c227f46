//! [`AdapterContext`]: the one way an adapter reaches the sockets of its namespace on this
//! server, through the narrow [`LocalSockets`] interface.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrio_engine::Sid;

use super::{BroadcastPacket, Recovery, RemoteSocketData, Room, ServerAck};
use crate::ack::AckFuture;
use crate::parser::Parser;
use crate::payload::Payload;

/// Which local sockets an operation reaches.
#[derive(Clone, Copy)]
pub enum Recipients<'a> {
    /// Every socket of the namespace on this server that the filter keeps.
    All(&'a (dyn Fn(Sid) -> bool + Sync)),
    /// These sockets; ids of sockets not connected here are skipped.
    Only(&'a [Sid]),
}

impl fmt::Debug for Recipients<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All(_) => f.write_str("All(..)"),
            Self::Only(sids) => f.debug_tuple("Only").field(sids).finish(),
        }
    }
}

/// The sockets of one namespace on this server, as its adapter reaches them: deliver,
/// collect acks, describe, disconnect, and hand over events from other servers.
///
/// The namespace implements it; an adapter gets it through its [`AdapterContext`]. Tests of
/// an adapter may implement it with fakes.
pub trait LocalSockets: Send + Sync + 'static {
    /// The parser the namespace's clients use.
    fn parser(&self) -> Parser;

    /// How long a broadcast with acks waits when no timeout is given.
    fn ack_timeout(&self) -> Duration;

    /// The ids of every socket of the namespace on this server.
    fn socket_ids(&self) -> Vec<Sid>;

    /// Queues `packet` for the recipients; with `volatile`, skips those whose transport is
    /// behind. Returns how many sockets it was queued for.
    fn send(&self, to: Recipients<'_>, packet: &BroadcastPacket, volatile: bool) -> usize;

    /// Queues `packet` for the recipients, each asked to acknowledge it within `timeout`.
    /// The ack id is this server's (the packet is encoded again if it carries another).
    fn send_with_ack(
        &self,
        to: Recipients<'_>,
        packet: &BroadcastPacket,
        timeout: Duration,
    ) -> Vec<(Sid, AckFuture)>;

    /// Describes the recipients (handshake, shared data); `rooms` is left empty, as the
    /// adapter is what knows them.
    fn describe(&self, to: Recipients<'_>) -> Vec<RemoteSocketData>;

    /// Disconnects the recipients from the namespace (`close`: their whole connections).
    fn disconnect(&self, to: Recipients<'_>, close: bool);

    /// Runs this server's handler of a server-side event another server emitted.
    fn server_event(&self, event: &str, args: Payload, ack: ServerAck);

    /// The socket `sid` joined (`joined`) or left `rooms`, as the adapter's room index saw
    /// it. Called only when [`AdapterContext::room_events`] is on. Does nothing by default.
    fn rooms_changed(&self, sid: Sid, rooms: &[Room], joined: bool) {
        let _ = (sid, rooms, joined);
    }
}

/// What an adapter knows of its namespace: its name, and the [`LocalSockets`] of this
/// server. Holding it does not keep the namespace alive; once the namespace is gone, every
/// operation finds no socket.
#[derive(Clone)]
pub struct AdapterContext {
    name: Arc<str>,
    sockets: Weak<dyn LocalSockets>,
    recovery: Option<Recovery>,
    room_events: bool,
}

impl AdapterContext {
    /// A context for namespace `name`, whose sockets `sockets` reaches.
    pub fn new(name: impl Into<Arc<str>>, sockets: Weak<dyn LocalSockets>) -> Self {
        Self {
            name: name.into(),
            sockets,
            recovery: None,
            room_events: false,
        }
    }

    /// The same context, for a server that wants to hear of rooms joined and left
    /// ([`rooms_changed`](Self::rooms_changed)).
    pub fn with_room_events(mut self, on: bool) -> Self {
        self.room_events = on;
        self
    }

    /// Whether the server wants to hear of rooms joined and left: an adapter that keeps a
    /// room index then reports its changes with [`rooms_changed`](Self::rooms_changed).
    pub fn room_events(&self) -> bool {
        self.room_events
    }

    /// Reports that socket `sid` joined (`joined`) or left `rooms`; nothing when
    /// [`room_events`](Self::room_events) is off or the namespace is gone.
    pub fn rooms_changed(&self, sid: Sid, rooms: &[Room], joined: bool) {
        if self.room_events && !rooms.is_empty() {
            if let Some(sockets) = self.sockets() {
                sockets.rooms_changed(sid, rooms, joined);
            }
        }
    }

    /// The same context, for a server with connection state recovery on.
    pub fn with_recovery(mut self, recovery: Option<Recovery>) -> Self {
        self.recovery = recovery;
        self
    }

    /// The recovery settings, when the server has recovery on: the adapter then keeps
    /// sessions and packets ([`Adapter::persist_session`](super::Adapter::persist_session)).
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.name
    }

    fn sockets(&self) -> Option<Arc<dyn LocalSockets>> {
        self.sockets.upgrade()
    }

    /// The parser of the namespace's clients (the JSON parser once the namespace is gone).
    pub fn parser(&self) -> Parser {
        self.sockets().map_or(Parser::default(), |s| s.parser())
    }

    /// The default timeout of a broadcast with acks.
    pub fn ack_timeout(&self) -> Duration {
        self.sockets()
            .map_or(Duration::from_secs(5), |s| s.ack_timeout())
    }

    /// The ids of every socket of the namespace on this server.
    pub fn socket_ids(&self) -> Vec<Sid> {
        self.sockets().map(|s| s.socket_ids()).unwrap_or_default()
    }

    /// See [`LocalSockets::send`].
    pub fn send(&self, to: Recipients<'_>, packet: &BroadcastPacket, volatile: bool) -> usize {
        self.sockets().map_or(0, |s| s.send(to, packet, volatile))
    }

    /// See [`LocalSockets::send_with_ack`].
    pub fn send_with_ack(
        &self,
        to: Recipients<'_>,
        packet: &BroadcastPacket,
        timeout: Duration,
    ) -> Vec<(Sid, AckFuture)> {
        self.sockets()
            .map(|s| s.send_with_ack(to, packet, timeout))
            .unwrap_or_default()
    }

    /// See [`LocalSockets::describe`].
    pub fn describe(&self, to: Recipients<'_>) -> Vec<RemoteSocketData> {
        self.sockets().map(|s| s.describe(to)).unwrap_or_default()
    }

    /// See [`LocalSockets::disconnect`].
    pub fn disconnect(&self, to: Recipients<'_>, close: bool) {
        if let Some(sockets) = self.sockets() {
            sockets.disconnect(to, close);
        }
    }

    /// See [`LocalSockets::server_event`].
    pub fn server_event(&self, event: &str, args: Payload, ack: ServerAck) {
        if let Some(sockets) = self.sockets() {
            sockets.server_event(event, args, ack);
        }
    }

    /// Encodes an event for this namespace with its parser (for an adapter that received
    /// the event and arguments from another server).
    pub fn packet<A: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<BroadcastPacket, crate::error::EmitError> {
        BroadcastPacket::new(self.parser(), &self.name, event, args)
    }
}

impl fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterContext")
            .field("namespace", &self.name)
            .finish_non_exhaustive()
    }
}
