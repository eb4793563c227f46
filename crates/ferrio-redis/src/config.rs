//! [`RedisAdapterConfig`]: the settings of a server's Redis adapter.

use std::time::Duration;

use crate::wire::Limits;

/// Where a server publishes its answers to other servers' requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseChannel {
    /// The namespace's shared response channel, `<prefix>-response#<nsp>#`, which every
    /// server reads (the Node adapter's default).
    #[default]
    Shared,
    /// The asking server's own channel, `<prefix>-response#<nsp>#<uid>#` (the Node adapter's
    /// `publishOnSpecificResponseChannel`): each server reads only the answers meant for it.
    /// Answers to server-side events still go to the shared channel, as in the Node adapter.
    Specific,
}

/// The settings of a server's Redis adapter, shared by all its namespaces.
///
/// ```
/// use std::time::Duration;
/// use ferrio_redis::{RedisAdapterConfig, ResponseChannel};
///
/// let config = RedisAdapterConfig::default()
///     .prefix("my-app")
///     .request_timeout(Duration::from_secs(2))
///     .response_channel(ResponseChannel::Specific);
/// assert_eq!(config.key_prefix(), "my-app");
/// ```
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) response_channel: ResponseChannel,
    pub(crate) limits: Limits,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_queued_publishes: usize,
    pub(crate) max_publish_delay: Duration,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) health_check_interval: Duration,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            prefix: "socket.io".to_owned(),
            request_timeout: Duration::from_secs(5),
            response_channel: ResponseChannel::Shared,
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(5),
            max_queued_publishes: 16 * 1024,
            max_publish_delay: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(200),
            health_check_interval: Duration::from_secs(2),
        }
    }
}

impl RedisAdapterConfig {
    /// The key prefix of every channel (the Node adapter's `key` option). Default
    /// `socket.io`. Servers form one cluster when they share a Redis and a prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a request to the other servers (fetching sockets, listing rooms) waits for
    /// every answer before it fails with a timeout. Default 5 s, as in the Node adapter.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Where this server publishes its answers. Default [`ResponseChannel::Shared`].
    pub fn response_channel(mut self, channel: ResponseChannel) -> Self {
        self.response_channel = channel;
        self
    }

    /// Bounds on what is decoded from Redis. Default [`Limits::default`] (1 MiB, depth 64).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long starting the adapter waits for its first subscription before it fails
    /// (the server then refuses the namespace's clients). Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most messages waiting to be published (while Redis is slow or down); past it, a
    /// message is counted as unpublished at once. Default 16 384.
    pub fn max_queued_publishes(mut self, messages: usize) -> Self {
        self.max_queued_publishes = messages.max(1);
        self
    }

    /// How long a message may wait for Redis to come back before it is given up and counted
    /// as unpublished. Default 2 s: a short blip loses nothing, a long outage does not
    /// deliver stale broadcasts minutes later.
    pub fn max_publish_delay(mut self, delay: Duration) -> Self {
        self.max_publish_delay = delay;
        self
    }

    /// The shortest and the longest wait between two attempts to reconnect (doubling from
    /// the first to the second). Default 20 ms to 200 ms, so a Redis back after a restart is
    /// used again within about a fifth of a second.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// How often the subscribing connection is checked with a `PING` (a connection that
    /// stops answering is replaced). Default 2 s.
    pub fn health_check_interval(mut self, interval: Duration) -> Self {
        self.health_check_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }
}
