//! Outbound flow control: each session's unread bytes against its budget and limit, and the
//! watchdog that closes the sessions whose clients stopped reading.
//!
//! A send is never refused for being over the budget, only past the hard limit: a client that
//! reads keeps every message of a burst, however fast the server sends. A session over its
//! budget joins the watch list; the watchdog (one task per engine, asleep while the list is
//! empty) closes it if its transport waits for the client for the stall timeout without the
//! client taking anything, and forgets it once it is back under budget. A writer kept busy
//! by the server itself (a handler emitting a burst on the client's own connection task) is
//! not a stall. Sessions under budget cost nothing but two counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::OutboundLimits;
use crate::socket::Session;

/// Why the watchdog closes a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slow {
    /// Over budget, and its transport took nothing for the stall timeout.
    Stalled,
    /// A send found it at its hard limit.
    AtLimit,
}

struct Watched {
    session: Arc<Session>,
    /// The session's written-bytes counter when it last moved.
    written: u64,
    /// When it last moved.
    since: Instant,
}

/// The engine's list of sessions over their outbound budget, and the task that checks them.
#[derive(Default)]
pub(crate) struct Watchdog {
    watched: Mutex<Vec<Watched>>,
    wake: Notify,
    started: AtomicBool,
    stopped: AtomicBool,
}

impl Watchdog {
    fn list(&self) -> MutexGuard<'_, Vec<Watched>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the watchdog task once, from inside the runtime (the first session's opening).
    pub(crate) fn start(self: &Arc<Self>, limits: OutboundLimits) {
        // A plain load first: every session opening passes here, and a swap would write.
        if !self.started.load(Ordering::Acquire) && !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().run(limits));
        }
    }

    /// Ends the task (the engine is gone).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Adds a session that went over its budget, or reached its limit (checked at once).
    pub(crate) fn watch(&self, session: Arc<Session>, written: u64) {
        self.list().push(Watched {
            session,
            written,
            since: Instant::now(),
        });
        self.wake.notify_one();
    }

    /// Has the task check the list now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>, limits: OutboundLimits) {
        // Checks a few times per stall timeout, so a stall is seen at most a quarter late.
        let tick =
            (limits.stall_timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        loop {
            if self.stopped.load(Ordering::Acquire) {
                self.list().clear();
                return;
            }
            let idle = self.list().is_empty();
            if idle {
                self.wake.notified().await;
            } else {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(tick) => {}
                }
            }
            let slow = self.check(&limits, Instant::now());
            for (session, why) in slow {
                session.close_slow(why);
            }
        }
    }

    /// Sorts the watched sessions: the ones to close are returned, the ones back under budget
    /// (or closed) leave the list, the others stay.
    fn check(&self, limits: &OutboundLimits, now: Instant) -> Vec<(Arc<Session>, Slow)> {
        let mut slow = Vec::new();
        self.list().retain_mut(|w| {
            let Some(progress) = w.session.outbound_progress(limits.budget) else {
                return false; // closed, or back under budget
            };
            if progress.at_limit {
                slow.push((w.session.clone(), Slow::AtLimit));
                return false;
            }
            if progress.written != w.written || !progress.waiting_for_client {
                w.written = progress.written;
                w.since = now;
                return true;
            }
            if now.saturating_duration_since(w.since) >= limits.stall_timeout {
                slow.push((w.session.clone(), Slow::Stalled));
                return false;
            }
            true
        });
        slow
    }
}

/// What the watchdog reads of a watched session.
pub(crate) struct Progress {
    /// Bytes its transport has taken from the queue, ever.
    pub(crate) written: u64,
    /// Whether a send found it at its hard limit.
    pub(crate) at_limit: bool,
    /// Whether its transport is waiting for the client (a WebSocket write the client does
    /// not take, a polling client that has not come back): only then does a stall count.
    pub(crate) waiting_for_client: bool,
}
