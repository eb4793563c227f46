//! The load generator: one process on one core, speaking Engine.IO/Socket.IO itself (no client
//! library), running one scenario against a server that serves the benchmark contract.
//!
//! Protocol with the runner: before and after each measured phase the generator prints
//! `@mark NAME` and, when `FERRIO_BENCH_SYNC=1`, waits for a line on stdin so the runner can
//! read the server's CPU time and RSS at that exact point. The last line is
//! `@result {json}`.

mod cluster;
mod forwarding;
pub(crate) mod http;
mod raw;
pub(crate) mod ws;
mod ws_lean;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Stdin};
use tokio::sync::{Notify, mpsc};

use self::http::{HttpConn, PollingClient};
use self::ws::{ConnectOptions, Frame, WsClient, connect_many};
use self::ws_lean::LeanWs;
use crate::BoxError;
use crate::args::Args;

/// Handshakes in flight at once while connecting many sockets.
const CONNECT_PARALLELISM: usize = 64;

/// The scenarios, by the name the command line uses.
pub(crate) const SCENARIOS: &[&str] = &[
    "idle",
    "echo",
    "fanout",
    "polling",
    "http-emit",
    "cluster",
    "forwarding",
    "big-echo",
    "scale",
    "raw-echo",
];

/// Sockets the scale scenario opens from one source address unless `--sources` says how
/// many addresses to use: well under the 28 000 ephemeral ports of Linux's default range.
const SOCKETS_PER_SOURCE: usize = 20_000;

/// Settings of one load run (the command line's `load` options).
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    /// The server (the first address of `--addr`).
    pub(crate) addr: SocketAddr,
    /// Every address of `--addr a,b,c`: the nodes of the cluster scenario, node 1 first.
    pub(crate) nodes: Vec<SocketAddr>,
    pub(crate) path: String,
    /// Echo and polling clients.
    pub(crate) clients: usize,
    /// Sockets of the idle, fan-out and HTTP-emit scenarios; per node in the cluster scenario;
    /// idle polling sessions in the forwarding scenario.
    pub(crate) sockets: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// `bcast` packets per burst (fan-out).
    pub(crate) messages: usize,
    /// Measured bursts (fan-out).
    pub(crate) rounds: usize,
    /// Measured `POST /emit` requests (HTTP emit) and their concurrency.
    pub(crate) requests: usize,
    pub(crate) concurrency: usize,
    /// Measured cross-node room emits (cluster).
    pub(crate) emits: usize,
    /// How long a burst or a batch of emits may take to arrive before the run fails.
    pub(crate) timeout: Duration,
    /// The JSON payload every scenario sends, compact and with sorted keys so that every
    /// server gives it back byte for byte.
    pub(crate) payload: String,
    /// Size of the binary attachment each `big-echo` echoes.
    pub(crate) binary_bytes: usize,
    /// The generator's WebSocket read buffer (per socket).
    pub(crate) read_buffer: usize,
    /// Loopback source addresses the scale scenario spreads its sockets over (0: one per
    /// [`SOCKETS_PER_SOURCE`] sockets).
    pub(crate) sources: usize,
}

impl LoadConfig {
    pub(crate) fn from_args(args: &mut Args) -> Result<Self, BoxError> {
        let addrs: String = args.value("addr", "127.0.0.1:3000")?;
        let nodes = addrs
            .split(',')
            .map(|addr| {
                addr.trim()
                    .parse::<SocketAddr>()
                    .map_err(|err| format!("--addr {addr:?}: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addr = *nodes.first().ok_or("--addr names no address")?;
        let payload_bytes: usize = args.value("payload-bytes", "0")?;
        let payload = if payload_bytes == 0 {
            r#"{"msg":"hello world","n":42}"#.to_owned()
        } else {
            format!(r#"{{"data":"{}","n":42}}"#, "x".repeat(payload_bytes))
        };
        Ok(LoadConfig {
            addr,
            nodes,
            path: args.value("path", "/socket.io/")?,
            clients: args.value("clients", "100")?,
            sockets: args.value("sockets", "1000")?,
            warmup: Duration::from_secs_f64(args.value("warmup", "1")?),
            duration: Duration::from_secs_f64(args.value("duration", "5")?),
            messages: args.value("messages", "100")?,
            rounds: args.value("rounds", "5")?,
            requests: args.value("requests", "200")?,
            concurrency: args.value("concurrency", "4")?,
            emits: args.value("emits", "2000")?,
            timeout: Duration::from_secs_f64(args.value("timeout", "120")?),
            payload,
            binary_bytes: args.value("binary-bytes", "999000")?,
            read_buffer: args.value("read-buffer-bytes", &ws::DEFAULT_READ_BUFFER.to_string())?,
            sources: args.value("sources", "0")?,
        })
    }

    /// How the generator's WebSockets are opened (the default source address).
    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            source: None,
            read_buffer: self.read_buffer,
        }
    }

    /// The loopback source addresses of the scale scenario, `127.0.0.2` onwards; none (the
    /// system's choice) when one address is enough.
    fn source_addrs(&self) -> Result<Vec<IpAddr>, BoxError> {
        let count = match self.sources {
            0 => self.sockets.div_ceil(SOCKETS_PER_SOURCE),
            n => n,
        };
        if count > 250 {
            return Err(
                format!("--sources {count}: at most 250 (127.0.0.2 to 127.0.0.251)").into(),
            );
        }
        if count <= 1 && self.sources == 0 {
            return Ok(Vec::new());
        }
        if !self.addr.ip().is_loopback() {
            return Err(
                "several source addresses need a server on loopback (--addr 127.0.0.1:PORT)".into(),
            );
        }
        Ok((0..count)
            .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k as u8)))
            .collect())
    }
}

impl LoadConfig {
    /// Opens `n` WebSocket sockets on `/`, [`CONNECT_PARALLELISM`] handshakes at a time, each
    /// within the timeout.
    async fn connect_ws(&self, n: usize) -> Result<Vec<WsClient>, BoxError> {
        connect_many(
            self.addr,
            &self.path,
            n,
            CONNECT_PARALLELISM,
            self.timeout,
            self.connect_options(),
        )
        .await
    }

    /// Opens `n` WebSocket sockets on `/` with the lean client of the echo scenarios,
    /// [`CONNECT_PARALLELISM`] handshakes at a time, each within the timeout.
    async fn connect_lean_ws(&self, n: usize) -> Result<Vec<LeanWs>, BoxError> {
        self.connect_each(n, "a WebSocket handshake", LeanWs::connect)
            .await
    }

    /// Opens `n` polling-only sessions on `/`, [`CONNECT_PARALLELISM`] at a time, each
    /// within the timeout.
    async fn connect_polling(&self, n: usize) -> Result<Vec<PollingClient>, BoxError> {
        self.connect_each(n, "a polling handshake", PollingClient::connect)
            .await
    }

    /// Opens `n` clients on `/` with `connect`, [`CONNECT_PARALLELISM`] at a time, each
    /// within the timeout (`what` names the step that took too long).
    async fn connect_each<'a, C, F>(
        &'a self,
        n: usize,
        what: &'static str,
        connect: impl Fn(SocketAddr, &'a str) -> F,
    ) -> Result<Vec<C>, BoxError>
    where
        F: Future<Output = Result<C, BoxError>> + 'a,
    {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(0..n)
            .map(|_| within(self.timeout, what, connect(self.addr, &self.path)))
            .buffered(CONNECT_PARALLELISM)
            .try_collect()
            .await
    }
}

/// Runs `scenario` and returns its result object.
pub(crate) async fn run(scenario: &str, config: LoadConfig) -> Result<Value, BoxError> {
    let mut marks = Marks::new();
    match scenario {
        "idle" => idle(&config, &mut marks).await,
        "echo" => {
            let clients = config.connect_lean_ws(config.clients).await?;
            echo_loop(json_echoes(clients, &config), &config, &mut marks).await
        }
        "polling" => {
            let clients = config.connect_polling(config.clients).await?;
            echo_loop(json_echoes(clients, &config), &config, &mut marks).await
        }
        "big-echo" => big_echo(&config, &mut marks).await,
        "scale" => scale(&config, &mut marks).await,
        // The echo scenario against the system-call floor of `ferrio-bench syscalls`.
        "raw-echo" => {
            let mut clients = Vec::with_capacity(config.clients);
            for _ in 0..config.clients {
                let connect = raw::RawClient::connect(config.addr);
                clients.push(within(config.timeout, "a TCP connect", connect).await?);
            }
            echo_loop(json_echoes(clients, &config), &config, &mut marks).await
        }
        "fanout" => fanout(&config, &mut marks).await,
        "http-emit" => http_emit(&config, &mut marks).await,
        "cluster" => cluster::cluster(&config, &mut marks).await,
        "forwarding" => forwarding::forwarding(&config, &mut marks).await,
        other => Err(format!("unknown scenario {other:?} (one of {SCENARIOS:?})").into()),
    }
}

/// Points where the runner samples the server.
struct Marks {
    sync: Option<BufReader<Stdin>>,
}

impl Marks {
    fn new() -> Self {
        let sync = std::env::var("FERRIO_BENCH_SYNC").is_ok_and(|v| v == "1");
        Marks {
            sync: sync.then(|| BufReader::new(tokio::io::stdin())),
        }
    }

    async fn mark(&mut self, name: &str) -> Result<(), BoxError> {
        println!("@mark {name}");
        if let Some(stdin) = &mut self.sync {
            let mut line = String::new();
            if stdin.read_line(&mut line).await? == 0 {
                return Err("the runner went away".into());
            }
        }
        Ok(())
    }
}

/// Idle sockets: the runner reads the server's RSS at `baseline` and at `connected`.
async fn idle(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    marks.mark("baseline").await?;
    let started = Instant::now();
    let clients = config.connect_ws(config.sockets).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let reading = KeepReading::start(clients);
    marks.mark("connected").await?;
    for client in reading.stop("idle sockets").await? {
        client.close().await;
    }
    Ok(json!({
        "sockets": config.sockets,
        "connect_secs": connect_secs,
    }))
}

/// Idle clients kept reading (pings answered, a polling client's GET pending) while the runner
/// measures.
struct KeepReading<T> {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Option<T>>>,
}

impl<T: EchoTransport> KeepReading<T> {
    fn start(clients: Vec<T>) -> Self {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(clients.len());
        for mut client in clients {
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return Some(client),
                        frame = client.recv() => if frame.is_err() { return None },
                    }
                }
            }));
        }
        KeepReading { stop, tasks }
    }

    /// Stops reading and gives the clients back, or an error when the server closed any of
    /// them (`what` names them).
    async fn stop(self, what: &str) -> Result<Vec<T>, BoxError> {
        let _ = self.stop.send(true);
        let total = self.tasks.len();
        let mut clients = Vec::with_capacity(total);
        for task in self.tasks {
            if let Ok(Some(client)) = task.await {
                clients.push(client);
            }
        }
        match total - clients.len() {
            0 => Ok(clients),
            lost => Err(format!("{lost} {what} were closed by the server").into()),
        }
    }
}

/// What the echo loop (and the soak's clients) need from a transport.
pub(crate) trait EchoTransport: Send + 'static {
    fn send(&mut self, packet: String) -> impl Future<Output = Result<(), BoxError>> + Send;
    fn recv(&mut self) -> impl Future<Output = Result<String, BoxError>> + Send;
}

impl EchoTransport for WsClient {
    async fn send(&mut self, packet: String) -> Result<(), BoxError> {
        WsClient::send(self, packet).await
    }
    async fn recv(&mut self) -> Result<String, BoxError> {
        WsClient::recv(self).await
    }
}

impl EchoTransport for PollingClient {
    async fn send(&mut self, packet: String) -> Result<(), BoxError> {
        self.post(&packet).await
    }
    async fn recv(&mut self) -> Result<String, BoxError> {
        PollingClient::recv(self).await
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One echo of the echo loop: send it, wait for its answer and check it.
trait RoundTrip: Send + 'static {
    fn round_trip(&mut self, id: u64) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// `42<id>["echo",P]`, answered `43<id>[P]` byte for byte.
struct JsonEcho<T> {
    client: T,
    payload: Arc<str>,
}

fn json_echoes<T: EchoTransport>(clients: Vec<T>, config: &LoadConfig) -> Vec<JsonEcho<T>> {
    let payload: Arc<str> = config.payload.as_str().into();
    clients
        .into_iter()
        .map(|client| JsonEcho {
            client,
            payload: payload.clone(),
        })
        .collect()
}

impl<T: EchoTransport> RoundTrip for JsonEcho<T> {
    async fn round_trip(&mut self, id: u64) -> Result<(), BoxError> {
        let payload = &self.payload;
        let expected = format!("43{id}[{payload}]");
        self.client
            .send(format!("42{id}[\"echo\",{payload}]"))
            .await?;
        loop {
            let frame = self.client.recv().await?;
            if frame == expected {
                return Ok(());
            }
            if frame.starts_with("43") {
                return Err(format!("expected {expected}, got {frame}").into());
            }
        }
    }
}

/// The placeholder of a packet's only binary attachment.
const PLACEHOLDER: &str = r#"{"_placeholder":true,"num":0}"#;

/// `451-<id>["echo",<placeholder>]` and one binary frame, answered `461-<id>[<placeholder>]`
/// and the same bytes as one binary frame.
struct BinaryEcho {
    client: WsClient,
    data: Bytes,
}

/// At most the first 120 characters of a frame, for an error message.
fn shorten(frame: &str) -> &str {
    match frame.char_indices().nth(120) {
        Some((end, _)) => &frame[..end],
        None => frame,
    }
}

impl RoundTrip for BinaryEcho {
    async fn round_trip(&mut self, id: u64) -> Result<(), BoxError> {
        let expected = format!("461-{id}[{PLACEHOLDER}]");
        self.client
            .send(format!("451-{id}[\"echo\",{PLACEHOLDER}]"))
            .await?;
        self.client.send_binary(self.data.clone()).await?;
        loop {
            match self.client.recv_frame().await? {
                Frame::Text(frame) if frame == expected => break,
                Frame::Text(frame) if frame.starts_with("43") || frame.starts_with("46") => {
                    return Err(format!("expected {expected}, got {}", shorten(&frame)).into());
                }
                // The welcome event, or anything else that is not an answer.
                Frame::Text(_) => continue,
                Frame::Binary(data) => {
                    return Err(format!(
                        "a binary frame of {} bytes before the ack {expected}",
                        data.len()
                    )
                    .into());
                }
            }
        }
        match self.client.recv_frame().await? {
            Frame::Binary(data) if data == self.data => Ok(()),
            Frame::Binary(data) => {
                let first_difference = data
                    .iter()
                    .zip(self.data.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(data.len().min(self.data.len()));
                Err(format!(
                    "echo {id}: the attachment came back different ({} bytes, {} sent; \
                     first difference at byte {first_difference})",
                    data.len(),
                    self.data.len()
                )
                .into())
            }
            Frame::Text(frame) => Err(format!(
                "echo {id}: expected the attachment after {expected}, got the text frame {}",
                shorten(&frame)
            )
            .into()),
        }
    }
}

/// Bytes that differ from client to client and along the buffer (xorshift), so that an
/// attachment mixed up between clients or cut and padded does not pass.
fn pattern(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    Bytes::from(data)
}

/// Big binary echoes: `clients` WebSocket clients, each echoing one attachment of
/// `binary_bytes` bytes at a time with an ack; the echo loop's warm-up, phases and marks.
async fn big_echo(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    if config.binary_bytes == 0 {
        return Err("--binary-bytes must be at least 1".into());
    }
    let clients = config.connect_ws(config.clients).await?;
    let echoes = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| BinaryEcho {
            client,
            data: pattern(config.binary_bytes, i as u64 + 1),
        })
        .collect();
    let mut result = echo_loop(echoes, config, marks).await?;
    let ops = result["ops"].as_f64().unwrap_or(0.0);
    let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
    let megabytes = ops * config.binary_bytes as f64 / 1e6;
    result["binary_bytes"] = json!(config.binary_bytes);
    // One direction: the bytes the clients sent (the same number came back).
    result["megabytes"] = json!(megabytes);
    result["mb_per_sec"] = json!(megabytes / seconds);
    Ok(result)
}

/// Every client runs one round trip at a time (a [`RoundTrip`]: a JSON echo, or a binary
/// one) until the measured phase ends. Latency is the round trip of one echo.
async fn echo_loop<T: RoundTrip>(
    clients: Vec<T>,
    config: &LoadConfig,
    marks: &mut Marks,
) -> Result<Value, BoxError> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut tasks = Vec::with_capacity(clients.len());
    let timeout = config.timeout;
    for mut client in clients {
        let phase = phase.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            let mut count = 0u64;
            let mut id = 0u64;
            loop {
                let now = phase.load(Ordering::Relaxed);
                if now == STOP {
                    return Ok::<_, BoxError>((count, histogram));
                }
                id += 1;
                let sent = Instant::now();
                tokio::time::timeout(timeout, client.round_trip(id))
                    .await
                    .map_err(|_| format!("no answer to echo {id} within {timeout:?}"))??;
                if now == MEASURE && phase.load(Ordering::Relaxed) == MEASURE {
                    count += 1;
                    histogram.saturating_record(elapsed_nanos(sent));
                }
            }
        }));
    }
    tokio::time::sleep(config.warmup).await;
    marks.mark("start").await?;
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(config.duration).await;
    phase.store(STOP, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    marks.mark("end").await?;
    let mut total = 0u64;
    let mut histogram = new_histogram();
    for task in tasks {
        let (count, part) = task.await??;
        total += count;
        histogram.add(&part)?;
    }
    if total == 0 {
        return Err("no echo completed in the measured phase".into());
    }
    Ok(json!({
        "clients": config.clients,
        "ops": total,
        "seconds": seconds,
        "ops_per_sec": total as f64 / seconds,
        "p50_us": quantile_us(&histogram, 0.5),
        "p99_us": quantile_us(&histogram, 0.99),
        "p999_us": quantile_us(&histogram, 0.999),
        "max_us": histogram.max() as f64 / 1000.0,
    }))
}

/// Counts frames equal to `expected` across many sockets and wakes the driver when the
/// count reaches the target it set.
struct DeliveryCounter {
    delivered: AtomicU64,
    target: AtomicU64,
    reached: Notify,
    timeout: Duration,
}

impl DeliveryCounter {
    fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(DeliveryCounter {
            delivered: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
            timeout,
        })
    }

    fn record(&self) {
        let now = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if now == self.target.load(Ordering::Relaxed) {
            self.reached.notify_one();
        }
    }

    /// Waits until `target` deliveries in all have been counted.
    async fn wait_for(&self, target: u64) -> Result<(), BoxError> {
        self.target.store(target, Ordering::Relaxed);
        let deadline = Instant::now() + self.timeout;
        loop {
            let notified = self.reached.notified();
            let delivered = self.delivered.load(Ordering::Relaxed);
            if delivered >= target {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return Err(format!(
                    "timed out with {} of {target} deliveries",
                    self.delivered.load(Ordering::Relaxed)
                )
                .into());
            }
        }
    }
}

/// Spawns one reader per socket counting frames equal to `expected`. The first socket also
/// sends the packets it receives on the returned channel.
fn spawn_counters(
    clients: Vec<WsClient>,
    expected: Arc<str>,
    counter: &Arc<DeliveryCounter>,
) -> (
    Counters,
    Vec<tokio::task::JoinHandle<Result<u64, BoxError>>>,
) {
    let (counters, mut rx, stop) = Counters::new();
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let commands = rx.take();
        tasks.push(spawn_counter(client, &expected, counter, &stop, commands));
    }
    (counters, tasks)
}

/// The reader of one socket for [`spawn_counters`]: counts frames equal to `expected`,
/// sends what arrives on `commands` (the first socket only), fails on any other event than
/// `welcome`, and returns its count when `stop` fires.
fn spawn_counter(
    mut client: WsClient,
    expected: &Arc<str>,
    counter: &Arc<DeliveryCounter>,
    stop: &tokio::sync::watch::Receiver<()>,
    mut commands: Option<mpsc::UnboundedReceiver<String>>,
) -> tokio::task::JoinHandle<Result<u64, BoxError>> {
    let counter = counter.clone();
    let expected = expected.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        let mut received = 0u64;
        loop {
            let command = async {
                match &mut commands {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.changed() => return Ok(received),
                command = command => match command {
                    Some(packet) => client.send(packet).await?,
                    None => return Ok(received),
                },
                frame = client.recv() => {
                    let frame = frame?;
                    if *frame == *expected {
                        received += 1;
                        counter.record();
                    } else if frame.starts_with("42") && !frame.starts_with("42[\"welcome\"") {
                        return Err(format!("unexpected packet {}", shorten(&frame)).into());
                    }
                }
            }
        }
    })
}

/// The driver's side of [`spawn_counters`]: packets for the first socket to send, and the
/// signal that ends every reader.
struct Counters {
    commands: mpsc::UnboundedSender<String>,
    _stop: tokio::sync::watch::Sender<()>,
}

/// How long the readers keep counting after the last expected delivery, so that extra
/// frames (a server delivering twice) are caught.
const STRAGGLER_GRACE: Duration = Duration::from_millis(300);

impl Counters {
    /// The driver's side, the receiver of the packets to send (for the first socket) and
    /// the signal the readers stop on.
    fn new() -> (
        Self,
        Option<mpsc::UnboundedReceiver<String>>,
        tokio::sync::watch::Receiver<()>,
    ) {
        let (commands, rx) = mpsc::unbounded_channel::<String>();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        let counters = Counters {
            commands,
            _stop: stop_tx,
        };
        (counters, Some(rx), stop_rx)
    }

    /// Stops the readers after [`STRAGGLER_GRACE`] and checks that every socket received
    /// exactly `per_socket` frames: the total alone would let a server that delivers twice to
    /// some sockets and never to others pass.
    async fn finish(
        self,
        tasks: Vec<tokio::task::JoinHandle<Result<u64, BoxError>>>,
        per_socket: u64,
    ) -> Result<(), BoxError> {
        tokio::time::sleep(STRAGGLER_GRACE).await;
        drop(self);
        for (i, task) in tasks.into_iter().enumerate() {
            let received = task.await??;
            if received != per_socket {
                return Err(format!(
                    "socket {i} received {received} frames, expected exactly {per_socket}"
                )
                .into());
            }
        }
        Ok(())
    }
}

/// Fan-out: one socket asks for a burst of `messages` broadcasts; every socket (the sender
/// too) must receive each one. One warm-up burst, then `rounds` measured ones.
async fn fanout(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    let clients = config.connect_ws(config.sockets).await?;
    let expected: Arc<str> = format!("42[\"bcast\",{}]", config.payload).into();
    let counter = DeliveryCounter::new(config.timeout);
    let (counters, tasks) = spawn_counters(clients, expected, &counter);
    let burst = format!(
        "42[\"burst\",{{\"n\":{},\"payload\":{}}}]",
        config.messages, config.payload
    );
    let per_round = (config.sockets * config.messages) as u64;
    counters.commands.send(burst.clone())?;
    counter.wait_for(per_round).await?;

    marks.mark("start").await?;
    let started = Instant::now();
    let mut round_ms = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds as u64 {
        let round_started = Instant::now();
        counters.commands.send(burst.clone())?;
        counter.wait_for(per_round * (round + 1)).await?;
        round_ms.push(round_started.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    marks.mark("end").await?;
    let per_socket = (config.messages * (config.rounds + 1)) as u64;
    counters.finish(tasks, per_socket).await?;
    let deliveries = per_round * config.rounds as u64;
    // Each delivery is one WebSocket text frame of this many bytes of payload.
    let frame_bytes = format!("42[\"bcast\",{}]", config.payload).len();
    let megabytes = deliveries as f64 * frame_bytes as f64 / 1e6;
    Ok(json!({
        "sockets": config.sockets,
        "messages": config.messages,
        "rounds": config.rounds,
        "deliveries": deliveries,
        "seconds": seconds,
        "deliveries_per_sec": deliveries as f64 / seconds,
        "frame_bytes": frame_bytes,
        "megabytes": megabytes,
        "mb_per_sec": megabytes / seconds,
        "round_ms": round_ms,
    }))
}

/// Many sockets: `sockets` WebSocket sockets spread over loopback source addresses, each
/// read (pings answered, broadcasts counted) from the moment it connects. The runner reads
/// the RSS at `baseline` and `connected`; then `rounds` broadcasts, one at a time: one socket
/// sends `burst` `{"n":1,...}` and the time runs until every socket has its `bcast` frame.
async fn scale(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    use futures_util::StreamExt;
    let sockets = config.sockets;
    if sockets == 0 || config.rounds == 0 {
        return Err("the scale scenario needs --sockets and --rounds of at least 1".into());
    }
    // Every socket is a file descriptor; the limit is raised when it is too low.
    crate::limits::ensure_open_files(sockets as u64 + 1024)?;
    let sources = config.source_addrs()?;
    let expected: Arc<str> = format!("42[\"bcast\",{}]", config.payload).into();
    let counter = DeliveryCounter::new(config.timeout);
    let (counters, mut commands, stop) = Counters::new();
    let options = |i: usize| ConnectOptions {
        source: (!sources.is_empty()).then(|| sources[i % sources.len()]),
        read_buffer: config.read_buffer,
    };
    let generator_before = crate::runner::rss_kib(std::process::id())?;
    marks.mark("baseline").await?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sockets);
    {
        let (addr, path, timeout) = (config.addr, config.path.as_str(), config.timeout);
        let mut pending = futures_util::stream::iter(0..sockets)
            .map(|i| {
                let connect = WsClient::connect_with(addr, path, options(i));
                within(timeout, "a WebSocket handshake", connect)
            })
            .buffer_unordered(CONNECT_PARALLELISM);
        while let Some(client) = pending.next().await {
            let client = client
                .map_err(|err| format!("after {} of {sockets} sockets: {err}", tasks.len()))?;
            // Read from now on: the first sockets must answer pings while the rest connect.
            let first = commands.take();
            tasks.push(spawn_counter(client, &expected, &counter, &stop, first));
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let generator_after = crate::runner::rss_kib(std::process::id())?;
    marks.mark("connected").await?;

    let burst = format!("42[\"burst\",{{\"n\":1,\"payload\":{}}}]", config.payload);
    marks.mark("start").await?;
    let measured = Instant::now();
    let mut broadcast_ms = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds as u64 {
        let sent = Instant::now();
        counters.commands.send(burst.clone())?;
        counter.wait_for(sockets as u64 * round).await?;
        broadcast_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = measured.elapsed().as_secs_f64();
    marks.mark("end").await?;
    counters.finish(tasks, config.rounds as u64).await?;
    let mut sorted = broadcast_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "sockets": sockets,
        "sources": sources.len().max(1),
        "connect_secs": connect_secs,
        "connects_per_sec": sockets as f64 / connect_secs,
        "rounds": config.rounds,
        "deliveries": sockets as u64 * config.rounds as u64,
        "seconds": seconds,
        "broadcast_ms": sorted[sorted.len() / 2],
        "broadcast_ms_each": broadcast_ms,
        "generator_kb_per_socket":
            generator_after.saturating_sub(generator_before) as f64 * 1.024 / sockets as f64,
    }))
}

/// Emits from an HTTP handler: `sockets` sockets join room `bench`, then `concurrency`
/// keep-alive connections send `requests` `POST /emit` to that room; every socket must
/// receive every event.
async fn http_emit(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    let mut clients = config.connect_ws(config.sockets).await?;
    {
        let mut joins = futures_util::stream::FuturesUnordered::new();
        for client in &mut clients {
            joins.push(client.join("bench"));
        }
        use futures_util::StreamExt;
        while let Some(joined) = joins.next().await {
            joined?;
        }
    }
    let expected: Arc<str> = format!("42[\"news\",{}]", config.payload).into();
    let counter = DeliveryCounter::new(config.timeout);
    let (counters, tasks) = spawn_counters(clients, expected, &counter);
    let body = Bytes::from(format!(
        r#"{{"room":"bench","event":"news","data":{}}}"#,
        config.payload
    ));
    let mut conns = Vec::with_capacity(config.concurrency);
    for _ in 0..config.concurrency.max(1) {
        conns.push(HttpConn::open(config.addr).await?);
    }
    // Warm-up: one request per connection.
    let conns = send_emits(
        conns,
        config.concurrency.max(1),
        &body,
        &mut new_histogram(),
        config.timeout,
    )
    .await?;
    let warmup = config.concurrency.max(1) as u64 * config.sockets as u64;
    counter.wait_for(warmup).await?;

    let mut histogram = new_histogram();
    marks.mark("start").await?;
    let started = Instant::now();
    let _conns = send_emits(
        conns,
        config.requests,
        &body,
        &mut histogram,
        config.timeout,
    )
    .await?;
    let requests_done = started.elapsed().as_secs_f64();
    let deliveries = config.requests as u64 * config.sockets as u64;
    counter.wait_for(warmup + deliveries).await?;
    let seconds = started.elapsed().as_secs_f64();
    marks.mark("end").await?;
    let per_socket = (config.concurrency.max(1) + config.requests) as u64;
    counters.finish(tasks, per_socket).await?;
    Ok(json!({
        "sockets": config.sockets,
        "requests": config.requests,
        "concurrency": config.concurrency,
        "deliveries": deliveries,
        "seconds": seconds,
        "requests_secs": requests_done,
        "requests_per_sec": config.requests as f64 / seconds,
        "deliveries_per_sec": deliveries as f64 / seconds,
        "request_p50_us": quantile_us(&histogram, 0.5),
        "request_p99_us": quantile_us(&histogram, 0.99),
    }))
}

/// Sends `total` `POST /emit` requests spread over `conns`, one in flight per connection.
async fn send_emits(
    conns: Vec<HttpConn>,
    total: usize,
    body: &Bytes,
    histogram: &mut Histogram<u64>,
    timeout: Duration,
) -> Result<Vec<HttpConn>, BoxError> {
    let left = Arc::new(AtomicU64::new(total as u64));
    let mut tasks = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let left = left.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let sent = Instant::now();
                let request = conn.request(
                    Method::POST,
                    "/emit",
                    Some("application/json"),
                    body.clone(),
                );
                let (status, answer) = within(timeout, "POST /emit", request).await?;
                if status != StatusCode::OK {
                    return Err::<_, BoxError>(
                        format!("POST /emit answered {status}: {answer:?}").into(),
                    );
                }
                histogram.saturating_record(elapsed_nanos(sent));
            }
            Ok((conn, histogram))
        }));
    }
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (conn, part) = task.await??;
        histogram.add(&part)?;
        conns.push(conn);
    }
    Ok(conns)
}

/// `future`, or an error naming `what` when it takes longer than `timeout`.
/// What a packet received while joining namespace `/` means: `Some(Ok)` for the server's
/// CONNECT (`40...`), `Some(Err)` for a refusal (`44...`), `None` for anything else (keep
/// reading).
pub(crate) fn connect_answer(packet: &str) -> Option<Result<(), BoxError>> {
    if packet.starts_with("40") {
        Some(Ok(()))
    } else if packet.starts_with("44") {
        Some(Err(format!("connect refused: {packet}").into()))
    } else {
        None
    }
}

/// A Ferrio server on a free port whose namespace `/` answers `echo` with its arguments, for
/// the generator's clients' own tests.
#[cfg(test)]
pub(crate) async fn echo_server() -> SocketAddr {
    let (layer, io) = ferrio::Io::new_layer();
    io.ns("/", |socket: ferrio::SocketRef| {
        socket.on("echo", |args: ferrio::Payload, ack: ferrio::AckSender| {
            let _ = ack.send_args(&args);
        });
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    future: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| format!("{what} took longer than {timeout:?}"))?
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

fn elapsed_nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn quantile_us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}
