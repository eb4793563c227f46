//! Socket.IO v5 packets and the default (JSON) parser.
//!
//! A packet is `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`, carried in one Engine.IO
//! text message; binary values travel as separate binary messages (attachments) and stand in
//! the JSON as `{"_placeholder":true,"num":<i>}`.
//!
//! [`decode_text`] validates a client's packet without copying it: the JSON data comes back as
//! byte ranges of the input, so the caller can keep the (ref-counted) message and parse each
//! argument later, as whatever type the application asks for. The encoders append to a
//! caller's buffer, which may already hold the Engine.IO `4` prefix.
//!
//! ```
//! use ferrio_protocol::socketio::{self, Body, PacketType};
//!
//! let text = r#"2/chat,12["message",{"text":"hi"},3]"#;
//! let packet = socketio::decode_text(text).unwrap();
//! assert_eq!((packet.kind, packet.nsp, packet.id), (PacketType::Event, "/chat", Some(12)));
//! let Body::Event { name, args, .. } = packet.body else { unreachable!() };
//! assert_eq!(name, "message");
//! assert_eq!(&text[args[0].clone()], r#"{"text":"hi"}"#);
//!
//! // The acknowledgement, with a binary value that becomes an attachment.
//! let mut out = String::new();
//! let attachments =
//!     socketio::encode_ack(&mut out, "/chat", 12, &("ok", bytes::Bytes::from_static(b"\x01")))
//!         .unwrap();
//! assert_eq!(out, r#"61-/chat,12["ok",{"_placeholder":true,"num":0}]"#);
//! assert_eq!(attachments, [&b"\x01"[..]]);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

mod decode;
mod encode;
mod json;
mod placeholder;

pub(crate) use decode::check_depth;
pub use decode::decode_text;
#[cfg(feature = "msgpack")]
pub(crate) use decode::number_name;
pub use encode::{
    encode_ack, encode_connect, encode_connect_error, encode_disconnect, encode_event, encode_value,
};
pub use json::compact_json;
pub use placeholder::resolve_placeholders;

/// The most binary attachments a client's packet may announce.
pub const MAX_ATTACHMENTS: usize = 10;

/// The deepest nesting of arrays and objects accepted in a packet's data (the data array
/// itself counts as one level): serde_json's own recursion bound, which every later parse
/// of the same text (into the handler's types) also applies. The bound is kept rather than
/// lifted (serde_json's `unbounded_depth`) because that feature would lift it for every user
/// of serde_json in an application, axum's `Json` extractor included.
pub const MAX_DEPTH: usize = 127;

/// The largest acknowledgement id: ids are JavaScript numbers, exact up to 53 bits.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// Event names a client may not send: they name events of the server's own.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The type of a Socket.IO packet, with its wire digit as discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: joins a namespace (client), or confirms it (server).
    Connect = 0,
    /// `1`: leaves a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: the acknowledgement of an event.
    Ack = 3,
    /// `4`: a refused connection to a namespace (server only).
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The packet type for its ASCII wire digit (`b'0'`..=`b'6'`).
    ///
    /// ```
    /// # use ferrio_protocol::socketio::PacketType;
    /// assert_eq!(PacketType::from_digit(b'2'), Some(PacketType::Event));
    /// assert_eq!(PacketType::from_digit(2), None);
    /// ```
    pub const fn from_digit(b: u8) -> Option<Self> {
        match b {
            b'0'..=b'6' => Self::from_number((b - b'0') as u64),
            _ => None,
        }
    }

    /// The packet type for its number (`0`..=`6`), as the msgpack parser writes it.
    pub const fn from_number(n: u64) -> Option<Self> {
        Some(match n {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub const fn as_char(self) -> char {
        (b'0' + self as u8) as char
    }
}

/// Why a client's packet is invalid; each variant names the broken rule.
///
/// Any of these closes the client's whole connection (reason "parse error").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is empty.
    Empty,
    /// The packet type is not one of `0`..=`6` (msgpack: `0`..=`4`, as an integer).
    UnknownType,
    /// A binary packet's attachment count is not an integer 1..=10 followed by `-`.
    BadAttachments,
    /// The namespace is missing or not a string (msgpack only: in text it is implied `/`).
    BadNamespace,
    /// The ack id is not an integer in 0..=2^53-1.
    BadAckId,
    /// An acknowledgement carries no ack id.
    MissingAckId,
    /// A CONNECT or DISCONNECT packet carries an ack id.
    UnexpectedAckId,
    /// The data is not valid JSON (including trailing characters after it).
    InvalidJson,
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// CONNECT data is neither absent nor an object.
    BadConnectData,
    /// A DISCONNECT packet carries data.
    UnexpectedData,
    /// An EVENT or ACK packet carries no data.
    MissingData,
    /// EVENT data is not a non-empty array.
    BadEventData,
    /// The event name (the first element of the data) is neither a string nor a number.
    BadEventName,
    /// The event name is one of [`RESERVED_EVENTS`].
    ReservedEventName,
    /// ACK data is not an array.
    BadAckData,
    /// A client sent CONNECT_ERROR, which only servers send.
    ConnectErrorFromClient,
    /// An object with a `_placeholder` key is not exactly `{"_placeholder":true,"num":<i>}`
    /// with an integer `i` below the number of attachments.
    BadPlaceholder,
    /// A binary message arrived while no binary packet was waiting for attachments.
    UnexpectedAttachment,
    /// A text message arrived while a binary packet was still waiting for attachments.
    MissingAttachments,
    /// The message is not exactly one well-formed msgpack value.
    InvalidMsgpack,
    /// The msgpack packet is not a map, or names one of its keys twice.
    BadPacketMap,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty packet",
            Self::UnknownType => "unknown packet type",
            Self::BadAttachments => "attachment count is not an integer 1..=10 followed by '-'",
            Self::BadNamespace => "namespace is not a string",
            Self::BadAckId => "ack id is not an integer below 2^53",
            Self::MissingAckId => "acknowledgement without an ack id",
            Self::UnexpectedAckId => "connect or disconnect packet with an ack id",
            Self::InvalidJson => "data is not valid JSON",
            Self::TooDeep => "data nests too deep",
            Self::BadConnectData => "connect data is not an object",
            Self::UnexpectedData => "disconnect packet with data",
            Self::MissingData => "event or acknowledgement without data",
            Self::BadEventData => "event data is not a non-empty array",
            Self::BadEventName => "event name is neither a string nor a number",
            Self::ReservedEventName => "event name is reserved",
            Self::BadAckData => "acknowledgement data is not an array",
            Self::ConnectErrorFromClient => "connect_error packet from a client",
            Self::BadPlaceholder => "invalid binary placeholder",
            Self::UnexpectedAttachment => "binary message with no attachment expected",
            Self::MissingAttachments => "text message while attachments are expected",
            Self::InvalidMsgpack => "data is not one valid msgpack value",
            Self::BadPacketMap => "packet is not a msgpack map with distinct keys",
        })
    }
}

impl std::error::Error for DecodeError {}

/// A packet from a client, decoded from a text message of the JSON parser (the Engine.IO `4`
/// prefix already removed).
///
/// Ranges index into the decoded string, so the caller can keep the input (say, ref-counted)
/// and slice it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPacket<'a> {
    /// The packet type; never [`PacketType::ConnectError`], which clients may not send.
    pub kind: PacketType,
    /// The namespace: `/` when the packet names none.
    pub nsp: &'a str,
    /// The ack id (at most [`MAX_ACK_ID`]); always present for (binary) acknowledgements.
    pub id: Option<u64>,
    /// How many binary attachments follow: 1..=[`MAX_ATTACHMENTS`] for binary packets, else 0.
    pub attachments: usize,
    /// The data.
    pub body: Body<'a>,
}

/// The data of a [`TextPacket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// No data: a DISCONNECT, or a CONNECT without auth data.
    None,
    /// A CONNECT's auth data: the range of the JSON object's text.
    Auth(Range<usize>),
    /// An EVENT or BINARY_EVENT.
    Event {
        /// The event name; a number name becomes its JavaScript decimal text (`1e3` is `"1000"`).
        name: Cow<'a, str>,
        /// The ranges of each further argument's raw JSON text.
        args: ArgRanges,
        /// No argument holds whitespace outside its strings: each range is compact JSON
        /// that can be written out as it is.
        compact: bool,
    },
    /// An ACK or BINARY_ACK.
    Ack {
        /// The ranges of each argument's raw JSON text.
        args: ArgRanges,
        /// As for [`Body::Event`].
        compact: bool,
    },
}

/// The byte ranges of a packet's arguments in its text. The first few are kept inline, so
/// decoding an ordinary event allocates nothing for them.
pub type ArgRanges = smallvec::SmallVec<[Range<usize>; 3]>;

/// Why a packet could not be encoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value failed to serialize as JSON (a map with non-string keys, a failing `Serialize`).
    Json(serde_json::Error),
    /// The arguments do not serialize as a sequence (a tuple, array or `Vec`) or as `()`.
    NotASequence,
    /// A value failed to serialize as msgpack.
    #[cfg(feature = "msgpack")]
    Msgpack(rmp_serde::encode::Error),
    /// A string, array or map is longer than msgpack can say (2^32 - 1).
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "cannot serialize as JSON: {e}"),
            Self::NotASequence => f.write_str("arguments do not serialize as a sequence"),
            #[cfg(feature = "msgpack")]
            Self::Msgpack(e) => write!(f, "cannot serialize as msgpack: {e}"),
            Self::TooLarge => f.write_str("value too large for msgpack"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            #[cfg(feature = "msgpack")]
            Self::Msgpack(e) => Some(e),
            Self::NotASequence | Self::TooLarge => None,
        }
    }
}

impl From<serde_json::Error> for EncodeError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}

#[cfg(feature = "msgpack")]
impl From<rmp_serde::encode::Error> for EncodeError {
    fn from(e: rmp_serde::encode::Error) -> Self {
        Self::Msgpack(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_type_digits_round_trip() {
        for b in b'0'..=b'6' {
            let kind = PacketType::from_digit(b).unwrap();
            assert_eq!(kind.as_char(), b as char);
            assert_eq!(PacketType::from_number(u64::from(b - b'0')), Some(kind));
        }
        assert_eq!(PacketType::from_digit(b'7'), None);
        assert_eq!(PacketType::from_digit(b'/'), None);
        assert_eq!(PacketType::from_digit(0), None);
        assert_eq!(PacketType::from_number(7), None);
        assert_eq!(PacketType::BinaryAck as u8, 6);
    }

    #[test]
    fn errors_render() {
        assert_eq!(DecodeError::TooDeep.to_string(), "data nests too deep");
        assert_eq!(
            EncodeError::NotASequence.to_string(),
            "arguments do not serialize as a sequence"
        );
    }
}
