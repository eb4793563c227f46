//! `ferrio-bench proxy`: a small HTTP/1.1 reverse proxy in front of the nodes of a cluster,
//! started by the runner for the forwarding scenarios (long-polling only; it does not pass
//! WebSocket upgrades).
//!
//! ```text
//! ferrio-bench proxy --mode round-robin|affinity --upstream 127.0.0.1:3001,127.0.0.1:3002
//! ```
//!
//! - `round-robin`: every request goes to the next node, whatever its session.
//! - `affinity`: handshakes (requests without `sid=`) go to the next node; every other request
//!   goes to the node that answered the handshake of its session. The proxy remembers that
//!   node by the session id's first [`TAG_LEN`] characters, the tag each node starts its
//!   session ids with, so it keeps one entry per node rather than one per session.
//!
//! Both modes do the same work per request otherwise (read the whole request, send it on a
//! pooled keep-alive connection to the node, read the whole answer, pass it back), so the
//! proxy's own cost is the same in both. It prints `listening on PORT` as the servers do and
//! runs on one thread.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::BoxError;
use crate::args::Args;
use crate::load::http::{HttpConn, sid_of_open};

/// The length of a node's tag at the start of its session ids (`ferrio-redis` forwarding).
const TAG_LEN: usize = 6;

/// Headers that belong to one connection and are not passed on.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RoundRobin,
    Affinity,
}

struct Proxy {
    mode: Mode,
    nodes: Vec<Node>,
    next: AtomicUsize,
    /// Affinity: the node of each tag, learnt from the handshakes' answers.
    owners: Mutex<HashMap<String, usize>>,
}

/// One node and its idle keep-alive connections.
struct Node {
    addr: SocketAddr,
    idle: Mutex<Vec<HttpConn>>,
}

pub(crate) fn run(mut args: Args) -> Result<(), BoxError> {
    let mode = match args.value::<String>("mode", "round-robin")?.as_str() {
        "round-robin" => Mode::RoundRobin,
        "affinity" => Mode::Affinity,
        other => return Err(format!("--mode {other:?}: round-robin or affinity").into()),
    };
    let upstream: String = args.value("upstream", "")?;
    let port: u16 = args.value("port", "0")?;
    args.finish()?;
    let nodes = upstream
        .split(',')
        .map(|addr| {
            let addr = addr.trim().parse::<SocketAddr>();
            let addr = addr.map_err(|err| format!("--upstream {upstream:?}: {err}"))?;
            Ok(Node {
                addr,
                idle: Mutex::new(Vec::new()),
            })
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    let proxy = Arc::new(Proxy {
        mode,
        nodes,
        next: AtomicUsize::new(0),
        owners: Mutex::new(HashMap::new()),
    });
    // One thread, as the load generator has.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(proxy, port))
}

async fn serve(proxy: Arc<Proxy>, port: u16) -> Result<(), BoxError> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?.port());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

impl Proxy {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        match self.pass(request).await {
            Ok(response) => response,
            Err(err) => {
                let mut response = Response::new(Full::new(Bytes::from(err.to_string())));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    async fn pass(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, BoxError> {
        let tag = request
            .uri()
            .query()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("sid=")))
            .and_then(|sid| sid.get(..TAG_LEN))
            .map(ToOwned::to_owned);
        let node = match (self.mode, &tag) {
            (Mode::Affinity, Some(tag)) => self.owner(tag)?,
            _ => self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len(),
        };
        let (mut parts, body) = request.into_parts();
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        let body = body.collect().await?.to_bytes();
        let request = Request::from_parts(parts, Full::new(body));
        let (mut parts, body) = self.nodes[node].send(request).await?.into_parts();
        if self.mode == Mode::Affinity && tag.is_none() {
            let sid = sid_of_open(parts.status, &body)?;
            let tag = sid
                .get(..TAG_LEN)
                .ok_or("a session id shorter than a tag")?;
            let mut owners = self.owners.lock().expect("owners lock");
            owners.insert(tag.to_owned(), node);
        }
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Full::new(body)))
    }

    fn owner(&self, tag: &str) -> Result<usize, BoxError> {
        let owners = self.owners.lock().expect("owners lock");
        let node = owners.get(tag).copied();
        node.ok_or_else(|| format!("no handshake seen for tag {tag:?}").into())
    }
}

impl Node {
    /// Sends `request` on an idle connection to the node, or a new one, and keeps the
    /// connection for the next request once the answer is read.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Bytes>, BoxError> {
        let idle = {
            let mut idle = self.idle.lock().expect("idle lock");
            std::iter::from_fn(|| idle.pop()).find(|conn| !conn.is_closed())
        };
        let mut conn = match idle {
            Some(conn) => conn,
            None => HttpConn::open(self.addr).await?,
        };
        let response = conn.send(request).await?;
        self.idle.lock().expect("idle lock").push(conn);
        Ok(response)
    }
}
