//! Shared helpers of the Socket.IO integration tests: a server on 127.0.0.1:0 and a raw
//! Socket.IO client over WebSocket that speaks the wire format itself, so tests can send
//! anything, valid or not, and see exactly what the server answers.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use ferrio::{Io, IoBuilder};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Serves `router` on 127.0.0.1:0 (with connect info) and returns its address.
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

/// A server built from `builder`, set up by `setup`, mounted on an empty router.
pub async fn server(builder: IoBuilder, setup: impl FnOnce(&Io)) -> (SocketAddr, Io) {
    let (layer, io) = builder.build_layer();
    setup(&io);
    let addr = serve(Router::new().layer(layer)).await;
    (addr, io)
}

/// What the client received: a Socket.IO text packet (Engine.IO `4` stripped), or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

/// A raw Socket.IO client over one WebSocket connection. It answers pings by itself.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The Engine.IO session id.
    pub sid: String,
}

impl Client {
    /// Opens a WebSocket connection at `/socket.io/` and reads the Engine.IO handshake.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_path(addr, "/socket.io/").await
    }

    pub async fn connect_path(addr: SocketAddr, path: &str) -> Self {
        let url = format!("ws://{addr}{path}?EIO=4&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let open = match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => text.to_string(),
            other => panic!("no Engine.IO handshake: {other:?}"),
        };
        assert!(open.starts_with('0'), "not an open packet: {open}");
        let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
        let sid = json["sid"].as_str().unwrap().to_owned();
        Self { ws, sid }
    }

    /// Sends a Socket.IO packet as text (the Engine.IO `4` is added).
    pub async fn send(&mut self, packet: &str) {
        self.ws
            .send(WsMessage::text(format!("4{packet}")))
            .await
            .unwrap();
    }

    /// Sends a binary Engine.IO message (an attachment, or a msgpack packet).
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(WsMessage::binary(data.to_vec()))
            .await
            .unwrap();
    }

    /// The next Socket.IO frame; `None` when the connection closes. Panics after [`WAIT`].
    pub async fn next(&mut self) -> Option<Frame> {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing received within {WAIT:?}"))
    }

    /// The next frame within `wait`: `None` if nothing came, `Some(None)` if the
    /// connection closed.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Option<Frame>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(None),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                WsMessage::Text(text) if text.as_str() == "2" => {
                    let _ = self.ws.send(WsMessage::text("3")).await;
                }
                WsMessage::Text(text) if text.as_str() == "1" => return Some(None),
                WsMessage::Text(text) => {
                    let text = text.as_str();
                    assert!(text.starts_with('4'), "unexpected Engine.IO packet {text}");
                    return Some(Some(Frame::Text(text[1..].to_owned())));
                }
                WsMessage::Binary(data) => return Some(Some(Frame::Binary(data))),
                WsMessage::Close(_) => return Some(None),
                _ => {}
            }
        }
    }

    /// The next text packet; panics on anything else.
    pub async fn text(&mut self) -> String {
        match self.next().await {
            Some(Frame::Text(text)) => text,
            other => panic!("expected a text packet, got {other:?}"),
        }
    }

    /// The next binary message; panics on anything else.
    pub async fn binary(&mut self) -> Bytes {
        match self.next().await {
            Some(Frame::Binary(data)) => data,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// Asserts that nothing arrives for [`QUIET`].
    pub async fn assert_quiet(&mut self) {
        if let Some(frame) = self.next_within(QUIET).await {
            panic!("expected nothing, got {frame:?}");
        }
    }

    /// Asserts that the server closes the connection.
    pub async fn assert_closed(&mut self) {
        loop {
            match self.next_within(WAIT).await {
                Some(None) => return,
                Some(Some(_)) => continue,
                None => panic!("the connection stayed open"),
            }
        }
    }

    /// Joins a namespace (`"/"` or `"/name"`) with an optional auth object and returns the
    /// socket id from the CONNECT reply.
    pub async fn join(&mut self, nsp: &str, auth: Option<&str>) -> String {
        let prefix = nsp_prefix(nsp);
        self.send(&format!("0{prefix}{}", auth.unwrap_or(""))).await;
        connect_reply_sid(&self.text().await, nsp)
    }
}

// ---- Helpers for handlers.rs, rooms.rs, acks.rs, lifecycle.rs and axum.rs ----

/// The next value a handler sent on `rx`; panics after [`WAIT`] or if every sender is gone.
pub async fn recv<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(value)) => value,
        Ok(None) => panic!("every sender of the channel is gone"),
        Err(_) => panic!("nothing sent on the channel within {WAIT:?}"),
    }
}

/// Asserts that nothing is sent on `rx` for [`QUIET`].
pub async fn assert_no_recv<T: std::fmt::Debug>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) {
    if let Ok(Some(value)) = tokio::time::timeout(QUIET, rx.recv()).await {
        panic!("expected nothing on the channel, got {value:?}");
    }
}

/// A server whose `/` namespace hands every socket that joins to the test (after `setup`
/// ran, so `setup` may register other namespaces or replace nothing on `/`).
pub async fn socket_server(
    builder: IoBuilder,
    setup: impl FnOnce(&Io),
) -> (
    SocketAddr,
    Io,
    tokio::sync::mpsc::UnboundedReceiver<ferrio::SocketRef>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (addr, io) = server(builder, |io| {
        hand_sockets(io, "/", tx);
        setup(io);
    })
    .await;
    (addr, io, rx)
}

/// Connects a client, joins `/` and returns it with its server-side socket (from a
/// [`socket_server`]'s receiver).
pub async fn join_root(
    addr: SocketAddr,
    sockets: &mut tokio::sync::mpsc::UnboundedReceiver<ferrio::SocketRef>,
) -> (Client, ferrio::SocketRef) {
    let mut client = Client::connect(addr).await;
    let id = client.join("/", None).await;
    let socket = recv(sockets).await;
    assert_eq!(socket.id().as_str(), id, "sockets joined out of order");
    (client, socket)
}

impl Client {
    /// Opens a WebSocket connection at `path` with extra query parameters (`a=1&b=2`) and
    /// request headers.
    pub async fn connect_with(
        addr: SocketAddr,
        path: &str,
        query: &str,
        headers: &[(&'static str, &str)],
    ) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://{addr}{path}?EIO=4&transport=websocket&{query}");
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_str(value).unwrap());
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let open = match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => text.to_string(),
            other => panic!("no Engine.IO handshake: {other:?}"),
        };
        let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
        let sid = json["sid"].as_str().unwrap().to_owned();
        Self { ws, sid }
    }

    /// Closes the WebSocket with a close frame, as a browser tab going away does.
    pub async fn close(&mut self) {
        self.ws.close(None).await.unwrap();
    }

    /// The next raw WebSocket message as text (binary as `<binary n bytes>`), within `wait`,
    /// without answering pings: `None` if nothing came, `Some(None)` once closed.
    pub async fn next_raw(&mut self, wait: Duration) -> Option<Option<String>> {
        match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => None,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => Some(None),
            Ok(Some(Ok(WsMessage::Text(text)))) => Some(Some(text.to_string())),
            Ok(Some(Ok(WsMessage::Binary(data)))) => {
                Some(Some(format!("<binary {} bytes>", data.len())))
            }
            Ok(Some(Ok(other))) => Some(Some(format!("{other:?}"))),
        }
    }
}

// ---- Helpers for protocol.rs, violations.rs, hostile.rs and msgpack.rs ----

pub mod polling;

/// Waits until `condition` holds, checking every few milliseconds; panics after [`WAIT`],
/// naming `what`. For state that changes without a message to wait for (counts, maps).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

impl Client {
    /// Sends a Socket.IO text packet; `false` instead of a panic when the connection is
    /// gone (for hostile input, after which the server may close at any time).
    pub async fn try_send(&mut self, packet: &str) -> bool {
        self.ws
            .send(WsMessage::text(format!("4{packet}")))
            .await
            .is_ok()
    }

    /// Sends a binary message; `false` when the connection is gone.
    pub async fn try_send_binary(&mut self, data: &[u8]) -> bool {
        self.ws.send(WsMessage::binary(data.to_vec())).await.is_ok()
    }

    /// Turns Nagle's algorithm off on this connection, so a burst of small frames is not
    /// held back waiting for the server's delayed ACK (40 ms a time).
    pub fn set_nodelay(&self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            tcp.set_nodelay(true).unwrap();
        }
    }
}

// ---- More helpers for lifecycle.rs ----

impl Client {
    /// Sends an Engine.IO packet as is (no `4` added): `1` (close), `3` (pong)...
    pub async fn send_engine(&mut self, packet: &str) {
        self.ws
            .send(WsMessage::text(packet.to_owned()))
            .await
            .unwrap();
    }

    /// Drops the TCP connection without a WebSocket close frame, as a crashed client does.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

// ---- Shared server and client setups ----

/// A server whose `/` namespace calls `on_socket` with every socket that joins.
pub async fn root_server(
    builder: IoBuilder,
    on_socket: impl Fn(&ferrio::SocketRef) + Send + Sync + 'static,
) -> (SocketAddr, Io) {
    server(builder, move |io| {
        io.ns("/", move |socket: ferrio::SocketRef| on_socket(&socket));
    })
    .await
}

/// A server whose every `/` socket handles `event` with its own clone of `handler`.
pub async fn event_server<H, M>(
    builder: IoBuilder,
    event: &'static str,
    handler: H,
) -> (SocketAddr, Io)
where
    H: ferrio::handler::EventHandler<M> + Clone,
    M: 'static,
{
    root_server(builder, move |socket| socket.on(event, handler.clone())).await
}

/// A new client connected over WebSocket and joined to `/`.
pub async fn joined(addr: SocketAddr) -> Client {
    joined_to(addr, &["/"]).await
}

/// A new client connected over WebSocket and joined to each of `namespaces`, in order.
pub async fn joined_to(addr: SocketAddr, namespaces: &[&str]) -> Client {
    let mut client = Client::connect(addr).await;
    for nsp in namespaces {
        client.join(nsp, None).await;
    }
    client
}

/// What a packet for `nsp` has between its type (and attachment count) and the rest:
/// nothing for `/`, `<nsp>,` otherwise.
pub fn nsp_prefix(nsp: &str) -> String {
    if nsp == "/" {
        String::new()
    } else {
        format!("{nsp},")
    }
}

/// The echo handlers of the protocol tests: `echo` emits every argument back as received,
/// `ack` answers with every argument (a no-op when no ack was asked).
pub fn echo_handlers(socket: &ferrio::SocketRef) {
    use ferrio::{AckSender, Payload, SocketRef};
    socket.on("echo", |socket: SocketRef, payload: Payload| {
        let _ = socket.emit_args("echo", &payload);
    });
    socket.on("ack", |payload: Payload, ack: AckSender| {
        let _ = ack.send_args(&payload);
    });
}

/// Sends an echo on `nsp` (to [`echo_handlers`]) and asserts that it is the very next
/// packet: whatever the server had queued before it would come first and fail the test.
pub async fn assert_next_is_echo(client: &mut Client, nsp: &str, tag: &str) {
    let prefix = nsp_prefix(nsp);
    client.send(&format!(r#"2{prefix}["echo","{tag}"]"#)).await;
    assert_eq!(client.text().await, format!(r#"2{prefix}["echo","{tag}"]"#));
}

/// The socket id of `reply`, which must be the CONNECT reply (`0[<nsp>,]{"sid":...}`) for
/// `nsp`.
pub fn connect_reply_sid(reply: &str, nsp: &str) -> String {
    let body = reply
        .strip_prefix(&format!("0{}", nsp_prefix(nsp)))
        .unwrap_or_else(|| panic!("not a CONNECT reply for {nsp}: {reply}"));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

/// Serves the namespace `nsp` with a handler that hands every socket that joins to `tx`.
pub fn hand_sockets(
    io: &Io,
    nsp: &'static str,
    tx: tokio::sync::mpsc::UnboundedSender<ferrio::SocketRef>,
) {
    io.ns(nsp, move |socket: ferrio::SocketRef| {
        let _ = tx.send(socket);
    });
}

/// Registers a disconnect hook on `socket` that reports `(namespace, reason)` on `tx`.
pub fn report_disconnect(
    socket: &ferrio::SocketRef,
    tx: &tokio::sync::mpsc::UnboundedSender<(String, ferrio::DisconnectReason)>,
) {
    let tx = tx.clone();
    socket.on_disconnect(
        move |socket: ferrio::SocketRef, reason: ferrio::DisconnectReason| {
            let _ = tx.send((socket.ns().to_owned(), reason));
        },
    );
}
