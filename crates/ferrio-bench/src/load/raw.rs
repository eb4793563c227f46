//! The client of the system-call floor (`ferrio-bench syscalls-server`): plain TCP, each
//! message a 2-byte big-endian length and the bytes, echoed back unchanged by the server.
//! The packets are the echo scenario's, so the frames are the same size as its WebSocket
//! frames within a few header bytes.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BoxError;

/// One connection to the floor server.
pub(crate) struct RawClient {
    tcp: TcpStream,
    frame: Vec<u8>,
}

impl RawClient {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(RawClient {
            tcp,
            frame: Vec::new(),
        })
    }
}

/// A message as one frame: its length in two bytes, then the bytes.
pub(crate) fn frame(message: &[u8]) -> Result<Vec<u8>, BoxError> {
    let len = u16::try_from(message.len()).map_err(|_| "a raw frame holds at most 65535 bytes")?;
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    Ok(frame)
}

/// What the echo loop expects back for `42<id>["echo",P]`: `43<id>[P]`. The floor server
/// sends the packet back unchanged; the client rewrites it so the echo loop can check it as
/// it checks a Socket.IO server's ack.
pub(crate) fn as_ack(echoed: &str) -> Option<String> {
    let rest = echoed.strip_prefix("42")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, args) = rest.split_at(digits);
    let payload = args.strip_prefix("[\"echo\",")?;
    Some(format!("43{id}[{payload}"))
}

impl super::EchoTransport for RawClient {
    async fn send(&mut self, packet: String) -> Result<(), BoxError> {
        self.tcp.write_all(&frame(packet.as_bytes())?).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<String, BoxError> {
        let mut len = [0u8; 2];
        self.tcp.read_exact(&mut len).await?;
        self.frame.resize(usize::from(u16::from_be_bytes(len)), 0);
        self.tcp.read_exact(&mut self.frame).await?;
        let echoed = std::str::from_utf8(&self.frame)?;
        as_ack(echoed).ok_or_else(|| format!("not an echo packet: {echoed:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length() {
        assert_eq!(frame(b"abc").unwrap(), b"\x00\x03abc");
        assert!(frame(&vec![0; 70_000]).is_err());
    }

    #[test]
    fn echoes_become_acks() {
        assert_eq!(
            as_ack(r#"4217["echo",{"n":1}]"#).as_deref(),
            Some(r#"4317[{"n":1}]"#)
        );
        assert_eq!(as_ack(r#"42["other",1]"#), None);
        assert_eq!(as_ack("nonsense"), None);
    }
}
