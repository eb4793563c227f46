//! The wire format of `@socket.io/redis-streams-adapter` 0.3 (over `socket.io-adapter`'s
//! cluster messages): what goes on the stream, what goes over pub/sub, and the sessions
//! kept for connection state recovery.
//!
//! A [`ClusterMessage`] is `{uid, nsp, type, data}`. On the stream it is one entry with the
//! fields `uid`, `nsp`, `type` (decimal) and, when it has data, `data`: JSON, or base64 of
//! msgpack when the data holds binary (a reader takes a leading `{` as JSON). Over pub/sub
//! it is the msgpack of the whole map. A [`SessionRecord`] is base64 of the msgpack map
//! `{sid, pid, rooms, data}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferrio::adapter::{BroadcastOptions, RemoteSocketData, Room};
use rmpv::Value;

use super::broadcast::{opts_from_value, opts_to_value};
use super::value::{self, get, get_str};
use super::{DecodeError, Limits, WirePacket};

/// The cluster message types of `socket.io-adapter` 2.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum MessageType {
    InitialHeartbeat = 1,
    Heartbeat = 2,
    Broadcast = 3,
    SocketsJoin = 4,
    SocketsLeave = 5,
    DisconnectSockets = 6,
    FetchSockets = 7,
    FetchSocketsResponse = 8,
    ServerSideEmit = 9,
    ServerSideEmitResponse = 10,
    BroadcastClientCount = 11,
    BroadcastAck = 12,
    AdapterClose = 13,
}

impl MessageType {
    /// The type of a wire number.
    pub fn from_wire(n: u64) -> Option<Self> {
        use MessageType as T;
        Some(match n {
            1 => T::InitialHeartbeat,
            2 => T::Heartbeat,
            3 => T::Broadcast,
            4 => T::SocketsJoin,
            5 => T::SocketsLeave,
            6 => T::DisconnectSockets,
            7 => T::FetchSockets,
            8 => T::FetchSocketsResponse,
            9 => T::ServerSideEmit,
            10 => T::ServerSideEmitResponse,
            11 => T::BroadcastClientCount,
            12 => T::BroadcastAck,
            13 => T::AdapterClose,
            _ => return None,
        })
    }
}

/// What a cluster message carries, by type.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum ClusterData {
    /// No data: heartbeats and `ADAPTER_CLOSE`.
    Empty(MessageType),
    /// 3: `{opts, packet, requestId?}`; a request id asks for acks.
    Broadcast {
        opts: BroadcastOptions,
        packet: WirePacket,
        request_id: Option<String>,
    },
    /// 4: `{opts, rooms}`.
    SocketsJoin {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    /// 5: `{opts, rooms}`.
    SocketsLeave {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    /// 6: `{opts, close?}`.
    DisconnectSockets { opts: BroadcastOptions, close: bool },
    /// 7: `{opts, requestId}`.
    FetchSockets {
        opts: BroadcastOptions,
        request_id: String,
    },
    /// 8: `{requestId, sockets}`.
    FetchSocketsResponse {
        request_id: String,
        sockets: Vec<RemoteSocketData>,
    },
    /// 9: `{packet: [event, ...args], requestId?}`.
    ServerSideEmit {
        packet: Vec<Value>,
        request_id: Option<String>,
    },
    /// 10: `{requestId, packet}` (one answer argument).
    ServerSideEmitResponse { request_id: String, packet: Value },
    /// 11: `{requestId, clientCount}`.
    BroadcastClientCount {
        request_id: String,
        client_count: u64,
    },
    /// 12: `{requestId, packet}` (one answer argument).
    BroadcastAck { request_id: String, packet: Value },
}

/// One message between the servers of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMessage {
    /// The sending server's id.
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// The type and its data.
    pub data: ClusterData,
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn has_binary(value: &Value) -> bool {
    match value {
        Value::Binary(_) | Value::Ext(..) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(k, v)| has_binary(k) || has_binary(v)),
        _ => false,
    }
}

impl ClusterData {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        use MessageType as T;
        match self {
            Self::Empty(t) => *t,
            Self::Broadcast { .. } => T::Broadcast,
            Self::SocketsJoin { .. } => T::SocketsJoin,
            Self::SocketsLeave { .. } => T::SocketsLeave,
            Self::DisconnectSockets { .. } => T::DisconnectSockets,
            Self::FetchSockets { .. } => T::FetchSockets,
            Self::FetchSocketsResponse { .. } => T::FetchSocketsResponse,
            Self::ServerSideEmit { .. } => T::ServerSideEmit,
            Self::ServerSideEmitResponse { .. } => T::ServerSideEmitResponse,
            Self::BroadcastClientCount { .. } => T::BroadcastClientCount,
            Self::BroadcastAck { .. } => T::BroadcastAck,
        }
    }

    /// Whether the reference sends it over pub/sub rather than on the stream: broadcasts
    /// with acks, fetching sockets, server-side events (and every answer, on the asking
    /// server's own channel).
    pub fn is_ephemeral(&self) -> bool {
        !matches!(
            self,
            Self::Broadcast {
                request_id: None,
                ..
            } | Self::SocketsJoin { .. }
                | Self::SocketsLeave { .. }
                | Self::DisconnectSockets { .. }
                | Self::Empty(_)
        )
    }

    fn to_value(&self) -> Option<Value> {
        let rid = |id: &str| Value::from(id);
        Some(match self {
            Self::Empty(_) => return None,
            Self::Broadcast {
                opts,
                packet,
                request_id,
            } => {
                let mut entries = vec![("packet", packet.to_value())];
                if let Some(id) = request_id {
                    entries.push(("requestId", rid(id)));
                }
                entries.push(("opts", opts_to_value(opts)));
                map(entries)
            }
            Self::SocketsJoin { opts, rooms } | Self::SocketsLeave { opts, rooms } => map(vec![
                ("opts", opts_to_value(opts)),
                ("rooms", rooms_value(rooms)),
            ]),
            Self::DisconnectSockets { opts, close } => map(vec![
                ("opts", opts_to_value(opts)),
                ("close", Value::Boolean(*close)),
            ]),
            Self::FetchSockets { opts, request_id } => map(vec![
                ("opts", opts_to_value(opts)),
                ("requestId", rid(request_id)),
            ]),
            Self::FetchSocketsResponse {
                request_id,
                sockets,
            } => {
                let sockets = sockets
                    .iter()
                    .filter_map(|s| serde_json::to_value(s).ok())
                    .map(value::json_to_msgpack)
                    .collect();
                map(vec![
                    ("requestId", rid(request_id)),
                    ("sockets", Value::Array(sockets)),
                ])
            }
            Self::ServerSideEmit { packet, request_id } => {
                let mut entries = Vec::new();
                if let Some(id) = request_id {
                    entries.push(("requestId", rid(id)));
                }
                entries.push(("packet", Value::Array(packet.clone())));
                map(entries)
            }
            Self::ServerSideEmitResponse { request_id, packet }
            | Self::BroadcastAck { request_id, packet } => map(vec![
                ("requestId", rid(request_id)),
                ("packet", packet.clone()),
            ]),
            Self::BroadcastClientCount {
                request_id,
                client_count,
            } => map(vec![
                ("requestId", rid(request_id)),
                ("clientCount", Value::from(*client_count)),
            ]),
        })
    }

    fn from_value(kind: MessageType, data: Option<&Value>) -> Result<Self, DecodeError> {
        use MessageType as T;
        let empty = Value::Map(Vec::new());
        let data = match data {
            None | Some(Value::Nil) => {
                if matches!(kind, T::InitialHeartbeat | T::Heartbeat | T::AdapterClose) {
                    return Ok(Self::Empty(kind));
                }
                return Err(DecodeError::Shape("data"));
            }
            Some(data) if data.as_map().is_some() => data,
            Some(_) => {
                if matches!(kind, T::InitialHeartbeat | T::Heartbeat | T::AdapterClose) {
                    &empty
                } else {
                    return Err(DecodeError::Shape("data is not a map"));
                }
            }
        };
        let opts = || match get(data, "opts") {
            Some(opts) => opts_from_value(opts),
            None => Err(DecodeError::Shape("opts")),
        };
        let optional_id = || match get(data, "requestId") {
            None | Some(Value::Nil) => Ok(None),
            Some(Value::String(s)) => s
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or(DecodeError::Shape("requestId")),
            // The reference's ids are strings; a number is taken as its decimal form.
            Some(Value::Integer(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(DecodeError::Shape("requestId")),
        };
        let request_id = || optional_id()?.ok_or(DecodeError::Shape("requestId"));
        let answer = || get(data, "packet").cloned().unwrap_or(Value::Nil);
        Ok(match kind {
            T::InitialHeartbeat | T::Heartbeat | T::AdapterClose => Self::Empty(kind),
            T::Broadcast => Self::Broadcast {
                opts: opts()?,
                packet: WirePacket::from_value(get(data, "packet").unwrap_or(&Value::Nil))?,
                request_id: optional_id()?,
            },
            T::SocketsJoin => Self::SocketsJoin {
                opts: opts()?,
                rooms: value::rooms(get(data, "rooms"), "rooms")?,
            },
            T::SocketsLeave => Self::SocketsLeave {
                opts: opts()?,
                rooms: value::rooms(get(data, "rooms"), "rooms")?,
            },
            T::DisconnectSockets => Self::DisconnectSockets {
                opts: opts()?,
                close: match get(data, "close") {
                    None | Some(Value::Nil) => false,
                    Some(Value::Boolean(b)) => *b,
                    Some(_) => return Err(DecodeError::Shape("close")),
                },
            },
            T::FetchSockets => Self::FetchSockets {
                opts: opts()?,
                request_id: request_id()?,
            },
            T::FetchSocketsResponse => Self::FetchSocketsResponse {
                request_id: request_id()?,
                sockets: match get(data, "sockets") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|socket| {
                            serde_json::from_value(value::msgpack_to_json(socket)?)
                                .map_err(|_| DecodeError::Shape("sockets: not socket data"))
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(DecodeError::Shape("sockets")),
                },
            },
            T::ServerSideEmit => Self::ServerSideEmit {
                packet: match get(data, "packet") {
                    Some(Value::Array(items)) if !items.is_empty() => items.clone(),
                    _ => return Err(DecodeError::Shape("packet")),
                },
                request_id: optional_id()?,
            },
            T::ServerSideEmitResponse => Self::ServerSideEmitResponse {
                request_id: request_id()?,
                packet: answer(),
            },
            T::BroadcastClientCount => Self::BroadcastClientCount {
                request_id: request_id()?,
                client_count: get(data, "clientCount")
                    .and_then(|n| match n {
                        Value::F64(f) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
                        n => n.as_u64(),
                    })
                    .ok_or(DecodeError::Shape("clientCount"))?,
            },
            T::BroadcastAck => Self::BroadcastAck {
                request_id: request_id()?,
                packet: answer(),
            },
        })
    }
}

impl ClusterMessage {
    /// The message as the msgpack map the reference publishes over pub/sub.
    pub fn encode_msgpack(&self) -> Vec<u8> {
        let mut entries = vec![
            ("uid", Value::from(self.uid.as_str())),
            ("nsp", Value::from(self.nsp.as_str())),
            ("type", Value::from(self.data.message_type() as u8)),
        ];
        if let Some(data) = self.data.to_value() {
            entries.push(("data", data));
        }
        value::encode_msgpack(&map(entries))
    }

    /// Decodes a message read over pub/sub.
    pub fn decode_msgpack(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let message = value::read_msgpack(bytes, limits)?;
        if message.as_map().is_none() {
            return Err(DecodeError::Shape("message is not a map"));
        }
        let kind = get(&message, "type")
            .and_then(Value::as_u64)
            .ok_or(DecodeError::Shape("type"))?;
        let kind = MessageType::from_wire(kind).ok_or(DecodeError::UnknownType(kind))?;
        Ok(Self {
            uid: get_str(&message, "uid")?,
            nsp: get_str(&message, "nsp")?,
            data: ClusterData::from_value(kind, get(&message, "data"))?,
        })
    }

    /// The fields of its stream entry, in the reference's order.
    pub fn stream_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("uid", self.uid.clone()),
            ("nsp", self.nsp.clone()),
            ("type", (self.data.message_type() as u8).to_string()),
        ];
        if let Some(data) = self.data.to_value() {
            let text = if has_binary(&data) {
                None
            } else {
                value::msgpack_to_json(&data)
                    .ok()
                    .and_then(|json| serde_json::to_string(&json).ok())
            };
            let text = text.unwrap_or_else(|| STANDARD.encode(value::encode_msgpack(&data)));
            fields.push(("data", text));
        }
        fields
    }

    /// Decodes a stream entry's fields (name, value pairs, as Redis returns them). Unknown
    /// fields are ignored; the last of a repeated field wins.
    pub fn from_stream_fields<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        fields: &[(K, V)],
        limits: &Limits,
    ) -> Result<Self, DecodeError> {
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k.as_ref() == name.as_bytes())
                .map(|(_, v)| v.as_ref())
        };
        let text = |name: &'static str| {
            field(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .ok_or(DecodeError::Shape(name))
        };
        let total: usize = fields
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        if total > limits.message_size() {
            return Err(DecodeError::TooLarge {
                size: total,
                max: limits.message_size(),
            });
        }
        let uid = text("uid")?.to_owned();
        let nsp = text("nsp")?.to_owned();
        let kind_text = text("type")?;
        if kind_text.is_empty()
            || kind_text.len() > 3
            || !kind_text.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DecodeError::Shape("type"));
        }
        let kind: u64 = kind_text.parse().map_err(|_| DecodeError::Shape("type"))?;
        let kind = MessageType::from_wire(kind).ok_or(DecodeError::UnknownType(kind))?;
        let data = match field("data") {
            None | Some(b"") => None,
            Some(bytes) if bytes.first() == Some(&b'{') => {
                Some(value::json_to_msgpack(value::read_json(bytes, limits)?))
            }
            Some(bytes) => {
                let raw = STANDARD
                    .decode(bytes)
                    .map_err(|_| DecodeError::Shape("data is neither JSON nor base64"))?;
                Some(value::read_msgpack(&raw, limits)?)
            }
        };
        Ok(Self {
            uid,
            nsp,
            data: ClusterData::from_value(kind, data.as_ref())?,
        })
    }
}

/// A session kept in Redis for connection state recovery, under `<prefix><pid>`: base64 of
/// the msgpack map `{sid, pid, rooms, data}`. `since` is ours (the reference ignores it):
/// the last stream entry before the socket started, to recover a client that saw no event.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The socket's id.
    pub sid: String,
    /// Its private id.
    pub pid: String,
    /// Its rooms, its own included.
    pub rooms: Vec<Room>,
    /// Its shared data.
    pub data: serde_json::Value,
    /// The last stream entry id before the socket started (or resumed).
    pub since: Option<String>,
}

impl SessionRecord {
    /// The value to store.
    pub fn encode(&self) -> String {
        let mut entries = vec![
            ("sid", Value::from(self.sid.as_str())),
            ("pid", Value::from(self.pid.as_str())),
            ("rooms", rooms_value(&self.rooms)),
            ("data", value::json_to_msgpack(self.data.clone())),
        ];
        if let Some(since) = &self.since {
            entries.push(("since", Value::from(since.as_str())));
        }
        STANDARD.encode(value::encode_msgpack(&map(entries)))
    }

    /// Decodes a stored value.
    pub fn decode(stored: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        if stored.len() > limits.message_size().saturating_mul(4) / 3 + 4 {
            return Err(DecodeError::TooLarge {
                size: stored.len(),
                max: limits.message_size(),
            });
        }
        let raw = STANDARD
            .decode(stored)
            .map_err(|_| DecodeError::Shape("session is not base64"))?;
        let map = value::read_msgpack(&raw, limits)?;
        if map.as_map().is_none() {
            return Err(DecodeError::Shape("session is not a map"));
        }
        let data = match get(&map, "data") {
            None => serde_json::Value::Null,
            Some(data) => value::msgpack_to_json(data)?,
        };
        let since = match get(&map, "since") {
            Some(Value::String(s)) => s.as_str().map(str::to_owned),
            _ => None,
        };
        Ok(Self {
            sid: get_str(&map, "sid")?,
            pid: get_str(&map, "pid")?,
            rooms: value::rooms(get(&map, "rooms"), "rooms")?,
            data,
            since,
        })
    }
}

/// A stream entry id `<ms>-<seq>`, as Redis writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// The id before every entry.
    pub const ZERO: Self = Self { ms: 0, seq: 0 };

    /// Parses `<ms>-<seq>` (digits only, as a client's offset must be).
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id after this one (for exclusive ranges on any Redis version).
    pub fn next(self) -> Option<Self> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(Self { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| Self { ms, seq: 0 }),
        }
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Whether a broadcast sent with `opts` reached a socket in `rooms` (the reference's rule
/// for replaying missed packets).
pub fn reaches(opts: &BroadcastOptions, rooms: &[Room]) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    included && !rooms.iter().any(|r| opts.except.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: ClusterData) -> ClusterMessage {
        ClusterMessage {
            uid: "abc".into(),
            nsp: "/".into(),
            data,
        }
    }

    fn opts() -> BroadcastOptions {
        BroadcastOptions {
            rooms: vec!["r".into()],
            except: vec!["x".into()],
            ..Default::default()
        }
    }

    fn samples() -> Vec<ClusterMessage> {
        let packet = WirePacket::event("/", "e", vec![Value::from(1), Value::Binary(vec![1, 2])]);
        vec![
            message(ClusterData::Empty(MessageType::Heartbeat)),
            message(ClusterData::Broadcast {
                opts: opts(),
                packet: packet.clone(),
                request_id: None,
            }),
            message(ClusterData::Broadcast {
                opts: opts(),
                packet: WirePacket::event("/", "e", vec![Value::from("x")]),
                request_id: Some("q".into()),
            }),
            message(ClusterData::SocketsJoin {
                opts: opts(),
                rooms: vec!["a".into()],
            }),
            message(ClusterData::SocketsLeave {
                opts: opts(),
                rooms: vec!["a".into()],
            }),
            message(ClusterData::DisconnectSockets {
                opts: opts(),
                close: true,
            }),
            message(ClusterData::FetchSockets {
                opts: opts(),
                request_id: "q".into(),
            }),
            message(ClusterData::ServerSideEmit {
                packet: vec![Value::from("hi"), Value::from(2)],
                request_id: Some("q".into()),
            }),
            message(ClusterData::ServerSideEmitResponse {
                request_id: "q".into(),
                packet: Value::from("ok"),
            }),
            message(ClusterData::BroadcastClientCount {
                request_id: "q".into(),
                client_count: 3,
            }),
            message(ClusterData::BroadcastAck {
                request_id: "q".into(),
                packet: Value::Binary(vec![9]),
            }),
        ]
    }

    #[test]
    fn messages_round_trip_over_pubsub_and_the_stream() {
        let limits = Limits::default();
        for m in samples() {
            assert_eq!(
                ClusterMessage::decode_msgpack(&m.encode_msgpack(), &limits).unwrap(),
                m
            );
            let fields = m.stream_fields();
            assert_eq!(
                ClusterMessage::from_stream_fields(&fields, &limits).unwrap(),
                m
            );
        }
    }

    #[test]
    fn stream_data_is_json_unless_it_holds_binary() {
        let plain = message(ClusterData::SocketsJoin {
            opts: BroadcastOptions::default(),
            rooms: vec!["a".into()],
        });
        let fields = plain.stream_fields();
        assert_eq!(fields[2], ("type", "4".to_owned()));
        let json: serde_json::Value = serde_json::from_str(&fields[3].1).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"opts": {"rooms": [], "except": [], "flags": {}}, "rooms": ["a"]})
        );
        let binary = &samples()[1];
        assert!(!binary.stream_fields()[3].1.starts_with('{'));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let limits = Limits::default();
        let cases: Vec<Vec<(&str, &[u8])>> = vec![
            vec![],
            vec![("uid", b"a"), ("nsp", b"/")],
            vec![("uid", b"a"), ("nsp", b"/"), ("type", b"99")],
            vec![("uid", b"a"), ("nsp", b"/"), ("type", b"-3")],
            vec![
                ("uid", b"a"),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"{not json"),
            ],
            vec![
                ("uid", b"a"),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"!!!"),
            ],
            vec![
                ("uid", b"a"),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"{}"),
            ],
            vec![("uid", &[0xff]), ("nsp", b"/"), ("type", b"3")],
        ];
        for fields in cases {
            assert!(ClusterMessage::from_stream_fields(&fields, &limits).is_err());
        }
        for bytes in [
            &b""[..],
            b"\x80",
            b"\xc1",
            b"\x93\x01\x02\x03",
            b"{\"a\":1}",
        ] {
            assert!(ClusterMessage::decode_msgpack(bytes, &limits).is_err());
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let fields = [
            ("uid", "a"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", &format!("{{\"x\":{deep}}}")),
        ];
        assert!(ClusterMessage::from_stream_fields(&fields, &limits).is_err());
    }

    #[test]
    fn sessions_round_trip_and_garbage_is_refused() {
        let limits = Limits::default();
        let session = SessionRecord {
            sid: "s".into(),
            pid: "p".into(),
            rooms: vec!["s".into(), "r".into()],
            data: serde_json::json!({"n": 1}),
            since: Some("1-2".into()),
        };
        assert_eq!(
            SessionRecord::decode(session.encode().as_bytes(), &limits).unwrap(),
            session
        );
        for bad in [&b""[..], b"***", b"gqNzaWQ=", b"kw=="] {
            assert!(SessionRecord::decode(bad, &limits).is_err());
        }
    }

    #[test]
    fn entry_ids_parse_strictly_and_step() {
        assert_eq!(EntryId::parse("12-3"), Some(EntryId { ms: 12, seq: 3 }));
        for bad in ["", "1", "1-", "-1", "a-1", "1-2-3", "1 -2", "+", "$"] {
            assert_eq!(EntryId::parse(bad), None, "{bad}");
        }
        let last = EntryId {
            ms: 5,
            seq: u64::MAX,
        };
        assert_eq!(last.next(), Some(EntryId { ms: 6, seq: 0 }));
        assert_eq!(
            EntryId { ms: 1, seq: 1 }.next().map(|i| i.to_string()),
            Some("1-2".into())
        );
    }

    #[test]
    fn replay_follows_rooms_and_exceptions() {
        let mine = [Room::from("a"), Room::from("me")];
        assert!(reaches(&BroadcastOptions::default(), &mine));
        assert!(reaches(&opts_with(&["a", "b"], &[]), &mine));
        assert!(!reaches(&opts_with(&["b"], &[]), &mine));
        assert!(!reaches(&opts_with(&[], &["me"]), &mine));
    }

    fn opts_with(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| Room::from(r.to_string())).collect(),
            except: except.iter().map(|r| Room::from(r.to_string())).collect(),
            ..Default::default()
        }
    }
}
