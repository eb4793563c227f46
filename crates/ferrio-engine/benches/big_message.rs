//! What the WebSocket read buffer costs big messages: 1 MB binary messages echoed over a real
//! loopback TCP connection by an engine built with each read buffer size given (default: 2048
//! and 65536 bytes).
//!
//! ```sh
//! cargo bench -p ferrio-engine --bench big_message -- 512 2048 65536
//! ```
//!
//! The server runs on a thread of its own (a current-thread runtime), the client on another.
//! For each size it prints, per echo (median of the rounds, the minimum in brackets): the
//! wall time of the round trip, the server thread's and the client thread's CPU time
//! (`/proc/thread-self/schedstat`, so Linux only), the client's writes and reads of its TCP
//! socket, and the reads of the server's TCP socket (each a `recv` system call, those that
//! find nothing included). Then 2 000 echoes of a 41-byte text message, whose reads per echo
//! show that small frames still cost one read each. On a shared machine, compare sizes
//! measured in the same run; other work only ever adds time, so the minimum is steadier.
#![allow(missing_docs, clippy::print_stdout)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use ferrio_engine::{EngineHandler, EngineIoConfig, EngineIoLayer, Message, Socket};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const MESSAGE: usize = 1_000_000;
const ROUNDS: usize = 25;
const ECHOES_PER_ROUND: usize = 10;
const WARM_UP: usize = 10;
const SMALL_ECHOES: usize = 2000;

struct Echo;

impl EngineHandler for Echo {
    fn on_message(&self, socket: &Socket, message: Message) {
        let _ = socket.send(message);
    }
}

/// Reads of the server's TCP sockets so far.
static SOCKET_READS: AtomicU64 = AtomicU64::new(0);
/// Writes to the server's TCP sockets so far (not reported).
static SERVER_WRITES: AtomicU64 = AtomicU64::new(0);
/// Reads of the client's TCP socket so far.
static CLIENT_READS: AtomicU64 = AtomicU64::new(0);
/// Writes to the client's TCP socket so far.
static CLIENT_WRITES: AtomicU64 = AtomicU64::new(0);

/// A TCP stream whose reads and writes (each a system call) are counted.
struct Counted {
    stream: TcpStream,
    reads: &'static AtomicU64,
    writes: &'static AtomicU64,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

struct CountingListener(TcpListener);

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.0.accept().await {
                let _ = stream.set_nodelay(true);
                let counted = Counted {
                    stream,
                    reads: &SOCKET_READS,
                    writes: &SERVER_WRITES,
                };
                return (counted, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// CPU nanoseconds of the calling thread and reads of the server's sockets so far.
fn usage() -> (u64, u64) {
    let cpu = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (cpu, SOCKET_READS.load(Ordering::Relaxed))
}

/// Starts a server on its own thread; returns its address and a handle to run probes on it.
fn start_server(read_buffer: usize) -> (SocketAddr, Handle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("server-{read_buffer}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let config = EngineIoConfig::default()
                    .websocket_read_buffer_size(read_buffer)
                    .max_payload(2 * MESSAGE as u64);
                let router = Router::new().layer(EngineIoLayer::new(config, Echo));
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("address");
                let _ = tx.send((addr, Handle::current()));
                let _ = axum::serve(CountingListener(listener), router).await;
            });
        })
        .expect("server thread");
    rx.recv().expect("server started")
}

/// The median and the minimum: other work on the machine only ever adds time, so the
/// minimum is the steadier figure on a busy machine.
fn median_min(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0])
}

async fn measure(read_buffer: usize) {
    let (addr, server) = start_server(read_buffer);
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let tcp = Counted {
        stream: tcp,
        reads: &CLIENT_READS,
        writes: &CLIENT_WRITES,
    };
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("connect");
    let open = ws.next().await.expect("open packet").expect("open packet");
    assert!(matches!(open, WsMessage::Text(ref t) if t.starts_with("0{")));

    let payload = bytes::Bytes::from(vec![0x5au8; MESSAGE]);
    let mut echo = async || {
        ws.send(WsMessage::Binary(payload.clone()))
            .await
            .expect("send");
        loop {
            match ws.next().await.expect("echo").expect("echo") {
                WsMessage::Binary(data) => {
                    assert_eq!(data.len(), MESSAGE);
                    break;
                }
                WsMessage::Text(t) if t.as_str() == "2" => {
                    ws.send(WsMessage::text("3")).await.expect("pong");
                }
                _ => {}
            }
        }
    };
    for _ in 0..WARM_UP {
        echo().await;
    }
    let (mut wall, mut cpu, mut client_cpu, mut client_writes, mut client_reads, mut reads) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..ROUNDS {
        let before = server.spawn(async { usage() }).await.expect("probe");
        let client_before = usage().0;
        let writes_before = CLIENT_WRITES.load(Ordering::Relaxed);
        let creads_before = CLIENT_READS.load(Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..ECHOES_PER_ROUND {
            echo().await;
        }
        let elapsed = started.elapsed();
        let client_after = usage().0;
        let writes_after = CLIENT_WRITES.load(Ordering::Relaxed);
        let creads_after = CLIENT_READS.load(Ordering::Relaxed);
        let after = server.spawn(async { usage() }).await.expect("probe");
        let n = ECHOES_PER_ROUND as f64;
        wall.push(elapsed.as_secs_f64() * 1e6 / n);
        cpu.push((after.0 - before.0) as f64 / 1e3 / n);
        client_cpu.push((client_after - client_before) as f64 / 1e3 / n);
        client_writes.push((writes_after - writes_before) as f64 / n);
        client_reads.push((creads_after - creads_before) as f64 / n);
        reads.push((after.1 - before.1) as f64 / n);
    }
    let (wall, wall_min) = median_min(wall);
    let (cpu, cpu_min) = median_min(cpu);
    let (reads, _) = median_min(reads);
    let (client_cpu, _) = median_min(client_cpu);
    let (client_writes, _) = median_min(client_writes);
    let (client_reads, _) = median_min(client_reads);

    // Small messages after the big ones: each should still cost one read with data (plus
    // the read that finds the socket empty).
    let small = WsMessage::text(format!("4{}", "s".repeat(40)));
    let before = server.spawn(async { usage() }).await.expect("probe");
    for _ in 0..SMALL_ECHOES {
        ws.send(small.clone()).await.expect("send");
        loop {
            if let WsMessage::Text(t) = ws.next().await.expect("echo").expect("echo") {
                if t.len() == 41 {
                    break;
                }
            }
        }
    }
    let after = server.spawn(async { usage() }).await.expect("probe");
    let n = SMALL_ECHOES as f64;
    let small_cpu = (after.0 - before.0) as f64 / 1e3 / n;
    let small_reads = (after.1 - before.1) as f64 / n;
    println!(
        "| {read_buffer} | {wall:.0} ({wall_min:.0}) | {cpu:.0} ({cpu_min:.0}) | {client_cpu:.0} | {client_writes:.1} | {client_reads:.1} | {reads:.1} | {small_cpu:.1} | {small_reads:.2} |"
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![2048, 65536];
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "1 MB binary echo, {ROUNDS} rounds of {ECHOES_PER_ROUND}, per echo: median of the rounds (minimum)"
    );
    println!(
        "| read buffer (bytes) | round trip (µs) | server CPU (µs) | client CPU (µs) | client writes | client reads | socket reads | small echo: server CPU (µs) | small echo: socket reads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        runtime.block_on(measure(size));
    }
}
