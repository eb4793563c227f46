//! [`SocketRef`]: one client in one namespace.
//!
//! - this file: the socket's state, identity, emits, rooms and data;
//! - `listeners.rs`: what the application registers on it (handlers, hooks, middlewares);
//! - `inbound.rs`: packets from the client, delivered to those listeners in order;
//! - `leave.rs`: leaving the namespace, once, whatever the reason;
//! - `ack_sender.rs`: answering the client's acks.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ferrio_engine::{Handshake, Sid, Socket as EngineSocket, Transport};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::{AckFuture, AckTable, ForgetAck};
use crate::adapter::{BroadcastOptions, BroadcastPacket, IntoRoom, IntoRooms, Room, Session};
use crate::error::EmitError;
use crate::namespace::Namespace;
use crate::operators::BroadcastOperator;
use crate::parser::Encoded;
use crate::payload::Payload;
use crate::rate_limit::EventBucket;

mod ack_sender;
mod inbound;
mod leave;
mod listeners;

pub use ack_sender::AckSender;
pub(crate) use inbound::Inbound;
use listeners::Listeners;

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) ns: Arc<Namespace>,
    pub(crate) engine: EngineSocket,
    pub(crate) auth: Payload,
    /// The private id a client presents to recover this socket (connection state recovery
    /// on), kept across recoveries.
    pub(crate) pid: Option<String>,
    /// Whether the socket is a recovered one.
    recovered: bool,
    connected: AtomicBool,
    /// Set once the socket has left (or was refused): it never comes back.
    gone: AtomicBool,
    listeners: Mutex<Listeners>,
    /// Packets that arrived before the connect handler ran; `None` once it has.
    backlog: Mutex<Option<Vec<Inbound>>>,
    /// Set once the backlog is gone for good: packets then skip its lock.
    ready: AtomicBool,
    acks: AckTable,
    extensions: RwLock<http::Extensions>,
    /// The client's events against the server's rate limit, if it has one.
    events: EventBucket,
}

/// The data a socket shares with other servers ([`SocketRef::set_data`]), kept among its
/// typed extensions so a socket without any costs nothing.
#[derive(Clone)]
struct SharedData(serde_json::Value);

impl SocketInner {
    /// A new socket; with recovery on, it gets a private id.
    pub(crate) fn new(ns: Arc<Namespace>, engine: EngineSocket, auth: Payload) -> Arc<Self> {
        let pid = ns
            .shared
            .recovery
            .is_some()
            .then(|| Sid::random().to_string());
        Self::with_identity(ns, engine, auth, Sid::random(), pid, false)
    }

    /// The socket of a recovered session: its old id, private id and shared data.
    pub(crate) fn recovered(
        ns: Arc<Namespace>,
        engine: EngineSocket,
        auth: Payload,
        session: &Session,
    ) -> Arc<Self> {
        let socket = Self::with_identity(
            ns,
            engine,
            auth,
            session.sid,
            Some(session.pid.clone()),
            true,
        );
        if !session.data.is_null() {
            socket
                .extensions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(SharedData(session.data.clone()));
        }
        socket
    }

    fn with_identity(
        ns: Arc<Namespace>,
        engine: EngineSocket,
        auth: Payload,
        id: Sid,
        pid: Option<String>,
        recovered: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            ns,
            engine,
            auth,
            pid,
            recovered,
            connected: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            listeners: Mutex::default(),
            backlog: Mutex::new(Some(Vec::new())),
            ready: AtomicBool::new(false),
            acks: AckTable::default(),
            extensions: RwLock::default(),
            events: EventBucket::new(0),
        })
    }

    fn listeners(&self) -> MutexGuard<'_, Listeners> {
        // A handler that panicked while registering cannot leave the list half-written.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    pub(crate) fn mark_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    /// Registers a waiter for the ack `id`, unless the socket is already gone.
    pub(crate) fn expect_ack(self: &Arc<Self>, id: u64, timeout: Duration) -> Option<AckFuture> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let rx = self.acks.insert(id);
        // A disconnect that cleared the table meanwhile must not leave this one waiting.
        if !self.connected.load(Ordering::Acquire) {
            self.acks.remove(id);
            return None;
        }
        let owner = Arc::downgrade(self) as std::sync::Weak<dyn ForgetAck>;
        Some(AckFuture::waiting(rx, owner, id, timeout))
    }
}

impl ForgetAck for SocketInner {
    fn forget_ack(&self, id: u64) {
        self.acks.remove(id);
    }
}

/// One client connected to one namespace: a cheap, cloneable handle.
///
/// A client that joins several namespaces over one connection has one socket in each, with
/// distinct ids (none of them the Engine.IO session id).
#[derive(Clone)]
pub struct SocketRef(pub(crate) Arc<SocketInner>);

impl SocketRef {
    /// The socket's id, also the name of the room it is always in.
    pub fn id(&self) -> Sid {
        self.0.id
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        &self.0.ns.name
    }

    /// The HTTP request that opened the connection: headers, URI and query, remote address,
    /// time.
    pub fn handshake(&self) -> &Handshake {
        self.0.engine.handshake()
    }

    /// The `auth` payload of the client's CONNECT (an empty object when it sent none).
    pub fn auth(&self) -> &Payload {
        &self.0.auth
    }

    /// The transport the connection currently uses.
    pub fn transport(&self) -> Transport {
        self.0.engine.transport()
    }

    /// The Engine.IO session id of the underlying connection.
    pub fn connection_id(&self) -> Sid {
        self.0.engine.id()
    }

    /// Whether this socket is a recovered one (connection state recovery): its client lost
    /// its connection for a moment and came back with its id, rooms and shared data, and
    /// got the events it missed before the connect handler ran.
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// Whether the socket is still in its namespace.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Emits `event` with one argument to this socket's client (`&()` is one `null`; use
    /// [`emit_args`](Self::emit_args) with `&()` for none).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_args(event, &(data,))
    }

    /// Emits `event` with the elements of `args` (a tuple, a `Vec`, a [`Payload`]...) as
    /// arguments.
    pub fn emit_args<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Closed);
        }
        if self.0.ns.shared.recovery.is_some() {
            // Through the adapter, to the socket's own room on this server, so that the
            // packet is kept (with its offset) for a recovery.
            let ns = &self.0.ns;
            let packet = BroadcastPacket::encode(ns.parser(), ns.name.clone(), event, None, args)?;
            self.notify_outgoing(event, args);
            let mut opts = BroadcastOptions::default();
            opts.rooms.push(self.id().into_room());
            opts.flags.local = true;
            return ns
                .adapter
                .broadcast(packet, opts)
                .map_err(EmitError::Adapter);
        }
        let packet = self.0.ns.parser().event(self.ns(), None, event, args)?;
        self.notify_outgoing(event, args);
        packet.send(&self.0.engine)?;
        self.observe_sent(event, &packet, args);
        Ok(())
    }

    /// Emits `event` with one argument and waits for the client's acknowledgement (see
    /// [`AckFuture`] for the timeout).
    pub fn emit_with_ack<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> AckFuture {
        self.emit_args_with_ack(event, &(data,))
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack), with several arguments.
    pub fn emit_args_with_ack<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> AckFuture {
        let id = self.0.ns.next_ack_id();
        let packet = match self.0.ns.parser().event(self.ns(), Some(id), event, args) {
            Ok(packet) => packet,
            Err(e) => return AckFuture::failed(e),
        };
        let Some(ack) = self.0.expect_ack(id, self.0.ns.ack_timeout()) else {
            return AckFuture::failed(EmitError::Closed);
        };
        self.notify_outgoing(event, args);
        match packet.send(&self.0.engine) {
            Ok(()) => {
                self.observe_sent(event, &packet, args);
                ack
            }
            Err(e) => AckFuture::failed(e.into()),
        }
    }

    /// Tells the observers about an event queued for this socket.
    #[inline]
    fn observe_sent<A: Serialize + ?Sized>(&self, event: &str, packet: &Encoded, args: &A) {
        let observers = &self.0.ns.shared.observers;
        if observers.is_empty() {
            return;
        }
        let sent = crate::observe::Sent {
            event,
            bytes: packet.len(),
            args: &|| Payload::from_args(args).ok(),
        };
        observers.each(|o| o.event_sent(self, &sent));
    }

    /// Queues a packet encoded once for many sockets.
    pub(crate) fn send_encoded(&self, packet: &Encoded) -> Result<(), EmitError> {
        Ok(packet.send(&self.0.engine)?)
    }

    /// Queues a broadcast packet and asks for its ack `id` (the packet carries that id).
    pub(crate) fn send_asking(
        &self,
        packet: &BroadcastPacket,
        id: u64,
        timeout: Duration,
    ) -> Option<AckFuture> {
        let ack = self.0.expect_ack(id, timeout)?;
        if let Err(e) = self.send_encoded(&packet.encoded) {
            tracing::warn!(socket = %self.id(), error = %e, "broadcast not delivered");
        }
        Some(ack)
    }

    /// Broadcasts to `rooms`, except this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// The same as [`to`](Self::to) (`socket.in` in the JavaScript API): this socket is
    /// left out. To include it, start from the namespace or the server (`io.within(room)`).
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Broadcasts to every socket of the namespace except this one and those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Broadcasts to every socket of the namespace except this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.clone()).except(self.id())
    }

    /// Broadcasts to every socket of this server except this one (`socket.local` in the
    /// JavaScript API); with the in-memory adapter, the same as [`broadcast`](Self::broadcast).
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Emits to this socket, dropping the packet rather than queueing it when the client
    /// lags behind.
    pub fn volatile(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.clone())
            .within(self.id())
            .volatile()
    }

    /// Joins `rooms`. Works from a connect middleware too (the rooms are dropped if the
    /// socket is refused); does nothing once the socket has left.
    pub fn join(&self, rooms: impl IntoRooms) {
        if self.0.is_gone() {
            return;
        }
        self.0.ns.adapter.add_all(self.id(), &rooms.into_rooms());
        // Leaving meanwhile cleared the rooms before these were added: clear them again.
        if self.0.is_gone() {
            self.0.ns.adapter.del_all(self.id());
        }
    }

    /// Leaves `room`.
    pub fn leave(&self, rooms: impl IntoRooms) {
        for room in rooms.into_rooms() {
            self.0.ns.adapter.del(self.id(), &room);
        }
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        self.0.ns.adapter.del_all(self.id());
    }

    /// The rooms the socket is in, its own included; none once it has left.
    pub fn rooms(&self) -> Vec<Room> {
        if self.0.is_gone() {
            return Vec::new();
        }
        self.0.ns.adapter.socket_rooms(self.id())
    }

    fn extensions(&self) -> std::sync::RwLockReadGuard<'_, http::Extensions> {
        self.0.extensions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn extensions_mut(&self) -> std::sync::RwLockWriteGuard<'_, http::Extensions> {
        self.0.extensions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a value in the socket's typed data, replacing one of the same type. Typed
    /// data stays on this server; see [`set_data`](Self::set_data) for data other servers
    /// see.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.extensions_mut().insert(value)
    }

    /// A copy of the socket's data of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extensions().get::<T>().cloned()
    }

    /// Removes the socket's data of type `T`.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extensions_mut().remove::<T>()
    }

    /// Sets the data the socket shares with every server (`socket.data` in the JavaScript
    /// API): what [`fetch_sockets`](crate::BroadcastOperator::fetch_sockets) reports, here
    /// and on the other servers of a cluster.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(data)?;
        self.extensions_mut().insert(SharedData(value));
        Ok(())
    }

    /// The shared data, deserialized (`None` when none was set).
    pub fn data<T: DeserializeOwned>(&self) -> Option<Result<T, serde_json::Error>> {
        let value = self.extensions().get::<SharedData>()?.0.clone();
        Some(serde_json::from_value(value))
    }

    /// The shared data as it travels to other servers (`null` when none was set).
    pub(crate) fn data_value(&self) -> serde_json::Value {
        self.extensions()
            .get::<SharedData>()
            .map_or(serde_json::Value::Null, |data| data.0.clone())
    }
}

impl fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketRef")
            .field("id", &self.0.id)
            .field("ns", &self.ns())
            .finish()
    }
}

impl PartialEq for SocketRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SocketRef {}
