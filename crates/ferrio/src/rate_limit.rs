//! [`RateLimit`]: how many events a client may send on one socket, and what happens to the
//! ones over the limit.
//!
//! The bucket of each socket is one `u64`, the time at which it is full again (the
//! "theoretical arrival time" of the generic cell rate algorithm): equivalent to a token
//! bucket, without a token count to refill.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A limit on the events one client sends on one socket (one namespace of one connection):
/// a token bucket that holds [`burst`](Self::burst) events and refills at
/// [`per_second`](Self::per_second) events a second. Set it with
/// [`IoBuilder::event_rate_limit`](crate::IoBuilder::event_rate_limit).
///
/// What counts: every EVENT and BINARY_EVENT packet, whether or not a handler or middleware
/// takes it. ACK packets (the client answering the server's emits) do not count: the server
/// asked for each of them, and one it did not ask for is dropped at the cost of a lookup.
/// CONNECT and DISCONNECT do not count either (see
/// [`max_namespaces_per_connection`](crate::IoBuilder::max_namespaces_per_connection)).
///
/// ```
/// use ferrio::{Io, RateLimit, RateLimitPolicy};
///
/// let (layer, io) = Io::builder()
///     .event_rate_limit(
///         RateLimit::per_second(100)
///             .burst(200)
///             .policy(RateLimitPolicy::Disconnect),
///     )
///     .build_layer();
/// # let _ = (layer, io);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
    policy: RateLimitPolicy,
}

/// What happens to an event over a socket's [`RateLimit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitPolicy {
    /// The event is dropped before any middleware or handler sees it; an ack the client
    /// asked for never comes (its own timeout fires). The socket stays. A warning, with the
    /// number of events dropped server-wide since the last one, is logged at most once every
    /// 10 seconds, so a flood does not flood the log.
    #[default]
    Drop,
    /// The event is dropped and the socket is removed from its namespace, as by
    /// [`SocketRef::disconnect`](crate::SocketRef::disconnect): the client gets a
    /// DISCONNECT ("io server disconnect" in `socket.io-client`, which then does not
    /// reconnect by itself) and the disconnect handler gets
    /// [`DisconnectReason::RateLimited`](crate::DisconnectReason::RateLimited). Packets the
    /// client had already sent for that namespace then close its connection, as after any
    /// server-side disconnect.
    Disconnect,
}

/// How often the warning about dropped events may be logged, server-wide.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl RateLimit {
    /// On average `events` a second (at least 1), with a burst of as many (one second's
    /// worth), dropping the excess ([`RateLimitPolicy::Drop`]).
    pub fn per_second(events: u32) -> Self {
        let per_second = events.max(1);
        Self {
            per_second,
            burst: per_second,
            policy: RateLimitPolicy::Drop,
        }
    }

    /// How many events may come back to back after a quiet spell (at least 1).
    /// Default: the [`per_second`](Self::per_second) rate.
    pub fn burst(mut self, events: u32) -> Self {
        self.burst = events.max(1);
        self
    }

    /// What happens to an event over the limit. Default: [`RateLimitPolicy::Drop`].
    pub fn policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The average rate, in events a second.
    pub fn events_per_second(&self) -> u32 {
        self.per_second
    }

    /// The burst, in events.
    pub fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The policy for events over the limit.
    pub fn over_limit(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Nanoseconds between two events at the average rate.
    fn interval(&self) -> u64 {
        (1_000_000_000 / u64::from(self.per_second)).max(1)
    }

    /// Takes one event from a bucket that is full again at `full_at` (both times in
    /// nanoseconds): the bucket's new `full_at`, or `None` if it is empty.
    fn take(&self, full_at: u64, now: u64) -> Option<u64> {
        let interval = self.interval();
        let next = full_at.max(now).saturating_add(interval);
        // Each event in the bucket's debt is one interval: `burst` of them empty it.
        (next - now <= interval.saturating_mul(u64::from(self.burst))).then_some(next)
    }
}

/// The rate limit of a server's sockets, with what throttles its warnings.
#[derive(Debug)]
pub(crate) struct EventLimiter {
    pub(crate) limit: RateLimit,
    /// Times are counted in nanoseconds from here.
    epoch: Instant,
    /// When the last warning was logged; `u64::MAX` before the first.
    warned_at: AtomicU64,
    /// Events dropped since then.
    dropped: AtomicU64,
}

/// The bucket of one socket: when it is full again, in nanoseconds from the server's epoch.
/// Starts full (at 0).
pub(crate) type EventBucket = AtomicU64;

impl EventLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            warned_at: AtomicU64::new(u64::MAX),
            dropped: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes one event from `bucket`; `false` if the event is over the limit.
    pub(crate) fn admit(&self, bucket: &EventBucket) -> bool {
        let now = self.now();
        let mut full_at = bucket.load(Ordering::Relaxed);
        loop {
            let Some(next) = self.limit.take(full_at, now) else {
                return false;
            };
            match bucket.compare_exchange_weak(full_at, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(current) => full_at = current,
            }
        }
    }

    /// Counts a dropped event; the number dropped since the last warning when a warning is
    /// due now (at most one every [`WARN_EVERY`]), `None` otherwise.
    pub(crate) fn note_drop(&self) -> Option<u64> {
        self.note_drop_at(self.now())
    }

    fn note_drop_at(&self, now: u64) -> Option<u64> {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let last = self.warned_at.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_nanos()).unwrap_or(u64::MAX);
        if last != u64::MAX && now.saturating_sub(last) < every {
            return None;
        }
        // One caller wins the warning; the others' drops are counted for the next one.
        self.warned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.dropped.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// How many of `n` events at time `now` the bucket takes.
    fn take_n(limit: &RateLimit, full_at: &mut u64, now: u64, n: usize) -> usize {
        let mut taken = 0;
        for _ in 0..n {
            if let Some(next) = limit.take(*full_at, now) {
                *full_at = next;
                taken += 1;
            }
        }
        taken
    }

    #[test]
    fn a_full_bucket_takes_its_burst_then_refills_at_the_rate() {
        let limit = RateLimit::per_second(10).burst(5);
        let mut full_at = 0;
        assert_eq!(take_n(&limit, &mut full_at, SECOND, 100), 5, "the burst");
        // One interval later, one more event.
        assert_eq!(take_n(&limit, &mut full_at, SECOND + SECOND / 10, 100), 1);
        // Half a second later, five more: the refill never exceeds the burst...
        assert_eq!(
            take_n(&limit, &mut full_at, SECOND * 3 / 2 + SECOND / 10, 100),
            5
        );
        // ...however long the bucket stayed idle.
        assert_eq!(take_n(&limit, &mut full_at, 3600 * SECOND, 100), 5);
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_limited() {
        let limit = RateLimit::per_second(1000).burst(1);
        let mut full_at = 0;
        for i in 1..=10_000 {
            assert_eq!(
                take_n(&limit, &mut full_at, i * SECOND / 1000, 1),
                1,
                "event {i}"
            );
        }
    }

    #[test]
    fn the_settings_have_a_floor_of_one_and_extreme_rates_do_not_overflow() {
        let limit = RateLimit::per_second(0).burst(0);
        assert_eq!((limit.events_per_second(), limit.burst_size()), (1, 1));
        let mut full_at = 0;
        assert_eq!(take_n(&limit, &mut full_at, 0, 10), 1);

        let huge = RateLimit::per_second(u32::MAX).burst(u32::MAX);
        let mut full_at = u64::MAX - 1;
        assert!(huge.take(full_at, u64::MAX).is_some());
        full_at = 0;
        assert_eq!(take_n(&huge, &mut full_at, u64::MAX, 3), 3);
    }

    #[test]
    fn the_shared_bucket_admits_the_burst_and_no_more() {
        let limiter = EventLimiter::new(RateLimit::per_second(1).burst(3));
        let bucket = EventBucket::new(0);
        let admitted = (0..50).filter(|_| limiter.admit(&bucket)).count();
        // 50 admissions take far less than the 47 s it would take to refill that many.
        assert!((3..50).contains(&admitted), "admitted {admitted}");
    }

    #[test]
    fn drop_warnings_come_at_most_once_per_period_and_count_what_they_skipped() {
        let limiter = EventLimiter::new(RateLimit::per_second(1));
        let every = u64::try_from(WARN_EVERY.as_nanos()).unwrap();
        assert_eq!(
            limiter.note_drop_at(5),
            Some(1),
            "the first drop is reported"
        );
        for i in 0..1000 {
            assert_eq!(
                limiter.note_drop_at(6 + i),
                None,
                "drop {i} is only counted"
            );
        }
        assert_eq!(limiter.note_drop_at(5 + every), Some(1001));
        assert_eq!(limiter.note_drop_at(6 + every), None);
    }
}
