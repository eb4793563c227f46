//! A raw Socket.IO client over HTTP long-polling: one TCP connection per request
//! (`Connection: close`, read to its end), so tests see exactly what the server answers.

use std::net::SocketAddr;

use bytes::Bytes;
use ferrio_protocol::engine::{self, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Frame, WAIT};

/// An HTTP response read to its end.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request and reads the whole response; panics after [`WAIT`].
pub async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> HttpReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| {
            panic!("no complete HTTP response to {method} {target} within {WAIT:?}")
        })
        .unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpReply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = HttpReply {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[split + 4..];
    reply.body = if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    reply
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = std::str::from_utf8(&rest[..eol]).unwrap();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// What one GET brought: the Socket.IO frames in order, and whether the session is over
/// (an Engine.IO `1` in the payload, or a `400` "Session ID unknown").
#[derive(Debug, Default)]
pub struct Polled {
    pub frames: Vec<Frame>,
    pub closed: bool,
}

/// A raw Socket.IO client over HTTP long-polling.
pub struct PollingClient {
    addr: SocketAddr,
    /// The Engine.IO session id.
    pub sid: String,
}

impl PollingClient {
    /// Opens a polling session at `/socket.io/` (the handshake GET).
    pub async fn connect(addr: SocketAddr) -> Self {
        let reply = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
        assert_eq!(reply.status, 200, "handshake refused: {}", reply.text());
        let text = reply.text();
        let open = text
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("not an open packet: {text}"));
        let json: serde_json::Value = serde_json::from_str(open).unwrap();
        let sid = json["sid"].as_str().unwrap().to_owned();
        Self { addr, sid }
    }

    fn target(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs a raw payload (Engine.IO packets joined by `\x1e`).
    pub async fn post_raw(&self, payload: &[u8]) -> HttpReply {
        http(self.addr, "POST", &self.target(), payload).await
    }

    /// POSTs Socket.IO packets, each as an Engine.IO message (`4` added), in one payload.
    pub async fn send(&self, packets: &[&str]) -> HttpReply {
        let packets: Vec<Packet<'_>> = packets.iter().map(|p| Packet::Message(p)).collect();
        self.send_packets(&packets).await
    }

    /// POSTs Engine.IO packets (binary ones as `b<base64>`) in one payload.
    pub async fn send_packets(&self, packets: &[Packet<'_>]) -> HttpReply {
        let mut body = String::new();
        for packet in packets {
            engine::encode_payload_packet(&mut body, packet);
        }
        self.post_raw(body.as_bytes()).await
    }

    /// One GET: whatever the server queued (it waits for something), pongs answered.
    pub async fn poll(&self) -> Polled {
        let reply = http(self.addr, "GET", &self.target(), b"").await;
        let mut polled = Polled::default();
        if reply.status == 400 {
            let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(json["code"], 1, "unexpected error {}", reply.text());
            polled.closed = true;
            return polled;
        }
        assert_eq!(reply.status, 200, "poll failed: {}", reply.text());
        let mut ping = false;
        for packet in engine::decode_payload(&reply.body) {
            match packet.unwrap() {
                Packet::Message(text) => polled.frames.push(Frame::Text(text.to_owned())),
                Packet::Binary(data) => polled.frames.push(Frame::Binary(Bytes::from(data))),
                Packet::Close => polled.closed = true,
                Packet::Ping(_) => ping = true,
                Packet::Noop => {}
                other => panic!("unexpected Engine.IO packet {other:?} in a poll"),
            }
        }
        if ping {
            self.post_raw(b"3").await;
        }
        polled
    }

    /// Polls until at least one frame came (or the session ended).
    pub async fn poll_frames(&self) -> Polled {
        loop {
            let polled = self.poll().await;
            if polled.closed || !polled.frames.is_empty() {
                return polled;
            }
        }
    }

    /// The next text packet, polling as needed; panics if the session ends or on binary.
    pub async fn text(&self) -> String {
        let polled = self.poll_frames().await;
        assert!(!polled.closed, "session closed; got {:?}", polled.frames);
        assert_eq!(
            polled.frames.len(),
            1,
            "expected one packet: {:?}",
            polled.frames
        );
        match &polled.frames[0] {
            Frame::Text(text) => text.clone(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Joins a namespace; returns the socket id from the CONNECT reply.
    pub async fn join(&self, nsp: &str) -> String {
        let prefix = super::nsp_prefix(nsp);
        let reply = self.send(&[&format!("0{prefix}")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        super::connect_reply_sid(&self.text().await, nsp)
    }

    /// Asserts the server ended the session: polls (collecting what was queued before
    /// the close) until the close, and returns the frames seen meanwhile.
    pub async fn assert_closed(&self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let polled = self.poll().await;
            frames.extend(polled.frames);
            if polled.closed {
                return frames;
            }
        }
    }
}
