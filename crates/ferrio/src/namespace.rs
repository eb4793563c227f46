//! Namespaces: the sockets of one name on this server, their connect handler and
//! middlewares, their adapter, and handlers of events from other servers.
//!
//! A namespace is the [`LocalSockets`] its adapter reaches: the dependency between the two
//! goes one way, from here to the adapter seam.

use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use ferrio_engine::Sid;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::ack::AckFuture;
use crate::adapter::{
    Adapter, AdapterContext, AdapterError, AdapterErrorKind, BroadcastPacket, HandshakeData,
    LocalSockets, Recipients, RemoteSocketData, Room, ServerAck,
};
use crate::handler::Guarded;
use crate::observe::Sent;
use crate::operators::{BroadcastOperator, operator_entry_points};
use crate::parser::Parser;
use crate::payload::Payload;
use crate::server::{Server, Shared};
use crate::socket::SocketRef;

/// A handler of a server-side event ([`NamespaceRef::on_server_event`]).
type ServerEventHandler = Arc<dyn Fn(Payload, ServerAck) + Send + Sync>;

pub(crate) struct Namespace {
    pub(crate) name: Arc<str>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) server: Weak<Server>,
    setup: RwLock<Guarded>,
    sockets: RwLock<HashMap<Sid, SocketRef>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// How the adapter's `init` went, once it ran.
    ready: OnceCell<Result<(), AdapterError>>,
    /// Handlers of events other servers emit, by event name.
    server_events: RwLock<Vec<(String, ServerEventHandler)>>,
    /// Ack ids, shared by the namespace's sockets so one broadcast can use one id for all.
    ack_ids: AtomicU64,
    /// Sockets whose connect middlewares are still running.
    connecting: AtomicUsize,
    /// Created for a dynamic namespace: removed again when its last socket leaves.
    dynamic: AtomicBool,
}

impl Namespace {
    pub(crate) fn new(
        name: &str,
        shared: Arc<Shared>,
        server: Weak<Server>,
        setup: Guarded,
        dynamic: bool,
    ) -> Arc<Self> {
        let name: Arc<str> = Arc::from(name);
        let ns = Arc::new_cyclic(|weak: &Weak<Namespace>| {
            let sockets = weak.clone() as Weak<dyn LocalSockets>;
            let ctx = AdapterContext::new(name.clone(), sockets)
                .with_recovery(shared.recovery.clone())
                .with_room_events(!shared.observers.is_empty());
            let adapter = (shared.adapter)(ctx);
            Self {
                name,
                shared,
                server,
                setup: RwLock::new(setup),
                sockets: RwLock::default(),
                adapter,
                ready: OnceCell::new(),
                server_events: RwLock::default(),
                ack_ids: AtomicU64::new(0),
                connecting: AtomicUsize::new(0),
                dynamic: AtomicBool::new(dynamic),
            }
        });
        // A static namespace starts its adapter now when it can (it may hear from other
        // servers before any client comes); otherwise the first connect or `Io::ready` does.
        if !dynamic {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // Weak: a server dropped before the task runs is not kept alive by it.
                let starting = Arc::downgrade(&ns);
                drop(runtime.spawn(async move {
                    if let Some(ns) = starting.upgrade() {
                        let _ = ns.ready().await;
                    }
                }));
            }
        }
        ns
    }

    /// Runs the adapter's `init` once; later calls get its outcome.
    pub(crate) async fn ready(&self) -> Result<(), AdapterError> {
        self.ready
            .get_or_init(|| async {
                let result = self.adapter.init().await;
                if let Err(e) = &result {
                    self.shared
                        .observers
                        .each(|o| o.adapter_error(&self.name, e));
                    tracing::error!(ns = %self.name, error = %e, "the adapter failed to start");
                }
                result
            })
            .await
            .clone()
    }

    pub(crate) fn parser(&self) -> Parser {
        self.shared.parser
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.shared.ack_timeout
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn make_static(&self) {
        self.dynamic.store(false, Ordering::Release);
    }

    pub(crate) fn is_dynamic(&self) -> bool {
        self.dynamic.load(Ordering::Acquire)
    }

    /// Counts a socket that starts connecting ([`Registry::resolve`](crate::registry::Registry::resolve));
    /// [`end_connect`](Self::end_connect) ends the count.
    pub(crate) fn begin_connect(&self) {
        self.connecting.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends a connect's count, admitting its socket when `admitted` is given.
    pub(crate) fn end_connect(self: &Arc<Self>, admitted: Option<&SocketRef>) {
        if let Some(socket) = admitted {
            self.sockets_mut().insert(socket.id(), socket.clone());
        }
        self.connecting.fetch_sub(1, Ordering::AcqRel);
        if admitted.is_none() {
            self.forget_if_unused();
        }
    }

    pub(crate) fn setup(&self) -> Guarded {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_setup(&self, setup: Guarded) {
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = setup;
    }

    fn sockets(&self) -> RwLockReadGuard<'_, HashMap<Sid, SocketRef>> {
        self.sockets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn sockets_mut(&self) -> RwLockWriteGuard<'_, HashMap<Sid, SocketRef>> {
        self.sockets.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get_socket(&self, sid: Sid) -> Option<SocketRef> {
        self.sockets().get(&sid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets().len()
    }

    pub(crate) fn remove_socket(self: &Arc<Self>, sid: Sid) {
        let now_empty = {
            let mut sockets = self.sockets_mut();
            sockets.remove(&sid);
            sockets.is_empty()
        };
        self.adapter.del_all(sid);
        if now_empty {
            self.forget_if_unused();
        }
    }

    /// Drops a dynamic namespace without sockets from the server, and closes its adapter.
    fn forget_if_unused(self: &Arc<Self>) {
        if !self.is_dynamic() || !self.is_empty() {
            return;
        }
        let Some(server) = self.server.upgrade() else {
            return;
        };
        if server.registry.forget_if_unused(self) {
            let adapter = self.adapter.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(async move { adapter.close().await }));
            }
        }
    }

    /// No socket connected, and none connecting.
    pub(crate) fn is_empty(&self) -> bool {
        self.sockets().is_empty() && self.connecting.load(Ordering::Acquire) == 0
    }

    pub(crate) fn operator(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// The sockets `to` names, collected so the caller acts on them outside the lock.
    fn collect(&self, to: Recipients<'_>) -> Vec<SocketRef> {
        let mut out = Vec::new();
        self.for_each(to, |socket| out.push(socket.clone()));
        out
    }

    /// Runs `f` on the sockets `to` names, under the read lock of the socket map.
    fn for_each(&self, to: Recipients<'_>, mut f: impl FnMut(&SocketRef)) {
        let sockets = self.sockets();
        match to {
            Recipients::All(keep) => sockets
                .iter()
                .filter(|(sid, _)| keep(**sid))
                .for_each(|(_, socket)| f(socket)),
            Recipients::Only(sids) => sids.iter().filter_map(|sid| sockets.get(sid)).for_each(f),
        }
    }
}

impl LocalSockets for Namespace {
    fn parser(&self) -> Parser {
        self.shared.parser
    }

    fn ack_timeout(&self) -> Duration {
        self.shared.ack_timeout
    }

    fn socket_ids(&self) -> Vec<Sid> {
        self.sockets().keys().copied().collect()
    }

    fn send(&self, to: Recipients<'_>, packet: &BroadcastPacket, volatile: bool) -> usize {
        let mut sent = 0;
        let observers = &self.shared.observers;
        let args = || packet.args().ok();
        let observed = sent_of(packet, &args);
        // Queueing a packet never calls back into the namespace, so it runs under the lock.
        self.for_each(to, |socket| {
            if volatile && socket.0.engine.buffered() > 0 {
                if !observers.is_empty() {
                    observers.each(|o| o.packet_dropped(socket));
                }
                return;
            }
            // A socket that cannot take it is closing (the engine logs a slow client once).
            match socket.send_encoded(&packet.encoded) {
                Ok(()) => {
                    sent += 1;
                    if !observers.is_empty() {
                        observers.broadcast_to_socket(socket, &observed);
                    }
                }
                Err(e) => {
                    tracing::debug!(socket = %socket.id(), error = %e, "broadcast not queued")
                }
            }
        });
        if !observers.is_empty() {
            observers.broadcast_whole(&self.name, &observed, sent);
        }
        sent
    }

    fn send_with_ack(
        &self,
        to: Recipients<'_>,
        packet: &BroadcastPacket,
        timeout: Duration,
    ) -> Vec<(Sid, AckFuture)> {
        // Ack ids are this namespace's: a packet from elsewhere is encoded again with one.
        let (own, id);
        let packet = match packet.own_ack_id() {
            Some(own_id) => {
                id = own_id;
                packet
            }
            None => {
                id = self.next_ack_id();
                match packet.with_ack_id(Some(id)) {
                    Ok(encoded) => {
                        own = encoded;
                        &own
                    }
                    Err(e) => {
                        tracing::warn!(ns = %self.name, error = %e, "cannot encode a broadcast");
                        return Vec::new();
                    }
                }
            }
        };
        let mut acks = Vec::new();
        let observers = &self.shared.observers;
        let args = || packet.args().ok();
        let observed = sent_of(packet, &args);
        self.for_each(to, |socket| {
            if let Some(ack) = socket.send_asking(packet, id, timeout) {
                acks.push((socket.id(), ack));
                if !observers.is_empty() {
                    observers.broadcast_to_socket(socket, &observed);
                }
            }
        });
        if !observers.is_empty() {
            observers.broadcast_whole(&self.name, &observed, acks.len());
        }
        acks
    }

    fn describe(&self, to: Recipients<'_>) -> Vec<RemoteSocketData> {
        self.collect(to)
            .iter()
            .map(|socket| {
                let auth = socket.auth().get(0).unwrap_or_default();
                RemoteSocketData {
                    id: socket.id(),
                    handshake: HandshakeData::new(socket.handshake(), auth),
                    rooms: Vec::new(),
                    data: socket.data_value(),
                }
            })
            .collect()
    }

    fn disconnect(&self, to: Recipients<'_>, close: bool) {
        // Leaving takes the socket map's write lock: act outside the read lock.
        for socket in self.collect(to) {
            if close {
                socket.close();
            } else {
                socket.disconnect();
            }
        }
    }

    fn rooms_changed(&self, sid: Sid, rooms: &[Room], joined: bool) {
        let observers = &self.shared.observers;
        for room in rooms {
            if joined {
                observers.each(|o| o.room_joined(&self.name, room, sid));
            } else {
                observers.each(|o| o.room_left(&self.name, room, sid));
            }
        }
    }

    fn server_event(&self, event: &str, args: Payload, ack: ServerAck) {
        let handler = {
            let handlers = self.server_events.read().unwrap_or_else(|e| e.into_inner());
            handlers
                .iter()
                .find(|(name, _)| name == event)
                .map(|(_, handler)| handler.clone())
        };
        let Some(handler) = handler else {
            tracing::debug!(ns = %self.name, event, "no handler for a server-side event");
            return;
        };
        if panic::catch_unwind(AssertUnwindSafe(|| handler(args, ack))).is_err() {
            tracing::error!(ns = %self.name, event, "a server-side event handler panicked");
        }
    }
}

/// What the observers are told about a broadcast packet; `args` reads its arguments.
fn sent_of<'a>(packet: &'a BroadcastPacket, args: &'a dyn Fn() -> Option<Payload>) -> Sent<'a> {
    Sent {
        event: packet.event(),
        bytes: packet.encoded.len(),
        args,
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A handle to one namespace: its sockets, rooms and broadcasts, and events between servers.
#[derive(Clone)]
pub struct NamespaceRef(pub(crate) Arc<Namespace>);

impl NamespaceRef {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The number of sockets connected on this server.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no socket is connected on this server.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The socket with id `sid`, if it is connected on this server.
    pub fn get_socket(&self, sid: Sid) -> Option<SocketRef> {
        self.0.get_socket(sid)
    }

    fn operator(&self) -> BroadcastOperator {
        self.0.operator()
    }

    /// Waits until the namespace's adapter has started ([`Adapter::init`]), and reports how
    /// that went.
    pub async fn ready(&self) -> Result<(), AdapterError> {
        self.0.ready().await
    }

    /// How many servers serve this namespace, this one included.
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.0.adapter.server_count().await
    }

    /// Every room with at least one socket, on every server (each socket's own room
    /// included).
    pub async fn rooms(&self) -> Result<Vec<Room>, AdapterError> {
        self.0.adapter.rooms().await
    }

    /// Handles the server-side event `event` that other servers of the cluster emit
    /// ([`server_side_emit`](Self::server_side_emit)), replacing an earlier handler of that
    /// event. The [`ServerAck`] answers an emit that waits for one.
    ///
    /// ```
    /// # fn demo(io: ferrio::Io) {
    /// io.of("/").unwrap().on_server_event("census", |_args, ack: ferrio::adapter::ServerAck| {
    ///     let _ = ack.send(&42);
    /// });
    /// # }
    /// ```
    pub fn on_server_event<F>(&self, event: impl Into<String>, handler: F)
    where
        F: Fn(Payload, ServerAck) + Send + Sync + 'static,
    {
        let (event, handler) = (event.into(), Arc::new(handler) as ServerEventHandler);
        let mut handlers = self
            .0
            .server_events
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match handlers.iter_mut().find(|(name, _)| *name == event) {
            Some(entry) => entry.1 = handler,
            None => handlers.push((event, handler)),
        }
    }

    /// Sends an event with the elements of `args` as arguments to the other servers of the
    /// cluster (not to clients); nothing happens on a single server.
    pub fn server_side_emit<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<(), AdapterError> {
        self.0.adapter.server_side_emit(event, server_args(args)?)
    }

    /// Like [`server_side_emit`](Self::server_side_emit), and collects one answer per other
    /// server within the server's `ack_timeout`.
    pub async fn server_side_emit_with_ack<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<Vec<Payload>, AdapterError> {
        let args = server_args(args)?;
        let timeout = self.0.ack_timeout();
        self.0
            .adapter
            .server_side_emit_with_ack(event, args, timeout)
            .await
    }

    operator_entry_points!();
}

fn server_args<A: Serialize + ?Sized>(args: &A) -> Result<Payload, AdapterError> {
    Payload::from_args(args).map_err(|e| {
        AdapterError::new(
            AdapterErrorKind::Encode,
            "cannot encode a server-side event",
        )
        .with_source(e)
    })
}

impl fmt::Debug for NamespaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NamespaceRef").field(&self.0.name).finish()
    }
}
