//! HTTP/1.1 keep-alive connections: a lean one for the polling clients, hyper's client for the
//! `/emit` requests, the proxy and the soak.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
/// turns on one keep-alive connection (the scenario never has both in flight). It speaks
/// HTTP/1.1 itself ([`LeanConn`]) rather than through hyper's client, so the generator spends
/// little CPU per request and the polling scenario measures the server.
pub(crate) struct PollingClient {
    conn: LeanConn,
    query: String,
    /// Packets received by a GET but not consumed yet.
    pending: std::collections::VecDeque<String>,
}

impl PollingClient {
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, BoxError> {
        let mut conn = LeanConn::open(addr).await?;
        let (status, body) = conn
            .request("GET", &format!("{path}?EIO=4&transport=polling"), b"")
            .await?;
        let sid = sid_of_open(status, &body)?;
        let mut client = PollingClient {
            conn,
            query: format!("{path}?EIO=4&transport=polling&sid={sid}"),
            pending: Default::default(),
        };
        client.post("40").await?;
        loop {
            if let Some(answer) = super::connect_answer(&client.recv().await?) {
                return answer.map(|()| client);
            }
        }
    }

    /// The Engine.IO session id.
    pub(crate) fn sid(&self) -> &str {
        self.query.rsplit("sid=").next().unwrap_or_default()
    }

    /// Closes the TCP connection now (a client that stops here).
    pub(crate) fn abort(self) {
        drop(self.conn);
    }

    /// POSTs one packet and checks the server's `ok`.
    pub(crate) async fn post(&mut self, packet: &str) -> Result<(), BoxError> {
        let (status, body) = self
            .conn
            .request("POST", &self.query, packet.as_bytes())
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
            let (status, body) = self.conn.request("GET", &self.query, b"").await?;
            if status != StatusCode::OK {
                return Err(format!("GET answered {status}: {body:?}").into());
            }
            let text = std::str::from_utf8(&body)?;
            self.pending
                .extend(text.split('\u{1e}').map(ToOwned::to_owned));
        }
    }
}

/// A keep-alive HTTP/1.1 connection that writes each request as one buffer and reads the
/// answer with `httparse`: bodies framed by `Content-Length` or chunked, one request at a
/// time. Enough for the polling clients, whose requests and answers are small and few.
pub(crate) struct LeanConn {
    tcp: TcpStream,
    host: String,
    /// Bytes read but not consumed yet.
    input: BytesMut,
    /// The request being written.
    output: Vec<u8>,
}

/// What the head of an answer says about its body.
struct Head {
    status: StatusCode,
    len: usize,
    framing: Framing,
}

enum Framing {
    Length(usize),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// The largest answer head or body the lean client accepts.
const MAX_ANSWER: usize = 16 << 20;

impl LeanConn {
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(LeanConn {
            tcp,
            host: addr.to_string(),
            input: BytesMut::with_capacity(4096),
            output: Vec::with_capacity(512),
        })
    }

    /// Sends one request (a POST when `body` is not empty, as `text/plain`) and returns the
    /// status and the whole body of its answer.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<(StatusCode, Bytes), BoxError> {
        use std::io::Write as _;
        self.output.clear();
        write!(
            self.output,
            "{method} {target} HTTP/1.1\r\nhost: {}\r\n",
            self.host
        )?;
        if !body.is_empty() || method == "POST" {
            write!(
                self.output,
                "content-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n",
                body.len()
            )?;
        }
        self.output.extend_from_slice(b"\r\n");
        self.output.extend_from_slice(body);
        self.tcp.write_all(&self.output).await?;
        self.answer().await
    }

    async fn answer(&mut self) -> Result<(StatusCode, Bytes), BoxError> {
        let head = loop {
            if let Some(head) = parse_head(&self.input)? {
                break head;
            }
            self.fill("the head of an answer").await?;
        };
        let _ = self.input.split_to(head.len);
        let body = match head.framing {
            Framing::Length(len) => {
                if len > MAX_ANSWER {
                    return Err(format!("an answer of {len} bytes").into());
                }
                while self.input.len() < len {
                    self.fill("an answer's body").await?;
                }
                self.input.split_to(len).freeze()
            }
            Framing::Chunked => self.chunked().await?,
            Framing::Close => {
                while self.tcp.read_buf(&mut self.input).await? > 0 {
                    if self.input.len() > MAX_ANSWER {
                        return Err("an answer over 16 MiB".into());
                    }
                }
                self.input.split().freeze()
            }
        };
        Ok((head.status, body))
    }

    /// Reads more bytes; the server closing the connection here is an error.
    async fn fill(&mut self, what: &str) -> Result<(), BoxError> {
        if self.input.len() > MAX_ANSWER {
            return Err(format!("{what} over 16 MiB").into());
        }
        if self.tcp.read_buf(&mut self.input).await? == 0 {
            return Err(format!("the server closed the connection in {what}").into());
        }
        Ok(())
    }

    /// A chunked body (RFC 9112, section 7.1): size lines, data, and the trailer section.
    async fn chunked(&mut self) -> Result<Bytes, BoxError> {
        let mut body = BytesMut::new();
        loop {
            let line = loop {
                if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                    break end;
                }
                self.fill("a chunk size").await?;
            };
            let size_line = std::str::from_utf8(&self.input[..line])?;
            let digits = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(digits, 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            let _ = self.input.split_to(line + 2);
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                        let _ = self.input.split_to(end + 2);
                        if end == 0 {
                            return Ok(body.freeze());
                        }
                    } else {
                        self.fill("a chunked trailer").await?;
                    }
                }
            }
            if body.len() + size > MAX_ANSWER {
                return Err("a chunked answer over 16 MiB".into());
            }
            while self.input.len() < size + 2 {
                self.fill("a chunk").await?;
            }
            body.extend_from_slice(&self.input[..size]);
            let _ = self.input.split_to(size + 2);
        }
    }
}

/// An answer's status, the length of its head and its header fields (names in lower case).
pub(crate) type ResponseHead = (u16, usize, Vec<(String, String)>);

/// The status, head length and header fields (names in lower case) of the answer at the
/// start of `input`, when it holds all of the head: for the lean WebSocket handshake.
pub(crate) fn parse_response_head(input: &[u8]) -> Result<Option<ResponseHead>, BoxError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(input)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let fields = answer
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    Ok(Some((answer.code.unwrap_or(0), len, fields)))
}

/// The head of an answer when `input` holds all of it.
fn parse_head(input: &[u8]) -> Result<Option<Head>, BoxError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(input)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = StatusCode::from_u16(answer.code.unwrap_or(0))?;
    let mut framing = Framing::Close;
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)?.trim();
            framing = Framing::Length(value.parse()?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding")
            && header.value.eq_ignore_ascii_case(b"chunked")
        {
            framing = Framing::Chunked;
            break;
        }
    }
    // Answers that never carry a body (RFC 9112, section 6.3).
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        status,
        len,
        framing,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request it reads with the next of `answers`, written in
    /// pieces of 7 bytes so the client has to put heads and bodies together.
    async fn canned(answers: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            for answer in answers {
                let _ = tcp.read(&mut request).await.unwrap();
                for piece in answer.chunks(7) {
                    tcp.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_bodies_framed_by_length_by_chunks_and_none() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nno",
        ])
        .await;
        let mut conn = LeanConn::open(addr).await.unwrap();
        let answer = conn.request("GET", "/a", b"").await.unwrap();
        assert_eq!(answer, (StatusCode::OK, Bytes::from_static(b"hello")));
        let answer = conn.request("POST", "/b", b"42[]").await.unwrap();
        assert_eq!(
            answer,
            (StatusCode::OK, Bytes::from_static(b"abc0123456789abcdef"))
        );
        let answer = conn.request("GET", "/c", b"").await.unwrap();
        assert_eq!(answer, (StatusCode::NO_CONTENT, Bytes::new()));
        let answer = conn.request("GET", "/d", b"").await.unwrap();
        assert_eq!(answer, (StatusCode::BAD_REQUEST, Bytes::from_static(b"no")));
    }

    #[tokio::test]
    async fn a_connection_closed_mid_answer_is_an_error() {
        let addr = canned(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"]).await;
        let mut conn = LeanConn::open(addr).await.unwrap();
        let err = conn.request("GET", "/", b"").await.unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }

    #[test]
    fn bad_heads_are_errors() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-len")
                .unwrap()
                .is_none()
        );
    }

    /// The lean client against the real engine: handshake, connect, one acked echo.
    #[tokio::test]
    async fn a_polling_client_echoes_through_ferrio() {
        let addr = crate::load::echo_server().await;
        let mut client = PollingClient::connect(addr, "/socket.io/").await.unwrap();
        client.post(r#"427["echo",{"a":[1,"é"]}]"#).await.unwrap();
        assert_eq!(client.recv().await.unwrap(), r#"437[{"a":[1,"é"]}]"#);
        assert!(!client.sid().is_empty());
    }
}
