//! Shared helpers of the engine's integration tests: a handler that records every event,
//! in-memory requests through `tower::ServiceExt::oneshot`, and a real server on 127.0.0.1:0.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use ferrio_engine::{
    CloseReason, EngineHandler, EngineIo, EngineIoConfig, EngineIoLayer, Message, Sid, Socket,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// What the handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Open(Sid),
    Message(Sid, Message),
    Close(Sid, CloseReason),
}

/// Records every event; echoes messages back when `echo` is set.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
    echo: bool,
}

impl EngineHandler for Recorder {
    fn on_open(&self, socket: &Socket) {
        let _ = self.tx.send(Event::Open(socket.id()));
    }
    fn on_message(&self, socket: &Socket, message: Message) {
        if self.echo {
            let _ = socket.send(message.clone());
        }
        let _ = self.tx.send(Event::Message(socket.id(), message));
    }
    fn on_close(&self, socket: &Socket, reason: CloseReason) {
        let _ = self.tx.send(Event::Close(socket.id(), reason));
    }
}

/// Events as they arrive, with a bounded wait.
pub struct Events(pub mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event; panics if none comes within 5 s (a test failure, not a hang).
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(5), self.0.recv())
            .await
            .expect("no engine event within 5 s")
            .expect("event channel closed")
    }

    /// Skips events until a close of `sid`, and returns its reason.
    pub async fn close_of(&mut self, sid: Sid) -> CloseReason {
        loop {
            if let Event::Close(s, reason) = self.next().await {
                if s == sid {
                    return reason;
                }
            }
        }
    }

    /// Skips events until a message from `sid`.
    pub async fn message_of(&mut self, sid: Sid) -> Message {
        loop {
            if let Event::Message(s, message) = self.next().await {
                if s == sid {
                    return message;
                }
            }
        }
    }

    /// Panics if a session has closed among the events that arrived so far.
    pub fn assert_no_close(&mut self) {
        let closes: Vec<Event> = self
            .drain()
            .into_iter()
            .filter(|e| matches!(e, Event::Close(..)))
            .collect();
        assert!(closes.is_empty(), "unexpected closes: {closes:?}");
    }

    /// Whatever has arrived so far, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(event) = self.0.try_recv() {
            out.push(event);
        }
        out
    }
}

/// An engine behind an axum `Router` whose only other route is `GET /health`.
pub struct TestApp {
    pub router: Router,
    pub engine: EngineIo,
    pub events: Events,
}

pub fn app(config: EngineIoConfig) -> TestApp {
    app_with(config, false)
}

pub fn echo_app(config: EngineIoConfig) -> TestApp {
    app_with(config, true)
}

fn app_with(config: EngineIoConfig, echo: bool) -> TestApp {
    let (tx, rx) = mpsc::unbounded_channel();
    let layer = EngineIoLayer::new(config, Recorder { tx, echo });
    let engine = layer.engine();
    let router = Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    TestApp {
        router,
        engine,
        events: Events(rx),
    }
}

/// A response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    async fn read(res: Response<Body>) -> Self {
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Asserts an engine error of the protocol's table.
    pub fn assert_error(&self, code: u8) {
        let status = if code == 4 { 403 } else { 400 };
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
        let json: serde_json::Value = serde_json::from_str(&self.body).expect("JSON error body");
        assert_eq!(json["code"], serde_json::json!(code), "body: {}", self.body);
        assert!(json["message"].is_string());
    }

    /// The sid of a handshake reply.
    pub fn sid(&self) -> Sid {
        assert_eq!(self.status, 200, "handshake failed: {}", self.body);
        let json: serde_json::Value =
            serde_json::from_str(self.body.strip_prefix('0').expect("open packet")).unwrap();
        Sid::parse(json["sid"].as_str().unwrap()).expect("valid sid")
    }
}

/// Sends one request through the router, in memory.
pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    Reply::read(router.clone().oneshot(req).await.expect("infallible")).await
}

pub async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

pub async fn post(router: &Router, uri: &str, body: impl Into<Bytes>) -> Reply {
    let body: Bytes = body.into();
    send(
        router,
        Request::post(uri)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// Opens a polling session in memory and returns its sid.
pub async fn handshake(router: &Router) -> Sid {
    get(router, "/engine.io/?EIO=4&transport=polling")
        .await
        .sid()
}

pub fn poll_uri(sid: Sid) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

/// Serves the router on 127.0.0.1:0 with connect info; returns the bound address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A plain HTTP/1.1 request over a new TCP connection to a real server.
pub async fn http(addr: SocketAddr, method: &str, uri: &str, body: &str) -> Reply {
    http_with_headers(addr, method, uri, &[], body).await
}

/// Like [`http`], with extra request headers (sent in order, repeats allowed).
pub async fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: &str,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = sender.send_request(req).await.expect("response");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to a real server; `Err` carries the HTTP status of a refused handshake.
pub async fn ws_connect(addr: SocketAddr, query: &str) -> Result<WsClient, StatusCode> {
    let url = format!("ws://{addr}/engine.io/?{query}");
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(err) => panic!("websocket connect failed: {err}"),
    }
}

/// The next text or binary frame (skipping control frames), or `None` once the server closed.
pub async fn ws_next(ws: &mut WsClient) -> Option<tokio_tungstenite::tungstenite::Message> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no websocket frame within 5 s");
        match next {
            Some(Ok(M::Ping(_) | M::Pong(_))) => continue,
            Some(Ok(M::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(msg)) => return Some(msg),
        }
    }
}

/// The close frame the server sent (its code), reading past any other frames.
pub async fn ws_close_code(ws: &mut WsClient) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("websocket not closed within 5 s");
        match next {
            Some(Ok(M::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

/// Shared slot for the sockets a test wants to reach from outside the handler.
pub type Sockets = Arc<Mutex<Vec<Socket>>>;

/// Opens a WebSocket from a prepared client request (custom path or headers); `Err` carries
/// the HTTP status of a refused handshake.
pub async fn ws_connect_request(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<WsClient, StatusCode> {
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(err) => panic!("websocket connect failed: {err}"),
    }
}

/// Sends one text frame.
pub async fn ws_send(ws: &mut WsClient, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .expect("websocket send");
}

/// The next frame, which must be text; panics on anything else.
pub async fn ws_next_text(ws: &mut WsClient) -> String {
    match ws_next(ws).await {
        Some(tokio_tungstenite::tungstenite::Message::Text(text)) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Parses an `open` packet (`0{...}`) and returns its JSON.
pub fn open_json(packet: &str) -> serde_json::Value {
    serde_json::from_str(packet.strip_prefix('0').expect("open packet starts with 0"))
        .expect("open packet JSON")
}

/// Opens a WebSocket session on a real server: the socket and its sid from the `open` frame.
pub async fn ws_handshake(addr: SocketAddr) -> (WsClient, Sid) {
    let mut ws = ws_connect(addr, "EIO=4&transport=websocket")
        .await
        .expect("websocket handshake");
    let open = open_json(&ws_next_text(&mut ws).await);
    let sid = Sid::parse(open["sid"].as_str().expect("sid")).expect("valid sid");
    (ws, sid)
}

/// Opens a polling session on a real server by HTTP GET and returns its sid.
pub async fn http_handshake(addr: SocketAddr) -> Sid {
    http(addr, "GET", "/engine.io/?EIO=4&transport=polling", "")
        .await
        .sid()
}

/// Upgrades a polling session to WebSocket (`2probe`, `3probe`, `5`) and returns the socket.
pub async fn ws_upgrade(addr: SocketAddr, sid: Sid) -> WsClient {
    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_next_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    ws
}

impl Reply {
    /// Asserts an engine error with its exact status, content type and JSON body.
    pub fn assert_exact_error(&self, code: u8, message: &str) {
        self.assert_error(code);
        assert_eq!(
            self.body,
            format!(r#"{{"code":{code},"message":"{message}"}}"#)
        );
    }

    /// The value of a response header, if present and ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Starts a GET in its own task, so the test can act while it is pending.
pub fn spawn_get(router: &Router, uri: &str) -> tokio::task::JoinHandle<Reply> {
    let router = router.clone();
    let uri = uri.to_owned();
    tokio::spawn(async move { get(&router, &uri).await })
}

/// Lets every other task run until it waits. Needs a paused clock
/// (`#[tokio::test(start_paused = true)]`): the runtime only advances a paused clock to this
/// sleep's deadline once no task can make progress, so no wall-clock time is spent.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}
