//! A distributed adapter over an in-process bus (tokio channels), written against ferrio's
//! public API only, as an adapter in its own crate would be.
//!
//! Every server of a cluster shares one [`Bus`]. Each namespace's [`BusAdapter`] wraps a
//! [`LocalAdapter`] for its own sockets and sends every operation to the adapters of the
//! same namespace on the other servers, which apply it to theirs. Messages travel as bytes
//! (msgpack), packets in their wire form, so what arrives is decoded and checked as a real
//! broker's messages would be.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrio::adapter::{
    Adapter, AdapterContext, AdapterError, AdapterErrorKind, BoxFuture, BroadcastAckFuture,
    BroadcastOptions, BroadcastPacket, LocalAdapter, Message as WireMessage, RemoteAckSender,
    RemoteSocketData, Room, ServerAck, remote_acks,
};
use ferrio::{Bytes, Payload, Sid};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// How long a request waits for the other servers' replies.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The bus of one cluster: cheap to clone, one clone per server.
#[derive(Clone, Default)]
pub struct Bus(Arc<Mutex<Vec<Member>>>);

struct Member {
    uid: u64,
    nsp: String,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl Bus {
    /// A new bus, for a new cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn join(&self, uid: u64, nsp: &str) -> mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.members().push(Member {
            uid,
            nsp: nsp.to_owned(),
            tx,
        });
        rx
    }

    fn leave(&self, uid: u64) {
        self.members().retain(|m| m.uid != uid);
    }

    /// Sends `bytes` to the other adapters of namespace `nsp`, or to adapter `to` only.
    fn publish(&self, from: u64, nsp: &str, to: Option<u64>, bytes: &[u8]) {
        for member in self.members().iter() {
            let addressed = to.is_none_or(|to| to == member.uid);
            if member.uid != from && member.nsp == nsp && addressed {
                let _ = member.tx.send(bytes.to_vec());
            }
        }
    }

    fn count(&self, nsp: &str) -> usize {
        self.members().iter().filter(|m| m.nsp == nsp).count()
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("members", &self.members().len())
            .finish()
    }
}

/// One message on the bus.
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: u64,
    to: Option<u64>,
    body: Body,
}

/// A packet's wire form: the Engine.IO messages a client receives.
#[derive(Serialize, Deserialize)]
enum Frame {
    Text(String),
    Binary(#[serde(with = "serde_bytes_vec")] Vec<u8>),
}

mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let value = rmpv::Value::deserialize(d)?;
        match value {
            rmpv::Value::Binary(bytes) => Ok(bytes),
            _ => Err(serde::de::Error::custom("expected binary")),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum Body {
    Broadcast {
        opts: BroadcastOptions,
        packet: Vec<Frame>,
    },
    BroadcastWithAck {
        request: u64,
        opts: BroadcastOptions,
        packet: Vec<Frame>,
        timeout_ms: u64,
    },
    AckCount {
        request: u64,
        clients: usize,
    },
    Ack {
        request: u64,
        socket: String,
        args: rmpv::Value,
    },
    AddSockets {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    DelSockets {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    Disconnect {
        opts: BroadcastOptions,
        close: bool,
    },
    Fetch {
        request: u64,
        opts: BroadcastOptions,
    },
    FetchReply {
        request: u64,
        sockets: Vec<RemoteSocketData>,
    },
    Rooms {
        request: u64,
    },
    RoomsReply {
        request: u64,
        rooms: Vec<Room>,
    },
    ServerEvent {
        request: Option<u64>,
        event: String,
        args: rmpv::Value,
    },
    ServerEventReply {
        request: u64,
        args: rmpv::Value,
    },
}

/// Where the replies to one of this adapter's requests go.
enum Pending {
    Acks(RemoteAckSender),
    Fetch(mpsc::UnboundedSender<Vec<RemoteSocketData>>),
    Rooms(mpsc::UnboundedSender<Vec<Room>>),
    ServerAcks(mpsc::UnboundedSender<Payload>),
}

/// The adapter of one namespace of one server, on a [`Bus`].
pub struct BusAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    uid: u64,
    bus: Bus,
    local: LocalAdapter,
    requests: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    task: Mutex<Option<AbortHandle>>,
}

static UIDS: AtomicU64 = AtomicU64::new(1);

impl BusAdapter {
    /// The adapter of the namespace of `ctx`, on `bus`.
    pub fn new(ctx: AdapterContext, bus: Bus) -> Self {
        Self {
            inner: Arc::new(Inner {
                uid: UIDS.fetch_add(1, Ordering::Relaxed),
                bus,
                local: LocalAdapter::new(ctx),
                requests: AtomicU64::new(0),
                pending: Mutex::default(),
                task: Mutex::default(),
            }),
        }
    }
}

fn encode_error(e: impl std::error::Error + Send + Sync + 'static) -> AdapterError {
    AdapterError::new(AdapterErrorKind::Encode, "cannot encode a bus message").with_source(e)
}

fn to_frames(packet: &BroadcastPacket) -> Vec<Frame> {
    packet
        .messages()
        .into_iter()
        .map(|m| match m {
            WireMessage::Text(text) => Frame::Text(text.as_str().to_owned()),
            WireMessage::Binary(data) => Frame::Binary(data.to_vec()),
        })
        .collect()
}

fn from_frames(frames: Vec<Frame>) -> Vec<WireMessage> {
    frames
        .into_iter()
        .map(|f| match f {
            Frame::Text(text) => WireMessage::from(text),
            Frame::Binary(data) => WireMessage::Binary(Bytes::from(data)),
        })
        .collect()
}

fn payload_value(args: &Payload) -> Result<rmpv::Value, AdapterError> {
    rmpv::ext::to_value(args).map_err(encode_error)
}

fn value_payload(value: rmpv::Value) -> Option<Payload> {
    match value {
        rmpv::Value::Array(values) => Payload::from_args(&values).ok(),
        _ => None,
    }
}

impl Inner {
    fn ctx(&self) -> &AdapterContext {
        self.local.context()
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, to: Option<u64>, body: Body) -> Result<(), AdapterError> {
        let envelope = Envelope {
            from: self.uid,
            to,
            body,
        };
        let bytes = rmp_serde::to_vec_named(&envelope).map_err(encode_error)?;
        self.bus
            .publish(self.uid, self.ctx().namespace(), to, &bytes);
        Ok(())
    }

    fn others(&self) -> usize {
        self.bus.count(self.ctx().namespace()).saturating_sub(1)
    }

    /// Registers where the replies to a new request go; they stop being accepted after
    /// `timeout`.
    fn request(self: &Arc<Self>, pending: Pending, timeout: Duration) -> u64 {
        let request = self.requests.fetch_add(1, Ordering::Relaxed);
        self.pending().insert(request, pending);
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(inner) = inner.upgrade() {
                inner.pending().remove(&request);
            }
        });
        request
    }

    /// Collects `expected` replies sent on a request's channel, within the timeout.
    async fn collect<T>(
        mut rx: mpsc::UnboundedReceiver<T>,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<T>, AdapterError> {
        let mut replies = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + timeout;
        while replies.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) | Err(_) => {
                    let message = format!("{} of {expected} servers answered", replies.len());
                    return Err(AdapterError::new(AdapterErrorKind::Timeout, message));
                }
            }
        }
        Ok(replies)
    }

    /// Applies a message from another server.
    fn receive(&self, bytes: &[u8]) {
        let envelope: Envelope = match rmp_serde::from_slice(bytes) {
            Ok(envelope) => envelope,
            Err(e) => return tracing::warn!(error = %e, "dropped a malformed bus message"),
        };
        let from = envelope.from;
        let reply = |body| {
            if let Err(e) = self.publish(Some(from), body) {
                tracing::warn!(error = %e, "cannot reply on the bus");
            }
        };
        match envelope.body {
            Body::Broadcast { opts, packet } => {
                if let Some(packet) = self.decode(packet) {
                    let _ = self.local.broadcast(packet, opts);
                }
            }
            Body::BroadcastWithAck {
                request,
                opts,
                packet,
                timeout_ms,
            } => {
                let Some(packet) = self.decode(packet) else {
                    return;
                };
                let timeout = Duration::from_millis(timeout_ms);
                let acks = self
                    .local
                    .with_recipients(&opts, |to| self.ctx().send_with_ack(to, &packet, timeout));
                reply(Body::AckCount {
                    request,
                    clients: acks.len(),
                });
                for (sid, ack) in acks {
                    let answer = self.answerer(from, request, sid);
                    tokio::spawn(async move {
                        if let Ok(args) = ack.await {
                            answer(args);
                        }
                    });
                }
            }
            Body::AddSockets { opts, rooms } => {
                let _ = self.local.add_sockets(opts, rooms);
            }
            Body::DelSockets { opts, rooms } => {
                let _ = self.local.del_sockets(opts, rooms);
            }
            Body::Disconnect { opts, close } => {
                let _ = self.local.disconnect_sockets(opts, close);
            }
            Body::Fetch { request, opts } => reply(Body::FetchReply {
                request,
                sockets: self.local.fetch_local(&opts),
            }),
            Body::Rooms { request } => reply(Body::RoomsReply {
                request,
                rooms: self.local.local_rooms(),
            }),
            Body::ServerEvent {
                request,
                event,
                args,
            } => {
                let Some(args) = value_payload(args) else {
                    return tracing::warn!("dropped a server-side event without arguments");
                };
                let ack = match request {
                    None => ServerAck::none(),
                    Some(request) => {
                        let (bus, uid, nsp) = (
                            self.bus.clone(),
                            self.uid,
                            self.ctx().namespace().to_owned(),
                        );
                        ServerAck::new(move |args: Payload| {
                            let Ok(args) = payload_value(&args) else {
                                return;
                            };
                            let body = Body::ServerEventReply { request, args };
                            let envelope = Envelope {
                                from: uid,
                                to: Some(from),
                                body,
                            };
                            if let Ok(bytes) = rmp_serde::to_vec_named(&envelope) {
                                bus.publish(uid, &nsp, Some(from), &bytes);
                            }
                        })
                    }
                };
                self.ctx().server_event(&event, args, ack);
            }
            Body::AckCount { request, clients } => {
                if let Some(Pending::Acks(tx)) = self.pending().get(&request) {
                    tx.expect(clients);
                }
            }
            Body::Ack {
                request,
                socket,
                args,
            } => {
                let pending = self.pending();
                if let (Some(Pending::Acks(tx)), Some(args)) =
                    (pending.get(&request), value_payload(args))
                {
                    tx.ack(Sid::parse(&socket), args);
                }
            }
            Body::FetchReply { request, sockets } => {
                if let Some(Pending::Fetch(tx)) = self.pending().get(&request) {
                    let _ = tx.send(sockets);
                }
            }
            Body::RoomsReply { request, rooms } => {
                if let Some(Pending::Rooms(tx)) = self.pending().get(&request) {
                    let _ = tx.send(rooms);
                }
            }
            Body::ServerEventReply { request, args } => {
                let pending = self.pending();
                if let (Some(Pending::ServerAcks(tx)), Some(args)) =
                    (pending.get(&request), value_payload(args))
                {
                    let _ = tx.send(args);
                }
            }
        }
    }

    /// A packet from another server, for this namespace.
    fn decode(&self, frames: Vec<Frame>) -> Option<BroadcastPacket> {
        match BroadcastPacket::decode(self.ctx().parser(), from_frames(frames)) {
            Ok(packet) if packet.namespace() == self.ctx().namespace() => Some(packet),
            Ok(_) => {
                tracing::warn!("dropped a packet for another namespace");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropped an invalid packet");
                None
            }
        }
    }

    /// Sends one local socket's answer back to the server that asked.
    fn answerer(&self, to: u64, request: u64, sid: Sid) -> impl FnOnce(Payload) + Send + 'static {
        let (bus, uid, nsp) = (
            self.bus.clone(),
            self.uid,
            self.ctx().namespace().to_owned(),
        );
        move |args: Payload| {
            let Ok(args) = payload_value(&args) else {
                return;
            };
            let body = Body::Ack {
                request,
                socket: sid.to_string(),
                args,
            };
            let envelope = Envelope {
                from: uid,
                to: Some(to),
                body,
            };
            if let Ok(bytes) = rmp_serde::to_vec_named(&envelope) {
                bus.publish(uid, &nsp, Some(to), &bytes);
            }
        }
    }
}

impl Adapter for BusAdapter {
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut rx = inner.bus.join(inner.uid, inner.ctx().namespace());
            let weak = Arc::downgrade(&inner);
            let task = tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.receive(&bytes);
                }
            });
            *inner.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.bus.leave(self.inner.uid);
        if let Some(task) = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let count = self.inner.bus.count(self.inner.ctx().namespace());
        Box::pin(std::future::ready(Ok(count.max(1))))
    }

    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        self.inner.local.add_all(sid, rooms);
    }

    fn del(&self, sid: Sid, room: &str) {
        self.inner.local.del(sid, room);
    }

    fn del_all(&self, sid: Sid) {
        self.inner.local.del_all(sid);
    }

    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        self.inner.local.socket_rooms(sid)
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        self.inner.local.local_sockets(opts)
    }

    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> Result<(), AdapterError> {
        if !opts.flags.local {
            let frames = to_frames(&packet);
            self.inner.publish(
                None,
                Body::Broadcast {
                    opts: opts.clone(),
                    packet: frames,
                },
            )?;
        }
        self.inner.local.broadcast(packet, opts)
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> Result<BroadcastAckFuture, AdapterError> {
        let frames = (!opts.flags.local).then(|| to_frames(&packet));
        let local = self
            .inner
            .local
            .broadcast_with_ack(packet, opts.clone(), timeout)?;
        let Some(frames) = frames else {
            return Ok(local);
        };
        let (tx, remote) = remote_acks(timeout);
        tx.servers(self.inner.others());
        let request = self.inner.request(Pending::Acks(tx), timeout);
        self.inner.publish(
            None,
            Body::BroadcastWithAck {
                request,
                opts,
                packet: frames,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
        )?;
        Ok(local.with_remote(remote))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocketData>, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut sockets = inner.local.fetch_local(&opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let request = inner.request(Pending::Fetch(tx), REQUEST_TIMEOUT);
            inner.publish(None, Body::Fetch { request, opts })?;
            for remote in Inner::collect(rx, inner.others(), REQUEST_TIMEOUT).await? {
                sockets.extend(remote);
            }
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if !opts.flags.local {
            let (opts, rooms) = (opts.clone(), rooms.clone());
            self.inner.publish(None, Body::AddSockets { opts, rooms })?;
        }
        self.inner.local.add_sockets(opts, rooms)
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if !opts.flags.local {
            let (opts, rooms) = (opts.clone(), rooms.clone());
            self.inner.publish(None, Body::DelSockets { opts, rooms })?;
        }
        self.inner.local.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        if !opts.flags.local {
            let opts = opts.clone();
            self.inner.publish(None, Body::Disconnect { opts, close })?;
        }
        self.inner.local.disconnect_sockets(opts, close)
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut rooms = inner.local.local_rooms();
            let (tx, rx) = mpsc::unbounded_channel();
            let request = inner.request(Pending::Rooms(tx), REQUEST_TIMEOUT);
            inner.publish(None, Body::Rooms { request })?;
            for remote in Inner::collect(rx, inner.others(), REQUEST_TIMEOUT).await? {
                rooms.extend(remote);
            }
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, event: &str, args: Payload) -> Result<(), AdapterError> {
        let body = Body::ServerEvent {
            request: None,
            event: event.to_owned(),
            args: payload_value(&args)?,
        };
        self.inner.publish(None, body)
    }

    fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Payload,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let inner = self.inner.clone();
        let event = event.to_owned();
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let request = inner.request(Pending::ServerAcks(tx), timeout);
            let body = Body::ServerEvent {
                request: Some(request),
                event,
                args: payload_value(&args)?,
            };
            inner.publish(None, body)?;
            Inner::collect(rx, inner.others(), timeout).await
        })
    }
}

impl std::fmt::Debug for BusAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusAdapter")
            .field("uid", &self.inner.uid)
            .field("namespace", &self.inner.ctx().namespace())
            .finish()
    }
}
