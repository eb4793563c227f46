//! [`RedisStreamsAdapter`]: the cluster over a Redis stream, wire-compatible with
//! `@socket.io/redis-streams-adapter` 0.3, with connection state recovery across servers.
//!
//! - Broadcasts (without acks), remote joins, leaves and disconnects are stream entries
//!   (`XADD <stream> MAXLEN ~ <max> * uid .. nsp .. type .. data ..`), read by every server
//!   with `XREAD BLOCK` on a connection of their own. A server delivers its own broadcasts
//!   when it reads them back, so every server delivers the stream in the same order, each
//!   packet with its entry id as offset.
//! - Broadcasts with acks, fetching sockets and server-side events are published over
//!   pub/sub on `<prefix>#<nsp>#`; answers go to the asking server's `<prefix>#<nsp>#<uid>#`.
//!   The server count is `PUBSUB NUMSUB <prefix>#<nsp>#`.
//! - Sessions are kept in Redis (`SET <session prefix><pid> .. PX <duration>`), so a client
//!   recovers on any server, even after the one it was on is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use ferrio::adapter::{
    Adapter, AdapterContext, AdapterError, AdapterErrorKind, BoxFuture, BroadcastAckFuture,
    BroadcastOptions, BroadcastPacket, LocalAdapter, Recovery, RemoteAckSender, RemoteSocketData,
    Room, ServerAck, Session, remote_acks,
};
use ferrio::{Payload, Sid};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Value as RedisValue};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::adapter::{payload_values, unavailable, wire_packet, with_ack_timeout};
use crate::config::RedisAdapterConfig;
use crate::connection::{Backoff, Driver, Listener, Subscriptions, random_id};
use crate::forwarding::Forwarding;
use crate::health::Health;
use crate::wire::WirePacket;
use crate::wire::streams::{ClusterData, ClusterMessage, EntryId, SessionRecord, reaches};

/// The settings of a server's Streams adapter.
///
/// ```
/// use ferrio_redis::RedisStreamsConfig;
///
/// let config = RedisStreamsConfig::default().stream_name("my-app").max_len(50_000);
/// assert_eq!(config.stream(), "my-app");
/// ```
#[derive(Debug, Clone)]
pub struct RedisStreamsConfig {
    base: RedisAdapterConfig,
    stream_name: String,
    max_len: usize,
    read_count: usize,
    block: Duration,
    session_prefix: String,
    replay_batch: usize,
}

impl Default for RedisStreamsConfig {
    fn default() -> Self {
        Self {
            base: RedisAdapterConfig::default(),
            stream_name: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block: Duration::from_secs(5),
            session_prefix: "sio:session:".to_owned(),
            replay_batch: 100,
        }
    }
}

impl RedisStreamsConfig {
    /// The connection settings shared with the pub/sub adapter; its
    /// [`prefix`](RedisAdapterConfig::prefix) is the pub/sub channels' prefix (the
    /// reference's `channelPrefix`, default `socket.io`).
    pub fn connection(mut self, config: RedisAdapterConfig) -> Self {
        self.base = config;
        self
    }

    /// The stream's key (the reference's `streamName`). Default `socket.io`.
    pub fn stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }

    /// The stream's approximate cap (`MAXLEN ~`). Default 10 000: a client recovers when
    /// what it missed is still among the last entries.
    pub fn max_len(mut self, entries: usize) -> Self {
        self.max_len = entries.max(1);
        self
    }

    /// The most entries one `XREAD` returns. Default 100.
    pub fn read_count(mut self, entries: usize) -> Self {
        self.read_count = entries.max(1);
        self
    }

    /// How long one `XREAD` blocks. Default 5 s.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(1));
        self
    }

    /// The key prefix of sessions (the reference's `sessionKeyPrefix`). Default
    /// `sio:session:`.
    pub fn session_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.session_prefix = prefix.into();
        self
    }

    /// The most entries read at once while a client catches up. Default 100.
    pub fn replay_batch(mut self, entries: usize) -> Self {
        self.replay_batch = entries.max(1);
        self
    }

    /// The stream's key.
    pub fn stream(&self) -> &str {
        &self.stream_name
    }
}

/// A server's Streams adapter: a connection for commands, one that reads the stream, one
/// that subscribes; shared by the adapters of all its namespaces. Cheap to clone.
///
/// ```no_run
/// use ferrio::Io;
/// use ferrio::adapter::Recovery;
/// use ferrio_redis::RedisStreamsAdapter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisStreamsAdapter::open("redis://127.0.0.1:6379")?;
/// let (layer, io) = Io::builder()
///     .connection_state_recovery(Recovery::default())
///     .adapter(redis.factory())
///     .build_layer();
/// io.ready().await?;
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStreamsAdapter {
    shared: Arc<Shared>,
}

struct Shared {
    driver: Arc<Driver>,
    config: RedisStreamsConfig,
    namespaces: RwLock<HashMap<String, Weak<StreamsInner>>>,
    /// The last entry delivered; held while entries are delivered, and while a recovered
    /// socket catches up, so that every entry reaches it once.
    delivery: tokio::sync::Mutex<Option<EntryId>>,
    /// A copy of the last entry delivered, for synchronous readers.
    delivered: Mutex<Option<EntryId>>,
    reader_ready: Notify,
    writes: mpsc::UnboundedSender<Write>,
    writes_rx: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    in_flight: AtomicUsize,
    written: Notify,
    started: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

type Fallback = Box<dyn FnOnce() + Send>;

enum Write {
    Add {
        fields: Vec<(&'static str, String)>,
        fallback: Option<Fallback>,
    },
    Session {
        key: String,
        value: String,
        ttl: Duration,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisStreamsAdapter {
    /// An adapter on the Redis at `url` with the default settings.
    pub fn open(url: &str) -> Result<Self, RedisError> {
        Ok(Self::new(Client::open(url)?, RedisStreamsConfig::default()))
    }

    /// An adapter on `client`'s Redis with `config`. Nothing is connected until the server
    /// starts the adapter.
    pub fn new(client: Client, config: RedisStreamsConfig) -> Self {
        let (writes, writes_rx) = mpsc::unbounded_channel();
        Self {
            shared: Arc::new(Shared {
                driver: Driver::new(client, config.base.clone()),
                config,
                namespaces: RwLock::default(),
                delivery: tokio::sync::Mutex::new(None),
                delivered: Mutex::new(None),
                reader_ready: Notify::new(),
                writes,
                writes_rx: Mutex::new(Some(writes_rx)),
                in_flight: AtomicUsize::new(0),
                written: Notify::new(),
                started: AtomicBool::new(false),
                tasks: Mutex::default(),
            }),
        }
    }

    /// The factory [`IoBuilder::adapter`](ferrio::IoBuilder::adapter) takes.
    pub fn factory(&self) -> impl Fn(AdapterContext) -> StreamsNamespace + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |ctx| StreamsNamespace::new(ctx, shared.clone())
    }

    /// How the connections are doing; `malformed` counts what was dropped from the stream
    /// This server's part in a cluster that needs no sticky sessions: `advertise` is the
    /// address (`host:port`) the other servers reach it at. See [`Forwarding`].
    pub fn forwarding(&self, advertise: impl Into<String>) -> Forwarding {
        Forwarding::new(self.shared.driver.clone(), advertise.into())
    }

    /// and the channels.
    pub fn health(&self) -> Health {
        self.shared.driver.health.snapshot()
    }

    /// This server's id on the wire.
    pub fn uid(&self) -> &str {
        &self.shared.driver.uid
    }

    /// The settings.
    pub fn config(&self) -> &RedisStreamsConfig {
        &self.shared.config
    }
}

impl std::fmt::Debug for RedisStreamsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsAdapter")
            .field("uid", &self.shared.driver.uid)
            .field("stream", &self.shared.config.stream_name)
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl Shared {
    fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(writes) = lock(&self.writes_rx).take() else {
            return;
        };
        let writer = tokio::spawn(run_writer(Arc::downgrade(self), writes));
        let reader = tokio::spawn(run_reader(Arc::downgrade(self)));
        lock(&self.tasks).extend([writer.abort_handle(), reader.abort_handle()]);
    }

    fn write(&self, write: Write) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(write)) = self.writes.send(write) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            if let Write::Add {
                fallback: Some(fallback),
                ..
            } = write
            {
                fallback();
            }
        }
    }

    fn delivered(&self) -> Option<EntryId> {
        *lock(&self.delivered)
    }

    /// Waits until the reader knows where the stream stands.
    async fn reader_started(&self) -> bool {
        let notified = self.reader_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.delivered().is_some() {
            return true;
        }
        tokio::time::timeout(self.driver.config.connect_timeout, notified)
            .await
            .is_ok()
            || self.delivered().is_some()
    }

    async fn reader_connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.driver.config.connect_timeout))
            .set_response_timeout(Some(self.config.block + self.driver.config.request_timeout));
        self.driver
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Hands stream entries to their namespaces; called with the delivery lock held.
    fn deliver(&self, entries: &[Entry]) {
        let namespaces = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        for entry in entries {
            match ClusterMessage::from_stream_fields(&entry.fields, &self.driver.config.limits) {
                Ok(message) => {
                    if let Some(ns) = namespaces.get(&message.nsp).and_then(Weak::upgrade) {
                        ns.on_entry(entry.id, message);
                    }
                }
                Err(e) => self.driver.health.malformed(&self.config.stream_name, &e),
            }
        }
    }
}

/// One stream entry as read.
struct Entry {
    id: EntryId,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn bytes(value: &RedisValue) -> Option<&[u8]> {
    match value {
        RedisValue::BulkString(b) => Some(b),
        RedisValue::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Entries of an `XRANGE` reply (or of one stream in an `XREAD` reply); `None` when the
/// reply does not have that shape.
fn parse_entries(value: &RedisValue) -> Option<Vec<Entry>> {
    let RedisValue::Array(items) = value else {
        return matches!(value, RedisValue::Nil).then(Vec::new);
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let RedisValue::Array(pair) = item else {
            return None;
        };
        let [id, fields] = pair.as_slice() else {
            return None;
        };
        let id = EntryId::parse(std::str::from_utf8(bytes(id)?).ok()?)?;
        let fields = match fields {
            RedisValue::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((bytes(k)?.to_vec(), bytes(v)?.to_vec())),
                    _ => None,
                })
                .collect(),
            RedisValue::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((bytes(k)?.to_vec(), bytes(v)?.to_vec())))
                .collect(),
            // An entry whose fields are gone: skipped as empty.
            _ => Vec::new(),
        };
        entries.push(Entry { id, fields });
    }
    Some(entries)
}

/// The entries of an `XREAD` reply on one stream.
fn parse_xread(value: &RedisValue) -> Option<Vec<Entry>> {
    match value {
        RedisValue::Nil => Some(Vec::new()),
        RedisValue::Array(streams) => {
            let Some(RedisValue::Array(stream)) = streams.first() else {
                return Some(Vec::new());
            };
            parse_entries(stream.get(1)?)
        }
        RedisValue::Map(streams) => parse_entries(&streams.first()?.1),
        _ => None,
    }
}

async fn xrange(
    conn: &mut MultiplexedConnection,
    stream: &str,
    from: EntryId,
    to: &str,
    count: usize,
) -> Result<Vec<Entry>, AdapterError> {
    let reply: RedisValue = redis::cmd("XRANGE")
        .arg(stream)
        .arg(from.to_string())
        .arg(to)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(|e| unavailable("cannot read the stream").with_source(e))?;
    parse_entries(&reply).ok_or_else(|| unavailable("an XRANGE reply of an unexpected shape"))
}

/// Writes stream entries and sessions in order, in pipelined batches.
async fn run_writer(shared: Weak<Shared>, mut writes: mpsc::UnboundedReceiver<Write>) {
    let Some(first) = shared.upgrade() else {
        return;
    };
    let mut backoff = Backoff::new(&first.driver.config);
    drop(first);
    let mut batch: Vec<Write> = Vec::new();
    loop {
        if batch.is_empty() {
            let Some(write) = writes.recv().await else {
                return;
            };
            batch.push(write);
            while batch.len() < 256 {
                match writes.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
        }
        let Some(s) = shared.upgrade() else { return };
        let mut conn = match s.driver.command_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                s.driver
                    .health
                    .connection_failed("cannot write to the stream", &e);
                fail(&s, &mut batch);
                let wait = backoff.next();
                drop(s);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        backoff.reset();
        let mut pipe = redis::pipe();
        for write in &batch {
            match write {
                Write::Add { fields, .. } => {
                    let cmd = pipe
                        .cmd("XADD")
                        .arg(&s.config.stream_name)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(s.config.max_len)
                        .arg("*");
                    for (k, v) in fields {
                        cmd.arg(*k).arg(v);
                    }
                }
                Write::Session { key, value, ttl } => {
                    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                    pipe.cmd("SET").arg(key).arg(value).arg("PX").arg(ms);
                }
            }
        }
        match pipe.query_async::<Vec<RedisValue>>(&mut conn).await {
            Ok(_) => {
                s.driver.health.published(batch.len());
                let n = batch.len();
                batch.clear();
                s.in_flight.fetch_sub(n, Ordering::AcqRel);
                s.written.notify_waiters();
            }
            Err(e) => {
                s.driver
                    .health
                    .connection_failed("a write to the stream failed", &e);
                fail(&s, &mut batch);
            }
        }
    }
}

/// Gives up a batch: broadcasts are delivered locally (without offset), the rest counted.
fn fail(shared: &Shared, batch: &mut Vec<Write>) {
    let n = batch.len();
    shared.driver.health.unpublished(n, "Redis unreachable");
    for write in batch.drain(..) {
        if let Write::Add {
            fallback: Some(fallback),
            ..
        } = write
        {
            fallback();
        }
    }
    shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    shared.written.notify_waiters();
}

/// Reads the stream from where this server started, delivering every entry in order;
/// after a lost connection, it goes on from the last entry delivered.
async fn run_reader(shared: Weak<Shared>) {
    let Some(first) = shared.upgrade() else {
        return;
    };
    let mut backoff = Backoff::new(&first.driver.config);
    drop(first);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let mut conn = match s.reader_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                s.driver
                    .health
                    .connection_failed("cannot open the stream reader", &e);
                let wait = backoff.next();
                drop(s);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if s.delivered().is_none() {
            // Where the stream stands now: the next entries are this server's first.
            let last: Result<RedisValue, _> = redis::cmd("XREVRANGE")
                .arg(&s.config.stream_name)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await;
            let Some(last) = last.ok().as_ref().and_then(parse_entries) else {
                let wait = backoff.next();
                drop(s);
                tokio::time::sleep(wait).await;
                continue;
            };
            let at = last.first().map_or(EntryId::ZERO, |e| e.id);
            *s.delivery.lock().await = Some(at);
            *lock(&s.delivered) = Some(at);
            s.reader_ready.notify_waiters();
        }
        backoff.reset();
        let (stream, count, block) = (
            s.config.stream_name.clone(),
            s.config.read_count,
            s.config.block,
        );
        drop(s);
        loop {
            let Some(s) = shared.upgrade() else { return };
            let from = s.delivered().unwrap_or(EntryId::ZERO);
            drop(s);
            let reply: Result<RedisValue, _> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&stream)
                .arg(from.to_string())
                .query_async(&mut conn)
                .await;
            let Some(s) = shared.upgrade() else { return };
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    s.driver
                        .health
                        .connection_failed("the stream reader failed", &e);
                    break;
                }
            };
            let Some(entries) = parse_xread(&reply) else {
                s.driver
                    .health
                    .malformed(&stream, &"an XREAD reply of an unexpected shape");
                break;
            };
            if entries.is_empty() {
                continue;
            }
            let mut delivery = s.delivery.lock().await;
            let mut delivered = delivery.unwrap_or(EntryId::ZERO);
            let fresh: Vec<Entry> = entries.into_iter().filter(|e| e.id > delivered).collect();
            s.deliver(&fresh);
            if let Some(last) = fresh.last() {
                delivered = last.id;
            }
            *delivery = Some(delivered);
            *lock(&s.delivered) = Some(delivered);
            drop(delivery);
        }
        let Some(s) = shared.upgrade() else { return };
        let wait = backoff.next();
        drop(s);
        tokio::time::sleep(wait).await;
    }
}

/// The adapter of one namespace on the Streams adapter, made by
/// [`RedisStreamsAdapter::factory`].
pub struct StreamsNamespace {
    inner: Arc<StreamsInner>,
}

enum Pending {
    Fetch(mpsc::UnboundedSender<Vec<RemoteSocketData>>),
    ServerAcks(mpsc::UnboundedSender<Payload>),
    Acks(RemoteAckSender),
}

struct StreamsInner {
    shared: Arc<Shared>,
    local: LocalAdapter,
    recovery: Option<Recovery>,
    public: String,
    private: String,
    pending: Mutex<HashMap<String, Pending>>,
    /// Where each connected socket started on the stream (recovery only).
    since: Mutex<HashMap<Sid, EntryId>>,
}

impl Listener for StreamsInner {
    fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            patterns: Vec::new(),
            channels: vec![self.public.clone(), self.private.clone()],
        }
    }

    fn accepts(&self, channel: &[u8]) -> bool {
        channel == self.public.as_bytes() || channel == self.private.as_bytes()
    }

    fn receive(self: Arc<Self>, channel: &str, payload: &[u8]) {
        let health = &self.shared.driver.health;
        let message =
            match ClusterMessage::decode_msgpack(payload, &self.shared.driver.config.limits) {
                Ok(message) => message,
                Err(e) => return health.malformed(channel, &e),
            };
        if message.uid == self.uid() || message.nsp != self.ctx().namespace() {
            return;
        }
        self.on_message(channel, message, None);
    }
}

impl StreamsInner {
    fn ctx(&self) -> &AdapterContext {
        self.local.context()
    }

    fn uid(&self) -> &str {
        &self.shared.driver.uid
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        lock(&self.pending)
    }

    fn message(&self, data: ClusterData) -> ClusterMessage {
        ClusterMessage {
            uid: self.uid().to_owned(),
            nsp: self.ctx().namespace().to_owned(),
            data,
        }
    }

    fn publish(&self, data: ClusterData) {
        let message = self.message(data);
        self.shared
            .driver
            .publish(self.public.clone(), message.encode_msgpack());
    }

    fn respond(&self, to: &str, data: ClusterData) {
        let channel = format!(
            "{}#{}#{to}#",
            self.shared.driver.config.prefix,
            self.ctx().namespace()
        );
        self.shared
            .driver
            .publish(channel, self.message(data).encode_msgpack());
    }

    fn append(&self, data: ClusterData, fallback: Option<Fallback>) {
        let fields = self.message(data).stream_fields();
        self.shared.write(Write::Add { fields, fallback });
    }

    async fn others(&self) -> Result<usize, AdapterError> {
        if !self.shared.driver.health.subscriber_connected() {
            return Err(unavailable(
                "Redis is unreachable: the other servers cannot be asked",
            ));
        }
        let count = self
            .shared
            .driver
            .numsub(&self.public)
            .await
            .map_err(|e| unavailable("cannot count the servers on Redis").with_source(e))?;
        Ok(count.saturating_sub(1))
    }

    fn request(self: &Arc<Self>, pending: Pending, timeout: Duration) -> String {
        let id = random_id(16);
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
                    self.pending().remove(request_id);
                    let message = format!(
                        "timeout reached while waiting for {what}: {} of {expected} servers answered within {timeout:?}",
                        answers.len()
                    );
                    return Err(AdapterError::new(AdapterErrorKind::Timeout, message));
                }
            }
        }
        self.pending().remove(request_id);
        Ok(answers)
    }

    /// A packet for this namespace's sockets from its wire form.
    fn packet(&self, packet: &WirePacket) -> Result<BroadcastPacket, &'static str> {
        if packet.nsp != self.ctx().namespace() {
            return Err("a packet for another namespace");
        }
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

    /// Whether a broadcast is kept for recovery (and so gets an offset).
    fn keeps(&self, opts: &BroadcastOptions) -> bool {
        self.recovery.is_some() && !opts.flags.volatile
    }

    /// A stream entry of this namespace, delivered in order under the delivery lock.
    fn on_entry(self: &Arc<Self>, id: EntryId, message: ClusterMessage) {
        let own = message.uid == self.uid();
        match message.data {
            ClusterData::Broadcast {
                opts,
                packet,
                request_id: None,
            } => {
                // Every server delivers the stream's broadcasts, this one's included.
                let packet = match self.packet(&packet) {
                    Ok(packet) => packet,
                    Err(e) => {
                        return self
                            .shared
                            .driver
                            .health
                            .malformed(&self.shared.config.stream_name, &e);
                    }
                };
                self.shared.driver.health.received();
                let packet = if self.keeps(&opts) {
                    packet.with_offset(&id.to_string()).unwrap_or(packet)
                } else {
                    packet
                };
                let mut opts = opts;
                opts.flags.local = true;
                let _ = self.local.broadcast(packet, opts);
            }
            _ if own => {}
            data => {
                let message = ClusterMessage { data, ..message };
                let stream = self.shared.config.stream_name.clone();
                self.on_message(&stream, message, Some(id));
            }
        }
    }

    /// A message of another server (over pub/sub, or a non-broadcast stream entry).
    fn on_message(self: &Arc<Self>, channel: &str, message: ClusterMessage, _id: Option<EntryId>) {
        let health = &self.shared.driver.health;
        let from = message.uid;
        match message.data {
            ClusterData::Empty(_) => {}
            ClusterData::Broadcast {
                opts,
                packet,
                request_id,
            } => {
                let packet = match self.packet(&packet) {
                    Ok(packet) => packet,
                    Err(e) => return health.malformed(channel, &e),
                };
                health.received();
                let Some(request_id) = request_id else {
                    let mut opts = opts;
                    opts.flags.local = true;
                    let _ = self.local.broadcast(packet, opts);
                    return;
                };
                let timeout = opts
                    .flags
                    .timeout
                    .map_or_else(|| self.ctx().ack_timeout(), Duration::from_millis);
                let acks = self
                    .local
                    .with_recipients(&opts, |to| self.ctx().send_with_ack(to, &packet, timeout));
                self.respond(
                    &from,
                    ClusterData::BroadcastClientCount {
                        request_id: request_id.clone(),
                        client_count: acks.len() as u64,
                    },
                );
                for (_, ack) in acks {
                    let inner = Arc::downgrade(self);
                    let (from, request_id) = (from.clone(), request_id.clone());
                    tokio::spawn(async move {
                        let Ok(args) = ack.await else { return };
                        let Some(inner) = inner.upgrade() else { return };
                        let packet = payload_values(&args)
                            .ok()
                            .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))
                            .unwrap_or(rmpv::Value::Nil);
                        inner.respond(&from, ClusterData::BroadcastAck { request_id, packet });
                    });
                }
            }
            ClusterData::SocketsJoin { opts, rooms } => {
                health.received();
                let _ = self.local.add_sockets(opts, rooms);
            }
            ClusterData::SocketsLeave { opts, rooms } => {
                health.received();
                let _ = self.local.del_sockets(opts, rooms);
            }
            ClusterData::DisconnectSockets { opts, close } => {
                health.received();
                let _ = self.local.disconnect_sockets(opts, close);
            }
            ClusterData::FetchSockets { opts, request_id } => {
                health.received();
                let sockets = self.local.fetch_local(&opts);
                self.respond(
                    &from,
                    ClusterData::FetchSocketsResponse {
                        request_id,
                        sockets,
                    },
                );
            }
            ClusterData::ServerSideEmit { packet, request_id } => {
                let Some(event) = packet.first().and_then(|e| e.as_str()) else {
                    return health.malformed(channel, &"a server-side event without a name");
                };
                let Ok(args) = Payload::from_args(&packet[1..]) else {
                    return health.malformed(channel, &"server-side event arguments");
                };
                health.received();
                let ack = match request_id {
                    None => ServerAck::none(),
                    Some(request_id) => {
                        let inner = Arc::downgrade(self);
                        ServerAck::new(move |answer: Payload| {
                            let Some(inner) = inner.upgrade() else { return };
                            let packet = payload_values(&answer)
                                .ok()
                                .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))
                                .unwrap_or(rmpv::Value::Nil);
                            inner.respond(
                                &from,
                                ClusterData::ServerSideEmitResponse { request_id, packet },
                            );
                        })
                    }
                };
                self.ctx().server_event(event, args, ack);
            }
            answer => self.on_answer(channel, answer),
        }
    }

    fn on_answer(&self, channel: &str, answer: ClusterData) {
        let health = &self.shared.driver.health;
        let pending = self.pending();
        let id = match &answer {
            ClusterData::FetchSocketsResponse { request_id, .. }
            | ClusterData::ServerSideEmitResponse { request_id, .. }
            | ClusterData::BroadcastClientCount { request_id, .. }
            | ClusterData::BroadcastAck { request_id, .. } => request_id.clone(),
            _ => return,
        };
        let Some(waiting) = pending.get(&id) else {
            return;
        };
        health.received();
        match (waiting, answer) {
            (Pending::Fetch(tx), ClusterData::FetchSocketsResponse { sockets, .. }) => {
                let _ = tx.send(sockets);
            }
            (Pending::ServerAcks(tx), ClusterData::ServerSideEmitResponse { packet, .. }) => {
                if let Ok(args) = Payload::from_args(&[packet]) {
                    let _ = tx.send(args);
                }
            }
            (Pending::Acks(tx), ClusterData::BroadcastClientCount { client_count, .. }) => {
                tx.expect(usize::try_from(client_count).unwrap_or(usize::MAX));
            }
            (Pending::Acks(tx), ClusterData::BroadcastAck { packet, .. }) => {
                if let Ok(args) = Payload::from_args(&[packet]) {
                    tx.ack(None, args);
                }
            }
            _ => health.malformed(channel, &"an answer that does not match its request"),
        }
    }

    fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.shared.config.session_prefix)
    }

    async fn restore(
        &self,
        pid: &str,
        offset: Option<&str>,
    ) -> Result<Option<Session>, AdapterError> {
        if self.recovery.is_none() {
            return Ok(None);
        }
        let mut conn = self
            .shared
            .driver
            .command_connection()
            .await
            .map_err(|e| unavailable("cannot reach Redis").with_source(e))?;
        // One use: read and delete together.
        let (stored, _): (Option<Vec<u8>>, i64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.session_key(pid))
            .cmd("DEL")
            .arg(self.session_key(pid))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable("cannot read a session").with_source(e))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let limits = &self.shared.driver.config.limits;
        let record = match SessionRecord::decode(&stored, limits) {
            Ok(record) => record,
            Err(e) => {
                self.shared.driver.health.malformed("session", &e);
                return Ok(None);
            }
        };
        let Some(sid) = Sid::parse(&record.sid) else {
            return Ok(None);
        };
        if record.pid != pid {
            return Ok(None);
        }
        let from = match offset {
            Some(offset) => EntryId::parse(offset),
            None => record.since.as_deref().and_then(EntryId::parse),
        };
        let Some(from) = from else {
            return Ok(None);
        };
        let stream = &self.shared.config.stream_name;
        if from == EntryId::ZERO {
            // Started on an empty stream: whole unless it was trimmed since.
            let len: usize = redis::cmd("XLEN")
                .arg(stream)
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable("cannot read the stream").with_source(e))?;
            if len >= self.shared.config.max_len {
                return Ok(None);
            }
        } else {
            let found = xrange(&mut conn, stream, from, &from.to_string(), 1).await?;
            if found.first().map(|e| e.id) != Some(from) {
                return Ok(None);
            }
        }
        Ok(Some(Session {
            sid,
            pid: record.pid,
            rooms: record.rooms,
            data: record.data,
            resume_from: Some(from.to_string()),
        }))
    }

    /// Reads the packets after `cursor` up to `to` that a socket in `rooms` missed, in
    /// bounded batches; moves `cursor` to the last entry read.
    async fn missed(
        &self,
        conn: &mut MultiplexedConnection,
        cursor: &mut EntryId,
        to: EntryId,
        rooms: &[Room],
        missed: &mut Vec<BroadcastPacket>,
        scanned: &mut usize,
    ) -> Result<(), AdapterError> {
        let batch = self.shared.config.replay_batch;
        let cap = self
            .shared
            .config
            .max_len
            .saturating_mul(2)
            .saturating_add(batch);
        while *cursor < to {
            let Some(start) = cursor.next() else { break };
            let entries = xrange(
                conn,
                &self.shared.config.stream_name,
                start,
                &to.to_string(),
                batch,
            )
            .await?;
            let Some(last) = entries.last().map(|e| e.id) else {
                break;
            };
            *scanned += entries.len();
            if *scanned > cap {
                return Err(unavailable("too many entries to catch up"));
            }
            for entry in entries {
                let Ok(message) = ClusterMessage::from_stream_fields(
                    &entry.fields,
                    &self.shared.driver.config.limits,
                ) else {
                    continue;
                };
                if message.nsp != self.ctx().namespace() {
                    continue;
                }
                let ClusterData::Broadcast {
                    opts,
                    packet,
                    request_id: None,
                } = message.data
                else {
                    continue;
                };
                if opts.flags.volatile || !reaches(&opts, rooms) {
                    continue;
                }
                if let Ok(packet) = self.packet(&packet) {
                    if let Ok(packet) = packet.with_offset(&entry.id.to_string()) {
                        missed.push(packet);
                    }
                }
            }
            *cursor = last;
        }
        Ok(())
    }

    async fn resume(
        &self,
        session: &Session,
        resume: &mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> bool {
        let Some(mut cursor) = session.resume_from.as_deref().and_then(EntryId::parse) else {
            return false;
        };
        let Ok(mut conn) = self.shared.driver.command_connection().await else {
            return false;
        };
        let mut missed = Vec::new();
        let mut scanned = 0;
        // Most of the way without holding up delivery...
        if let Some(to) = self.shared.delivered() {
            if self
                .missed(
                    &mut conn,
                    &mut cursor,
                    to,
                    &session.rooms,
                    &mut missed,
                    &mut scanned,
                )
                .await
                .is_err()
            {
                return false;
            }
        }
        // ...then the rest under the delivery lock: what is delivered after it reaches the
        // socket live.
        let delivery = self.shared.delivery.lock().await;
        let Some(to) = *delivery else {
            return false;
        };
        if self
            .missed(
                &mut conn,
                &mut cursor,
                to,
                &session.rooms,
                &mut missed,
                &mut scanned,
            )
            .await
            .is_err()
        {
            return false;
        }
        self.local.add_all(session.sid, &session.rooms);
        let resumed = resume(missed);
        if resumed {
            lock(&self.since).insert(session.sid, to);
        } else {
            self.local.del_all(session.sid);
        }
        drop(delivery);
        resumed
    }
}

impl StreamsNamespace {
    fn new(ctx: AdapterContext, shared: Arc<Shared>) -> Self {
        let recovery = ctx.recovery().cloned();
        let prefix = &shared.driver.config.prefix;
        let public = format!("{prefix}#{}#", ctx.namespace());
        let private = format!("{public}{}#", shared.driver.uid);
        Self {
            inner: Arc::new(StreamsInner {
                local: LocalAdapter::new(ctx.with_recovery(None)),
                recovery,
                public,
                private,
                pending: Mutex::default(),
                since: Mutex::default(),
                shared,
            }),
        }
    }
}

impl std::fmt::Debug for StreamsNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsNamespace")
            .field("namespace", &self.inner.ctx().namespace())
            .field("uid", &self.inner.uid())
            .finish_non_exhaustive()
    }
}

impl Adapter for StreamsNamespace {
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let shared = &inner.shared;
            shared
                .namespaces
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(inner.ctx().namespace().to_owned(), Arc::downgrade(inner));
            shared.start();
            shared
                .driver
                .register(
                    inner.ctx().namespace(),
                    Arc::downgrade(inner) as Weak<dyn Listener>,
                )
                .await
                .map_err(|_| unavailable("cannot subscribe on Redis within the connect timeout"))?;
            if !shared.reader_started().await {
                return Err(unavailable(
                    "cannot read the stream within the connect timeout",
                ));
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let shared = &inner.shared;
            // Sessions persisted as the server shut down are written before it goes.
            let deadline = tokio::time::Instant::now() + shared.driver.config.request_timeout;
            tokio::task::yield_now().await;
            while shared.in_flight.load(Ordering::Acquire) > 0 {
                let written = shared.written.notified();
                if tokio::time::timeout_at(deadline, written).await.is_err() {
                    break;
                }
            }
            shared.driver.unregister(inner.ctx().namespace());
            shared
                .namespaces
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(inner.ctx().namespace());
            Ok(())
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.inner.others().await? + 1) })
    }

    fn persist_session(&self, session: Session) {
        let inner = &self.inner;
        let Some(recovery) = &inner.recovery else {
            return;
        };
        let since = lock(&inner.since).get(&session.sid).copied();
        let record = SessionRecord {
            sid: session.sid.to_string(),
            pid: session.pid.clone(),
            rooms: session.rooms,
            data: session.data,
            since: since.map(|id| id.to_string()),
        };
        inner.shared.write(Write::Session {
            key: inner.session_key(&session.pid),
            value: record.encode(),
            ttl: recovery.disconnection_duration(),
        });
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: Option<&str>,
    ) -> BoxFuture<'static, Result<Option<Session>, AdapterError>> {
        let inner = self.inner.clone();
        let (pid, offset) = (pid.to_owned(), offset.map(str::to_owned));
        Box::pin(async move { inner.restore(&pid, offset.as_deref()).await })
    }

    fn resume_session<'a>(
        &'a self,
        session: &'a Session,
        resume: &'a mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> BoxFuture<'a, bool> {
        Box::pin(self.inner.resume(session, resume))
    }

    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        if self.inner.recovery.is_some() {
            let at = self.inner.shared.delivered().unwrap_or(EntryId::ZERO);
            lock(&self.inner.since).entry(sid).or_insert(at);
        }
        self.inner.local.add_all(sid, rooms);
    }

    fn del(&self, sid: Sid, room: &str) {
        self.inner.local.del(sid, room);
    }

    fn del_all(&self, sid: Sid) {
        lock(&self.inner.since).remove(&sid);
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
        if opts.flags.local {
            return self.inner.local.broadcast(packet, opts);
        }
        let wire = wire_packet(self.inner.ctx().namespace(), &packet)?;
        // Delivered here when read back from the stream; if it cannot be written, here only.
        let inner = Arc::downgrade(&self.inner);
        let mut local_opts = opts.clone();
        local_opts.flags.local = true;
        let fallback: Fallback = Box::new(move || {
            if let Some(inner) = inner.upgrade() {
                let _ = inner.local.broadcast(packet, local_opts);
            }
        });
        self.inner.append(
            ClusterData::Broadcast {
                opts,
                packet: wire,
                request_id: None,
            },
            Some(fallback),
        );
        Ok(())
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
        self.inner.publish(ClusterData::Broadcast {
            opts,
            packet,
            request_id: Some(request_id),
        });
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
            let timeout = opts.flags.timeout.map_or(
                inner.shared.driver.config.request_timeout,
                Duration::from_millis,
            );
            let (tx, rx) = mpsc::unbounded_channel();
            let request_id = inner.request(Pending::Fetch(tx), timeout);
            inner.publish(ClusterData::FetchSockets {
                opts,
                request_id: request_id.clone(),
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
            self.inner.append(
                ClusterData::SocketsJoin {
                    opts: opts.clone(),
                    rooms: rooms.clone(),
                },
                None,
            );
        }
        self.inner.local.add_sockets(opts, rooms)
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if !opts.flags.local {
            self.inner.append(
                ClusterData::SocketsLeave {
                    opts: opts.clone(),
                    rooms: rooms.clone(),
                },
                None,
            );
        }
        self.inner.local.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        if !opts.flags.local {
            self.inner.append(
                ClusterData::DisconnectSockets {
                    opts: opts.clone(),
                    close,
                },
                None,
            );
        }
        self.inner.local.disconnect_sockets(opts, close)
    }

    /// The reference has no message listing rooms: the rooms of every socket of the
    /// cluster, from fetching them (which Node.js servers answer too).
    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> {
        let fetch = self.fetch_sockets(BroadcastOptions::default());
        let local = self.inner.local.local_rooms();
        Box::pin(async move {
            let mut rooms = local;
            for socket in fetch.await? {
                rooms.push(socket.id.to_string().into());
                rooms.extend(socket.rooms);
            }
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, event: &str, args: Payload) -> Result<(), AdapterError> {
        let mut packet = vec![rmpv::Value::from(event)];
        packet.extend(payload_values(&args)?);
        self.inner.publish(ClusterData::ServerSideEmit {
            packet,
            request_id: None,
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
            let mut packet = vec![rmpv::Value::from(event)];
            packet.extend(payload_values(&args)?);
            let others = inner.others().await?;
            if others == 0 {
                return Ok(Vec::new());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let request_id = inner.request(Pending::ServerAcks(tx), timeout);
            inner.publish(ClusterData::ServerSideEmit {
                packet,
                request_id: Some(request_id.clone()),
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
