//! [`BroadcastMessage`]: a broadcast, msgpack `[uid, packet, opts]`.

use ferrio::adapter::{BroadcastFlags, BroadcastOptions, Room};
use rmpv::Value;

use super::value::{self, get};
use super::{DecodeError, Limits};

/// The Socket.IO packet type of an event, the only type the adapter broadcasts.
const EVENT: u8 = 2;

/// A broadcast as one server publishes it for the others: msgpack `[uid, packet, opts]` on
/// [`Channels::for_rooms`](super::Channels::for_rooms).
///
/// The receiver drops messages carrying its own `uid`, and those of namespaces it does not
/// serve. `@socket.io/redis-emitter` publishes the same message with the uid `"emitter"`.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastMessage {
    /// The publishing server's random id.
    pub uid: String,
    /// What to send.
    pub packet: WirePacket,
    /// Which sockets, and how. On the wire as `{rooms, except, flags}`; `flags.local`
    /// broadcasts are never published.
    pub opts: BroadcastOptions,
}

/// A Socket.IO packet as the adapter carries it: `{type, data: [event, ...args], nsp}`, with
/// binary arguments inline as msgpack bin (no placeholders).
#[derive(Debug, Clone, PartialEq)]
pub struct WirePacket {
    /// The Socket.IO packet type, 2 (`EVENT`) for everything the adapter publishes.
    pub packet_type: u8,
    /// The event name followed by its arguments.
    pub data: Vec<Value>,
    /// The namespace; a packet without one is for `/`.
    pub nsp: String,
}

impl WirePacket {
    /// An `EVENT` packet of `event` with `args` for namespace `nsp`.
    pub fn event(nsp: &str, event: &str, args: Vec<Value>) -> Self {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        Self {
            packet_type: EVENT,
            data,
            nsp: nsp.to_owned(),
        }
    }

    /// The event name, when the first element of `data` is a string.
    pub fn event_name(&self) -> Option<&str> {
        self.data.first().and_then(Value::as_str)
    }

    pub(super) fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::from("type"), Value::from(self.packet_type)),
            (Value::from("data"), Value::Array(self.data.clone())),
            (Value::from("nsp"), Value::from(self.nsp.as_str())),
        ])
    }

    pub(super) fn from_value(packet: &Value) -> Result<Self, DecodeError> {
        if packet.as_map().is_none() {
            return Err(DecodeError::Shape("packet is not a map"));
        }
        let packet_type = get(packet, "type")
            .and_then(Value::as_u64)
            .and_then(|t| u8::try_from(t).ok())
            .ok_or(DecodeError::Shape("packet.type"))?;
        let data = match get(packet, "data") {
            Some(Value::Array(data)) => data.clone(),
            _ => return Err(DecodeError::Shape("packet.data")),
        };
        let nsp = match get(packet, "nsp") {
            None | Some(Value::Nil) => "/".to_owned(),
            Some(nsp) => nsp
                .as_str()
                .ok_or(DecodeError::Shape("packet.nsp"))?
                .to_owned(),
        };
        Ok(Self {
            packet_type,
            data,
            nsp,
        })
    }
}

impl BroadcastMessage {
    /// The msgpack bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        value::encode_msgpack(&Value::Array(vec![
            Value::from(self.uid.as_str()),
            self.packet.to_value(),
            opts_to_value(&self.opts),
        ]))
    }

    /// Decodes a message read on the broadcast or a room channel.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let message = value::read_msgpack(bytes, limits)?;
        let [uid, packet, opts] = message.as_array().map(Vec::as_slice).unwrap_or_default() else {
            return Err(DecodeError::Shape("broadcast is not [uid, packet, opts]"));
        };
        let uid = uid.as_str().ok_or(DecodeError::Shape("uid"))?.to_owned();
        Ok(Self {
            uid,
            packet: WirePacket::from_value(packet)?,
            opts: opts_from_value(opts)?,
        })
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(
        rooms
            .iter()
            .map(|room| Value::from(room.as_ref()))
            .collect(),
    )
}

/// `{rooms, except, flags}`, flags holding only what is set, as the Node adapter writes it.
pub(super) fn opts_to_value(opts: &BroadcastOptions) -> Value {
    let mut flags = Vec::new();
    if opts.flags.local {
        flags.push((Value::from("local"), Value::Boolean(true)));
    }
    if opts.flags.volatile {
        flags.push((Value::from("volatile"), Value::Boolean(true)));
    }
    if let Some(timeout) = opts.flags.timeout {
        flags.push((Value::from("timeout"), Value::from(timeout)));
    }
    Value::Map(vec![
        (Value::from("rooms"), rooms_value(&opts.rooms)),
        (Value::from("except"), rooms_value(&opts.except)),
        (Value::from("flags"), Value::Map(flags)),
    ])
}

/// Reads `{rooms, except, flags}`; unknown flags (`compress`, `binary`...) are ignored.
pub(super) fn opts_from_value(opts: &Value) -> Result<BroadcastOptions, DecodeError> {
    if opts.as_map().is_none() {
        return Err(DecodeError::Shape("opts is not a map"));
    }
    let flags = match get(opts, "flags") {
        None | Some(Value::Nil) => BroadcastFlags::default(),
        Some(flags @ Value::Map(_)) => BroadcastFlags {
            local: flag(flags, "local")?,
            volatile: flag(flags, "volatile")?,
            timeout: match get(flags, "timeout") {
                None | Some(Value::Nil) => None,
                Some(Value::Integer(n)) => {
                    Some(n.as_u64().ok_or(DecodeError::Shape("opts.flags.timeout"))?)
                }
                // JavaScript numbers may be fractional; whole milliseconds are enough.
                Some(Value::F64(f)) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
                Some(_) => return Err(DecodeError::Shape("opts.flags.timeout")),
            },
        },
        Some(_) => return Err(DecodeError::Shape("opts.flags")),
    };
    Ok(BroadcastOptions {
        rooms: value::rooms(get(opts, "rooms"), "opts.rooms")?,
        except: value::rooms(get(opts, "except"), "opts.except")?,
        flags,
    })
}

fn flag(flags: &Value, name: &'static str) -> Result<bool, DecodeError> {
    match get(flags, name) {
        None | Some(Value::Nil) => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(DecodeError::Shape(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> BroadcastMessage {
        let opts = BroadcastOptions {
            rooms: vec!["a".into(), "b".into()],
            except: vec!["c".into()],
            flags: BroadcastFlags {
                volatile: true,
                timeout: Some(1500),
                ..Default::default()
            },
        };
        BroadcastMessage {
            uid: "xyz".into(),
            packet: WirePacket::event(
                "/chat",
                "ev",
                vec![
                    Value::Binary(vec![0, 1, 255]),
                    Value::from(-3),
                    Value::F64(0.5),
                ],
            ),
            opts,
        }
    }

    #[test]
    fn round_trips() {
        let m = message();
        assert_eq!(
            BroadcastMessage::decode(&m.encode(), &Limits::default()).unwrap(),
            m
        );
        assert_eq!(m.packet.event_name(), Some("ev"));
    }

    #[test]
    fn missing_nsp_means_root_and_numeric_rooms_are_stringified() {
        let v = Value::Array(vec![
            Value::from("u"),
            Value::Map(vec![
                (Value::from("type"), Value::from(2)),
                (Value::from("data"), Value::Array(vec![Value::from("e")])),
            ]),
            Value::Map(vec![(
                Value::from("rooms"),
                Value::Array(vec![Value::from(42)]),
            )]),
        ]);
        let m = BroadcastMessage::decode(&value::encode_msgpack(&v), &Limits::default()).unwrap();
        assert_eq!(m.packet.nsp, "/");
        assert_eq!(m.opts.rooms, vec![Room::from("42")]);
    }

    #[test]
    fn refuses_wrong_shapes() {
        for v in [
            Value::Nil,
            Value::Array(vec![Value::from("u"), Value::Nil]),
            Value::Array(vec![Value::from(1), Value::Map(vec![]), Value::Map(vec![])]),
            Value::Array(vec![
                Value::from("u"),
                Value::Map(vec![]),
                Value::Map(vec![]),
            ]),
        ] {
            assert!(
                BroadcastMessage::decode(&value::encode_msgpack(&v), &Limits::default()).is_err()
            );
        }
    }
}
