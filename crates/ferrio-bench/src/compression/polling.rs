//! HTTP compression of long-polling responses: an in-process Ferrio server (its own thread, a
//! current-thread runtime, so its CPU time is that thread's) with or without tower-http's
//! `CompressionLayer` on the router, and polling clients that send `Accept-Encoding`.
//!
//! One round: the client POSTs `42["fill",{"case":C,"count":N}]`, the server's handler emits
//! N packets to that socket, and the client GETs until it has all N (usually in one response).
//! Bytes are counted on the client's TCP stream (headers and chunk framing included) and the
//! response bodies as they arrived; every compressed body is decompressed and checked.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::ListenerExt;
use bytes::Bytes;
use ferrio::{Data, Io, SocketRef};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};

use super::payloads;
use crate::BoxError;
use crate::procstat;

/// How the server compresses polling responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No `CompressionLayer`.
    Identity,
    /// gzip for every response tower-http's default predicate allows (32 bytes and up).
    Gzip,
    /// gzip only from 1024 bytes, as the Node.js server's `httpCompression` threshold.
    Gzip1024,
    Br,
    Zstd,
}

impl Encoding {
    pub(crate) const ALL: [Encoding; 5] = [
        Encoding::Identity,
        Encoding::Gzip,
        Encoding::Gzip1024,
        Encoding::Br,
        Encoding::Zstd,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "none",
            Encoding::Gzip => "gzip",
            Encoding::Gzip1024 => "gzip ≥1024 B",
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// What the client sends as `Accept-Encoding`.
    fn accept(self) -> &'static str {
        match self {
            // What a browser sends; the server has no layer, so it does not matter.
            Encoding::Identity => "gzip, deflate, br, zstd",
            Encoding::Gzip | Encoding::Gzip1024 => "gzip",
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The router with the layer this encoding needs (one algorithm each, default quality).
    fn apply(self, app: Router) -> Router {
        let only = |layer: CompressionLayer| layer.no_gzip().no_br().no_deflate().no_zstd();
        match self {
            Encoding::Identity => app,
            Encoding::Gzip => app.layer(only(CompressionLayer::new()).gzip(true)),
            Encoding::Gzip1024 => app.layer(
                only(CompressionLayer::new())
                    .gzip(true)
                    .compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))),
            ),
            Encoding::Br => app.layer(only(CompressionLayer::new()).br(true)),
            Encoding::Zstd => app.layer(only(CompressionLayer::new()).zstd(true)),
        }
    }
}

/// What one round asks the server for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// `chat` or `doc`.
    kind: &'static str,
    /// Packets per round.
    count: usize,
}

pub(crate) const CASES: [Case; 3] = [
    Case {
        name: "1 chat message (~100 B)",
        kind: "chat",
        count: 1,
    },
    Case {
        name: "50 chat messages in one response",
        kind: "chat",
        count: 50,
    },
    Case {
        name: "64 KB JSON document",
        kind: "doc",
        count: 1,
    },
];

/// The settings of the polling half.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollingConfig {
    pub(crate) clients: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// What one (encoding, case) measured.
#[derive(Debug, Clone)]
pub(crate) struct PollingResult {
    pub(crate) encoding: Encoding,
    pub(crate) case: &'static str,
    pub(crate) rounds: u64,
    pub(crate) gets: u64,
    /// GET responses that came with a `Content-Encoding`.
    pub(crate) encoded_gets: u64,
    /// GET response bodies as they arrived (compressed if they were).
    pub(crate) body_bytes: u64,
    /// The same bodies decompressed.
    pub(crate) plain_bytes: u64,
    /// Bytes read from the TCP stream for the GETs (status line, headers, framing, body).
    pub(crate) wire_bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) server_cpu_ns: u64,
    pub(crate) server_user_ns: u64,
    pub(crate) server_system_ns: u64,
}

impl PollingResult {
    pub(crate) fn per_round(&self, total: u64) -> f64 {
        total as f64 / self.rounds.max(1) as f64
    }
}

/// The server's emits, made once.
struct Content {
    chat: Vec<Value>,
    doc: Value,
}

#[derive(Deserialize)]
struct Fill {
    case: String,
    count: usize,
}

/// A server on its own thread, stopped when dropped.
struct ServerThread {
    addr: SocketAddr,
    tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_server(
    encoding: Encoding,
    content: Arc<Content>,
    port: u16,
) -> Result<ServerThread, BoxError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let started = (|| -> Result<_, BoxError> {
            let tid = procstat::current_tid()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
            Ok((tid, runtime, listener))
        })();
        let (tid, runtime, listener) = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = ready_tx.send(Err(err.to_string()));
                return;
            }
        };
        let addr = listener.local_addr();
        runtime.block_on(async move {
            let (layer, io) = Io::builder().build_layer();
            io.ns("/", move |socket: SocketRef| {
                let content = content.clone();
                socket.on("fill", move |socket: SocketRef, Data(fill): Data<Fill>| {
                    for i in 0..fill.count {
                        let sent = match fill.case.as_str() {
                            "doc" => socket.emit("doc", &content.doc),
                            _ => socket.emit("chat", &content.chat[i % content.chat.len()]),
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                });
            });
            let app = encoding.apply(Router::new().layer(layer));
            let listener = listener.tap_io(|tcp: &mut TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = ready_tx.send(addr.map(|addr| (addr, tid)).map_err(|e| e.to_string()));
            let close = io.clone();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                    close.close().await;
                })
                .await;
        });
    });
    let (addr, tid) = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the compression server did not start")??;
    Ok(ServerThread {
        addr,
        tid,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// A TCP stream that counts the bytes it reads.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One answer: status, whether it was encoded, the body as it arrived and decoded.
struct Answer {
    status: StatusCode,
    encoded: bool,
    raw_len: u64,
    body: Vec<u8>,
    wire: u64,
}

/// A polling client on one keep-alive connection that asks for `encoding`.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    read: Arc<AtomicU64>,
    host: String,
    query: String,
    accept: &'static str,
}

impl Client {
    async fn connect(addr: SocketAddr, encoding: Encoding) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let read = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(Counting {
            inner: tcp,
            read: read.clone(),
        });
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = Client {
            sender,
            read,
            host: addr.to_string(),
            query: "/socket.io/?EIO=4&transport=polling".into(),
            accept: encoding.accept(),
        };
        let open = client.request(Method::GET, Bytes::new()).await?;
        let sid = crate::load::http::sid_of_open(open.status, &open.body)?;
        client.query = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        client.post("40").await?;
        let connected = client.request(Method::GET, Bytes::new()).await?;
        if !connected.body.starts_with(b"40") {
            return Err(format!(
                "no CONNECT answer: {:?}",
                String::from_utf8_lossy(&connected.body)
            )
            .into());
        }
        Ok(client)
    }

    async fn request(&mut self, method: Method, body: Bytes) -> Result<Answer, BoxError> {
        let mut request = Request::builder()
            .method(method)
            .uri(&self.query)
            .header(header::HOST, &self.host)
            .header(header::ACCEPT_ENCODING, self.accept);
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        let before = self.read.load(Ordering::Relaxed);
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let encoding = response
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let raw = response.into_body().collect().await?.to_bytes();
        let wire = self.read.load(Ordering::Relaxed) - before;
        let body = decode(encoding.as_deref(), &raw).await?;
        Ok(Answer {
            status,
            encoded: encoding.is_some(),
            raw_len: raw.len() as u64,
            body,
            wire,
        })
    }

    async fn post(&mut self, packet: &str) -> Result<(), BoxError> {
        let answer = self
            .request(Method::POST, Bytes::copy_from_slice(packet.as_bytes()))
            .await?;
        if answer.status != StatusCode::OK || answer.body != b"ok" {
            return Err(format!("POST answered {}", answer.status).into());
        }
        Ok(())
    }
}

/// Decompresses a body by its `Content-Encoding`.
async fn decode(encoding: Option<&str>, raw: &[u8]) -> Result<Vec<u8>, BoxError> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    let mut out = Vec::with_capacity(raw.len() * 4);
    match encoding {
        None => out.extend_from_slice(raw),
        Some("gzip") => {
            GzipDecoder::new(raw).read_to_end(&mut out).await?;
        }
        Some("br") => {
            BrotliDecoder::new(raw).read_to_end(&mut out).await?;
        }
        Some("zstd") => {
            ZstdDecoder::new(raw).read_to_end(&mut out).await?;
        }
        Some(other) => return Err(format!("unexpected Content-Encoding {other:?}").into()),
    }
    Ok(out)
}

#[derive(Default)]
struct Tally {
    rounds: u64,
    gets: u64,
    encoded_gets: u64,
    body_bytes: u64,
    plain_bytes: u64,
    wire_bytes: u64,
}

impl std::ops::AddAssign<&Tally> for Tally {
    fn add_assign(&mut self, other: &Tally) {
        self.rounds += other.rounds;
        self.gets += other.gets;
        self.encoded_gets += other.encoded_gets;
        self.body_bytes += other.body_bytes;
        self.plain_bytes += other.plain_bytes;
        self.wire_bytes += other.wire_bytes;
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// The server's content, made once.
fn content() -> Arc<Content> {
    let mut rng = payloads::rng();
    Arc::new(Content {
        chat: (0..50)
            .map(|n| payloads::chat_message(&mut rng, n))
            .collect(),
        doc: payloads::document(&mut rng, 64 * 1024),
    })
}

impl Encoding {
    /// The encoding `--serve` names.
    fn parse(name: &str) -> Result<Self, BoxError> {
        Ok(match name {
            "none" => Encoding::Identity,
            "gzip" => Encoding::Gzip,
            "gzip-1024" => Encoding::Gzip1024,
            "br" => Encoding::Br,
            "zstd" => Encoding::Zstd,
            other => {
                return Err(format!("--serve {other:?}: none, gzip, gzip-1024, br or zstd").into());
            }
        })
    }
}

/// `--serve ENCODING`: the server alone on `127.0.0.1:$PORT` (default 3000) until killed,
/// for a check with another client (event `fill` with `{"case":"chat"|"doc","count":N}`).
pub(crate) fn serve_forever(encoding: &str) -> Result<(), BoxError> {
    let encoding = Encoding::parse(encoding)?;
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let server = start_server(encoding, content(), port)?;
    println!("listening on {}", server.addr.port());
    loop {
        std::thread::park();
    }
}

/// Runs every case against a fresh server for every encoding.
pub(crate) fn run(config: PollingConfig) -> Result<Vec<PollingResult>, BoxError> {
    let content = content();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for case in CASES {
        for encoding in Encoding::ALL {
            let server = start_server(encoding, content.clone(), 0)?;
            let result = runtime.block_on(measure(&server, encoding, case, config))?;
            eprintln!(
                "  {} / {}: {:.0} B per round on the wire, {:.1} µs server CPU per round",
                case.name,
                encoding.name(),
                result.per_round(result.wire_bytes),
                result.per_round(result.server_cpu_ns) / 1000.0
            );
            results.push(result);
            drop(server);
        }
    }
    Ok(results)
}

async fn measure(
    server: &ServerThread,
    encoding: Encoding,
    case: Case,
    config: PollingConfig,
) -> Result<PollingResult, BoxError> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let fill = format!(
        r#"42["fill",{{"case":"{}","count":{}}}]"#,
        case.kind, case.count
    );
    let event = format!("42[\"{}\",", case.kind);
    let mut tasks = Vec::new();
    for _ in 0..config.clients {
        let mut client = Client::connect(server.addr, encoding).await?;
        let phase = phase.clone();
        let fill = fill.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let now = phase.load(Ordering::Relaxed);
                if now == STOP {
                    return Ok::<_, BoxError>(tally);
                }
                let mut round = Tally {
                    rounds: 1,
                    ..Tally::default()
                };
                client.post(&fill).await?;
                let mut received = 0;
                while received < case.count {
                    let answer = client.request(Method::GET, Bytes::new()).await?;
                    if answer.status != StatusCode::OK {
                        return Err(format!("GET answered {}", answer.status).into());
                    }
                    round.gets += 1;
                    round.encoded_gets += u64::from(answer.encoded);
                    round.body_bytes += answer.raw_len;
                    round.plain_bytes += answer.body.len() as u64;
                    round.wire_bytes += answer.wire;
                    let text = std::str::from_utf8(&answer.body)?;
                    for packet in text.split('\u{1e}') {
                        if packet.starts_with(&event) {
                            received += 1;
                        } else if packet == "2" {
                            client.post("3").await?;
                        } else if packet == "1" {
                            return Err("the server closed the session".into());
                        }
                    }
                }
                if now == MEASURE && phase.load(Ordering::Relaxed) == MEASURE {
                    tally += &round;
                }
            }
        }));
    }
    tokio::time::sleep(config.warmup).await;
    let cpu_start = procstat::thread_cpu_ns(server.tid)?;
    let ticks_start = procstat::thread_ticks(server.tid)?;
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(config.duration).await;
    phase.store(STOP, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_end = procstat::thread_cpu_ns(server.tid)?;
    let ticks = procstat::thread_ticks(server.tid)?
        .since(ticks_start)
        .ok_or("CPU time went backwards")?;
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await??;
        total += &tally;
    }
    if total.rounds == 0 {
        return Err("no round completed in the measured phase".into());
    }
    Ok(PollingResult {
        encoding,
        case: case.name,
        rounds: total.rounds,
        gets: total.gets,
        encoded_gets: total.encoded_gets,
        body_bytes: total.body_bytes,
        plain_bytes: total.plain_bytes,
        wire_bytes: total.wire_bytes,
        seconds,
        server_cpu_ns: cpu_end.saturating_sub(cpu_start),
        server_user_ns: ticks.user_ns(),
        server_system_ns: ticks.system_ns(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short run of every encoding on the smallest and the largest case: compressed
    /// responses arrive compressed and decode to whole packets (checked in `measure`), and
    /// `gzip ≥1024 B` leaves the small ones alone.
    #[test]
    fn every_encoding_round_trips() {
        let config = PollingConfig {
            clients: 2,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
        };
        let content = content();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for encoding in Encoding::ALL {
            for case in [CASES[0], CASES[2]] {
                let server = start_server(encoding, content.clone(), 0).unwrap();
                let result = runtime
                    .block_on(measure(&server, encoding, case, config))
                    .unwrap();
                assert!(result.rounds > 0);
                let all_encoded = result.encoded_gets == result.gets;
                let none_encoded = result.encoded_gets == 0;
                match (encoding, case.kind) {
                    (Encoding::Identity, _) | (Encoding::Gzip1024, "chat") => {
                        assert!(none_encoded, "{encoding:?} {}", case.name);
                        assert_eq!(result.body_bytes, result.plain_bytes);
                    }
                    _ => {
                        assert!(all_encoded, "{encoding:?} {}", case.name);
                        // A 100-byte message compressed is about as long as itself (gzip's
                        // header and trailer); the 64 KB document shrinks well.
                        if case.kind == "doc" {
                            assert!(result.body_bytes * 4 < result.plain_bytes);
                        }
                    }
                }
            }
        }
    }
}
