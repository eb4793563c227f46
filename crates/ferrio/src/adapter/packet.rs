//! [`BroadcastPacket`]: an event on its way to many sockets, encoded once.

use std::fmt;
use std::sync::{Arc, OnceLock};

use ferrio_engine::Message;
use ferrio_protocol::socketio::{DecodeError, EncodeError};
use serde::Serialize;

use crate::error::EmitError;
use crate::parser::{Encoded, Incoming, Parser};
use crate::payload::{Payload, PayloadError};

/// An event being broadcast: encoded once, with the server's parser, for every recipient.
///
/// An adapter that forwards it to other servers either publishes its wire form
/// ([`messages`](Self::messages), rebuilt there with [`decode`](Self::decode)), or its event
/// and arguments ([`event`](Self::event), [`args`](Self::args), rebuilt with
/// [`new`](Self::new)) when the other side speaks another format.
///
/// ```
/// use ferrio::Parser;
/// use ferrio::adapter::BroadcastPacket;
///
/// let packet = BroadcastPacket::new(Parser::Json, "/", "news", &("hello", 1)).unwrap();
/// assert_eq!(packet.event(), "news");
///
/// // Across the wire and back: the receiving side validates what it decodes.
/// let received = BroadcastPacket::decode(Parser::Json, packet.messages()).unwrap();
/// assert_eq!(received.args().unwrap().get::<String>(0).unwrap(), "hello");
///
/// // Another server asks its own sockets for acks with its own ack id.
/// let asked = received.with_ack_id(Some(7)).unwrap();
/// assert_eq!(asked.ack_id(), Some(7));
/// ```
#[derive(Clone)]
pub struct BroadcastPacket {
    parser: Parser,
    nsp: Arc<str>,
    event: Arc<str>,
    ack_id: Option<u64>,
    pub(crate) encoded: Encoded,
    /// Whether `ack_id` was taken from the counter of the namespace it is sent in, so its
    /// sockets can be asked with it as is.
    own_ack_id: bool,
    /// The arguments, decoded on first request (only adapters that forward them ask).
    args: OnceLock<Payload>,
}

impl BroadcastPacket {
    /// Encodes `event` with the elements of `args` (a tuple, a `Vec`, a [`Payload`]...) as
    /// arguments, for the sockets of namespace `nsp`.
    pub fn new<A: Serialize + ?Sized>(
        parser: Parser,
        nsp: &str,
        event: &str,
        args: &A,
    ) -> Result<Self, EmitError> {
        Self::encode(parser, Arc::from(nsp), event, None, args)
    }

    pub(crate) fn encode<A: Serialize + ?Sized>(
        parser: Parser,
        nsp: Arc<str>,
        event: &str,
        ack_id: Option<u64>,
        args: &A,
    ) -> Result<Self, EmitError> {
        let encoded = parser.event(&nsp, ack_id, event, args)?;
        Ok(Self {
            parser,
            nsp,
            event: Arc::from(event),
            ack_id,
            encoded,
            own_ack_id: false,
            args: OnceLock::new(),
        })
    }

    /// A packet asking for ack `id`, taken from the counter of the namespace it is sent in.
    pub(crate) fn asking<A: Serialize + ?Sized>(
        parser: Parser,
        nsp: Arc<str>,
        event: &str,
        id: u64,
        args: &A,
    ) -> Result<Self, EmitError> {
        let mut packet = Self::encode(parser, nsp, event, Some(id), args)?;
        packet.own_ack_id = true;
        Ok(packet)
    }

    /// The ack id, if it comes from the counter of the namespace it is sent in.
    pub(crate) fn own_ack_id(&self) -> Option<u64> {
        self.ack_id.filter(|_| self.own_ack_id)
    }

    /// Rebuilds a packet from its wire form, as [`messages`](Self::messages) gave it on
    /// another server with the same parser. The messages are checked as strictly as a
    /// client's: anything but one complete EVENT is refused. An ack id it carries is the
    /// sending server's; asking local sockets replaces it with this server's own.
    pub fn decode(
        parser: Parser,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Self, InvalidPacket> {
        let mut pending = None;
        let mut decoded = None;
        let mut frames = Vec::new();
        for message in messages {
            if decoded.is_some() {
                return Err(InvalidPacket::new("messages after a complete packet"));
            }
            frames.push(message.clone());
            decoded = parser
                .decode(message, &mut pending)
                .map_err(InvalidPacket::decode)?;
        }
        let Some(Incoming::Event {
            nsp,
            id,
            event,
            args,
        }) = decoded
        else {
            return Err(InvalidPacket::new(match decoded {
                None => "an incomplete packet",
                Some(_) => "not an event",
            }));
        };
        Ok(Self {
            parser,
            nsp: Arc::from(nsp.as_ref()),
            event: Arc::from(event.as_str()),
            ack_id: id,
            encoded: Encoded::from_messages(frames),
            own_ack_id: false,
            args: OnceLock::from(args),
        })
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The namespace the packet is for.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The parser it is encoded with.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// The ack id it carries, if its recipients are asked to answer.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }

    /// The arguments (binary values included), decoded from the wire form.
    pub fn args(&self) -> Result<Payload, PayloadError> {
        if let Some(args) = self.args.get() {
            return Ok(args.clone());
        }
        let args = match Self::decode_any(self.parser, self.messages()) {
            Some(Incoming::Event { args, .. }) => args,
            _ => return Err(PayloadError::new("the packet does not decode as an event")),
        };
        Ok(self.args.get_or_init(|| args).clone())
    }

    fn decode_any(parser: Parser, messages: Vec<Message>) -> Option<Incoming> {
        let mut pending = None;
        let mut decoded = None;
        for message in messages {
            decoded = parser.decode(message, &mut pending).ok()?;
        }
        decoded
    }

    /// The same event encoded with another ack id (`None`: no ack asked).
    pub fn with_ack_id(&self, ack_id: Option<u64>) -> Result<Self, EmitError> {
        if ack_id == self.ack_id {
            return Ok(self.clone());
        }
        let args = self
            .args()
            .map_err(|e| EmitError::Encode(EncodeError::Json(serde::ser::Error::custom(e))))?;
        let mut packet = Self::encode(self.parser, self.nsp.clone(), &self.event, ack_id, &args)?;
        packet.args = OnceLock::from(args);
        Ok(packet)
    }

    /// The same event with `offset` added as its last argument (connection state recovery:
    /// the client remembers the last offset it saw, and presents it to recover).
    ///
    /// ```
    /// use ferrio::Parser;
    /// use ferrio::adapter::BroadcastPacket;
    ///
    /// let packet = BroadcastPacket::new(Parser::Json, "/", "news", &("hello",)).unwrap();
    /// let kept = packet.with_offset("42").unwrap();
    /// assert_eq!(kept.args().unwrap().get::<String>(1).unwrap(), "42");
    /// ```
    pub fn with_offset(&self, offset: &str) -> Result<Self, EmitError> {
        let args = self
            .args()
            .map_err(|e| EmitError::Encode(EncodeError::Json(serde::ser::Error::custom(e))))?;
        let with_offset = WithOffset {
            args: &args,
            offset,
        };
        Self::encode(
            self.parser,
            self.nsp.clone(),
            &self.event,
            self.ack_id,
            &with_offset,
        )
    }

    /// The wire form: the Engine.IO messages a client receives (for the JSON parser, a text
    /// message and one binary message per attachment; for msgpack, one binary message).
    pub fn messages(&self) -> Vec<Message> {
        self.encoded.messages()
    }
}

impl fmt::Debug for BroadcastPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastPacket")
            .field("nsp", &self.nsp)
            .field("event", &self.event)
            .field("ack_id", &self.ack_id)
            .finish_non_exhaustive()
    }
}

/// Arguments followed by one more string, serialized as one sequence.
struct WithOffset<'a> {
    args: &'a Payload,
    offset: &'a str,
}

impl Serialize for WithOffset<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.args.len() + 1))?;
        for index in 0..self.args.len() {
            if let Some(arg) = self.args.arg(index) {
                seq.serialize_element(&arg)?;
            }
        }
        seq.serialize_element(self.offset)?;
        seq.end()
    }
}

/// Messages that do not make one valid broadcast packet ([`BroadcastPacket::decode`]).
#[derive(Debug)]
pub struct InvalidPacket {
    reason: &'static str,
    source: Option<DecodeError>,
}

impl InvalidPacket {
    fn new(reason: &'static str) -> Self {
        Self {
            reason,
            source: None,
        }
    }

    fn decode(source: DecodeError) -> Self {
        Self {
            reason: "not a valid Socket.IO packet",
            source: Some(source),
        }
    }
}

impl fmt::Display for InvalidPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid broadcast packet: ")?;
        f.write_str(self.reason)
    }
}

impl std::error::Error for InvalidPacket {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn binary_arguments_cross_the_wire_form() {
        let data = Bytes::from_static(b"\x00\x01");
        let packet = BroadcastPacket::new(Parser::Json, "/chat", "file", &(1, &data)).unwrap();
        let messages = packet.messages();
        assert_eq!(messages.len(), 2);
        let back = BroadcastPacket::decode(Parser::Json, messages).unwrap();
        assert_eq!(back.namespace(), "/chat");
        assert_eq!(back.args().unwrap().get::<Bytes>(1).unwrap(), data);
        let asked = back.with_ack_id(Some(3)).unwrap();
        let again = BroadcastPacket::decode_any(Parser::Json, asked.messages());
        assert!(matches!(again, Some(Incoming::Event { id: Some(3), .. })));
    }

    #[test]
    fn decode_refuses_what_is_not_one_plain_event() {
        let text = |s: &str| Message::Text(s.into());
        for bad in [
            vec![text("0")],
            vec![text("3[1]")],
            vec![text("2[\"e\"]"), text("2[\"e\"]")],
            vec![text("51-[\"e\",{\"_placeholder\":true,\"num\":0}]")],
            vec![text("2[\"connect\"]")],
            vec![text("2[\"e\"")],
            vec![],
        ] {
            assert!(
                BroadcastPacket::decode(Parser::Json, bad.clone()).is_err(),
                "{bad:?}"
            );
        }
    }
}
