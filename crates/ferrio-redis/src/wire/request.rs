//! [`Request`]: what a server asks the others on `<prefix>-request#<nsp>#`.

use ferrio::adapter::{BroadcastOptions, Room};
use rmpv::Value;
use serde::Serialize;

use super::broadcast::{WirePacket, opts_from_value, opts_to_value};
use super::value::{self, Dynamic, get, get_str};
use super::{DecodeError, Limits};

/// The message types of the request and response channels, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RequestType {
    /// 0: the ids of the sockets in some rooms. The Node adapter 8.3 answers it but never
    /// asks it.
    Sockets = 0,
    /// 1: every room of the namespace.
    AllRooms = 1,
    /// 2: make the matching sockets join rooms.
    RemoteJoin = 2,
    /// 3: make the matching sockets leave rooms.
    RemoteLeave = 3,
    /// 4: disconnect the matching sockets.
    RemoteDisconnect = 4,
    /// 5: the matching sockets, with their handshake, rooms and data.
    RemoteFetch = 5,
    /// 6: an event for the other servers' server-side handlers, with or without an ack.
    ServerSideEmit = 6,
    /// 7: a broadcast whose clients' acks come back to the sender.
    Broadcast = 7,
    /// 8: how many clients a type 7 broadcast reached on one server.
    BroadcastClientCount = 8,
    /// 9: one client's ack of a type 7 broadcast.
    BroadcastAck = 9,
}

impl RequestType {
    /// The type numbered `n` on the wire.
    pub fn from_wire(n: u64) -> Option<Self> {
        Some(match n {
            0 => Self::Sockets,
            1 => Self::AllRooms,
            2 => Self::RemoteJoin,
            3 => Self::RemoteLeave,
            4 => Self::RemoteDisconnect,
            5 => Self::RemoteFetch,
            6 => Self::ServerSideEmit,
            7 => Self::Broadcast,
            8 => Self::BroadcastClientCount,
            9 => Self::BroadcastAck,
            _ => return None,
        })
    }
}

/// A request, published on [`Channels::request`](super::Channels::request). JSON on the wire,
/// except [`Request::Broadcast`], which is msgpack.
///
/// `uid` is the asking server's id; `@socket.io/redis-emitter` sends 2, 3 and 4 without one
/// and 6 with `"emitter"`. The `opts` of 2 to 5 carry only rooms and except on the wire: their
/// flags are not sent and decode as the default.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// 0 `{uid, requestId, type, rooms}`: answered with [`Response::Sockets`](super::Response::Sockets).
    Sockets {
        /// The asking server.
        uid: String,
        /// Matches the answers to the request.
        request_id: String,
        /// Sockets in any of these rooms; all of them when empty.
        rooms: Vec<Room>,
    },
    /// 1 `{uid, requestId, type}`: answered with [`Response::AllRooms`](super::Response::AllRooms).
    AllRooms {
        /// The asking server.
        uid: String,
        /// Matches the answers to the request.
        request_id: String,
    },
    /// 2 `{uid, type, opts: {rooms, except}, rooms}`: no answer.
    RemoteJoin {
        /// The asking server, if any.
        uid: Option<String>,
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms they join.
        rooms: Vec<Room>,
    },
    /// 3 `{uid, type, opts: {rooms, except}, rooms}`: no answer.
    RemoteLeave {
        /// The asking server, if any.
        uid: Option<String>,
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms they leave.
        rooms: Vec<Room>,
    },
    /// 4 `{uid, type, opts: {rooms, except}, close}`: no answer.
    RemoteDisconnect {
        /// The asking server, if any.
        uid: Option<String>,
        /// Which sockets.
        opts: BroadcastOptions,
        /// Whether to close the underlying connection too.
        close: bool,
    },
    /// 5 `{uid, requestId, type, opts: {rooms, except}}`: answered with
    /// [`Response::RemoteFetch`](super::Response::RemoteFetch).
    RemoteFetch {
        /// The asking server.
        uid: String,
        /// Matches the answers to the request.
        request_id: String,
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// 6 `{uid, requestId?, type, data: [event, ...args]}`: answered with
    /// [`Response::ServerSideEmit`](super::Response::ServerSideEmit) when `request_id` is set.
    ServerSideEmit {
        /// The asking server, if any.
        uid: Option<String>,
        /// Set when the sender waits for acks.
        request_id: Option<String>,
        /// The event name followed by its arguments.
        data: Vec<serde_json::Value>,
    },
    /// 7, msgpack `{uid, requestId, type, packet, opts}`: answered with
    /// [`Response::BroadcastClientCount`](super::Response::BroadcastClientCount), then one
    /// [`Response::BroadcastAck`](super::Response::BroadcastAck) per client ack.
    Broadcast {
        /// The asking server.
        uid: String,
        /// Matches the answers to the request.
        request_id: String,
        /// What to send.
        packet: WirePacket,
        /// Which sockets, and the ack timeout in `flags.timeout`.
        opts: BroadcastOptions,
    },
}

/// Every JSON request shape, fields in the order the Node adapter writes them.
#[derive(Serialize)]
struct JsonRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    opts: Option<RoomsExcept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a [Room]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [serde_json::Value]>,
}

#[derive(Serialize)]
struct RoomsExcept<'a> {
    rooms: &'a [Room],
    except: &'a [Room],
}

impl<'a> RoomsExcept<'a> {
    fn of(opts: &'a BroadcastOptions) -> Option<Self> {
        Some(Self {
            rooms: &opts.rooms,
            except: &opts.except,
        })
    }
}

impl Request {
    /// The request's type.
    pub fn request_type(&self) -> RequestType {
        match self {
            Self::Sockets { .. } => RequestType::Sockets,
            Self::AllRooms { .. } => RequestType::AllRooms,
            Self::RemoteJoin { .. } => RequestType::RemoteJoin,
            Self::RemoteLeave { .. } => RequestType::RemoteLeave,
            Self::RemoteDisconnect { .. } => RequestType::RemoteDisconnect,
            Self::RemoteFetch { .. } => RequestType::RemoteFetch,
            Self::ServerSideEmit { .. } => RequestType::ServerSideEmit,
            Self::Broadcast { .. } => RequestType::Broadcast,
        }
    }

    /// The bytes to publish: JSON, or msgpack for [`Request::Broadcast`].
    pub fn encode(&self) -> Vec<u8> {
        let empty = JsonRequest {
            uid: None,
            request_id: None,
            kind: self.request_type() as u8,
            opts: None,
            rooms: None,
            close: None,
            data: None,
        };
        let json = match self {
            Self::Sockets {
                uid,
                request_id,
                rooms,
            } => JsonRequest {
                uid: Some(uid),
                request_id: Some(request_id),
                rooms: Some(rooms),
                ..empty
            },
            Self::AllRooms { uid, request_id } => JsonRequest {
                uid: Some(uid),
                request_id: Some(request_id),
                ..empty
            },
            Self::RemoteJoin { uid, opts, rooms } | Self::RemoteLeave { uid, opts, rooms } => {
                JsonRequest {
                    uid: uid.as_deref(),
                    opts: RoomsExcept::of(opts),
                    rooms: Some(rooms),
                    ..empty
                }
            }
            Self::RemoteDisconnect { uid, opts, close } => JsonRequest {
                uid: uid.as_deref(),
                opts: RoomsExcept::of(opts),
                close: Some(*close),
                ..empty
            },
            Self::RemoteFetch {
                uid,
                request_id,
                opts,
            } => JsonRequest {
                uid: Some(uid),
                request_id: Some(request_id),
                opts: RoomsExcept::of(opts),
                ..empty
            },
            Self::ServerSideEmit {
                uid,
                request_id,
                data,
            } => JsonRequest {
                uid: uid.as_deref(),
                request_id: request_id.as_deref(),
                data: Some(data),
                ..empty
            },
            Self::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => {
                return value::encode_msgpack(&Value::Map(vec![
                    (Value::from("uid"), Value::from(uid.as_str())),
                    (Value::from("requestId"), Value::from(request_id.as_str())),
                    (
                        Value::from("type"),
                        Value::from(RequestType::Broadcast as u8),
                    ),
                    (Value::from("packet"), packet.to_value()),
                    (Value::from("opts"), opts_to_value(opts)),
                ]));
            }
        };
        serde_json::to_vec(&json)
            .expect("strings, booleans, integers and JSON values always serialize to JSON")
    }

    /// Decodes a message read on the request channel, JSON or msgpack whatever its type (as
    /// the Node adapter does). Types 8 and 9 are responses and are refused here.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let map = match value::decode_dynamic(bytes, limits)? {
            Dynamic::Json(json) => value::json_to_msgpack(json),
            Dynamic::Msgpack(map) => map,
        };
        if map.as_map().is_none() {
            return Err(DecodeError::Shape("request is not a map"));
        }
        let kind = get(&map, "type")
            .and_then(Value::as_u64)
            .ok_or(DecodeError::Shape("type"))?;
        let kind = RequestType::from_wire(kind).ok_or(DecodeError::UnknownType(kind))?;
        let uid = || get_str(&map, "uid");
        let optional_uid = || optional_str(&map, "uid");
        let request_id = || get_str(&map, "requestId");
        let rooms = || value::rooms(get(&map, "rooms"), "rooms");
        let opts = || match get(&map, "opts") {
            Some(opts) => opts_from_value(opts),
            None => Err(DecodeError::Shape("opts")),
        };
        Ok(match kind {
            RequestType::Sockets => Self::Sockets {
                uid: uid()?,
                request_id: request_id()?,
                rooms: rooms()?,
            },
            RequestType::AllRooms => Self::AllRooms {
                uid: uid()?,
                request_id: request_id()?,
            },
            RequestType::RemoteJoin => Self::RemoteJoin {
                uid: optional_uid()?,
                opts: opts()?,
                rooms: rooms()?,
            },
            RequestType::RemoteLeave => Self::RemoteLeave {
                uid: optional_uid()?,
                opts: opts()?,
                rooms: rooms()?,
            },
            RequestType::RemoteDisconnect => Self::RemoteDisconnect {
                uid: optional_uid()?,
                opts: opts()?,
                close: match get(&map, "close") {
                    None | Some(Value::Nil) => false,
                    Some(Value::Boolean(close)) => *close,
                    Some(_) => return Err(DecodeError::Shape("close")),
                },
            },
            RequestType::RemoteFetch => Self::RemoteFetch {
                uid: uid()?,
                request_id: request_id()?,
                opts: opts()?,
            },
            RequestType::ServerSideEmit => Self::ServerSideEmit {
                uid: optional_uid()?,
                request_id: optional_str(&map, "requestId")?,
                data: match get(&map, "data") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(value::msgpack_to_json)
                        .collect::<Result<_, _>>()?,
                    _ => return Err(DecodeError::Shape("data")),
                },
            },
            RequestType::Broadcast => Self::Broadcast {
                uid: uid()?,
                request_id: request_id()?,
                packet: WirePacket::from_value(
                    get(&map, "packet").ok_or(DecodeError::Shape("packet"))?,
                )?,
                opts: opts()?,
            },
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => {
                return Err(DecodeError::Shape("a response on the request channel"));
            }
        })
    }
}

/// An optional string field; present but not a string is an error.
pub(super) fn optional_str(map: &Value, key: &'static str) -> Result<Option<String>, DecodeError> {
    match get(map, key) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or(DecodeError::Shape(key)),
    }
}
