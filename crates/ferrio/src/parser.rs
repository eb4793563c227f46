//! The two Socket.IO parsers: how packets become Engine.IO messages and back.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use ferrio_engine::{Message, PreparedMessage, SendError, Socket as EngineSocket, Utf8Bytes};
use ferrio_protocol::socketio::{self, ArgRanges, Body, DecodeError, EncodeError, PacketType};
use serde::Serialize;

use crate::error::EmitError;
use crate::payload::Payload;

/// The wire format of Socket.IO packets. Every client of a server must use the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Parser {
    /// The default parser: JSON text, binary values as separate attachments.
    #[default]
    Json,
    /// MessagePack, wire-compatible with the npm package `socket.io-msgpack-parser`
    /// (feature `msgpack`).
    #[cfg(feature = "msgpack")]
    Msgpack,
}

/// A packet encoded once, ready to be queued on any number of sockets.
#[derive(Debug, Clone)]
pub(crate) enum Encoded {
    /// A packet that travels as one Engine.IO message.
    One(PreparedMessage),
    /// A packet with binary attachments: a text message and its buffers, sent as one unit.
    Many(Arc<[PreparedMessage]>),
}

impl Encoded {
    /// The packet as the messages a client receives.
    pub(crate) fn messages(&self) -> Vec<Message> {
        match self {
            Self::One(message) => vec![message.to_message()],
            Self::Many(messages) => messages.iter().map(PreparedMessage::to_message).collect(),
        }
    }

    /// A packet from the messages a client receives.
    pub(crate) fn from_messages(messages: Vec<Message>) -> Self {
        let mut prepared: Vec<PreparedMessage> =
            messages.into_iter().map(PreparedMessage::from).collect();
        if prepared.len() == 1 {
            if let Some(one) = prepared.pop() {
                return Self::One(one);
            }
        }
        Self::Many(prepared.into())
    }

    /// Its size on the wire, attachments included.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::One(message) => message.len(),
            Self::Many(messages) => messages.iter().map(PreparedMessage::len).sum(),
        }
    }

    pub(crate) fn send(&self, socket: &EngineSocket) -> Result<(), SendError<()>> {
        match self {
            Self::One(message) => socket.send_prepared(message),
            Self::Many(messages) => socket.send_batch(messages),
        }
    }
}

fn json_packet(buf: String, attachments: Vec<Bytes>) -> Encoded {
    let text = PreparedMessage::from_message_packet(buf)
        .expect("every JSON packet buffer starts with the Engine.IO message type");
    if attachments.is_empty() {
        Encoded::One(text)
    } else {
        let mut messages = Vec::with_capacity(attachments.len() + 1);
        messages.push(text);
        messages.extend(attachments.into_iter().map(PreparedMessage::binary));
        Encoded::Many(messages.into())
    }
}

/// Starts a JSON packet buffer with the Engine.IO `4` (message) type, so the encoded text is
/// queued as is.
fn json_buf() -> String {
    let mut buf = String::with_capacity(64);
    buf.push('4');
    buf
}

impl Parser {
    pub(crate) fn connect(self, nsp: &str, sid: &str, pid: Option<&str>) -> Encoded {
        match self {
            Self::Json => {
                let mut buf = json_buf();
                socketio::encode_connect(&mut buf, nsp, sid, pid);
                json_packet(buf, Vec::new())
            }
            #[cfg(feature = "msgpack")]
            Self::Msgpack => Encoded::One(PreparedMessage::binary(
                ferrio_protocol::msgpack::encode_connect(nsp, sid, pid),
            )),
        }
    }

    pub(crate) fn connect_error(
        self,
        nsp: &str,
        message: &str,
        data: Option<&serde_json::value::RawValue>,
    ) -> Result<Encoded, EncodeError> {
        Ok(match self {
            Self::Json => {
                let mut buf = json_buf();
                socketio::encode_connect_error(&mut buf, nsp, message, data)?;
                json_packet(buf, Vec::new())
            }
            #[cfg(feature = "msgpack")]
            Self::Msgpack => {
                // Maps keep their order in a dynamic msgpack value.
                let data: Option<rmpv::Value> = data
                    .map(|raw| serde_json::from_str(raw.get()))
                    .transpose()
                    .map_err(EncodeError::Json)?;
                Encoded::One(PreparedMessage::binary(
                    ferrio_protocol::msgpack::encode_connect_error(nsp, message, data.as_ref())?,
                ))
            }
        })
    }

    pub(crate) fn disconnect(self, nsp: &str) -> Encoded {
        match self {
            Self::Json => {
                let mut buf = json_buf();
                socketio::encode_disconnect(&mut buf, nsp);
                json_packet(buf, Vec::new())
            }
            #[cfg(feature = "msgpack")]
            Self::Msgpack => Encoded::One(PreparedMessage::binary(
                ferrio_protocol::msgpack::encode_disconnect(nsp),
            )),
        }
    }

    /// An event whose arguments are the elements of `args` (a sequence). A reserved event
    /// name is refused: the client would drop the whole connection on it.
    pub(crate) fn event<A: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: Option<u64>,
        event: &str,
        args: &A,
    ) -> Result<Encoded, EmitError> {
        if socketio::RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_owned()));
        }
        Ok(match self {
            Self::Json => {
                let mut buf = json_buf();
                let attachments = socketio::encode_event(&mut buf, nsp, id, event, args)?;
                json_packet(buf, attachments)
            }
            #[cfg(feature = "msgpack")]
            Self::Msgpack => Encoded::One(PreparedMessage::binary(
                ferrio_protocol::msgpack::encode_event(nsp, id, event, args)?,
            )),
        })
    }

    /// An acknowledgement whose arguments are the elements of `args` (a sequence).
    pub(crate) fn ack<A: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: u64,
        args: &A,
    ) -> Result<Encoded, EncodeError> {
        Ok(match self {
            Self::Json => {
                let mut buf = json_buf();
                let attachments = socketio::encode_ack(&mut buf, nsp, id, args)?;
                json_packet(buf, attachments)
            }
            #[cfg(feature = "msgpack")]
            Self::Msgpack => Encoded::One(PreparedMessage::binary(
                ferrio_protocol::msgpack::encode_ack(nsp, id, args)?,
            )),
        })
    }
}

/// A namespace name from a packet; the default namespace costs no allocation.
pub(crate) type Nsp = Cow<'static, str>;

fn nsp_name(name: &str) -> Nsp {
    if name == "/" {
        Cow::Borrowed("/")
    } else {
        Cow::Owned(name.to_owned())
    }
}

/// A packet received from a client, whatever the parser.
#[derive(Debug)]
pub(crate) enum Incoming {
    Connect {
        nsp: Nsp,
        auth: Option<Payload>,
    },
    Disconnect {
        nsp: Nsp,
    },
    Event {
        nsp: Nsp,
        id: Option<u64>,
        event: Utf8Bytes,
        args: Payload,
    },
    Ack {
        nsp: Nsp,
        id: u64,
        args: Payload,
    },
}

/// A binary packet of the JSON parser waiting for its attachments.
#[derive(Debug)]
pub(crate) struct PendingBinary {
    text: Utf8Bytes,
    kind: PacketType,
    nsp: Nsp,
    id: Option<u64>,
    event: Utf8Bytes,
    args: ArgRanges,
    compact: bool,
    expected: usize,
    attachments: Vec<Bytes>,
}

/// What one Engine.IO message turned out to be.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a return value that lives for one call; boxing the packet would allocate for every event"
)]
pub(crate) enum Decoded {
    /// A whole packet.
    Packet(Incoming),
    /// The header of a binary packet; its attachments follow.
    Pending(Box<PendingBinary>),
}

impl Parser {
    /// Decodes one Engine.IO message. `pending` is the binary packet still waiting for
    /// attachments, if any: it is completed by binary messages, and any text message
    /// meanwhile is an error.
    pub(crate) fn decode(
        self,
        message: Message,
        pending: &mut Option<Box<PendingBinary>>,
    ) -> Result<Option<Incoming>, DecodeError> {
        match self {
            Self::Json => decode_json(message, pending),
            #[cfg(feature = "msgpack")]
            Self::Msgpack => match message {
                Message::Binary(data) => decode_msgpack(&data).map(Some),
                // The msgpack parser never sends text.
                Message::Text(_) => Err(DecodeError::InvalidJson),
            },
        }
    }
}

fn decode_json(
    message: Message,
    pending: &mut Option<Box<PendingBinary>>,
) -> Result<Option<Incoming>, DecodeError> {
    match message {
        Message::Text(text) => {
            if pending.is_some() {
                return Err(DecodeError::MissingAttachments);
            }
            match decode_text(text)? {
                Decoded::Packet(packet) => Ok(Some(packet)),
                Decoded::Pending(binary) => {
                    *pending = Some(binary);
                    Ok(None)
                }
            }
        }
        Message::Binary(data) => {
            let Some(binary) = pending.as_mut() else {
                return Err(DecodeError::UnexpectedAttachment);
            };
            binary.attachments.push(data);
            if binary.attachments.len() < binary.expected {
                return Ok(None);
            }
            let binary = *pending.take().expect("checked just above");
            let args = Payload::json(binary.text, binary.args, binary.attachments, binary.compact);
            Ok(Some(match binary.kind {
                PacketType::BinaryAck => Incoming::Ack {
                    nsp: binary.nsp,
                    id: binary.id.ok_or(DecodeError::BadAckId)?,
                    args,
                },
                _ => Incoming::Event {
                    nsp: binary.nsp,
                    id: binary.id,
                    event: binary.event,
                    args,
                },
            }))
        }
    }
}

fn decode_text(text: Utf8Bytes) -> Result<Decoded, DecodeError> {
    let packet = socketio::decode_text(&text)?;
    let nsp = nsp_name(packet.nsp);
    let (event, args, compact) = match packet.body {
        Body::None => {
            return Ok(Decoded::Packet(match packet.kind {
                PacketType::Connect => Incoming::Connect { nsp, auth: None },
                _ => Incoming::Disconnect { nsp },
            }));
        }
        Body::Auth(range) => {
            let auth = Payload::json(
                text.clone(),
                ArgRanges::from_elem(range, 1),
                Vec::new(),
                false,
            );
            return Ok(Decoded::Packet(Incoming::Connect {
                nsp,
                auth: Some(auth),
            }));
        }
        Body::Event {
            name,
            args,
            compact,
        } => (event_name(&text, name), args, compact),
        Body::Ack { args, compact } => (Utf8Bytes::default(), args, compact),
    };
    let (kind, id, expected) = (packet.kind, packet.id, packet.attachments);
    if expected > 0 {
        return Ok(Decoded::Pending(Box::new(PendingBinary {
            text,
            kind,
            nsp,
            id,
            event,
            args,
            compact,
            expected,
            attachments: Vec::with_capacity(expected),
        })));
    }
    let args = Payload::json(text, args, Vec::new(), compact);
    Ok(Decoded::Packet(match kind {
        PacketType::Ack => Incoming::Ack {
            nsp,
            id: id.ok_or(DecodeError::BadAckId)?,
            args,
        },
        _ => Incoming::Event {
            nsp,
            id,
            event,
            args,
        },
    }))
}

/// The event name as a part of the packet's text when it is written there as is (the usual
/// case: no escapes), so it costs no allocation.
fn event_name(text: &Utf8Bytes, name: Cow<'_, str>) -> Utf8Bytes {
    match name {
        Cow::Borrowed(name) => {
            let start = (name.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
            text.slice(start..start.saturating_add(name.len()))
                .unwrap_or_else(|| Utf8Bytes::from(name))
        }
        Cow::Owned(name) => Utf8Bytes::from(name),
    }
}

#[cfg(feature = "msgpack")]
fn decode_msgpack(data: &[u8]) -> Result<Incoming, DecodeError> {
    use ferrio_protocol::msgpack::{self, MsgpackBody};
    let packet = msgpack::decode(data)?;
    let nsp = Cow::Owned(packet.nsp);
    Ok(match packet.body {
        MsgpackBody::None if packet.kind == PacketType::Connect => {
            Incoming::Connect { nsp, auth: None }
        }
        MsgpackBody::None => Incoming::Disconnect { nsp },
        MsgpackBody::Auth(auth) => Incoming::Connect {
            nsp,
            auth: Some(Payload::values(vec![auth])),
        },
        MsgpackBody::Event { name, args } => Incoming::Event {
            nsp,
            id: packet.id,
            event: Utf8Bytes::from(name),
            args: Payload::values(args),
        },
        MsgpackBody::Ack { args } => Incoming::Ack {
            nsp,
            id: packet.id.ok_or(DecodeError::BadAckId)?,
            args: Payload::values(args),
        },
    })
}
