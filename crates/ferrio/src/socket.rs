//! [`SocketRef`]: one client in one namespace.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ferrio_engine::{Handshake, Sid, Socket as EngineSocket, Transport};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::ack::{AckFuture, AckResult};
use crate::adapter::{IntoRooms, Room};
use crate::error::{DisconnectReason, EmitError};
use crate::extract::EventParts;
use crate::handler::{
    BoxedDisconnect, BoxedEvent, DisconnectHandler, EventHandler, boxed_disconnect, boxed_event,
};
use crate::namespace::Namespace;
use crate::operators::BroadcastOperator;
use crate::parser::Encoded;
use crate::payload::Payload;

type AnyHandler = Arc<dyn Fn(&SocketRef, &str, &Payload) + Send + Sync>;
type PacketMiddleware = Arc<dyn Fn(&SocketRef, &str, &Payload) -> Result<(), String> + Send + Sync>;

/// Everything a socket's owner registered on it.
#[derive(Default)]
struct Listeners {
    /// Sorted by name. A socket has a handful of handlers, registered once and looked up per
    /// event: a sorted list holds them in a third of a hash map's memory.
    events: Vec<(Cow<'static, str>, BoxedEvent)>,
    disconnect: Option<BoxedDisconnect>,
    /// What few sockets use, out of line: every socket carries only its pointer.
    rare: Option<Box<RareListeners>>,
}

#[derive(Default)]
struct RareListeners {
    disconnecting: Option<BoxedDisconnect>,
    any_incoming: Vec<AnyHandler>,
    any_outgoing: Vec<AnyHandler>,
    middlewares: Vec<PacketMiddleware>,
}

impl Listeners {
    fn rare(&mut self) -> &mut RareListeners {
        self.rare.get_or_insert_default()
    }

    /// Where the handler of `event` is, or would be inserted.
    fn find(&self, event: &str) -> Result<usize, usize> {
        self.events
            .binary_search_by(|(name, _)| name.as_ref().cmp(event))
    }
}

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) ns: Arc<Namespace>,
    pub(crate) engine: EngineSocket,
    pub(crate) auth: Payload,
    connected: AtomicBool,
    /// Set once the socket has left (or was refused): it never comes back.
    gone: AtomicBool,
    listeners: Mutex<Listeners>,
    /// Packets that arrived before the connect handler ran; `None` once it has.
    backlog: Mutex<Option<Vec<Inbound>>>,
    /// Set once the backlog is gone for good: packets then skip its lock.
    ready: AtomicBool,
    acks: Mutex<HashMap<u64, oneshot::Sender<AckResult>>>,
    extensions: RwLock<http::Extensions>,
}

impl SocketInner {
    pub(crate) fn new(ns: Arc<Namespace>, engine: EngineSocket, auth: Payload) -> Arc<Self> {
        Arc::new(Self {
            id: Sid::random(),
            ns,
            engine,
            auth,
            connected: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            listeners: Mutex::default(),
            backlog: Mutex::new(Some(Vec::new())),
            ready: AtomicBool::new(false),
            acks: Mutex::default(),
            extensions: RwLock::default(),
        })
    }

    fn listeners(&self) -> MutexGuard<'_, Listeners> {
        // A handler that panicked while registering cannot leave the map half-written.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers something on the socket, unless it has left: what a socket that left
    /// holds is never cleared again, and could keep it alive.
    fn register(&self, f: impl FnOnce(&mut Listeners)) {
        let mut listeners = self.listeners();
        if !self.gone.load(Ordering::Acquire) {
            f(&mut listeners);
        }
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    fn acks(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<AckResult>>> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        self.acks().remove(&id);
    }

    pub(crate) fn mark_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    /// A refused socket: forget the rooms its middlewares may have joined and whatever they
    /// registered on it (a handler holding its socket would keep it alive).
    pub(crate) fn refused(&self) {
        self.gone.store(true, Ordering::Release);
        self.ns.adapter.del_all(self.id);
        *self.listeners() = Listeners::default();
    }

    /// Registers a waiter for the ack `id`, unless the socket is already gone.
    pub(crate) fn expect_ack(self: &Arc<Self>, id: u64, timeout: Duration) -> Option<AckFuture> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.acks().insert(id, tx);
        // A disconnect that cleared the map meanwhile must not leave this one waiting.
        if !self.connected.load(Ordering::Acquire) {
            self.forget_ack(id);
            return None;
        }
        Some(AckFuture::waiting(rx, self, id, timeout))
    }
}

/// A packet from the client for one socket.
#[derive(Debug)]
pub(crate) enum Inbound {
    Event {
        event: String,
        args: Payload,
        id: Option<u64>,
    },
    Ack {
        id: u64,
        args: Payload,
    },
    Disconnect,
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

    /// Whether the socket is still in its namespace.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Handles the event `event` with `handler`, replacing a previous handler of that event.
    pub fn on<H, M>(&self, event: impl Into<Cow<'static, str>>, handler: H)
    where
        H: EventHandler<M>,
        M: 'static,
    {
        let (event, handler) = (event.into(), boxed_event(handler));
        self.0.register(|l| match l.find(&event) {
            Ok(i) => l.events[i].1 = handler,
            Err(i) => l.events.insert(i, (event, handler)),
        });
    }

    /// Removes the handler of `event`.
    pub fn off(&self, event: &str) {
        let mut listeners = self.0.listeners();
        if let Ok(i) = listeners.find(event) {
            listeners.events.remove(i);
        }
    }

    /// Calls `handler` when the socket has left its namespace, with the reason.
    pub fn on_disconnect<H: DisconnectHandler<M>, M: 'static>(&self, handler: H) {
        let handler = boxed_disconnect(handler);
        self.0.register(|l| l.disconnect = Some(handler));
    }

    /// Calls `handler` when the socket is about to leave its namespace, while its rooms are
    /// still visible.
    pub fn on_disconnecting<H: DisconnectHandler<M>, M: 'static>(&self, handler: H) {
        let handler = boxed_disconnect(handler);
        self.0.register(|l| l.rare().disconnecting = Some(handler));
    }

    /// Calls `listener` with every event the client sends, before its own handler.
    pub fn on_any<F>(&self, listener: F)
    where
        F: Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static,
    {
        self.0
            .register(|l| l.rare().any_incoming.push(Arc::new(listener)));
    }

    /// Calls `listener` with every event this socket emits to its client (not broadcasts).
    pub fn on_any_outgoing<F>(&self, listener: F)
    where
        F: Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static,
    {
        self.0
            .register(|l| l.rare().any_outgoing.push(Arc::new(listener)));
    }

    /// Runs `middleware` on every event the client sends, before any listener. An error
    /// drops the event; if the client asked for an ack, it gets `{"error": <message>}`.
    pub fn use_middleware<F, E>(&self, middleware: F)
    where
        F: Fn(&SocketRef, &str, &Payload) -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        let middleware: PacketMiddleware = Arc::new(move |s: &SocketRef, e: &str, p: &Payload| {
            middleware(s, e, p).map_err(|e| e.to_string())
        });
        self.0.register(|l| l.rare().middlewares.push(middleware));
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
        let packet = self.0.ns.parser().event(self.ns(), None, event, args)?;
        self.notify_outgoing(event, args);
        Ok(packet.send(&self.0.engine)?)
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
            Ok(()) => ack,
            Err(e) => AckFuture::failed(e.into()),
        }
    }

    fn notify_outgoing<A: Serialize + ?Sized>(&self, event: &str, args: &A) {
        let listeners = match &self.0.listeners().rare {
            Some(rare) if !rare.any_outgoing.is_empty() => rare.any_outgoing.clone(),
            _ => return,
        };
        if let Ok(payload) = Payload::from_args(args) {
            for listener in listeners {
                listener(self, event, &payload);
            }
        }
    }

    pub(crate) fn send_ack<A: Serialize + ?Sized>(
        &self,
        id: u64,
        args: &A,
    ) -> Result<(), EmitError> {
        let packet = self.0.ns.parser().ack(self.ns(), id, args)?;
        Ok(packet.send(&self.0.engine)?)
    }

    pub(crate) fn send_encoded(&self, packet: &Encoded) -> Result<(), EmitError> {
        Ok(packet.send(&self.0.engine)?)
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

    /// Stores a value in the socket's typed data, replacing one of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.0
            .extensions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value)
    }

    /// A copy of the socket's data of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .extensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .cloned()
    }

    /// Removes the socket's data of type `T`.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .extensions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove::<T>()
    }

    /// Removes the socket from its namespace: the client gets a DISCONNECT, the connection
    /// (and the client's other namespaces) stay.
    pub fn disconnect(&self) {
        if self.connected() {
            // Forgotten by the client first, so a CONNECT it sends as soon as it reads the
            // DISCONNECT is a new connect, not a duplicate.
            crate::client::forget_socket(&self.0.engine, self.id());
            let packet = self.0.ns.parser().disconnect(self.ns());
            let _ = packet.send(&self.0.engine);
            self.close_with(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Closes the whole connection: this socket and the client's sockets in other
    /// namespaces leave with "forced server close".
    pub fn close(&self) {
        crate::client::close_connection(&self.0.engine, DisconnectReason::ForcedServerClose);
    }

    /// Takes the socket out of its namespace, once: the `disconnecting` hook, then rooms, acks
    /// and registrations go, then the `disconnect` hook.
    pub(crate) fn close_with(&self, reason: DisconnectReason) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let disconnecting = self
            .0
            .listeners()
            .rare
            .as_mut()
            .and_then(|rare| rare.disconnecting.take());
        if let Some(hook) = disconnecting {
            self.call_hook("disconnecting", || hook(self.clone(), reason));
        }
        self.0.gone.store(true, Ordering::Release);
        // Dropping the senders fails every pending ack at once.
        drop(std::mem::take(&mut *self.0.acks()));
        crate::client::forget_socket(&self.0.engine, self.id());
        self.0.ns.remove_socket(self.id());
        let disconnect = {
            let mut listeners = self.0.listeners();
            let hook = listeners.disconnect.take();
            *listeners = Listeners::default();
            hook
        };
        tracing::debug!(ns = self.ns(), socket = %self.id(), %reason, "socket disconnected");
        if let Some(hook) = disconnect {
            self.call_hook("disconnect", || hook(self.clone(), reason));
        }
    }

    /// Runs a user hook of the disconnect path: a panic is logged and the cleanup goes on.
    fn call_hook(&self, name: &str, hook: impl FnOnce()) {
        if panic::catch_unwind(AssertUnwindSafe(hook)).is_err() {
            tracing::error!(ns = self.ns(), socket = %self.id(), hook = name, "a hook panicked");
        }
    }

    /// Takes one packet from the client: at once, or after the connect handler has run.
    pub(crate) fn receive(&self, packet: Inbound) {
        if !self.0.ready.load(Ordering::Acquire) {
            let mut backlog = self.0.backlog.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waiting) = backlog.as_mut() {
                waiting.push(packet);
                return;
            }
        }
        self.dispatch(packet);
    }

    /// The connect handler has run: delivers what waited, then lets packets through.
    pub(crate) fn mark_ready(&self) {
        // The connect handler registered what the socket handles: keep no room for more.
        self.0.listeners().events.shrink_to_fit();
        loop {
            let batch = {
                let mut backlog = self.0.backlog.lock().unwrap_or_else(|e| e.into_inner());
                match backlog.as_mut() {
                    Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
                    _ => {
                        *backlog = None;
                        self.0.ready.store(true, Ordering::Release);
                        return;
                    }
                }
            };
            for packet in batch {
                self.dispatch(packet);
            }
        }
    }

    fn dispatch(&self, packet: Inbound) {
        match packet {
            Inbound::Event { event, args, id } => self.on_event(event, args, id),
            Inbound::Ack { id, args } => self.on_ack(id, args),
            Inbound::Disconnect => self.close_with(DisconnectReason::ClientNamespaceDisconnect),
        }
    }

    /// Delivers one event from the client: middlewares, catch-all listeners, then the handler.
    fn on_event(&self, event: String, args: Payload, id: Option<u64>) {
        let (middlewares, any, handler) = {
            let listeners = self.0.listeners();
            (
                listeners
                    .rare
                    .as_ref()
                    .map(|rare| rare.middlewares.clone())
                    .unwrap_or_default(),
                listeners
                    .rare
                    .as_ref()
                    .map(|rare| rare.any_incoming.clone())
                    .unwrap_or_default(),
                listeners
                    .find(&event)
                    .ok()
                    .map(|i| listeners.events[i].1.clone()),
            )
        };
        for middleware in &middlewares {
            if let Err(message) = middleware(self, &event, &args) {
                tracing::debug!(ns = self.ns(), socket = %self.id(), event, %message, "event refused");
                if let Some(id) = id {
                    let _ = self.send_ack(id, &(serde_json::json!({ "error": message }),));
                }
                return;
            }
        }
        for listener in &any {
            listener(self, &event, &args);
        }
        match handler {
            Some(handler) => handler(EventParts::new(self.clone(), event, args, id)),
            None => tracing::trace!(ns = self.ns(), socket = %self.id(), event, "no handler"),
        }
    }

    /// Delivers the client's acknowledgement of one of our events.
    fn on_ack(&self, id: u64, args: Payload) {
        let waiter = self.0.acks().remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(args));
        }
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
