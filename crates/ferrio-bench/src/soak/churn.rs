//! The churn: short-lived and misbehaving clients started at a steady rate, each kind counted
//! on its own. What each kind does is in `behaviours.rs`; this file schedules them, counts
//! them and holds their connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::behaviours;

/// The kinds of churn, with their share of the connection rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// WebSocket connect, maybe one acked echo, then a close, a FIN or a RST.
    WsAbandon,
    /// Polling connect, maybe one acked echo, then the client goes away (sometimes after a
    /// polite Engine.IO close); the server finds out by its heartbeat.
    PollingAbandon,
    /// Polling, then a WebSocket probe answered, then no `upgrade`: dropped at once or held.
    UpgradeAbandon,
    /// A connected WebSocket (sometimes in the tick room) that is never read nor closed.
    HalfOpenWs,
    /// A TCP connection that sends nothing.
    IdleTcp,
    /// An HTTP request cut short: headers that never end, a body that never completes, a
    /// WebSocket upgrade request without its end.
    PartialHttp,
    /// A WebSocket in the tick room with a small receive buffer that reads in bursts and
    /// stops reading for a while, sometimes longer than the heartbeat allows.
    SlowReader,
    /// Either transport, going away at a random step (during a request, before an ack).
    RandomDisconnect,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::WsAbandon,
        Kind::PollingAbandon,
        Kind::UpgradeAbandon,
        Kind::HalfOpenWs,
        Kind::IdleTcp,
        Kind::PartialHttp,
        Kind::SlowReader,
        Kind::RandomDisconnect,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::WsAbandon => "ws-abandon",
            Kind::PollingAbandon => "polling-abandon",
            Kind::UpgradeAbandon => "upgrade-abandon",
            Kind::HalfOpenWs => "half-open-ws",
            Kind::IdleTcp => "idle-tcp",
            Kind::PartialHttp => "partial-http",
            Kind::SlowReader => "slow-reader",
            Kind::RandomDisconnect => "random-disconnect",
        }
    }

    /// Relative share of the rate: connections that come and go are most of the churn,
    /// connections that are held a while a smaller part (they add up).
    fn weight(self) -> u32 {
        match self {
            Kind::WsAbandon | Kind::PollingAbandon => 4,
            Kind::UpgradeAbandon => 2,
            Kind::HalfOpenWs | Kind::IdleTcp | Kind::PartialHttp | Kind::SlowReader => 1,
            Kind::RandomDisconnect => 6,
        }
    }

    fn pick() -> Kind {
        let total: u32 = Kind::ALL.iter().map(|k| k.weight()).sum();
        let mut roll = rand::random_range(0..total);
        for kind in Kind::ALL {
            if roll < kind.weight() {
                return kind;
            }
            roll -= kind.weight();
        }
        Kind::RandomDisconnect
    }
}

/// What happened to the clients of one kind.
#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    /// Reached the point where the kind leaves (or was told to stop while holding).
    done: AtomicU64,
    /// Failed before that point: a refused connection, a bad answer, a step timing out.
    failed: AtomicU64,
    /// Connections held (or left unread) at least [`Churn::long_hold`].
    held_long: AtomicU64,
    /// Of those, the ones the server closed by itself meanwhile.
    closed_by_server: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// The churn's settings and counters, shared by every churn task.
#[derive(Debug)]
pub(crate) struct Churn {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    /// The longest a held connection is kept.
    pub(crate) hold: Duration,
    /// A connection held this long has given the server time to notice (heartbeat deadline
    /// with some margin).
    pub(crate) long_hold: Duration,
    counters: [Counters; Kind::ALL.len()],
    /// Churn connections open on the harness side right now.
    open: AtomicU64,
}

/// How long one step of a churn client (a connect, an answer) may take.
pub(crate) const STEP: Duration = Duration::from_secs(10);

impl Churn {
    pub(crate) fn new(addr: SocketAddr, path: &str, hold: Duration, long_hold: Duration) -> Self {
        Churn {
            addr,
            path: path.to_owned(),
            hold,
            long_hold,
            counters: Default::default(),
            open: AtomicU64::new(0),
        }
    }

    fn counters(&self, kind: Kind) -> &Counters {
        &self.counters[kind as usize]
    }

    /// Churn connections open on the harness side.
    pub(crate) fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts one open connection until the guard is dropped.
    pub(crate) fn open_guard(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.clone())
    }

    /// Keeps `tcp` open without reading it until the hold time is over or the churn stops,
    /// then records whether the server closed it meanwhile.
    pub(crate) async fn hold(&self, kind: Kind, tcp: &TcpStream, stop: &mut watch::Receiver<bool>) {
        let started = Instant::now();
        let _ = tokio::time::timeout(self.hold, stop.wait_for(|stopped| *stopped)).await;
        let closed = server_closed(tcp).await;
        self.record_hold(kind, started.elapsed(), closed);
    }

    /// Records a connection held (or left unread) for `held`, and whether the server closed it.
    pub(crate) fn record_hold(&self, kind: Kind, held: Duration, closed: bool) {
        if held >= self.long_hold {
            let counters = self.counters(kind);
            counters.held_long.fetch_add(1, Ordering::Relaxed);
            if closed {
                counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters as JSON, kind by kind.
    pub(crate) fn report(&self) -> Value {
        let kinds: serde_json::Map<String, Value> = Kind::ALL
            .iter()
            .map(|&kind| {
                let c = self.counters(kind);
                let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let errors = c.errors.lock().map(|e| e.clone()).unwrap_or_default();
                let value = json!({
                    "started": n(&c.started),
                    "done": n(&c.done),
                    "failed": n(&c.failed),
                    "held_long": n(&c.held_long),
                    "closed_by_server": n(&c.closed_by_server),
                    "first_errors": errors,
                });
                (kind.name().to_owned(), value)
            })
            .collect();
        Value::Object(kinds)
    }
}

/// One churn connection open on the harness side (see [`Churn::open_connections`]).
#[derive(Debug)]
pub(crate) struct OpenGuard(Arc<Churn>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the server closed `tcp` (end of stream or reset), reading away whatever it sent.
pub(crate) async fn server_closed(tcp: &TcpStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    // Enough for everything a server may have queued for a slow reader; beyond that the
    // connection is plainly still open.
    let mut budget = 64usize << 20;
    loop {
        match tokio::time::timeout(Duration::from_millis(50), tcp.readable()).await {
            Err(_) => return false,
            Ok(Err(_)) => return true,
            Ok(Ok(())) => {}
        }
        match tcp.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if n < budget => budget -= n,
            Ok(_) => return false,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
}

/// Starts churn clients at `rate` per second until `stop` turns true, then waits (a bounded
/// time) for the running ones to let go of their connections.
pub(crate) async fn run(churn: Arc<Churn>, rate: f64, mut stop: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let for_clients = stop.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = interval.tick() => {
                let kind = Kind::pick();
                let churn = churn.clone();
                let stop = for_clients.clone();
                tasks.spawn(async move {
                    let counters = churn.counters(kind);
                    counters.started.fetch_add(1, Ordering::Relaxed);
                    match behaviours::run(kind, &churn, stop).await {
                        Ok(()) => counters.done.fetch_add(1, Ordering::Relaxed),
                        Err(err) => {
                            if let Ok(mut errors) = counters.errors.lock()
                                && errors.len() < 3
                            {
                                errors.push(err.to_string());
                            }
                            counters.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Every step has a timeout and every hold ends on `stop`: this takes seconds at most.
    let drained = tokio::time::timeout(STEP * 2, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "soak: {} churn clients did not stop in time; aborted",
            tasks.len()
        );
        tasks.abort_all();
    }
}
