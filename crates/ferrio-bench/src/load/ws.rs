//! A Socket.IO client over WebSocket that speaks the wire format itself: Engine.IO open,
//! namespace CONNECT to `/`, pings answered, every other frame handed to the scenario.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::BoxError;

/// The generator's WebSocket read buffer unless a scenario asks for another: small, since
/// it holds up to 100 000 sockets at once.
pub(crate) const DEFAULT_READ_BUFFER: usize = 4096;

/// One connected Socket.IO socket on namespace `/`.
pub(crate) struct WsClient {
    ws: WebSocketStream<TcpStream>,
}

/// A frame other than a ping: text, or binary (an attachment of a binary packet).
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    Text(String),
    Binary(Bytes),
}

/// How the generator opens its WebSockets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectOptions {
    /// Bound before connecting (`127.0.0.K`): each source address has its own ephemeral
    /// ports, so many of them let one generator open more sockets than one address allows.
    pub(crate) source: Option<IpAddr>,
    /// tungstenite's read buffer (allocated up front, per socket).
    pub(crate) read_buffer: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            source: None,
            read_buffer: DEFAULT_READ_BUFFER,
        }
    }
}

impl WsClient {
    /// Opens a WebSocket session at `path` and connects it to namespace `/`. Returns once the
    /// server has answered the CONNECT (`40{...}`).
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, BoxError> {
        Self::connect_with(addr, path, ConnectOptions::default()).await
    }

    /// [`WsClient::connect`] from a given source address, with a given read buffer.
    pub(crate) async fn connect_with(
        addr: SocketAddr,
        path: &str,
        options: ConnectOptions,
    ) -> Result<Self, BoxError> {
        let tcp = match options.source {
            Some(source) => {
                let socket = match source {
                    IpAddr::V4(_) => TcpSocket::new_v4()?,
                    IpAddr::V6(_) => TcpSocket::new_v6()?,
                };
                socket
                    .bind(SocketAddr::new(source, 0))
                    .map_err(|err| format!("cannot bind the source address {source}: {err}"))?;
                socket.connect(addr).await?
            }
            None => TcpStream::connect(addr).await?,
        };
        let query = format!("{path}?EIO=4&transport=websocket");
        let client = Self::handshake_with(tcp, addr, &query, options.read_buffer).await?;
        client.connect_namespace().await
    }

    /// [`WsClient::connect`] over a TCP connection the caller opened (and tuned).
    pub(crate) async fn connect_on(
        tcp: TcpStream,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Self, BoxError> {
        let query = format!("{path}?EIO=4&transport=websocket");
        let client = Self::handshake(tcp, addr, &query).await?;
        client.connect_namespace().await
    }

    /// Reads the Engine.IO open packet, sends `40` and waits for the server's CONNECT.
    async fn connect_namespace(mut self) -> Result<Self, BoxError> {
        let client = &mut self;
        let open = client.recv().await?;
        if !open.starts_with("0{") {
            return Err(format!("expected an Engine.IO open packet, got {open:?}").into());
        }
        client.send("40".to_owned()).await?;
        loop {
            if let Some(answer) = super::connect_answer(&client.recv().await?) {
                return answer.map(|()| self);
            }
        }
    }

    /// The WebSocket handshake alone, for `path_and_query`: nothing is read after it.
    pub(crate) async fn handshake(
        tcp: TcpStream,
        addr: SocketAddr,
        path_and_query: &str,
    ) -> Result<Self, BoxError> {
        Self::handshake_with(tcp, addr, path_and_query, DEFAULT_READ_BUFFER).await
    }

    /// [`WsClient::handshake`] with a read buffer of `read_buffer` bytes.
    async fn handshake_with(
        tcp: TcpStream,
        addr: SocketAddr,
        path_and_query: &str,
        read_buffer: usize,
    ) -> Result<Self, BoxError> {
        tcp.set_nodelay(true)?;
        let url = format!("ws://{addr}{path_and_query}");
        // No write buffer: a frame goes to the socket as it is sent.
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config)).await?;
        Ok(WsClient { ws })
    }

    /// The TCP connection underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    /// Sends one text frame.
    pub(crate) async fn send(&mut self, text: String) -> Result<(), BoxError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends one binary frame (an attachment: Engine.IO v4 sends its bytes as they are).
    pub(crate) async fn send_binary(&mut self, data: Bytes) -> Result<(), BoxError> {
        self.ws.send(Message::binary(data)).await?;
        Ok(())
    }

    /// The next text frame that is not an Engine.IO ping (pings are answered here); binary
    /// frames are skipped.
    pub(crate) async fn recv(&mut self) -> Result<String, BoxError> {
        loop {
            if let Frame::Text(text) = self.recv_frame().await? {
                return Ok(text);
            }
        }
    }

    /// The next text or binary frame that is not an Engine.IO ping (pings are answered here).
    pub(crate) async fn recv_frame(&mut self) -> Result<Frame, BoxError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str() == "2" {
                        self.ws.send(Message::text("3")).await?;
                        continue;
                    }
                    return Ok(Frame::Text(text.as_str().to_owned()));
                }
                Some(Ok(Message::Binary(data))) => return Ok(Frame::Binary(data)),
                Some(Ok(Message::Close(frame))) => {
                    return Err(format!("server closed the WebSocket: {frame:?}").into());
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.into()),
                None => return Err("server closed the connection".into()),
            }
        }
    }

    /// Joins `room` through the contract's `join` event and waits for its ack.
    pub(crate) async fn join(&mut self, room: &str) -> Result<(), BoxError> {
        self.send(format!("421[\"join\",{}]", serde_json::to_string(room)?))
            .await?;
        loop {
            let frame = self.recv().await?;
            if frame == "431[true]" {
                return Ok(());
            }
            if frame.starts_with("431") {
                return Err(format!("join answered {frame}").into());
            }
        }
    }

    /// Closes the WebSocket politely.
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Connects `n` sockets, at most `parallel` handshakes at a time, each within `timeout`.
pub(crate) async fn connect_many(
    addr: SocketAddr,
    path: &str,
    n: usize,
    parallel: usize,
    timeout: std::time::Duration,
    options: ConnectOptions,
) -> Result<Vec<WsClient>, BoxError> {
    let mut clients = Vec::with_capacity(n);
    let connect = |_| async move {
        tokio::time::timeout(timeout, WsClient::connect_with(addr, path, options))
            .await
            .map_err(|_| format!("a WebSocket handshake took longer than {timeout:?}"))?
    };
    let mut pending =
        futures_util::stream::iter((0..n).map(connect)).buffer_unordered(parallel.max(1));
    while let Some(client) = pending.next().await {
        clients.push(client?);
    }
    Ok(clients)
}
