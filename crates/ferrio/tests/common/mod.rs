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
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        self.send(&format!("0{prefix}{}", auth.unwrap_or(""))).await;
        let reply = self.text().await;
        let body = reply
            .strip_prefix(&format!("0{prefix}"))
            .unwrap_or_else(|| panic!("not a CONNECT reply for {nsp}: {reply}"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        json["sid"].as_str().unwrap().to_owned()
    }
}
