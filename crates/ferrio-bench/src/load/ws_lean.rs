//! A lean WebSocket client for the echo scenarios: the handshake and the frames (RFC 6455)
//! written and read by hand over a plain TCP stream, so that the generator spends little CPU
//! per echo and the echo scenarios measure the server rather than the client library (with
//! tungstenite's client the generator's core was as busy as the server's).
//!
//! It speaks the subset the scenarios need: text frames out (masked, as a client must, with
//! one random key per connection: the key protects intermediaries' caches, of which there are
//! none on loopback, and the server unmasks whatever the key), text and binary frames in,
//! fragmented or not, pings answered, a close frame an error.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use super::http::parse_response_head;
use crate::BoxError;

/// The largest message the lean client accepts.
const MAX_MESSAGE: usize = 16 << 20;

/// One connected Socket.IO socket on namespace `/`.
pub(crate) struct LeanWs {
    tcp: TcpStream,
    mask: [u8; 4],
    /// Bytes read but not consumed yet.
    input: BytesMut,
    /// The frame being written.
    output: Vec<u8>,
}

impl LeanWs {
    /// Opens a WebSocket session at `path` and connects it to namespace `/`. Returns once the
    /// server has answered the CONNECT (`40{...}`).
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut ws = LeanWs {
            tcp,
            mask: rand::random(),
            input: BytesMut::with_capacity(4096),
            output: Vec::with_capacity(256),
        };
        ws.handshake(addr, path).await?;
        let open = ws.recv().await?;
        if !open.starts_with("0{") {
            return Err(format!("expected an Engine.IO open packet, got {open:?}").into());
        }
        ws.send("40".to_owned()).await?;
        loop {
            if let Some(answer) = super::connect_answer(&ws.recv().await?) {
                return answer.map(|()| ws);
            }
        }
    }

    async fn handshake(&mut self, addr: SocketAddr, path: &str) -> Result<(), BoxError> {
        let key = generate_key();
        let request = format!(
            "GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nhost: {addr}\r\n\
             upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: {key}\r\n\
             sec-websocket-version: 13\r\n\r\n"
        );
        self.tcp.write_all(request.as_bytes()).await?;
        let accept = derive_accept_key(key.as_bytes());
        loop {
            if let Some((status, head_len, headers)) = parse_response_head(&self.input)? {
                if status != 101 {
                    return Err(format!("the WebSocket handshake was answered {status}").into());
                }
                let accepted = headers
                    .iter()
                    .any(|(name, value)| name == "sec-websocket-accept" && *value == accept);
                if !accepted {
                    return Err("the server's Sec-WebSocket-Accept does not match".into());
                }
                self.input.advance(head_len);
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes; the server closing the connection is an error.
    async fn fill(&mut self) -> Result<(), BoxError> {
        if self.tcp.read_buf(&mut self.input).await? == 0 {
            return Err("server closed the connection".into());
        }
        Ok(())
    }

    /// Sends one masked frame with `opcode` and `payload`.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), BoxError> {
        let out = &mut self.output;
        out.clear();
        out.push(0x80 | opcode);
        match payload.len() {
            len @ 0..=125 => out.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&self.mask);
        let mask = self.mask;
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(out).await?;
        Ok(())
    }

    /// The next whole message: its opcode (text or binary) and payload. Pings are answered
    /// with pongs and pongs skipped; a close frame is an error.
    async fn recv_message(&mut self) -> Result<(u8, BytesMut), BoxError> {
        let mut message: Option<(u8, BytesMut)> = None;
        loop {
            let (fin, opcode, payload) = self.recv_frame().await?;
            match opcode {
                0x8 => return Err(format!("server closed the WebSocket: {payload:?}").into()),
                0x9 => self.send_frame(0xA, &payload).await?,
                0xA => {}
                0x0 => {
                    let Some((_, data)) = &mut message else {
                        return Err("a continuation frame without a message".into());
                    };
                    if data.len() + payload.len() > MAX_MESSAGE {
                        return Err("a message over 16 MiB".into());
                    }
                    data.extend_from_slice(&payload);
                }
                0x1 | 0x2 if message.is_none() => message = Some((opcode, payload)),
                other => return Err(format!("unexpected frame opcode {other:#x}").into()),
            }
            if fin
                && matches!(opcode, 0x0..=0x2)
                && let Some(message) = message.take()
            {
                return Ok(message);
            }
        }
    }

    /// One frame: FIN, opcode and (unmasked) payload.
    async fn recv_frame(&mut self) -> Result<(bool, u8, BytesMut), BoxError> {
        loop {
            if let Some((fin, opcode, header, len)) = frame_header(&self.input)? {
                if len > MAX_MESSAGE {
                    return Err(format!("a frame of {len} bytes").into());
                }
                while self.input.len() < header + len {
                    self.fill().await?;
                }
                self.input.advance(header);
                return Ok((fin, opcode, self.input.split_to(len)));
            }
            self.fill().await?;
        }
    }

    /// The next text message that is not an Engine.IO ping (pings are answered here);
    /// binary messages are skipped.
    pub(crate) async fn recv(&mut self) -> Result<String, BoxError> {
        loop {
            let (opcode, payload) = self.recv_message().await?;
            if opcode != 0x1 {
                continue;
            }
            let text = String::from_utf8(payload.to_vec())?;
            if text == "2" {
                self.send_frame(0x1, b"3").await?;
                continue;
            }
            return Ok(text);
        }
    }

    /// Sends one text frame.
    pub(crate) async fn send(&mut self, text: String) -> Result<(), BoxError> {
        self.send_frame(0x1, text.as_bytes()).await
    }
}

/// The header of the server frame at the start of `input`: FIN, opcode, header length and
/// payload length; `None` until the whole header is there. Server frames are never masked.
fn frame_header(input: &[u8]) -> Result<Option<(bool, u8, usize, usize)>, BoxError> {
    let [first, second, rest @ ..] = input else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err("a masked frame from the server".into());
    }
    let (header, len) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (4, usize::from(u16::from_be_bytes([*a, *b]))),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = usize::try_from(u64::from_be_bytes(be)).unwrap_or(usize::MAX);
                (10, len)
            }
            None => return Ok(None),
        },
        len => (2, usize::from(len)),
    };
    Ok(Some((first & 0x80 != 0, first & 0x0f, header, len)))
}

impl super::EchoTransport for LeanWs {
    async fn send(&mut self, packet: String) -> Result<(), BoxError> {
        LeanWs::send(self, packet).await
    }
    async fn recv(&mut self) -> Result<String, BoxError> {
        LeanWs::recv(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_of_every_length_form() {
        assert_eq!(frame_header(b"\x81").unwrap(), None);
        assert_eq!(
            frame_header(b"\x81\x05hello").unwrap(),
            Some((true, 1, 2, 5))
        );
        assert_eq!(
            frame_header(b"\x02\x7e\x01\x00").unwrap(),
            Some((false, 2, 4, 256))
        );
        assert_eq!(frame_header(b"\x82\x7e\x01").unwrap(), None);
        let long = b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00";
        assert_eq!(frame_header(long).unwrap(), Some((true, 2, 10, 65_536)));
        assert!(
            frame_header(b"\x81\x85abcd").is_err(),
            "server frames are not masked"
        );
    }

    /// The lean client against the real engine: handshake, connect, echoes small and large
    /// (a 16-bit and a 64-bit length).
    #[tokio::test]
    async fn echoes_through_ferrio() {
        let addr = crate::load::echo_server().await;
        let mut ws = LeanWs::connect(addr, "/socket.io/").await.unwrap();
        for size in [3, 200, 70_000] {
            let text = "é".repeat(size);
            ws.send(format!("421[\"echo\",\"{text}\"]")).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), format!("431[\"{text}\"]"));
        }
    }
}
