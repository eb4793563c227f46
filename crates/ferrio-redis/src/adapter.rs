//! [`RedisAdapter`] (a server's handle) and [`RedisNamespace`] (the [`Adapter`] of one
//! namespace): local sockets through ferrio's [`LocalAdapter`], the other servers through
//! Redis in the wire format of `@socket.io/redis-adapter` 8.3.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrio::adapter::{
    Adapter, AdapterContext, AdapterError, AdapterErrorKind, BoxFuture, BroadcastAckFuture,
    BroadcastOptions, BroadcastPacket, LocalAdapter, RemoteAckSender, RemoteSocketData, Room,
    ServerAck, Session, remote_acks,
};
use ferrio::{Payload, Sid};
use redis::Client;
use tokio::sync::mpsc;

use crate::config::{RedisAdapterConfig, ResponseChannel};
use crate::connection::{Driver, Listener, Subscriptions, random_id};
use crate::forwarding::Forwarding;
use crate::health::Health;
use crate::wire::{
    BroadcastMessage, Channels, ReceivedOn, Request, RequestType, Response, WirePacket,
};

/// A server's Redis adapter: one publishing and one subscribing connection, shared by the
/// adapters of all its namespaces. Cheap to clone; every clone is the same adapter.
///
/// Give [`factory`](Self::factory) to [`IoBuilder::adapter`](ferrio::IoBuilder::adapter),
/// keep a clone to serve [`health`](Self::health):
///
/// ```no_run
/// use ferrio::Io;
/// use ferrio_redis::RedisAdapter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisAdapter::open("redis://127.0.0.1:6379")?;
/// let (layer, io) = Io::builder().adapter(redis.factory()).build_layer();
/// io.ready().await?; // subscribed: broadcasts now reach every server
/// let app = axum::Router::<()>::new().layer(layer);
/// println!("connected to Redis: {}", redis.health().connected);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisAdapter {
    driver: Arc<Driver>,
}

impl RedisAdapter {
    /// An adapter on the Redis at `url` (`redis://host:port/db`), with the default
    /// settings. Nothing is connected until the server starts the adapter.
    pub fn open(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self::new(Client::open(url)?, RedisAdapterConfig::default()))
    }

    /// An adapter on `client`'s Redis with `config`. Nothing is connected until the server
    /// starts the adapter ([`Io::ready`](ferrio::Io::ready) waits for it).
    pub fn new(client: Client, config: RedisAdapterConfig) -> Self {
        Self {
            driver: Driver::new(client, config),
        }
    }

    /// The factory [`IoBuilder::adapter`](ferrio::IoBuilder::adapter) takes: each namespace
    /// gets a [`RedisNamespace`] on this adapter's connections.
    pub fn factory(&self) -> impl Fn(AdapterContext) -> RedisNamespace + Send + Sync + 'static {
        let driver = self.driver.clone();
        move |ctx| RedisNamespace::new(ctx, driver.clone())
    }

    /// This server's part in a cluster that needs no sticky sessions: `advertise` is the
    /// address (`host:port`) the other servers reach it at. See [`Forwarding`].
    pub fn forwarding(&self, advertise: impl Into<String>) -> Forwarding {
        Forwarding::new(self.driver.clone(), advertise.into())
    }

    /// How the connections are doing, and what could not be published.
    pub fn health(&self) -> Health {
        self.driver.health.snapshot()
    }

    /// This server's id on the wire (the `uid` of its messages).
    pub fn uid(&self) -> &str {
        &self.driver.uid
    }

    /// The settings.
    pub fn config(&self) -> &RedisAdapterConfig {
        &self.driver.config
    }
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("uid", &self.driver.uid)
            .field("prefix", &self.driver.config.prefix)
            .finish_non_exhaustive()
    }
}

/// The adapter of one namespace on Redis, made by [`RedisAdapter::factory`].
pub struct RedisNamespace {
    inner: Arc<NamespaceInner>,
}

/// Where the answers to one of this server's requests go.
enum Pending {
    Rooms(mpsc::UnboundedSender<Vec<Room>>),
    Fetch(mpsc::UnboundedSender<Vec<RemoteSocketData>>),
    ServerAcks(mpsc::UnboundedSender<Payload>),
    Acks(RemoteAckSender),
}

impl Pending {
    fn request_type(&self) -> RequestType {
        match self {
            Self::Rooms(_) => RequestType::AllRooms,
            Self::Fetch(_) => RequestType::RemoteFetch,
            Self::ServerAcks(_) => RequestType::ServerSideEmit,
            Self::Acks(_) => RequestType::Broadcast,
        }
    }
}

pub(crate) struct NamespaceInner {
    driver: Arc<Driver>,
    local: LocalAdapter,
    channels: Channels,
    pending: Mutex<HashMap<String, Pending>>,
}

pub(crate) fn unavailable(message: &'static str) -> AdapterError {
    AdapterError::new(AdapterErrorKind::Unavailable, message)
}

pub(crate) fn encode_error(e: impl std::error::Error + Send + Sync + 'static) -> AdapterError {
    AdapterError::new(
        AdapterErrorKind::Encode,
        "cannot encode a message for Redis",
    )
    .with_source(e)
}

/// Arguments as msgpack values (binary kept as bin).
/// A packet of this server as the adapters carry it: event and arguments, binary inline.
pub(crate) fn wire_packet(nsp: &str, packet: &BroadcastPacket) -> Result<WirePacket, AdapterError> {
    let args = packet.args().map_err(encode_error)?;
    Ok(WirePacket::event(
        nsp,
        packet.event(),
        payload_values(&args)?,
    ))
}

/// The options of a broadcast with acks as they travel: its timeout in `flags.timeout`.
pub(crate) fn with_ack_timeout(opts: &BroadcastOptions, timeout: Duration) -> BroadcastOptions {
    let mut opts = opts.clone();
    opts.flags.timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    opts
}

pub(crate) fn payload_values(args: &Payload) -> Result<Vec<rmpv::Value>, AdapterError> {
    match rmpv::ext::to_value(args).map_err(encode_error)? {
        rmpv::Value::Array(values) => Ok(values),
        _ => Ok(Vec::new()),
    }
}

/// Arguments as JSON values (server-side events travel as JSON, as in the Node adapter).
pub(crate) fn payload_json(args: &Payload) -> Result<Vec<serde_json::Value>, AdapterError> {
    args.deserialize::<Vec<serde_json::Value>>()
        .map_err(encode_error)
}

impl Listener for NamespaceInner {
    fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            patterns: vec![self.channels.broadcast_pattern()],
            channels: vec![
                self.channels.request().to_owned(),
                self.channels.response().to_owned(),
                self.channels.response_to(self.uid()),
            ],
        }
    }

    fn accepts(&self, channel: &[u8]) -> bool {
        self.channels.received_on(channel).is_some()
    }

    fn receive(self: Arc<Self>, channel: &str, payload: &[u8]) {
        NamespaceInner::receive(&self, channel, payload);
    }
}

impl NamespaceInner {
    fn ctx(&self) -> &AdapterContext {
        self.local.context()
    }

    fn uid(&self) -> &str {
        &self.driver.uid
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, channel: String, payload: Vec<u8>) {
        self.driver.publish(channel, payload);
    }

    fn publish_request(&self, request: &Request) {
        self.publish(self.channels.request().to_owned(), request.encode());
    }

    /// Publishes an answer to a request from server `to`.
    fn respond(&self, to: &str, response: &Response) {
        let channel = match (self.driver.config.response_channel, response) {
            (_, Response::ServerSideEmit { .. }) | (ResponseChannel::Shared, _) => {
                self.channels.response().to_owned()
            }
            (ResponseChannel::Specific, _) => self.channels.response_to(to),
        };
        self.publish(channel, response.encode());
    }

    /// How many other servers serve this namespace, or an error when Redis cannot say.
    async fn others(&self) -> Result<usize, AdapterError> {
        if !self.driver.health.subscriber_connected() {
            return Err(unavailable(
                "Redis is unreachable: the other servers cannot be asked",
            ));
        }
        let count = self
            .driver
            .numsub(self.channels.request())
            .await
            .map_err(|e| unavailable("cannot count the servers on Redis").with_source(e))?;
        Ok(count.saturating_sub(1))
    }

    /// Registers where the answers to a new request go, for at most `timeout`.
    fn request(self: &Arc<Self>, pending: Pending, timeout: Duration) -> String {
        let id = random_id(12);
        self.pending().insert(id.clone(), pending);
        let inner = Arc::downgrade(self);
        let key = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(inner) = inner.upgrade() {
                inner.pending().remove(&key);
            }
        });
        id
    }

    fn forget(&self, request_id: &str) {
        self.pending().remove(request_id);
    }

    /// Collects `expected` answers of a request within `timeout`.
    async fn collect<T>(
        &self,
        request_id: &str,
        mut rx: mpsc::UnboundedReceiver<T>,
        expected: usize,
        timeout: Duration,
        what: &str,
    ) -> Result<Vec<T>, AdapterError> {
        let mut answers = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + timeout;
        while answers.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(answer)) => answers.push(answer),
                Ok(None) | Err(_) => {
                    self.forget(request_id);
                    let message = format!(
                        "timeout reached while waiting for {what}: {} of {expected} servers answered within {timeout:?}",
                        answers.len()
                    );
                    return Err(AdapterError::new(AdapterErrorKind::Timeout, message));
                }
            }
        }
        self.forget(request_id);
        Ok(answers)
    }

    /// A packet for this namespace's sockets from what another server published.
    fn packet(&self, packet: &WirePacket) -> Result<BroadcastPacket, &'static str> {
        if packet.nsp != self.ctx().namespace() {
            return Err("a packet for another namespace");
        }
        // 2 EVENT, or 5 BINARY_EVENT from a server that set the type itself.
        if !matches!(packet.packet_type, 2 | 5) {
            return Err("not an event packet");
        }
        let Some(event) = packet.event_name() else {
            return Err("an event without a name");
        };
        self.ctx()
            .packet(event, &packet.data[1..])
            .map_err(|_| "arguments that cannot be encoded")
    }

    /// A message read from Redis on one of this namespace's channels.
    pub(crate) fn receive(self: &Arc<Self>, channel: &str, bytes: &[u8]) {
        let limits = &self.driver.config.limits;
        let health = &self.driver.health;
        let Some(on) = self.channels.received_on(channel.as_bytes()) else {
            return;
        };
        match on {
            ReceivedOn::Broadcast | ReceivedOn::Room(_) => {
                let message = match BroadcastMessage::decode(bytes, limits) {
                    Ok(message) => message,
                    Err(e) => return health.malformed(channel, &e),
                };
                if message.uid == self.uid() {
                    return;
                }
                if message.packet.nsp != self.ctx().namespace() {
                    return;
                }
                match self.packet(&message.packet) {
                    Ok(packet) => {
                        health.received();
                        let mut opts = message.opts;
                        opts.flags.local = true;
                        let _ = self.local.broadcast(packet, opts);
                    }
                    Err(e) => health.malformed(channel, &e),
                }
            }
            ReceivedOn::Request => match Request::decode(bytes, limits) {
                Ok(request) => self.on_request(channel, request),
                Err(e) => health.malformed(channel, &e),
            },
            ReceivedOn::Response => self.on_response(channel, bytes),
            ReceivedOn::ResponseTo(uid) => {
                if uid == self.uid() {
                    self.on_response(channel, bytes);
                }
            }
        }
    }

    fn on_request(self: &Arc<Self>, channel: &str, request: Request) {
        let health = &self.driver.health;
        let own = |uid: Option<&str>| uid == Some(self.uid());
        match request {
            Request::Sockets {
                uid,
                request_id,
                rooms,
            } => {
                if own(Some(&uid)) {
                    return;
                }
                health.received();
                let opts = BroadcastOptions {
                    rooms,
                    ..Default::default()
                };
                let sockets = self
                    .local
                    .local_sockets(&opts)
                    .into_iter()
                    .map(|sid| sid.to_string())
                    .collect();
                self.respond(
                    &uid,
                    &Response::Sockets {
                        request_id,
                        sockets,
                    },
                );
            }
            Request::AllRooms { uid, request_id } => {
                if own(Some(&uid)) {
                    return;
                }
                health.received();
                let rooms = self.local.local_rooms();
                self.respond(&uid, &Response::AllRooms { request_id, rooms });
            }
            Request::RemoteJoin { uid, opts, rooms } => {
                if !own(uid.as_deref()) {
                    health.received();
                    let _ = self.local.add_sockets(opts, rooms);
                }
            }
            Request::RemoteLeave { uid, opts, rooms } => {
                if !own(uid.as_deref()) {
                    health.received();
                    let _ = self.local.del_sockets(opts, rooms);
                }
            }
            Request::RemoteDisconnect { uid, opts, close } => {
                if !own(uid.as_deref()) {
                    health.received();
                    let _ = self.local.disconnect_sockets(opts, close);
                }
            }
            Request::RemoteFetch {
                uid,
                request_id,
                opts,
            } => {
                if own(Some(&uid)) {
                    return;
                }
                health.received();
                let sockets = self.local.fetch_local(&opts);
                self.respond(
                    &uid,
                    &Response::RemoteFetch {
                        request_id,
                        sockets,
                    },
                );
            }
            Request::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                if own(uid.as_deref()) {
                    return;
                }
                let Some(event) = data.first().and_then(|e| e.as_str()) else {
                    return health.malformed(channel, &"a server-side event without a name");
                };
                let Ok(args) = Payload::from_args(&data[1..]) else {
                    return health.malformed(channel, &"server-side event arguments");
                };
                health.received();
                let ack = match request_id {
                    None => ServerAck::none(),
                    Some(request_id) => {
                        let inner = Arc::downgrade(self);
                        let to = uid.unwrap_or_default();
                        ServerAck::new(move |answer: Payload| {
                            let Some(inner) = inner.upgrade() else { return };
                            // The Node adapter carries one answer argument.
                            let data = payload_json(&answer)
                                .ok()
                                .and_then(|mut args| {
                                    (!args.is_empty()).then(|| args.swap_remove(0))
                                })
                                .unwrap_or(serde_json::Value::Null);
                            inner.respond(&to, &Response::ServerSideEmit { request_id, data });
                        })
                    }
                };
                self.ctx().server_event(event, args, ack);
            }
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => {
                if own(Some(&uid)) {
                    return;
                }
                let packet = match self.packet(&packet) {
                    Ok(packet) => packet,
                    Err(e) => return health.malformed(channel, &e),
                };
                health.received();
                let timeout = opts
                    .flags
                    .timeout
                    .map_or_else(|| self.ctx().ack_timeout(), Duration::from_millis);
                let acks = self
                    .local
                    .with_recipients(&opts, |to| self.ctx().send_with_ack(to, &packet, timeout));
                self.respond(
                    &uid,
                    &Response::BroadcastClientCount {
                        request_id: request_id.clone(),
                        client_count: acks.len() as u64,
                    },
                );
                for (_, ack) in acks {
                    let inner = Arc::downgrade(self);
                    let (uid, request_id) = (uid.clone(), request_id.clone());
                    tokio::spawn(async move {
                        let Ok(args) = ack.await else { return };
                        let Some(inner) = inner.upgrade() else { return };
                        // The Node adapter carries the first answer argument.
                        let packet = payload_values(&args)
                            .ok()
                            .and_then(|mut values| {
                                (!values.is_empty()).then(|| values.swap_remove(0))
                            })
                            .unwrap_or(rmpv::Value::Nil);
                        inner.respond(&uid, &Response::BroadcastAck { request_id, packet });
                    });
                }
            }
        }
    }

    fn on_response(&self, channel: &str, bytes: &[u8]) {
        let health = &self.driver.health;
        let response = {
            let pending = self.pending();
            Response::decode(bytes, &self.driver.config.limits, |id| {
                pending.get(id).map(Pending::request_type)
            })
        };
        let response = match response {
            Ok(response) => response,
            // Answers to other servers' requests, on the shared channel.
            Err(crate::wire::DecodeError::UnknownRequest) => return,
            Err(e) => return health.malformed(channel, &e),
        };
        let pending = self.pending();
        let Some(waiting) = pending.get(response.request_id()) else {
            return;
        };
        health.received();
        match (waiting, response) {
            (Pending::Rooms(tx), Response::AllRooms { rooms, .. }) => {
                let _ = tx.send(rooms);
            }
            (Pending::Fetch(tx), Response::RemoteFetch { sockets, .. }) => {
                let _ = tx.send(sockets);
            }
            (Pending::ServerAcks(tx), Response::ServerSideEmit { data, .. }) => {
                if let Ok(args) = Payload::from_args(&[data]) {
                    let _ = tx.send(args);
                }
            }
            (Pending::Acks(tx), Response::BroadcastClientCount { client_count, .. }) => {
                tx.expect(usize::try_from(client_count).unwrap_or(usize::MAX));
            }
            (Pending::Acks(tx), Response::BroadcastAck { packet, .. }) => {
                if let Ok(args) = Payload::from_args(&[packet]) {
                    tx.ack(None, args);
                }
            }
            _ => health.malformed(channel, &"an answer that does not match its request"),
        }
    }
}

impl RedisNamespace {
    fn new(ctx: AdapterContext, driver: Arc<Driver>) -> Self {
        let channels = Channels::new(&driver.config.prefix, ctx.namespace());
        Self {
            inner: Arc::new(NamespaceInner {
                driver,
                local: LocalAdapter::new(ctx),
                channels,
                pending: Mutex::default(),
            }),
        }
    }

    /// The channel names of this namespace.
    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }
}

impl std::fmt::Debug for RedisNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNamespace")
            .field("namespace", &self.inner.ctx().namespace())
            .field("uid", &self.inner.uid())
            .finish_non_exhaustive()
    }
}

impl Adapter for RedisNamespace {
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner
                .driver
                .register(
                    inner.ctx().namespace(),
                    Arc::downgrade(inner) as std::sync::Weak<dyn Listener>,
                )
                .await
                .map_err(|_| unavailable("cannot subscribe on Redis within the connect timeout"))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.driver.unregister(self.inner.ctx().namespace());
        Box::pin(std::future::ready(Ok(())))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.inner.others().await? + 1) })
    }

    // Connection state recovery is this server's own: a client recovers when it comes back
    // to the server it was on (the sessions of the pub/sub adapter do not cross servers).
    fn persist_session(&self, session: Session) {
        self.inner.local.persist_session(session);
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: Option<&str>,
    ) -> BoxFuture<'static, Result<Option<Session>, AdapterError>> {
        self.inner.local.restore_session(pid, offset)
    }

    fn resume_session<'a>(
        &'a self,
        session: &'a Session,
        resume: &'a mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> BoxFuture<'a, bool> {
        self.inner.local.resume_session(session, resume)
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
            let message = BroadcastMessage {
                uid: self.inner.uid().to_owned(),
                packet: wire_packet(self.inner.ctx().namespace(), &packet)?,
                opts: opts.clone(),
            };
            let channel = self.inner.channels.for_rooms(&opts.rooms);
            self.inner.publish(channel, message.encode());
        }
        self.inner.local.broadcast(packet, opts)
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> Result<BroadcastAckFuture, AdapterError> {
        let remote = if opts.flags.local {
            None
        } else {
            Some((
                wire_packet(self.inner.ctx().namespace(), &packet)?,
                with_ack_timeout(&opts, timeout),
            ))
        };
        let local = self.inner.local.broadcast_with_ack(packet, opts, timeout)?;
        let Some((packet, opts)) = remote else {
            return Ok(local);
        };
        let (tx, acks) = remote_acks(timeout);
        let request_id = self.inner.request(Pending::Acks(tx.clone()), timeout);
        self.inner.publish_request(&Request::Broadcast {
            uid: self.inner.uid().to_owned(),
            request_id,
            packet,
            opts,
        });
        // The servers that will report are counted on Redis meanwhile; when Redis cannot
        // say, none is waited for.
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tx.servers(inner.others().await.unwrap_or(0));
        });
        Ok(local.with_remote(acks))
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
            let others = inner.others().await?;
            if others == 0 {
                return Ok(sockets);
            }
            let timeout = opts
                .flags
                .timeout
                .map_or(inner.driver.config.request_timeout, Duration::from_millis);
            let (tx, rx) = mpsc::unbounded_channel();
            let request_id = inner.request(Pending::Fetch(tx), timeout);
            inner.publish_request(&Request::RemoteFetch {
                uid: inner.uid().to_owned(),
                request_id: request_id.clone(),
                opts,
            });
            let answers = inner
                .collect(&request_id, rx, others, timeout, "fetchSockets responses")
                .await?;
            sockets.extend(answers.into_iter().flatten());
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if !opts.flags.local {
            self.inner.publish_request(&Request::RemoteJoin {
                uid: Some(self.inner.uid().to_owned()),
                opts: opts.clone(),
                rooms: rooms.clone(),
            });
        }
        self.inner.local.add_sockets(opts, rooms)
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if !opts.flags.local {
            self.inner.publish_request(&Request::RemoteLeave {
                uid: Some(self.inner.uid().to_owned()),
                opts: opts.clone(),
                rooms: rooms.clone(),
            });
        }
        self.inner.local.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        if !opts.flags.local {
            self.inner.publish_request(&Request::RemoteDisconnect {
                uid: Some(self.inner.uid().to_owned()),
                opts: opts.clone(),
                close,
            });
        }
        self.inner.local.disconnect_sockets(opts, close)
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut rooms = inner.local.local_rooms();
            let others = inner.others().await?;
            if others > 0 {
                let timeout = inner.driver.config.request_timeout;
                let (tx, rx) = mpsc::unbounded_channel();
                let request_id = inner.request(Pending::Rooms(tx), timeout);
                inner.publish_request(&Request::AllRooms {
                    uid: inner.uid().to_owned(),
                    request_id: request_id.clone(),
                });
                let answers = inner
                    .collect(&request_id, rx, others, timeout, "allRooms responses")
                    .await?;
                rooms.extend(answers.into_iter().flatten());
            }
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, event: &str, args: Payload) -> Result<(), AdapterError> {
        let mut data = vec![serde_json::Value::from(event)];
        data.extend(payload_json(&args)?);
        self.inner.publish_request(&Request::ServerSideEmit {
            uid: Some(self.inner.uid().to_owned()),
            request_id: None,
            data,
        });
        Ok(())
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
            let mut data = vec![serde_json::Value::from(event)];
            data.extend(payload_json(&args)?);
            let others = inner.others().await?;
            if others == 0 {
                return Ok(Vec::new());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let request_id = inner.request(Pending::ServerAcks(tx), timeout);
            inner.publish_request(&Request::ServerSideEmit {
                uid: Some(inner.uid().to_owned()),
                request_id: Some(request_id.clone()),
                data,
            });
            inner
                .collect(
                    &request_id,
                    rx,
                    others,
                    timeout,
                    "serverSideEmit acknowledgements",
                )
                .await
        })
    }
}
