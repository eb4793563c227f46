//! The msgpack parser, wire-compatible with npm `socket.io-msgpack-parser` 3.x (which encodes
//! with `notepack.io` 2.x).
//!
//! Each Socket.IO packet is one binary Engine.IO message holding a msgpack map with the string
//! keys `type` (integer), `nsp` (string), `data` (optional) and `id` (optional integer). Binary
//! values stay inline as msgpack `bin`, so there are no attachments, and types 5 and 6 do not
//! exist on this wire: the npm decoder refuses them, and so does [`decode`].
//!
//! What the decoder accepts from JavaScript clients (facts of `notepack.io` 2.x):
//! - `undefined`, encoded as fixext 1 of type 0, reads as an absent `data` or `id`, and as nil
//!   anywhere else (socket.io-client sends `data: undefined` in a CONNECT without auth);
//! - an `ArrayBuffer` or typed array (browsers), encoded as ext 8/16/32 of type 0, reads as
//!   binary, like a Node `Buffer` (bin);
//! - strings are decoded as Node's `Buffer.toString("utf8")` does: invalid UTF-8 becomes U+FFFD;
//! - keys other than the four (such as the client's `options`) are ignored.
//!
//! It is stricter than the npm decoder where the JSON parser is: the same rules for event names
//! and data shapes, ack ids in 0..=2^53-1 and absent from CONNECT/DISCONNECT, no CONNECT_ERROR
//! from clients, nesting bounded by [`MAX_DEPTH`](crate::socketio::MAX_DEPTH) (counted from
//! `data`), the reserved marker `0xc1` refused, and no key named twice.
//!
//! ```
//! use ferrio_protocol::msgpack::{self, MsgpackBody};
//!
//! let file = bytes::Bytes::from_static(b"\x01");
//! let bytes = msgpack::encode_event("/chat", Some(3), "file", &(file,)).unwrap();
//! let packet = msgpack::decode(&bytes).unwrap();
//! assert_eq!((packet.nsp.as_str(), packet.id), ("/chat", Some(3)));
//! assert_eq!(
//!     packet.body,
//!     MsgpackBody::Event { name: "file".into(), args: vec![rmpv::Value::Binary(vec![1])] }
//! );
//! ```

use rmpv::Value;

use crate::socketio::{DecodeError, MAX_ACK_ID, PacketType, RESERVED_EVENTS, number_name};

mod encode;
mod read;

pub use encode::{
    encode_ack, encode_connect, encode_connect_error, encode_disconnect, encode_event,
};

/// A packet from a client, decoded from one binary message of the msgpack parser.
#[derive(Debug, Clone, PartialEq)]
pub struct MsgpackPacket {
    /// The packet type: CONNECT, DISCONNECT, EVENT or ACK.
    pub kind: PacketType,
    /// The namespace, as the client wrote it.
    pub nsp: String,
    /// The ack id (at most [`MAX_ACK_ID`]); always present for acknowledgements.
    pub id: Option<u64>,
    /// The data.
    pub body: MsgpackBody,
}

/// The data of a [`MsgpackPacket`].
#[derive(Debug, Clone, PartialEq)]
pub enum MsgpackBody {
    /// No data: a DISCONNECT, or a CONNECT without auth data.
    None,
    /// A CONNECT's auth data, a [`Value::Map`].
    Auth(Value),
    /// An EVENT.
    Event {
        /// The event name; a number name becomes its JavaScript decimal text.
        name: String,
        /// The further elements of the data array.
        args: Vec<Value>,
    },
    /// An ACK.
    Ack {
        /// The elements of the data array.
        args: Vec<Value>,
    },
}

/// Decodes a client's packet from one binary message, enforcing the rules of the protocol (see
/// the [module docs](self)).
pub fn decode(input: &[u8]) -> Result<MsgpackPacket, DecodeError> {
    let fields = read::packet_fields(input)?;

    let kind = fields
        .kind
        .as_ref()
        .and_then(Value::as_u64)
        .and_then(PacketType::from_number)
        .ok_or(DecodeError::UnknownType)?;
    match kind {
        PacketType::ConnectError => return Err(DecodeError::ConnectErrorFromClient),
        PacketType::BinaryEvent | PacketType::BinaryAck => return Err(DecodeError::UnknownType),
        _ => {}
    }

    let nsp = match fields.nsp {
        Some(Value::String(s)) => s.into_str().ok_or(DecodeError::BadNamespace)?,
        _ => return Err(DecodeError::BadNamespace),
    };

    let id = match &fields.id {
        None => None,
        Some(id) => Some(
            id.as_u64()
                .filter(|&id| id <= MAX_ACK_ID)
                .ok_or(DecodeError::BadAckId)?,
        ),
    };
    match kind {
        PacketType::Connect | PacketType::Disconnect if id.is_some() => {
            return Err(DecodeError::UnexpectedAckId);
        }
        PacketType::Ack if id.is_none() => return Err(DecodeError::MissingAckId),
        _ => {}
    }

    let body = match (kind, fields.data) {
        (PacketType::Connect, None) => MsgpackBody::None,
        (PacketType::Connect, Some(auth @ Value::Map(_))) => MsgpackBody::Auth(auth),
        (PacketType::Connect, Some(_)) => return Err(DecodeError::BadConnectData),
        (PacketType::Disconnect, None) => MsgpackBody::None,
        (PacketType::Disconnect, Some(_)) => return Err(DecodeError::UnexpectedData),
        (_, None) => return Err(DecodeError::MissingData),
        (PacketType::Event, Some(Value::Array(mut args))) if !args.is_empty() => {
            let name = event_name(args.remove(0))?;
            if RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(DecodeError::ReservedEventName);
            }
            MsgpackBody::Event { name, args }
        }
        (PacketType::Event, Some(_)) => return Err(DecodeError::BadEventData),
        (_, Some(Value::Array(args))) => MsgpackBody::Ack { args },
        (_, Some(_)) => return Err(DecodeError::BadAckData),
    };

    Ok(MsgpackPacket {
        kind,
        nsp,
        id,
        body,
    })
}

fn event_name(value: Value) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => s.into_str().ok_or(DecodeError::BadEventName),
        Value::Integer(n) => n.as_f64().map(number_name).ok_or(DecodeError::BadEventName),
        Value::F32(n) => Ok(number_name(f64::from(n))),
        Value::F64(n) => Ok(number_name(n)),
        _ => Err(DecodeError::BadEventName),
    }
}

#[cfg(test)]
mod tests;
