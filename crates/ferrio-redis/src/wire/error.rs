//! [`DecodeError`]: why a message read from Redis was refused.

use std::fmt;

/// Why a message read from Redis was refused. Every variant names the broken rule.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`Limits::message_size`](super::Limits::message_size).
    TooLarge {
        /// The message's length.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Arrays or maps nested deeper than [`Limits::depth`](super::Limits::depth).
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Not valid msgpack.
    Msgpack(rmpv::decode::Error),
    /// Bytes left after the msgpack value.
    TrailingBytes(usize),
    /// Not valid JSON.
    Json(serde_json::Error),
    /// Valid msgpack or JSON, but not the shape the adapter writes; names what is wrong.
    Shape(&'static str),
    /// A `type` that is not one of the adapter's message types.
    UnknownType(u64),
    /// A response without a `type` whose request id the caller does not know, so its shape
    /// cannot be told (see [`Response::decode`](super::Response::decode)).
    UnknownRequest,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, max } => {
                write!(f, "message of {size} bytes exceeds the limit of {max}")
            }
            Self::TooDeep { max } => write!(f, "message nested deeper than {max} levels"),
            Self::Msgpack(_) => f.write_str("invalid msgpack"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the msgpack value"),
            Self::Json(_) => f.write_str("invalid JSON"),
            Self::Shape(what) => write!(f, "unexpected message shape: {what}"),
            Self::UnknownType(t) => write!(f, "unknown message type {t}"),
            Self::UnknownRequest => f.write_str("untyped response to an unknown request"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Msgpack(err) => Some(err),
            Self::Json(err) => Some(err),
            _ => None,
        }
    }
}
