//! The wire format of `@socket.io/redis-adapter` 8.3: what its servers publish, and where.
//!
//! - [`Channels`]: the channel names of one namespace, and which one a message came on.
//! - [`BroadcastMessage`]: a broadcast, msgpack `[uid, packet, opts]` on the broadcast or
//!   single-room channel.
//! - [`Request`] and [`Response`]: the messages of the request and response channels, JSON
//!   except the broadcast-with-ack request (type 7) and the ack reply (type 9), which are
//!   msgpack. As in the Node adapter, a message whose first byte is `{` is JSON and anything
//!   else msgpack, whatever its type.
//!
//! msgpack is the encoding of the npm package `notepack.io` 3.0 (the adapter 8.3 depends on
//! `~3.0.1`): maps with string keys, integers in their smallest form, non-integer numbers as
//! float 64, strings as fixstr/str 8/16/32. Dynamic values (event and ack arguments) are
//! [`rmpv::Value`]s so binary survives a round trip. What a Node server's values become, as
//! measured with `notepack.io` 3.0.1:
//!
//! - `Buffer`, `ArrayBuffer` and typed arrays: bin (older `notepack.io` 2 wrote `ArrayBuffer`
//!   as ext 0);
//! - `undefined`: nil in an array, the key left out in an object;
//! - `-0`: the integer 0; whole numbers of 2^64 and above wrap around (corrupted on the Node
//!   side, before they reach us);
//! - `Date`: the msgpack timestamp extension, type -1, which we keep as [`rmpv::Value::Ext`].
//!
//! Everything read from Redis is untrusted: decoders check [`Limits`] before and while they
//! parse, and return a [`DecodeError`] for anything malformed, never panic.

mod broadcast;
mod channel;
mod error;
mod request;
mod response;
pub mod streams;
mod value;

pub use broadcast::{BroadcastMessage, WirePacket};
pub use channel::{Channels, ParsedChannel, ReceivedOn, parse_channel};
pub use error::DecodeError;
pub use request::{Request, RequestType};
pub use response::Response;

/// Bounds on what a decoder accepts.
///
/// ```
/// use ferrio_redis::wire::Limits;
///
/// let limits = Limits::default().max_message_size(64 * 1024).max_depth(16);
/// assert_eq!(limits.message_size(), 64 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_message_size: usize,
    max_depth: usize,
}

impl Limits {
    /// The default largest message, 1 MiB: far above what a broadcast of chat-sized events
    /// needs, small enough that a flood of garbage cannot exhaust memory.
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;
    /// The default deepest nesting of arrays and maps, 64: the envelope takes up to 4 levels,
    /// which leaves about 60 for the application's own values.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// The highest [`Self::max_depth`] accepted.
    pub const MAX_DEPTH_CEILING: usize = 512;

    /// The largest message accepted, in bytes. Default [`Self::DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The deepest nesting of arrays and maps accepted, the message's own envelope included.
    /// Default [`Self::DEFAULT_MAX_DEPTH`]; at most [`Self::MAX_DEPTH_CEILING`], larger values
    /// are lowered to it so decoding cannot exhaust the stack. JSON messages are also refused
    /// beyond 127 levels, `serde_json`'s own recursion limit.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.min(Self::MAX_DEPTH_CEILING);
        self
    }

    /// The largest message accepted, in bytes.
    pub fn message_size(&self) -> usize {
        self.max_message_size
    }

    /// The deepest nesting accepted.
    pub fn depth(&self) -> usize {
        self.max_depth
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}
