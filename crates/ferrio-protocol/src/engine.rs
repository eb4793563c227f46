//! Engine.IO v4 packets and the HTTP long-polling payload codec.
//!
//! A text packet is `<type digit><data>`. Over WebSocket each packet is one frame and a binary
//! message is a binary frame with no prefix. Over HTTP long-polling the packets of one request
//! or response are joined with the record separator `\x1e`, and a binary message is written as
//! `b<base64>`.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The record separator that joins packets in a long-polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Standard base64 alphabet; padding optional on input, always written on output.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The type of an Engine.IO packet, with its wire digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: the server's handshake.
    Open,
    /// `1`: the end of the session.
    Close,
    /// `2`: heartbeat request (also `2probe` during an upgrade).
    Ping,
    /// `3`: heartbeat answer (also `3probe` during an upgrade).
    Pong,
    /// `4`: an application message.
    Message,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade,
    /// `6`: does nothing; ends a pending poll during an upgrade.
    Noop,
}

impl PacketType {
    /// The digit that starts a text packet of this type.
    pub const fn as_char(self) -> char {
        match self {
            Self::Open => '0',
            Self::Close => '1',
            Self::Ping => '2',
            Self::Pong => '3',
            Self::Message => '4',
            Self::Upgrade => '5',
            Self::Noop => '6',
        }
    }

    /// The packet type for a wire digit.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// A decoded Engine.IO packet, borrowing its text from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0<json>`: the handshake (sent by servers only).
    Open(&'a str),
    /// `1`
    Close,
    /// `2<data>`; the data is empty except for the upgrade probe (`probe`).
    Ping(&'a str),
    /// `3<data>`; the data is empty except for the upgrade probe (`probe`).
    Pong(&'a str),
    /// `4<text>`: a text message.
    Message(&'a str),
    /// A binary message (`b<base64>` in a polling payload, a binary frame over WebSocket).
    Binary(Vec<u8>),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

impl Packet<'_> {
    /// The type of this packet (a binary message is of type [`PacketType::Message`]).
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) | Self::Binary(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }
}

/// Why some input is not a valid Engine.IO packet or payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input (or one packet of a payload) is empty.
    Empty,
    /// The first character is not a packet type digit (`0`..=`6`).
    UnknownType(u8),
    /// A `close`, `upgrade` or `noop` packet carries data.
    UnexpectedData(PacketType),
    /// A text packet of a payload is not valid UTF-8.
    InvalidUtf8,
    /// A `b` packet of a payload is not valid base64.
    InvalidBase64,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty packet"),
            Self::UnknownType(b) => write!(f, "unknown packet type 0x{b:02x}"),
            Self::UnexpectedData(t) => write!(f, "packet type {} carries data", t.as_char()),
            Self::InvalidUtf8 => f.write_str("packet is not valid UTF-8"),
            Self::InvalidBase64 => f.write_str("binary packet is not valid base64"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one text packet, as carried by a WebSocket text frame.
pub fn decode_packet(text: &str) -> Result<Packet<'_>, DecodeError> {
    let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
    let kind = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first))?;
    // The type digit is ASCII, so byte 1 is a char boundary.
    let data = &text[1..];
    let no_data = |packet: Packet<'static>| {
        if data.is_empty() {
            Ok(packet)
        } else {
            Err(DecodeError::UnexpectedData(kind))
        }
    };
    match kind {
        PacketType::Open => Ok(Packet::Open(data)),
        PacketType::Close => no_data(Packet::Close),
        PacketType::Ping => Ok(Packet::Ping(data)),
        PacketType::Pong => Ok(Packet::Pong(data)),
        PacketType::Message => Ok(Packet::Message(data)),
        PacketType::Upgrade => no_data(Packet::Upgrade),
        PacketType::Noop => no_data(Packet::Noop),
    }
}

/// Decodes a long-polling payload: packets separated by `\x1e`, binary ones as `b<base64>`.
///
/// The iterator yields each packet in order; after the first error it yields nothing more.
/// The whole body is never copied: text packets borrow from it.
pub fn decode_payload(body: &[u8]) -> PayloadDecoder<'_> {
    PayloadDecoder {
        rest: Some(body),
        failed: false,
    }
}

/// Iterator over the packets of a long-polling payload; see [`decode_payload`].
#[derive(Debug, Clone)]
pub struct PayloadDecoder<'a> {
    rest: Option<&'a [u8]>,
    failed: bool,
}

impl<'a> Iterator for PayloadDecoder<'a> {
    type Item = Result<Packet<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.rest?;
        let (segment, tail) = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        self.rest = tail;
        let result = decode_segment(segment);
        self.failed = result.is_err();
        Some(result)
    }
}

fn decode_segment(segment: &[u8]) -> Result<Packet<'_>, DecodeError> {
    match segment.split_first() {
        None => Err(DecodeError::Empty),
        Some((b'b', encoded)) => BASE64
            .decode(encoded)
            .map(Packet::Binary)
            .map_err(|_| DecodeError::InvalidBase64),
        Some(_) => {
            let text = std::str::from_utf8(segment).map_err(|_| DecodeError::InvalidUtf8)?;
            decode_packet(text)
        }
    }
}

/// Appends `packet` to a long-polling payload, with a separator when `out` is not empty.
pub fn encode_payload_packet(out: &mut String, packet: &Packet<'_>) {
    if !out.is_empty() {
        out.push(SEPARATOR as char);
    }
    match packet {
        Packet::Binary(data) => encode_binary_payload_packet(out, data),
        text => encode_packet_into(out, text),
    }
}

/// Appends a binary message as `b<base64>` (no separator).
pub fn encode_binary_payload_packet(out: &mut String, data: &[u8]) {
    out.push('b');
    BASE64.encode_string(data, out);
}

/// The number of bytes [`encode_binary_payload_packet`] writes for `len` bytes of data.
pub const fn binary_payload_packet_len(len: usize) -> usize {
    1 + len.div_ceil(3) * 4
}

/// Encodes a packet as one WebSocket text frame (`<type digit><data>`).
///
/// A binary message has no text form; it is written here as it would be in a payload
/// (`b<base64>`), but over WebSocket it belongs in a binary frame of its own.
pub fn encode_packet(packet: &Packet<'_>) -> String {
    let mut out = String::new();
    match packet {
        Packet::Binary(data) => encode_binary_payload_packet(&mut out, data),
        text => encode_packet_into(&mut out, text),
    }
    out
}

fn encode_packet_into(out: &mut String, packet: &Packet<'_>) {
    out.push(packet.packet_type().as_char());
    match packet {
        Packet::Open(data) | Packet::Ping(data) | Packet::Pong(data) | Packet::Message(data) => {
            out.push_str(data)
        }
        Packet::Close | Packet::Upgrade | Packet::Noop | Packet::Binary(_) => {}
    }
}

/// The handshake data of an `open` packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenData<'a> {
    /// The session id.
    pub sid: &'a str,
    /// Transports the session may upgrade to (`["websocket"]` for polling, `[]` otherwise).
    pub upgrades: &'a [&'a str],
    /// Milliseconds between two server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest payload or WebSocket message the server accepts, in bytes.
    pub max_payload: u64,
}

impl OpenData<'_> {
    /// Encodes the whole `open` packet: `0{"sid":..,"upgrades":..,"pingInterval":..,
    /// "pingTimeout":..,"maxPayload":..}`, keys in exactly that order.
    pub fn encode_packet(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("0{\"sid\":");
        push_json_string(&mut out, self.sid);
        out.push_str(",\"upgrades\":[");
        for (i, upgrade) in self.upgrades.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, upgrade);
        }
        out.push_str("],\"pingInterval\":");
        out.push_str(&self.ping_interval.to_string());
        out.push_str(",\"pingTimeout\":");
        out.push_str(&self.ping_timeout.to_string());
        out.push_str(",\"maxPayload\":");
        out.push_str(&self.max_payload.to_string());
        out.push('}');
        out
    }
}

/// Writes `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: &[u8]) -> Result<Vec<Packet<'_>>, DecodeError> {
        decode_payload(body).collect()
    }

    #[test]
    fn every_type_digit_round_trips() {
        for (text, packet) in [
            ("0{}", Packet::Open("{}")),
            ("1", Packet::Close),
            ("2", Packet::Ping("")),
            ("2probe", Packet::Ping("probe")),
            ("3", Packet::Pong("")),
            ("3probe", Packet::Pong("probe")),
            ("4", Packet::Message("")),
            ("4héllo", Packet::Message("héllo")),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
        ] {
            assert_eq!(decode_packet(text), Ok(packet.clone()), "{text}");
            assert_eq!(encode_packet(&packet), text);
        }
    }

    #[test]
    fn unknown_types_and_empty_input_are_errors() {
        assert_eq!(decode_packet(""), Err(DecodeError::Empty));
        assert_eq!(decode_packet("7"), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(decode_packet("abc"), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(decode_packet("é"), Err(DecodeError::UnknownType(0xc3)));
    }

    #[test]
    fn dataless_types_reject_data() {
        assert_eq!(
            decode_packet("1x"),
            Err(DecodeError::UnexpectedData(PacketType::Close))
        );
        assert_eq!(
            decode_packet("5probe"),
            Err(DecodeError::UnexpectedData(PacketType::Upgrade))
        );
        assert_eq!(
            decode_packet("6 "),
            Err(DecodeError::UnexpectedData(PacketType::Noop))
        );
    }

    #[test]
    fn payload_with_text_and_binary() {
        assert_eq!(
            payload(b"4hello\x1ebAQIDBA==\x1e3"),
            Ok(vec![
                Packet::Message("hello"),
                Packet::Binary(vec![1, 2, 3, 4]),
                Packet::Pong("")
            ])
        );
        // Unpadded base64 is accepted too.
        assert_eq!(
            payload(b"bAQIDBA"),
            Ok(vec![Packet::Binary(vec![1, 2, 3, 4])])
        );
        assert_eq!(payload(b"b"), Ok(vec![Packet::Binary(vec![])]));
    }

    #[test]
    fn payload_errors() {
        assert_eq!(payload(b""), Err(DecodeError::Empty));
        assert_eq!(payload(b"4a\x1e"), Err(DecodeError::Empty));
        assert_eq!(payload(b"\x1e4a"), Err(DecodeError::Empty));
        assert_eq!(payload(b"abc"), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(payload(b"b!!!"), Err(DecodeError::InvalidBase64));
        assert_eq!(payload(b"4\xff\xfe"), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn payload_decoder_stops_after_an_error() {
        let mut decoder = decode_payload(b"4a\x1ex\x1e4b");
        assert_eq!(decoder.next(), Some(Ok(Packet::Message("a"))));
        assert_eq!(decoder.next(), Some(Err(DecodeError::UnknownType(b'x'))));
        assert_eq!(decoder.next(), None);
    }

    #[test]
    fn payload_encoding_joins_with_separator() {
        let mut out = String::new();
        for p in [
            Packet::Message("a"),
            Packet::Binary(vec![0xff]),
            Packet::Close,
        ] {
            encode_payload_packet(&mut out, &p);
        }
        assert_eq!(out, "4a\x1eb/w==\x1e1");
    }

    #[test]
    fn binary_length_matches_encoding() {
        for len in 0..20 {
            let mut out = String::new();
            encode_binary_payload_packet(&mut out, &vec![7; len]);
            assert_eq!(out.len(), binary_payload_packet_len(len));
        }
    }

    #[test]
    fn open_packet_has_keys_in_order() {
        let open = OpenData {
            sid: "abc\"d",
            upgrades: &["websocket"],
            ping_interval: 300,
            ping_timeout: 200,
            max_payload: 1_000_000,
        };
        assert_eq!(
            open.encode_packet(),
            r#"0{"sid":"abc\"d","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
        let none = OpenData {
            upgrades: &[],
            ..open
        };
        assert!(none.encode_packet().contains(r#""upgrades":[],"#));
    }
}
