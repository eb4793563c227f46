//! The two connections of a server's Redis adapter, shared by all its namespaces: one
//! publishes (a queue drained in pipelined batches), one subscribes (and hands every message
//! to the namespace it is for). Both reconnect with backoff on their own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::config::RedisAdapterConfig;
use crate::health::HealthState;

/// The most messages one pipelined `PUBLISH` batch carries.
const MAX_BATCH: usize = 512;

/// What a namespace subscribes to: channel patterns and exact channels.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscriptions {
    pub(crate) patterns: Vec<String>,
    pub(crate) channels: Vec<String>,
}

/// A namespace's adapter as the subscribing connection sees it (the pub/sub adapter's and
/// the Streams adapter's namespaces both are).
pub(crate) trait Listener: Send + Sync + 'static {
    /// The channels it reads.
    fn subscriptions(&self) -> Subscriptions;
    /// Whether `channel` is one of them.
    fn accepts(&self, channel: &[u8]) -> bool;
    /// A message read on one of them.
    fn receive(self: Arc<Self>, channel: &str, payload: &[u8]);
}

/// What a server's adapters share: the Redis client, the connections' tasks, the registry
/// of namespaces that receive messages.
pub(crate) struct Driver {
    pub(crate) client: Client,
    pub(crate) config: RedisAdapterConfig,
    /// This server's id on the wire.
    pub(crate) uid: String,
    pub(crate) health: HealthState,
    namespaces: RwLock<HashMap<String, Weak<dyn Listener>>>,
    queue: Mutex<VecDeque<Outgoing>>,
    /// Wakes the publisher (its own `Arc`: the publisher waits on it without keeping the
    /// driver alive).
    queued: Arc<Notify>,
    /// The publishing connection while it is up, for queries (`PUBSUB NUMSUB`).
    connection: Mutex<Option<MultiplexedConnection>>,
    commands: mpsc::UnboundedSender<Command>,
    commands_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    started: AtomicBool,
    /// Set when the subscribing connection is lost: the publishing one, to the same Redis,
    /// is most likely dead too, and is replaced before its next use rather than found dead
    /// by a publish that then fails.
    reset_publisher: AtomicBool,
    subscribed_once: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

struct Outgoing {
    channel: String,
    payload: Vec<u8>,
    queued_at: Instant,
}

enum Command {
    Subscribe {
        nsp: String,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        subscriptions: Subscriptions,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Doubling waits between reconnection attempts, with jitter so servers that lost Redis
/// together do not come back in lockstep.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &RedisAdapterConfig) -> Self {
        Self {
            min: config.reconnect_min,
            max: config.reconnect_max,
            next: config.reconnect_min,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::random_range(0.75..=1.0);
        wait.mul_f64(jitter)
    }
}

impl Driver {
    pub(crate) fn new(client: Client, config: RedisAdapterConfig) -> Arc<Self> {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            client,
            config,
            uid: random_id(16),
            health: HealthState::new(),
            namespaces: RwLock::default(),
            queue: Mutex::default(),
            queued: Arc::new(Notify::new()),
            connection: Mutex::default(),
            commands,
            commands_rx: Mutex::new(Some(commands_rx)),
            started: AtomicBool::new(false),
            reset_publisher: AtomicBool::new(false),
            subscribed_once: AtomicBool::new(false),
            tasks: Mutex::default(),
        })
    }

    /// Starts the connection tasks, once, in the current runtime.
    fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(commands) = lock(&self.commands_rx).take() else {
            return;
        };
        let publisher = tokio::spawn(run_publisher(Arc::downgrade(self)));
        let subscriber = tokio::spawn(run_subscriber(Arc::downgrade(self), commands));
        lock(&self.tasks).extend([publisher.abort_handle(), subscriber.abort_handle()]);
    }

    /// Registers a namespace and subscribes to its channels. Waits for the subscription
    /// when the subscribing connection is up or was never up (the first start); while Redis
    /// is down after having been up, returns at once (the namespace is subscribed when the
    /// connection comes back).
    pub(crate) async fn register(
        self: &Arc<Self>,
        nsp: &str,
        inner: Weak<dyn Listener>,
    ) -> Result<(), RedisUnavailable> {
        self.start();
        self.namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nsp.to_owned(), inner);
        let (done, subscribed) = oneshot::channel();
        let _ = self.commands.send(Command::Subscribe {
            nsp: nsp.to_owned(),
            done,
        });
        if self.subscribed_once.load(Ordering::Acquire) && !self.health.subscriber_connected() {
            return Ok(());
        }
        match tokio::time::timeout(self.config.connect_timeout, subscribed).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(RedisUnavailable),
        }
    }

    pub(crate) fn unregister(&self, nsp: &str) {
        let removed = self
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(nsp);
        if let Some(subscriptions) = removed.and_then(|l| l.upgrade()).map(|l| l.subscriptions()) {
            let _ = self.commands.send(Command::Unsubscribe { subscriptions });
        }
    }

    /// Queues a message for publishing; counts it as unpublished when the queue is full.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) {
        let mut queue = lock(&self.queue);
        if queue.len() >= self.config.max_queued_publishes {
            drop(queue);
            self.health.unpublished(1, "the publish queue is full");
            return;
        }
        queue.push_back(Outgoing {
            channel,
            payload,
            queued_at: Instant::now(),
        });
        drop(queue);
        self.queued.notify_one();
    }

    /// How many servers subscribe to `channel` (`PUBSUB NUMSUB`), this one included.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, RedisError> {
        let mut numsub = redis::cmd("PUBSUB");
        numsub.arg("NUMSUB").arg(channel);
        let (_, count): (String, usize) = self.query(&numsub).await?;
        Ok(count)
    }

    /// Runs a command on the command connection (see [`Self::command_connection`]).
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, RedisError> {
        let mut connection = self.command_connection().await?;
        command.query_async(&mut connection).await
    }

    /// A connection for commands: the publishing one while it is up, a new one otherwise.
    pub(crate) async fn command_connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let connection = lock(&self.connection).clone();
        match connection {
            Some(connection) => Ok(connection),
            None => self.connect_publisher().await,
        }
    }

    async fn connect_publisher(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.request_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Hands a message read from Redis to the namespace it is for.
    fn dispatch(&self, channel: &str, payload: &[u8]) {
        let namespaces = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        // The namespace ends at the first `#` of the channel name in the common case; a
        // namespace holding `#` is found by asking each one.
        let direct = crate::wire::parse_channel(&self.config.prefix, channel.as_bytes())
            .and_then(|parsed| namespaces.get(parsed.nsp))
            .and_then(Weak::upgrade)
            .filter(|ns| ns.accepts(channel.as_bytes()));
        let target = direct.or_else(|| {
            namespaces
                .values()
                .filter_map(Weak::upgrade)
                .find(|ns| ns.accepts(channel.as_bytes()))
        });
        drop(namespaces);
        if let Some(ns) = target {
            ns.receive(channel, payload);
        }
    }

    fn subscriptions_of(&self, nsp: &str) -> Option<Subscriptions> {
        let namespaces = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        namespaces
            .get(nsp)
            .and_then(Weak::upgrade)
            .map(|l| l.subscriptions())
    }

    async fn subscribe(&self, sink: &mut PubSubSink, nsp: &str) -> Result<(), RedisError> {
        let Some(subscriptions) = self.subscriptions_of(nsp) else {
            return Ok(());
        };
        for pattern in subscriptions.patterns {
            sink.psubscribe(pattern).await?;
        }
        if !subscriptions.channels.is_empty() {
            sink.subscribe(&subscriptions.channels).await?;
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        sink: &mut PubSubSink,
        subscriptions: Subscriptions,
    ) -> Result<(), RedisError> {
        for pattern in subscriptions.patterns {
            sink.punsubscribe(pattern).await?;
        }
        if !subscriptions.channels.is_empty() {
            sink.unsubscribe(&subscriptions.channels).await?;
        }
        Ok(())
    }

    /// Opens the subscribing connection and subscribes to every registered namespace.
    async fn connect_subscriber(
        &self,
    ) -> Result<(PubSubSink, redis::aio::PubSubStream), RedisError> {
        let pubsub =
            tokio::time::timeout(self.config.connect_timeout, self.client.get_async_pubsub())
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })??;
        let (mut sink, stream) = pubsub.split();
        let names: Vec<String> = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for nsp in names {
            self.subscribe(&mut sink, &nsp).await?;
        }
        Ok((sink, stream))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// Redis could not be reached in time.
#[derive(Debug)]
pub(crate) struct RedisUnavailable;

/// A random id of `len` letters and digits.
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Drains the publish queue in pipelined batches, reconnecting when the connection fails.
/// Messages older than the publish delay are given up and counted.
async fn run_publisher(driver: Weak<Driver>) {
    let Some(first) = driver.upgrade() else {
        return;
    };
    let mut backoff = Backoff::new(&first.config);
    drop(first);
    let mut connection: Option<MultiplexedConnection> = None;
    let mut ever_connected = false;
    let mut batch: Vec<Outgoing> = Vec::with_capacity(MAX_BATCH);
    loop {
        let Some(d) = driver.upgrade() else { return };
        if d.reset_publisher.swap(false, Ordering::AcqRel) && connection.take().is_some() {
            *lock(&d.connection) = None;
            d.health.set_up(true, false, false);
        }
        if connection.is_none() {
            match d.connect_publisher().await {
                Ok(c) => {
                    *lock(&d.connection) = Some(c.clone());
                    connection = Some(c);
                    d.health.set_up(true, true, ever_connected);
                    ever_connected = true;
                    backoff.reset();
                }
                Err(e) => {
                    d.health
                        .connection_failed("cannot open the publishing connection", &e);
                    expire(&d, &mut batch);
                    let wait = backoff.next();
                    drop(d);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
        }
        if batch.is_empty() {
            let wake = d.queued.clone();
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut queue = lock(&d.queue);
                let n = queue.len().min(MAX_BATCH);
                batch.extend(queue.drain(..n));
            }
            if batch.is_empty() {
                drop(d);
                notified.await;
                continue;
            }
        }
        expire(&d, &mut batch);
        if batch.is_empty() {
            continue;
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd("PUBLISH")
                .arg(&message.channel)
                .arg(&message.payload)
                .ignore();
        }
        match pipe.query_async::<()>(conn).await {
            Ok(()) => d.health.published(batch.len()),
            Err(e) => {
                // The batch may have been published in part: it is not sent again (that
                // could deliver a broadcast twice), it is counted as unpublished.
                d.health.unpublished(batch.len(), "a publish failed");
                d.health
                    .connection_failed("the publishing connection failed", &e);
                connection = None;
                *lock(&d.connection) = None;
                d.health.set_up(true, false, false);
            }
        }
        batch.clear();
    }
}

/// Gives up the messages, in the batch and in the queue, that waited longer than the
/// publish delay.
fn expire(driver: &Driver, batch: &mut Vec<Outgoing>) {
    let max = driver.config.max_publish_delay;
    let before = batch.len();
    batch.retain(|m| m.queued_at.elapsed() <= max);
    let mut expired = before - batch.len();
    {
        let mut queue = lock(&driver.queue);
        while queue.front().is_some_and(|m| m.queued_at.elapsed() > max) {
            queue.pop_front();
            expired += 1;
        }
    }
    if expired > 0 {
        driver.health.unpublished(
            expired,
            "Redis unreachable for longer than the publish delay",
        );
    }
}

/// Keeps the subscribing connection: subscribes every registered namespace, hands each
/// message to its namespace, checks the connection with `PING`, reconnects when it fails.
async fn run_subscriber(driver: Weak<Driver>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let Some(first) = driver.upgrade() else {
        return;
    };
    let mut backoff = Backoff::new(&first.config);
    let interval = first.config.health_check_interval;
    drop(first);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut ever_connected = false;
    loop {
        let Some(d) = driver.upgrade() else { return };
        // Subscriptions asked for before this attempt are part of it.
        while let Ok(command) = commands.try_recv() {
            if let Command::Subscribe { done, .. } = command {
                waiting.push(done);
            }
        }
        match d.connect_subscriber().await {
            Ok((mut sink, mut stream)) => {
                d.health.set_up(false, true, ever_connected);
                ever_connected = true;
                d.subscribed_once.store(true, Ordering::Release);
                backoff.reset();
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
                drop(d);
                let mut ping = tokio::time::interval(interval);
                ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ping.tick().await;
                loop {
                    tokio::select! {
                        message = stream.next() => {
                            let Some(message) = message else { break };
                            let Some(d) = driver.upgrade() else { return };
                            d.dispatch(message.get_channel_name(), message.get_payload_bytes());
                        }
                        command = commands.recv() => {
                            let Some(d) = driver.upgrade() else { return };
                            match command {
                                None => return,
                                Some(Command::Subscribe { nsp, done }) => {
                                    if d.subscribe(&mut sink, &nsp).await.is_err() {
                                        waiting.push(done);
                                        break;
                                    }
                                    let _ = done.send(());
                                }
                                Some(Command::Unsubscribe { subscriptions }) => {
                                    if d.unsubscribe(&mut sink, subscriptions).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        _ = ping.tick() => {
                            // On a subscribed connection (RESP2) Redis answers `PING` with
                            // the array `["pong", ""]`, not `PONG`: any reply in time shows
                            // the connection alive, so it is read as a bare value.
                            let pong =
                                tokio::time::timeout(interval, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                let Some(d) = driver.upgrade() else { return };
                d.health.set_up(false, false, false);
                d.reset_publisher.store(true, Ordering::Release);
                d.queued.notify_one();
            }
            Err(e) => d.health.connection_failed("cannot subscribe", &e),
        }
        // Wait before the next attempt, still taking subscriptions (the next attempt makes
        // them).
        let Some(d) = driver.upgrade() else { return };
        let wait = tokio::time::sleep(backoff.next());
        drop(d);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe { done, .. }) => waiting.push(done),
                    Some(Command::Unsubscribe { .. }) => {}
                },
            }
        }
    }
}
