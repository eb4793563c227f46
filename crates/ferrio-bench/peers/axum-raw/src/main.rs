//! Benchmark ceiling: plain axum speaking just enough Engine.IO v4 / Socket.IO v5 text framing
//! to serve the benchmark contract (`welcome`, `echo`, `burst`, `join`, `/health`, `/emit`)
//! over WebSocket and long-polling, plus the one binary packet of the `big-echo` scenario (an
//! `echo` whose only argument is one binary attachment, over WebSocket). No general packet
//! parser, no heartbeats, no upgrades, namespace `/` only: what an expert would hand-write
//! for exactly this subset. It exists only to be measured beside Ferrio.
//!
//! ```text
//! PORT=0 cargo run --release -p bench-peer-axum-raw    # prints `listening on PORT`
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

#[path = "../../serve.rs"]
mod serve;

/// The most `bcast` packets one `burst` may ask for.
const MAX_BURST: usize = 100_000;

type Sid = Arc<str>;
/// Outgoing text frames of one session, each a whole Engine.IO packet. `Utf8Bytes` clones
/// share one buffer, so a broadcast encodes its frame once.
type Tx = mpsc::UnboundedSender<Utf8Bytes>;
type Rx = mpsc::UnboundedReceiver<Utf8Bytes>;

struct Session {
    tx: Tx,
    /// Polling sessions keep their queue here for the long-poll GET; a WebSocket session's
    /// task owns its queue.
    poll: Option<Arc<tokio::sync::Mutex<Rx>>>,
    /// In namespace `/` (after `40`): only these receive broadcasts.
    connected: bool,
    rooms: Vec<String>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<Sid, Session>,
    rooms: HashMap<String, HashSet<Sid>>,
}

impl Registry {
    fn join(&mut self, sid: &Sid, room: String) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        if self
            .rooms
            .entry(room.clone())
            .or_default()
            .insert(sid.clone())
        {
            session.rooms.push(room);
        }
    }

    fn leave_all(&mut self, sid: &str) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        for room in session.rooms.drain(..) {
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(sid);
                if members.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }
}

struct App {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    /// Makes ids differ between runs; uniqueness within a run comes from `next_id`.
    id_seed: u32,
}

/// One session as a packet handler sees it.
struct Conn {
    sid: Sid,
    tx: Tx,
    connected: bool,
    /// The ack header (`461-<id>[{placeholder}]`) of a binary `echo` whose attachment is the
    /// next binary frame (WebSocket only).
    binary_ack: Option<String>,
}

impl Conn {
    fn send(&self, frame: impl Into<Utf8Bytes>) {
        // Fails only once the session is gone, when nobody reads the frame anyway.
        let _ = self.tx.send(frame.into());
    }
}

#[derive(Deserialize)]
struct Burst<'a> {
    n: usize,
    #[serde(borrow)]
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct EmitRequest<'a> {
    room: Option<String>,
    event: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The arguments of `["<event>",<args>]` as JSON text without the brackets (empty when there
/// are none), or `None` for another event.
fn args_of<'a>(body: &'a str, event: &str) -> Option<&'a str> {
    let rest = body
        .strip_prefix("[\"")?
        .strip_prefix(event)?
        .strip_prefix('"')?
        .strip_suffix(']')?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(',')
    }
}

fn open_packet(sid: &str) -> String {
    format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    )
}

impl App {
    /// A panic while the lock was held leaves the maps usable, so a poisoned lock is taken over.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an Engine.IO session whose frames go to `tx`; `poll` is the queue a
    /// polling session's GETs read (a WebSocket session's task reads its own).
    fn open(&self, tx: Tx, poll: Option<Rx>) -> Conn {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sid: Sid = format!("{:08x}{n:012x}", self.id_seed).into();
        let session = Session {
            tx: tx.clone(),
            poll: poll.map(|rx| Arc::new(tokio::sync::Mutex::new(rx))),
            connected: false,
            rooms: Vec::new(),
        };
        self.registry().sessions.insert(sid.clone(), session);
        Conn {
            sid,
            tx,
            connected: false,
            binary_ack: None,
        }
    }

    /// Ends a session; a pending long-poll returns the close packet.
    fn close(&self, sid: &str) {
        let mut registry = self.registry();
        registry.leave_all(sid);
        if let Some(session) = registry.sessions.remove(sid) {
            let _ = session.tx.send(Utf8Bytes::from_static("1"));
        }
    }

    fn close_all(&self) {
        let mut registry = self.registry();
        registry.rooms.clear();
        for (_, session) in registry.sessions.drain() {
            let _ = session.tx.send(Utf8Bytes::from_static("1"));
        }
    }

    /// Sends `frame` `times` times to every connected socket, or to those in `room`.
    fn broadcast(&self, room: Option<&str>, frame: String, times: usize) {
        let targets: Vec<Tx> = {
            let registry = self.registry();
            match room {
                None => (registry.sessions.values())
                    .filter(|s| s.connected)
                    .map(|s| s.tx.clone())
                    .collect(),
                Some(room) => (registry.rooms.get(room).into_iter().flatten())
                    .filter_map(|sid| registry.sessions.get(sid))
                    .map(|s| s.tx.clone())
                    .collect(),
            }
        };
        let frame = Utf8Bytes::from(frame);
        for _ in 0..times {
            for tx in &targets {
                let _ = tx.send(frame.clone());
            }
        }
    }

    /// Handles one Engine.IO packet; `false` when the client closes the session.
    fn on_packet(&self, conn: &mut Conn, packet: &str) -> bool {
        match packet.as_bytes().first() {
            Some(b'4') => self.on_message(conn, &packet[1..]),
            Some(b'2') => conn.send(format!("3{}", &packet[1..])),
            Some(b'1') => return false,
            _ => {}
        }
        true
    }

    /// Handles one Socket.IO packet (an Engine.IO message without its `4`).
    fn on_message(&self, conn: &mut Conn, message: &str) {
        match message.as_bytes().first() {
            Some(b'2') if conn.connected => self.on_event(conn, &message[1..]),
            Some(b'5') if conn.connected => on_binary_event(conn, &message[1..]),
            Some(b'0') => self.on_connect(conn, &message[1..]),
            Some(b'1') if conn.connected => {
                conn.connected = false;
                let mut registry = self.registry();
                registry.leave_all(&conn.sid);
                if let Some(session) = registry.sessions.get_mut(&conn.sid) {
                    session.connected = false;
                }
            }
            _ => {}
        }
    }

    /// `0` or `0{auth}` joins `/`; any other namespace is refused.
    fn on_connect(&self, conn: &mut Conn, rest: &str) {
        let auth = match rest {
            "" => "{}",
            auth if auth.starts_with('{') && serde_json::from_str::<&RawValue>(auth).is_ok() => {
                auth
            }
            nsp if nsp.starts_with('/') => {
                let nsp = nsp.split(',').next().unwrap_or(nsp);
                return conn.send(format!(r#"44{nsp},{{"message":"Invalid namespace"}}"#));
            }
            _ => return,
        };
        if let Some(session) = self.registry().sessions.get_mut(&conn.sid) {
            session.connected = true;
        }
        conn.connected = true;
        let sid = &conn.sid;
        conn.send(format!(r#"40{{"sid":"{sid}"}}"#));
        conn.send(format!(r#"42["welcome",{{"id":"{sid}","auth":{auth}}}]"#));
    }

    /// `<ack id?>["<event>",<args>]`.
    fn on_event(&self, conn: &mut Conn, rest: &str) {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (ack, body) = rest.split_at(digits);
        if let Some(args) = args_of(body, "echo") {
            conn.send(match (ack, args) {
                ("", "") => r#"42["echo"]"#.to_owned(),
                ("", args) => format!(r#"42["echo",{args}]"#),
                (ack, args) => format!("43{ack}[{args}]"),
            });
        } else if let Some(args) = args_of(body, "burst") {
            let Ok(burst) = serde_json::from_str::<Burst<'_>>(args) else {
                return;
            };
            if burst.n <= MAX_BURST {
                let frame = format!(r#"42["bcast",{}]"#, burst.payload.get());
                self.broadcast(None, frame, burst.n);
            }
        } else if let Some(args) = args_of(body, "join") {
            let Ok(room) = serde_json::from_str::<String>(args) else {
                return;
            };
            self.registry().join(&conn.sid, room);
            if !ack.is_empty() {
                conn.send(format!("43{ack}[true]"));
            }
        }
    }
}

/// The placeholder of a packet's only attachment.
const PLACEHOLDER: &str = r#"{"_placeholder":true,"num":0}"#;

/// `1-<ack id>["echo",<placeholder>]`: the one binary packet served, an `echo` of one
/// attachment with an ack; its answer waits for the attachment (the next binary frame).
/// Anything else binary is ignored.
fn on_binary_event(conn: &mut Conn, rest: &str) {
    let Some(rest) = rest.strip_prefix("1-") else {
        return;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (ack, body) = rest.split_at(digits);
    if !ack.is_empty() && args_of(body, "echo") == Some(PLACEHOLDER) {
        conn.binary_ack = Some(format!("461-{ack}[{PLACEHOLDER}]"));
    }
}

async fn run_websocket(app: Arc<App>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut conn = app.open(tx, None);
    if socket
        .send(Message::Text(open_packet(&conn.sid).into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if !app.on_packet(&mut conn, text.as_str()) {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        if let Some(header) = conn.binary_ack.take() {
                            let echo = [Message::Text(header.into()), Message::Binary(data)];
                            if write_with_queued(&mut socket, echo, &mut rx).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                // Never `None`: `conn` holds a sender.
                Some(frame) = rx.recv() => {
                    if write_queued(&mut socket, frame, &mut rx).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    app.close(&conn.sid);
}

/// Writes `first` and everything queued behind it, then flushes once.
async fn write_queued(
    socket: &mut WebSocket,
    first: Utf8Bytes,
    rx: &mut Rx,
) -> Result<(), axum::Error> {
    socket.feed(Message::Text(first)).await?;
    while let Ok(frame) = rx.try_recv() {
        socket.feed(Message::Text(frame)).await?;
    }
    socket.flush().await
}

/// Writes what is queued, then `frames` (a binary ack and its attachment, which no other
/// frame may separate), and flushes once.
async fn write_with_queued(
    socket: &mut WebSocket,
    frames: [Message; 2],
    rx: &mut Rx,
) -> Result<(), axum::Error> {
    while let Ok(frame) = rx.try_recv() {
        socket.feed(Message::Text(frame)).await?;
    }
    for frame in frames {
        socket.feed(frame).await?;
    }
    socket.flush().await
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn engine_error(code: u8, message: &str) -> Response {
    let body = format!(r#"{{"code":{code},"message":"{message}"}}"#);
    let json = [(header::CONTENT_TYPE, "application/json")];
    (StatusCode::BAD_REQUEST, json, body).into_response()
}

/// Any origin, with credentials: the request's `Origin` is allowed back.
fn with_cors(headers: &HeaderMap, mut response: Response) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}

fn polling_body(headers: &HeaderMap, body: String) -> Response {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")];
    with_cors(headers, (text, body).into_response())
}

async fn engine_get(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = query.unwrap_or_default();
    if param(&query, "EIO") != Some("4") {
        return engine_error(5, "Unsupported protocol version");
    }
    match (param(&query, "transport"), param(&query, "sid")) {
        (Some("websocket"), None) => match upgrade {
            // A small read buffer, as Ferrio (2 KiB) and socketioxide (4 KiB) use:
            // tungstenite's default is 128 KiB per socket, zero-filled before each read. The
            // write buffer keeps its default, so `write_queued` sends a batch in one write.
            Ok(upgrade) => upgrade
                .read_buffer_size(4096)
                .on_upgrade(move |socket| run_websocket(app, socket)),
            Err(rejection) => rejection.into_response(),
        },
        (Some("polling"), None) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = app.open(tx, Some(rx));
            polling_body(&headers, open_packet(&conn.sid))
        }
        (Some("polling"), Some(sid)) => {
            let queue = app
                .registry()
                .sessions
                .get(sid)
                .and_then(|s| s.poll.clone());
            let Some(queue) = queue else {
                return engine_error(1, "Session ID unknown");
            };
            let mut rx = queue.lock().await;
            let body = match rx.recv().await {
                Some(first) => {
                    let mut body = String::from(first.as_str());
                    while let Ok(next) = rx.try_recv() {
                        body.push('\x1e');
                        body.push_str(next.as_str());
                    }
                    body
                }
                None => "1".to_owned(),
            };
            polling_body(&headers, body)
        }
        _ => engine_error(3, "Bad request"),
    }
}

async fn engine_post(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let query = query.unwrap_or_default();
    let Some(sid) = param(&query, "sid") else {
        return engine_error(3, "Bad request");
    };
    let conn = match app.registry().sessions.get_key_value(sid) {
        Some((sid, session)) if session.poll.is_some() => Conn {
            sid: sid.clone(),
            tx: session.tx.clone(),
            connected: session.connected,
            binary_ack: None,
        },
        _ => return engine_error(1, "Session ID unknown"),
    };
    let mut conn = conn;
    for packet in body.split('\x1e') {
        if !app.on_packet(&mut conn, packet) {
            app.close(&conn.sid);
            break;
        }
    }
    polling_body(&headers, "ok".to_owned())
}

/// Browsers preflight polling requests that carry extra headers.
async fn engine_preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    with_cors(&headers, response)
}

async fn emit(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let Ok(request) = serde_json::from_slice::<EmitRequest<'_>>(&body) else {
        return (StatusCode::BAD_REQUEST, json, r#"{"error":"bad request"}"#).into_response();
    };
    let event = serde_json::Value::from(request.event);
    let frame = format!("42[{event},{}]", request.data.get());
    app.broadcast(request.room.as_deref(), frame, 1);
    (json, r#"{"ok":true}"#).into_response()
}

#[tokio::main]
async fn main() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let app = Arc::new(App {
        registry: Mutex::default(),
        next_id: AtomicU64::new(0),
        id_seed: seed ^ std::process::id(),
    });
    let router = Router::new()
        .route("/health", get(async || "ok"))
        .route("/emit", post(emit))
        .route(
            "/socket.io/",
            get(engine_get).post(engine_post).options(engine_preflight),
        )
        .with_state(app.clone());
    serve::run(
        "bench-peer-axum-raw",
        router,
        async move { app.close_all() },
    )
    .await;
}
