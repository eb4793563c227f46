//! The engine's own limits on HTTP requests: header size, open sessions, and the rate of
//! handshakes. Each is checked once per request, never per poll or frame.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use crate::config::EngineIoConfig;
use crate::error::EngineError;

/// Refuses a request whose headers exceed `max_header_count` lines or `max_header_bytes`
/// bytes of names and values.
pub(crate) fn check_headers(
    config: &EngineIoConfig,
    headers: &HeaderMap,
) -> Result<(), EngineError> {
    // `len` counts every value, so a header sent many times counts as many lines.
    if headers.len() > config.max_header_count {
        return Err(EngineError::HeadersTooLarge);
    }
    let bytes = headers.iter().fold(0usize, |sum, (name, value)| {
        sum.saturating_add(name.as_str().len() + value.len())
    });
    if bytes > config.max_header_bytes {
        return Err(EngineError::HeadersTooLarge);
    }
    Ok(())
}

/// The number of sessions that hold a slot: open ones, and WebSocket handshakes accepted but
/// whose session has not opened yet. A slot is taken before a session opens and given back
/// when it closes.
#[derive(Debug, Default)]
pub(crate) struct SessionSlots {
    taken: AtomicUsize,
}

impl SessionSlots {
    /// Takes a slot, unless `max` are taken already.
    pub(crate) fn try_take(&self, max: Option<usize>) -> Result<(), EngineError> {
        let Some(max) = max else {
            self.taken.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then(|| n + 1)
            })
            .map(drop)
            .map_err(|_| EngineError::TooManySessions)
    }

    /// Gives a slot back: its session closed, or never opened.
    pub(crate) fn give_back(&self) {
        // Never below zero, even if a bug gave back a slot twice.
        let _ = self
            .taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// A token bucket over handshakes, as the generic cell rate algorithm: one timestamp instead
/// of a token count and a refill clock. Each handshake moves the "theoretical arrival time"
/// one interval (`1/rate` s) on; a handshake is refused while that time is more than a
/// second (the bucket's size) ahead of now.
#[derive(Debug)]
pub(crate) struct HandshakeRate {
    interval: Duration,
    burst: Duration,
    arrival: Mutex<Option<Instant>>,
}

impl HandshakeRate {
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        Self {
            interval: Duration::from_secs(1) / per_second,
            burst: Duration::from_secs(1),
            arrival: Mutex::new(None),
        }
    }

    /// Takes a token at `now`, or refuses the handshake.
    pub(crate) fn try_acquire(&self, now: Instant) -> Result<(), EngineError> {
        let mut arrival = self.arrival.lock().unwrap_or_else(|e| e.into_inner());
        let start = arrival.map_or(now, |at| at.max(now));
        let next = start + self.interval;
        if next.saturating_duration_since(now) > self.burst {
            return Err(EngineError::TooManyHandshakes);
        }
        *arrival = Some(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_and_bytes_are_both_bounded() {
        let config = EngineIoConfig::default()
            .max_header_count(3)
            .max_header_bytes(20);
        let mut headers = HeaderMap::new();
        headers.append("a", "1".parse().expect("valid value"));
        headers.append("a", "2".parse().expect("valid value"));
        headers.append("b", "12345678".parse().expect("valid value"));
        // 3 lines, 2 + 2 + 9 = 13 bytes.
        assert_eq!(check_headers(&config, &headers), Ok(()));
        headers.append("a", "3".parse().expect("valid value"));
        assert_eq!(
            check_headers(&config, &headers),
            Err(EngineError::HeadersTooLarge),
            "a repeated header counts once per line"
        );

        let mut headers = HeaderMap::new();
        headers.append("b", "x".repeat(19).parse().expect("valid value"));
        assert_eq!(
            check_headers(&config, &headers),
            Ok(()),
            "exactly the limit"
        );
        headers.insert("b", "x".repeat(20).parse().expect("valid value"));
        assert_eq!(
            check_headers(&config, &headers),
            Err(EngineError::HeadersTooLarge)
        );
    }

    #[test]
    fn slots_are_capped_and_given_back() {
        let slots = SessionSlots::default();
        assert_eq!(slots.try_take(Some(2)), Ok(()));
        assert_eq!(slots.try_take(Some(2)), Ok(()));
        assert_eq!(slots.try_take(Some(2)), Err(EngineError::TooManySessions));
        slots.give_back();
        assert_eq!(slots.try_take(Some(2)), Ok(()));
        slots.give_back();
        slots.give_back();
        slots.give_back();
        assert_eq!(slots.taken.load(Ordering::Relaxed), 0);
        assert_eq!(slots.try_take(None), Ok(()));
    }

    #[test]
    fn the_bucket_passes_a_burst_of_rate_then_one_per_interval() {
        let rate = HandshakeRate::new(4);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(rate.try_acquire(t0), Ok(()));
        }
        assert_eq!(rate.try_acquire(t0), Err(EngineError::TooManyHandshakes));
        // A quarter second later, one token is back, and only one.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(rate.try_acquire(t1), Ok(()));
        assert_eq!(rate.try_acquire(t1), Err(EngineError::TooManyHandshakes));
        // After a quiet second the bucket is full again, no fuller.
        let t2 = t1 + Duration::from_secs(5);
        for _ in 0..4 {
            assert_eq!(rate.try_acquire(t2), Ok(()));
        }
        assert_eq!(rate.try_acquire(t2), Err(EngineError::TooManyHandshakes));
    }
}
