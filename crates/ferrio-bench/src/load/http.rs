//! HTTP/1.1 keep-alive connections for the polling clients and the `/emit` requests.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BoxError;

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    connection: tokio::task::JoinHandle<()>,
}

impl HttpConn {
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        let connection = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            host: addr.to_string(),
            connection,
        })
    }

    /// Closes the TCP connection now, even with a request in flight (a plain drop lets
    /// hyper finish the request first).
    pub(crate) fn abort(self) {
        self.connection.abort();
    }

    /// Sends one request and returns the status and the whole body.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), BoxError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, &self.host);
        if let Some(content_type) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, content_type);
        }
        let response = self.send(request.body(Full::new(body))?).await?;
        Ok((response.status(), response.into_body()))
    }

    /// Sends `request` as it is and returns the answer with its whole body.
    pub(crate) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, BoxError> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response::from_parts(parts, body))
    }

    /// Whether the server closed the connection (it can carry no more requests).
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// A polling-only Socket.IO client on namespace `/`: the long-poll GET and the POSTs take
/// turns on one keep-alive connection (the scenario never has both in flight).
pub(crate) struct PollingClient {
    conn: HttpConn,
    query: String,
    /// Packets received by a GET but not consumed yet.
    pending: std::collections::VecDeque<String>,
}

impl PollingClient {
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, BoxError> {
        let mut conn = HttpConn::open(addr).await?;
        let (status, body) = conn
            .request(
                Method::GET,
                &format!("{path}?EIO=4&transport=polling"),
                None,
                Bytes::new(),
            )
            .await?;
        let sid = sid_of_open(status, &body)?;
        let mut client = PollingClient {
            conn,
            query: format!("{path}?EIO=4&transport=polling&sid={sid}"),
            pending: Default::default(),
        };
        client.post("40").await?;
        loop {
            let packet = client.recv().await?;
            if packet.starts_with("40") {
                return Ok(client);
            }
            if packet.starts_with("44") {
                return Err(format!("connect refused: {packet}").into());
            }
        }
    }

    /// The Engine.IO session id.
    pub(crate) fn sid(&self) -> &str {
        self.query.rsplit("sid=").next().unwrap_or_default()
    }

    /// The keep-alive connection underneath, for a client that stops here.
    pub(crate) fn into_conn(self) -> HttpConn {
        self.conn
    }

    /// POSTs one packet and checks the server's `ok`.
    pub(crate) async fn post(&mut self, packet: &str) -> Result<(), BoxError> {
        let (status, body) = self
            .conn
            .request(
                Method::POST,
                &self.query,
                Some("text/plain;charset=UTF-8"),
                Bytes::copy_from_slice(packet.as_bytes()),
            )
            .await?;
        if status != StatusCode::OK {
            return Err(format!("POST answered {status}: {body:?}").into());
        }
        Ok(())
    }

    /// The next packet, long-polling when none is left from the previous GET. Pings are
    /// answered here.
    pub(crate) async fn recv(&mut self) -> Result<String, BoxError> {
        loop {
            if let Some(packet) = self.pending.pop_front() {
                if packet == "2" {
                    self.post("3").await?;
                    continue;
                }
                if packet == "1" {
                    return Err("server closed the polling session".into());
                }
                return Ok(packet);
            }
            let (status, body) = self
                .conn
                .request(Method::GET, &self.query, None, Bytes::new())
                .await?;
            if status != StatusCode::OK {
                return Err(format!("GET answered {status}: {body:?}").into());
            }
            let text = std::str::from_utf8(&body)?;
            self.pending
                .extend(text.split('\u{1e}').map(ToOwned::to_owned));
        }
    }
}

/// The session id of a polling handshake's answer (`0{"sid":...}`).
pub(crate) fn sid_of_open(status: StatusCode, body: &[u8]) -> Result<String, BoxError> {
    let open = std::str::from_utf8(body)?;
    if status != StatusCode::OK || !open.starts_with("0{") {
        return Err(format!("polling handshake answered {status}: {open:?}").into());
    }
    let handshake: serde_json::Value = serde_json::from_str(&open[1..])?;
    let sid = handshake["sid"]
        .as_str()
        .ok_or("open packet without a sid")?;
    Ok(sid.to_owned())
}
