//! [`Response`]: what servers answer on `<prefix>-response#<nsp>#[<uid>#]`.

use ferrio::adapter::{RemoteSocketData, Room};
use rmpv::Value;
use serde::Serialize;

use super::request::RequestType;
use super::value::{self, Dynamic, get, get_str};
use super::{DecodeError, Limits};

/// An answer to a [`Request`](super::Request). JSON on the wire, except
/// [`Response::BroadcastAck`], which is msgpack.
///
/// Answers to 0, 1 and 5 carry no `type`: only the request id tells what they answer, so
/// [`Response::decode`] asks the caller. Answers to 6 always go to the shared response
/// channel; the others go to the asker's own channel when the answering Node server has
/// `publishOnSpecificResponseChannel` set, to the shared one otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// To 0: `{requestId, sockets: [id]}`.
    Sockets {
        /// The request's id.
        request_id: String,
        /// Ids of the matching sockets on the answering server.
        sockets: Vec<String>,
    },
    /// To 1: `{requestId, rooms}`.
    AllRooms {
        /// The request's id.
        request_id: String,
        /// Every room on the answering server.
        rooms: Vec<Room>,
    },
    /// To 5: `{requestId, sockets: [{id, handshake, rooms, data}]}`.
    RemoteFetch {
        /// The request's id.
        request_id: String,
        /// The matching sockets on the answering server.
        sockets: Vec<RemoteSocketData>,
    },
    /// To 6 with an ack: `{type: 6, requestId, data}`, `data` the handler's first ack argument.
    ServerSideEmit {
        /// The request's id.
        request_id: String,
        /// The ack argument.
        data: serde_json::Value,
    },
    /// To 7: `{type: 8, requestId, clientCount}`.
    BroadcastClientCount {
        /// The request's id.
        request_id: String,
        /// How many clients the answering server sent the broadcast to.
        client_count: u64,
    },
    /// To 7, once per client ack, msgpack `{type: 9, requestId, packet}`, `packet` the
    /// client's first ack argument.
    BroadcastAck {
        /// The request's id.
        request_id: String,
        /// The ack argument.
        packet: Value,
    },
}

#[derive(Serialize)]
struct JsonResponse<'a, T: Serialize> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<u8>,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
enum Body<'a> {
    #[serde(rename = "sockets")]
    Ids(&'a [String]),
    #[serde(rename = "rooms")]
    Rooms(&'a [Room]),
    #[serde(rename = "sockets")]
    Sockets(&'a [RemoteSocketData]),
    #[serde(rename = "data")]
    Data(&'a serde_json::Value),
    #[serde(rename = "clientCount")]
    ClientCount(u64),
}

impl Response {
    /// The type of the request this answers.
    pub fn request_type(&self) -> RequestType {
        match self {
            Self::Sockets { .. } => RequestType::Sockets,
            Self::AllRooms { .. } => RequestType::AllRooms,
            Self::RemoteFetch { .. } => RequestType::RemoteFetch,
            Self::ServerSideEmit { .. } => RequestType::ServerSideEmit,
            Self::BroadcastClientCount { .. } => RequestType::BroadcastClientCount,
            Self::BroadcastAck { .. } => RequestType::BroadcastAck,
        }
    }

    /// The request id this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Self::Sockets { request_id, .. }
            | Self::AllRooms { request_id, .. }
            | Self::RemoteFetch { request_id, .. }
            | Self::ServerSideEmit { request_id, .. }
            | Self::BroadcastClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. } => request_id,
        }
    }

    /// The bytes to publish: JSON, or msgpack for [`Response::BroadcastAck`].
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body) = match self {
            Self::Sockets { sockets, .. } => (None, Body::Ids(sockets)),
            Self::AllRooms { rooms, .. } => (None, Body::Rooms(rooms)),
            Self::RemoteFetch { sockets, .. } => (None, Body::Sockets(sockets)),
            Self::ServerSideEmit { data, .. } => (Some(6), Body::Data(data)),
            Self::BroadcastClientCount { client_count, .. } => {
                (Some(8), Body::ClientCount(*client_count))
            }
            Self::BroadcastAck { request_id, packet } => {
                return value::encode_msgpack(&Value::Map(vec![
                    (
                        Value::from("type"),
                        Value::from(RequestType::BroadcastAck as u8),
                    ),
                    (Value::from("requestId"), Value::from(request_id.as_str())),
                    (Value::from("packet"), packet.clone()),
                ]));
            }
        };
        let response = JsonResponse {
            kind,
            request_id: self.request_id(),
            body,
        };
        serde_json::to_vec(&response)
            .expect("strings, integers, socket data and JSON values always serialize to JSON")
    }

    /// Decodes a message read on a response channel, JSON or msgpack.
    ///
    /// `pending` maps a request id to the type of the request this server sent with it; it is
    /// asked only for answers without a `type` (to 0, 1 and 5), which are refused with
    /// [`DecodeError::UnknownRequest`] when it returns `None`.
    pub fn decode(
        bytes: &[u8],
        limits: &Limits,
        pending: impl FnOnce(&str) -> Option<RequestType>,
    ) -> Result<Self, DecodeError> {
        let map = match value::decode_dynamic(bytes, limits)? {
            Dynamic::Json(json) => value::json_to_msgpack(json),
            Dynamic::Msgpack(map) => map,
        };
        if map.as_map().is_none() {
            return Err(DecodeError::Shape("response is not a map"));
        }
        let request_id = get_str(&map, "requestId")?;
        let kind = match get(&map, "type") {
            None | Some(Value::Nil) => pending(&request_id).ok_or(DecodeError::UnknownRequest)?,
            Some(kind) => {
                let kind = kind.as_u64().ok_or(DecodeError::Shape("type"))?;
                RequestType::from_wire(kind).ok_or(DecodeError::UnknownType(kind))?
            }
        };
        let array = |key: &'static str| match get(&map, key) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(DecodeError::Shape(key)),
        };
        Ok(match kind {
            RequestType::Sockets => Self::Sockets {
                sockets: array("sockets")?
                    .iter()
                    .map(|id| {
                        id.as_str()
                            .map(str::to_owned)
                            .ok_or(DecodeError::Shape("sockets"))
                    })
                    .collect::<Result<_, _>>()?,
                request_id,
            },
            RequestType::AllRooms => Self::AllRooms {
                rooms: value::rooms(get(&map, "rooms"), "rooms")?,
                request_id,
            },
            RequestType::RemoteFetch => Self::RemoteFetch {
                sockets: array("sockets")?
                    .iter()
                    .map(|socket| {
                        serde_json::from_value(value::msgpack_to_json(socket)?)
                            .map_err(|_| DecodeError::Shape("sockets: not socket data"))
                    })
                    .collect::<Result<_, _>>()?,
                request_id,
            },
            RequestType::ServerSideEmit => Self::ServerSideEmit {
                data: match get(&map, "data") {
                    Some(data) => value::msgpack_to_json(data)?,
                    // `JSON.stringify` drops an `undefined` ack argument.
                    None => serde_json::Value::Null,
                },
                request_id,
            },
            RequestType::BroadcastClientCount => Self::BroadcastClientCount {
                client_count: get(&map, "clientCount")
                    .and_then(Value::as_u64)
                    .ok_or(DecodeError::Shape("clientCount"))?,
                request_id,
            },
            RequestType::BroadcastAck => Self::BroadcastAck {
                packet: get(&map, "packet").cloned().unwrap_or(Value::Nil),
                request_id,
            },
            RequestType::RemoteJoin
            | RequestType::RemoteLeave
            | RequestType::RemoteDisconnect
            | RequestType::Broadcast => {
                return Err(DecodeError::Shape("no response of this type"));
            }
        })
    }
}
