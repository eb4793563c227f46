//! The steady clients: connected for the whole run (three in four over WebSocket, the rest
//! over long-polling), in the tick room, each doing one acked echo after another so that the
//! server does real work throughout. A client that fails is counted and connects again, so
//! their number stays the level the server must come back to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::behaviours::{echo, join_ticks};
use super::churn::STEP;
use crate::BoxError;
use crate::load::EchoTransport;
use crate::load::http::PollingClient;
use crate::load::ws::WsClient;

/// The pause between two echoes of one client.
const PAUSE: Duration = Duration::from_millis(100);

/// What the steady clients saw.
#[derive(Debug)]
pub(crate) struct Steady {
    pub(crate) clients: usize,
    connected: AtomicU64,
    echoes: AtomicU64,
    failures: AtomicU64,
    errors: Mutex<Vec<String>>,
    latency: Mutex<Histogram<u64>>,
}

impl Steady {
    pub(crate) fn new(clients: usize) -> Arc<Self> {
        Arc::new(Steady {
            clients,
            connected: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            // 1 µs to 1 minute, 3 significant digits.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
        })
    }

    /// Clients connected right now.
    pub(crate) fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn fail(&self, err: &BoxError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock()
            && errors.len() < 5
        {
            errors.push(err.to_string());
        }
    }

    pub(crate) fn report(&self) -> Value {
        let latency = self.latency.lock().map(|h| h.clone()).ok();
        let us = |q: f64| latency.as_ref().map(|h| h.value_at_quantile(q));
        json!({
            "clients": self.clients,
            "echoes": self.echoes.load(Ordering::Relaxed),
            "failures": self.failures(),
            "first_errors": self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            "echo_p50_us": us(0.5),
            "echo_p99_us": us(0.99),
            "echo_max_us": latency.as_ref().map(|h| h.max()),
        })
    }
}

/// Starts the steady clients; they run until `stop` turns true.
pub(crate) fn spawn(
    steady: &Arc<Steady>,
    addr: SocketAddr,
    path: &str,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..steady.clients)
        .map(|i| {
            let websocket = i % 4 != 3;
            let (steady, path, stop) = (steady.clone(), path.to_owned(), stop.clone());
            tokio::spawn(client(steady, websocket, addr, path, stop))
        })
        .collect()
}

/// One steady client: connects, joins the tick room, echoes until told to stop; connects
/// again after a failure.
async fn client(
    steady: Arc<Steady>,
    websocket: bool,
    addr: SocketAddr,
    path: String,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let session = async {
            if websocket {
                session(&steady, WsClient::connect(addr, &path)).await
            } else {
                session(&steady, PollingClient::connect(addr, &path)).await
            }
        };
        let result = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            result = session => result,
        };
        if let Err(err) = result {
            steady.fail(&err);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Connects with `connect`, joins the tick room, and echoes until an error.
async fn session<T: EchoTransport>(
    steady: &Steady,
    connect: impl Future<Output = Result<T, BoxError>>,
) -> Result<(), BoxError> {
    let joined = async {
        let mut client = connect.await?;
        client.send(join_ticks(1)).await?;
        while client.recv().await? != "431[true]" {}
        Ok::<_, BoxError>(client)
    };
    let mut client = tokio::time::timeout(STEP, joined)
        .await
        .map_err(|_| format!("connecting took longer than {STEP:?}"))??;
    steady.connected.fetch_add(1, Ordering::Relaxed);
    let result = echo_loop(steady, &mut client).await;
    steady.connected.fetch_sub(1, Ordering::Relaxed);
    result
}

async fn echo_loop<T: EchoTransport>(steady: &Steady, client: &mut T) -> Result<(), BoxError> {
    let mut id = 1u64;
    loop {
        id += 1;
        let sent = Instant::now();
        echo(client, id).await?;
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut latency) = steady.latency.lock() {
            latency.saturating_record(micros.max(1));
        }
        steady.echoes.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PAUSE).await;
    }
}
