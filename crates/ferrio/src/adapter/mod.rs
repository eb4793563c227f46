//! Adapters: who is in which room, and how a broadcast reaches its sockets.
//!
//! Each namespace has one [`Adapter`]. The default, [`LocalAdapter`], keeps rooms in memory
//! and delivers to the sockets of this server. A distributed adapter (Redis...) wraps a
//! `LocalAdapter` for the local part and forwards the same operations to other servers.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrio_engine::Sid;

use crate::ack::BroadcastAckFuture;
use crate::error::EmitError;
use crate::namespace::Namespace;
use crate::parser::Encoded;
use crate::payload::Payload;
use crate::socket::SocketRef;

mod local;

pub use local::LocalAdapter;

/// A room name.
pub type Room = Cow<'static, str>;

/// A boxed future, as the adapter's asynchronous operations return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One room, for [`IntoRooms`].
pub trait IntoRoom {
    /// The room.
    fn into_room(self) -> Room;
}

impl IntoRoom for &str {
    fn into_room(self) -> Room {
        Cow::Owned(self.to_owned())
    }
}
impl IntoRoom for String {
    fn into_room(self) -> Room {
        Cow::Owned(self)
    }
}
impl IntoRoom for &String {
    fn into_room(self) -> Room {
        Cow::Owned(self.clone())
    }
}
impl IntoRoom for Room {
    fn into_room(self) -> Room {
        self
    }
}
impl IntoRoom for Sid {
    fn into_room(self) -> Room {
        Cow::Owned(self.as_str().to_owned())
    }
}

/// One or more rooms: a `&str`, a `String`, a socket id, or a `Vec` or array of them.
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl<T: IntoRoom> IntoRooms for T {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.into_room()]
    }
}
impl<T: IntoRoom> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(IntoRoom::into_room).collect()
    }
}
impl<T: IntoRoom, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().map(IntoRoom::into_room).collect()
    }
}

/// Which sockets a broadcast or a bulk operation targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms (a socket id names that socket).
    pub except: Vec<Room>,
    /// This server only, even with a distributed adapter.
    pub local: bool,
    /// Drop the packet for sockets whose transport is behind (packets still queued for
    /// them) instead of queueing it.
    pub volatile: bool,
}

/// A packet being broadcast: encoded once for every recipient.
#[derive(Debug, Clone)]
pub struct BroadcastPacket {
    pub(crate) event: String,
    pub(crate) encoded: Encoded,
}

impl BroadcastPacket {
    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }
}

/// A socket as seen through its adapter, possibly on another server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteSocket {
    /// The socket's id.
    pub id: Sid,
    /// Its rooms, its own included.
    pub rooms: Vec<Room>,
}

/// An adapter operation that failed (a distributed adapter lost its broker...).
#[derive(Debug)]
pub struct AdapterError(pub String);

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "adapter error: {}", self.0)
    }
}

impl std::error::Error for AdapterError {}

/// What an adapter gets to know about its namespace.
#[derive(Clone)]
pub struct AdapterContext {
    name: Arc<str>,
    pub(crate) ns: Weak<Namespace>,
}

impl AdapterContext {
    pub(crate) fn new(name: Arc<str>, ns: Weak<Namespace>) -> Self {
        Self { name, ns }
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.name
    }

    /// The socket with id `sid`, if it is connected to this server.
    pub fn socket(&self, sid: Sid) -> Option<SocketRef> {
        self.ns.upgrade()?.get_socket(sid)
    }

    /// The ids of every socket of the namespace on this server.
    pub fn socket_ids(&self) -> Vec<Sid> {
        self.ns
            .upgrade()
            .map(|ns| ns.with_sockets(|sockets| sockets.keys().copied().collect()))
            .unwrap_or_default()
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.ns
            .upgrade()
            .map_or(Duration::from_secs(5), |ns| ns.ack_timeout())
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ns.upgrade().map_or(0, |ns| ns.next_ack_id())
    }
}

impl fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterContext")
            .field("namespace", &self.name)
            .finish()
    }
}

/// The rooms of one namespace and the operations that span its sockets.
///
/// Membership calls are synchronous and local (every adapter keeps its own sockets'
/// rooms); the rest may reach other servers.
pub trait Adapter: Send + Sync + 'static {
    /// Adds the socket to rooms.
    fn add_all(&self, sid: Sid, rooms: &[Room]);
    /// Removes the socket from a room.
    fn del(&self, sid: Sid, room: &str);
    /// Removes the socket from every room.
    fn del_all(&self, sid: Sid);
    /// The rooms of a local socket, its own room included.
    fn socket_rooms(&self, sid: Sid) -> Vec<Room>;
    /// The ids of the local sockets `opts` targets.
    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid>;

    /// Sends the packet to every socket `opts` targets.
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> Result<(), AdapterError>;

    /// Sends an event (encoded with ack id `id`) to every targeted socket and collects their
    /// acknowledgements within `timeout`. `encode` builds the packet for a given ack id.
    fn broadcast_with_ack(
        &self,
        encode: &dyn Fn(u64) -> Result<BroadcastPacket, EmitError>,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<BroadcastAckFuture, EmitError>;

    /// The sockets `opts` targets, on every server.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocket>, AdapterError>>;

    /// Makes the targeted sockets join `rooms`, on every server.
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;
    /// Makes the targeted sockets leave `rooms`, on every server.
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;
    /// Disconnects the targeted sockets from the namespace (`close`: their whole
    /// connections), on every server.
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError>;

    /// Every room with at least one socket, on every server.
    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>>;

    /// Sends an event to the other servers of the cluster (not to clients). Alone, there is
    /// nobody to tell: the default does nothing.
    fn server_side_emit(&self, event: &str, args: &Payload) -> Result<(), AdapterError> {
        let _ = (event, args);
        Ok(())
    }

    /// Keeps the state of a socket lost for a recoverable reason, for connection state
    /// recovery. The default keeps nothing.
    fn persist_session(&self, session: SessionState) {
        let _ = session;
    }

    /// The state kept for private id `pid`, and the packets the socket missed since
    /// `offset`, if the session can be recovered. The default recovers nothing.
    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<'static, Result<Option<RestoredSession>, AdapterError>> {
        let _ = (pid, offset);
        Box::pin(std::future::ready(Ok(None)))
    }
}

/// What connection state recovery keeps of a socket that was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionState {
    /// The socket's id, given back on recovery.
    pub sid: Sid,
    /// The private id the client presents to recover.
    pub pid: String,
    /// Its rooms, its own excluded.
    pub rooms: Vec<Room>,
}

/// A recovered session and the packets its socket missed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoredSession {
    /// The state that was kept.
    pub state: SessionState,
    /// The missed packets, oldest first.
    pub missed: Vec<BroadcastPacket>,
}
