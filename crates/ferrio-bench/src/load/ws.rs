//! A Socket.IO client over WebSocket that speaks the wire format itself: Engine.IO open,
//! namespace CONNECT to `/`, pings answered, every other frame handed to the scenario.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::BoxError;

/// One connected Socket.IO socket on namespace `/`.
pub(crate) struct WsClient {
    ws: WebSocketStream<TcpStream>,
}

impl WsClient {
    /// Opens a WebSocket session at `path` and connects it to namespace `/`. Returns once the
    /// server has answered the CONNECT (`40{...}`).
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, BoxError> {
        Self::connect_on(TcpStream::connect(addr).await?, addr, path).await
    }

    /// [`WsClient::connect`] over a TCP connection the caller opened (and tuned).
    pub(crate) async fn connect_on(
        tcp: TcpStream,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Self, BoxError> {
        let query = format!("{path}?EIO=4&transport=websocket");
        let mut client = Self::handshake(tcp, addr, &query).await?;
        let open = client.recv().await?;
        if !open.starts_with("0{") {
            return Err(format!("expected an Engine.IO open packet, got {open:?}").into());
        }
        client.send("40".to_owned()).await?;
        loop {
            let frame = client.recv().await?;
            if frame.starts_with("40") {
                return Ok(client);
            }
            if frame.starts_with("44") {
                return Err(format!("connect refused: {frame}").into());
            }
        }
    }

    /// The WebSocket handshake alone, for `path_and_query`: nothing is read after it.
    pub(crate) async fn handshake(
        tcp: TcpStream,
        addr: SocketAddr,
        path_and_query: &str,
    ) -> Result<Self, BoxError> {
        tcp.set_nodelay(true)?;
        let url = format!("ws://{addr}{path_and_query}");
        // Small buffers: the generator holds up to 10 000 of these at once.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
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

    /// The next text frame that is not an Engine.IO ping (pings are answered here).
    pub(crate) async fn recv(&mut self) -> Result<String, BoxError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str() == "2" {
                        self.ws.send(Message::text("3")).await?;
                        continue;
                    }
                    return Ok(text.as_str().to_owned());
                }
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
) -> Result<Vec<WsClient>, BoxError> {
    let mut clients = Vec::with_capacity(n);
    let connect = |_| async move {
        tokio::time::timeout(timeout, WsClient::connect(addr, path))
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
