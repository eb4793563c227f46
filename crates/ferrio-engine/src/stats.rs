//! Monitoring counters of one engine (feature `metrics`): relaxed atomics, bumped where the
//! event happens and read when metrics are scraped.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct EngineStats {
    upgrades: AtomicU64,
    slow_client_closes: AtomicU64,
    outbound_high_water: AtomicU64,
}

impl EngineStats {
    pub(crate) fn upgraded(&self) {
        self.upgrades.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn slow_client_closed(&self) {
        self.slow_client_closes.fetch_add(1, Ordering::Relaxed);
    }

    /// A session has `unsent` bytes queued: raises the high-water mark if above it. The
    /// shared line is only written when the mark moves, which is rare.
    pub(crate) fn queued(&self, unsent: u64) {
        if unsent > self.outbound_high_water.load(Ordering::Relaxed) {
            self.outbound_high_water
                .fetch_max(unsent, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> EngineStatsSnapshot {
        EngineStatsSnapshot {
            upgrades: self.upgrades.load(Ordering::Relaxed),
            slow_client_closes: self.slow_client_closes.load(Ordering::Relaxed),
            outbound_high_water: self.outbound_high_water.load(Ordering::Relaxed),
        }
    }
}

/// The engine's counters since it started ([`EngineIo::stats`](crate::EngineIo::stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStatsSnapshot {
    /// Sessions upgraded from long-polling to WebSocket.
    pub upgrades: u64,
    /// Sessions closed as slow clients (their unread packets dropped).
    pub slow_client_closes: u64,
    /// The most bytes one session ever had queued and unsent.
    pub outbound_high_water: u64,
}
