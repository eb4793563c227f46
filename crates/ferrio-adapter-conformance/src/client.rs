//! A raw Socket.IO client over WebSocket, speaking the wire format itself so the suite sees
//! exactly what each server sends.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the suite waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long the suite waits to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// What a client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A Socket.IO text packet (the Engine.IO `4` stripped).
    Text(String),
    /// A binary attachment.
    Binary(Bytes),
    /// The connection closed.
    Closed,
}

/// One client connected to `/` of one server. It answers pings by itself.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The socket id the server gave it in `/`.
    pub id: String,
}

impl Client {
    /// Connects to the server at `addr` (query `extra` added to the URL) and joins `/`
    /// with `auth`.
    pub async fn join(addr: SocketAddr, extra: &str, auth: &Value) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&{extra}");
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the server accepts a WebSocket connection");
        let open = match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => text.to_string(),
            other => panic!("no Engine.IO handshake: {other:?}"),
        };
        assert!(open.starts_with('0'), "not an open packet: {open}");
        let mut client = Self {
            ws,
            id: String::new(),
        };
        client.send(&format!("0{auth}")).await;
        let reply = client.text().await;
        let body = reply
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}"));
        let json: Value = serde_json::from_str(body).expect("the CONNECT reply is JSON");
        client.id = json["sid"]
            .as_str()
            .expect("the CONNECT reply has a sid")
            .to_owned();
        client
    }

    /// Sends a Socket.IO packet as text.
    pub async fn send(&mut self, packet: &str) {
        self.ws
            .send(WsMessage::text(format!("4{packet}")))
            .await
            .expect("the connection is open");
    }

    /// What arrives within `wait`, if anything.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Received::Closed),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                WsMessage::Text(text) if text.as_str() == "2" => {
                    let _ = self.ws.send(WsMessage::text("3")).await;
                }
                WsMessage::Text(text) if text.as_str() == "1" => return Some(Received::Closed),
                WsMessage::Text(text) => match text.as_str().strip_prefix('4') {
                    Some(packet) => return Some(Received::Text(packet.to_owned())),
                    None => panic!("unexpected Engine.IO packet {text}"),
                },
                WsMessage::Binary(data) => return Some(Received::Binary(data)),
                WsMessage::Close(_) => return Some(Received::Closed),
                _ => {}
            }
        }
    }

    /// The next thing received; panics after [`WAIT`].
    pub async fn next(&mut self) -> Received {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("client {} received nothing within {WAIT:?}", self.id))
    }

    /// The next text packet; panics on anything else.
    pub async fn text(&mut self) -> String {
        match self.next().await {
            Received::Text(text) => text,
            other => panic!("client {} expected a text packet, got {other:?}", self.id),
        }
    }

    /// The next event: its ack id, if any, and its JSON array `[event, ...args]`.
    pub async fn event(&mut self) -> (Option<u64>, Value) {
        let text = self.text().await;
        let body = text
            .strip_prefix('2')
            .unwrap_or_else(|| panic!("client {} expected an EVENT, got {text}", self.id));
        let split = body.find('[').unwrap_or(body.len());
        let id = body[..split].parse().ok();
        let json = serde_json::from_str(&body[split..])
            .unwrap_or_else(|e| panic!("an EVENT's data is JSON ({e}): {text}"));
        (id, json)
    }

    /// Asserts that nothing arrives for [`QUIET`].
    pub async fn assert_quiet(&mut self) {
        if let Some(received) = self.next_within(QUIET).await {
            panic!("client {} expected nothing, got {received:?}", self.id);
        }
    }
}
