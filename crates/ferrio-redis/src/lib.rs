//! The Redis adapter for ferrio, wire-compatible with the npm package
//! [`@socket.io/redis-adapter`](https://github.com/socketio/socket.io-redis-adapter) 8.3.
//!
//! **Not built yet:** this crate holds only the adapter's wire format, in [`wire`]: channel
//! names, the broadcast message and the request/response messages servers exchange, with
//! bounded decoding. There is no Redis connection and no adapter implementation yet, so a
//! ferrio server cannot join a Redis cluster with this crate today.
//!
//! ```
//! use ferrio::adapter::BroadcastOptions;
//! use ferrio_redis::wire::{BroadcastMessage, Channels, Limits, WirePacket};
//!
//! let channels = Channels::new("socket.io", "/chat");
//! assert_eq!(channels.room("news"), "socket.io#/chat#news#");
//!
//! let mut opts = BroadcastOptions::default();
//! opts.rooms.push("news".into());
//! let message = BroadcastMessage {
//!     uid: "abc123".into(),
//!     packet: WirePacket::event("/chat", "hello", vec![rmpv::Value::from("world")]),
//!     opts,
//! };
//! let bytes = message.encode();
//! let decoded = BroadcastMessage::decode(&bytes, &Limits::default()).unwrap();
//! assert_eq!(decoded, message);
//! ```

pub mod wire;
