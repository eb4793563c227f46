//! [`Health`]: how the adapter's connections are doing, and what it could not do.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of a server's Redis adapter, from [`RedisAdapter::health`](crate::RedisAdapter::health).
///
/// While `connected` is false the server is *degraded*: its own clients are served as usual
/// (local broadcasts, rooms, acks), but nothing crosses to the other servers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether both connections (publishing and subscribing) are up.
    pub connected: bool,
    /// Whether the publishing connection is up.
    pub publisher_connected: bool,
    /// Whether the subscribing connection is up and subscribed.
    pub subscriber_connected: bool,
    /// How long the adapter has been degraded, when it is.
    pub degraded_for: Option<Duration>,
    /// Messages published since the start.
    pub published: u64,
    /// Messages that could not be published (Redis down past the publish delay, the queue
    /// full, or a publish that failed): what other servers missed.
    pub unpublished: u64,
    /// Messages received from Redis and applied.
    pub received: u64,
    /// Messages received from Redis and dropped as malformed or oversized.
    pub malformed: u64,
    /// How many times a connection was established again after it was lost.
    pub reconnects: u64,
}

/// The counters and state behind [`Health`], updated by the connection tasks.
#[derive(Debug, Default)]
pub(crate) struct HealthState {
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    published: AtomicU64,
    unpublished: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    reconnects: AtomicU64,
    degraded_since: Mutex<Option<Instant>>,
    warnings: RateLimit,
}

impl HealthState {
    pub(crate) fn new() -> Self {
        Self {
            // Not connected yet: degraded until the first connections are made.
            degraded_since: Mutex::new(Some(Instant::now())),
            ..Self::default()
        }
    }

    pub(crate) fn snapshot(&self) -> Health {
        let publisher_connected = self.publisher_up.load(Ordering::Acquire);
        let subscriber_connected = self.subscriber_up.load(Ordering::Acquire);
        let since = *self
            .degraded_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Health {
            connected: publisher_connected && subscriber_connected,
            publisher_connected,
            subscriber_connected,
            degraded_for: since.map(|since| since.elapsed()),
            published: self.published.load(Ordering::Relaxed),
            unpublished: self.unpublished.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn subscriber_connected(&self) -> bool {
        self.subscriber_up.load(Ordering::Acquire)
    }

    /// Records that a connection came up (`publisher`: the publishing one) or went down.
    pub(crate) fn set_up(&self, publisher: bool, up: bool, reconnect: bool) {
        let flag = if publisher {
            &self.publisher_up
        } else {
            &self.subscriber_up
        };
        let was = flag.swap(up, Ordering::AcqRel);
        if up && reconnect && !was {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let mut since = self
            .degraded_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let healthy =
            self.publisher_up.load(Ordering::Acquire) && self.subscriber_up.load(Ordering::Acquire);
        match (healthy, since.is_some()) {
            (true, true) => {
                tracing::info!(
                    degraded_ms = since.map_or(0, |s| s.elapsed().as_millis() as u64),
                    "redis adapter: connected, cross-server delivery resumed"
                );
                *since = None;
            }
            (false, false) => {
                tracing::warn!(
                    connection = if publisher {
                        "publishing"
                    } else {
                        "subscribing"
                    },
                    "redis adapter degraded: connection lost, serving local clients only until it is back"
                );
                *since = Some(Instant::now());
            }
            _ => {}
        }
    }

    pub(crate) fn published(&self, n: usize) {
        self.published.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts `n` messages that could not be published, with a rate-limited warning.
    pub(crate) fn unpublished(&self, n: usize, why: &str) {
        self.unpublished.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(suppressed) = self.warnings.allow() {
            tracing::warn!(
                count = n,
                suppressed,
                total = self.unpublished.load(Ordering::Relaxed),
                "redis adapter: messages not published ({why})"
            );
        }
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a malformed message, with a rate-limited warning.
    pub(crate) fn malformed(&self, channel: &str, error: &dyn std::fmt::Display) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.warnings.allow() {
            tracing::warn!(
                %channel,
                %error,
                suppressed,
                "redis adapter: dropped a malformed message"
            );
        }
    }

    /// Logs a connection failure, rate limited (reconnection attempts come every few
    /// hundred milliseconds while Redis is down).
    pub(crate) fn connection_failed(&self, what: &str, error: &dyn std::fmt::Display) {
        if let Some(suppressed) = self.warnings.allow() {
            tracing::warn!(%error, suppressed, "redis adapter: {what}");
        }
    }
}

/// At most one warning per second; the others are counted and reported with the next.
#[derive(Debug, Default)]
struct RateLimit {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    /// `Some(suppressed since the last one)` when a warning may be logged now.
    fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < Duration::from_secs(1) => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_until_both_connections_are_up() {
        let state = HealthState::new();
        assert!(!state.snapshot().connected);
        state.set_up(true, true, false);
        assert!(state.snapshot().degraded_for.is_some());
        state.set_up(false, true, false);
        let health = state.snapshot();
        assert!(health.connected && health.degraded_for.is_none());
        state.set_up(false, false, false);
        assert!(state.snapshot().degraded_for.is_some());
        state.set_up(false, true, true);
        assert_eq!(state.snapshot().reconnects, 1);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let limit = RateLimit::default();
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
    }
}
