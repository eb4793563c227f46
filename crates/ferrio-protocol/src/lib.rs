//! Wire formats of Engine.IO v4 and Socket.IO v5, with no I/O and no runtime.
//!
//! Everything here is a pure function of bytes, so it can be unit-tested and fuzzed alone and
//! reused by a client. Decoders are strict: input that breaks a rule of the protocol is an
//! error naming the rule, never a panic.
//!
//! ```
//! use ferrio_protocol::engine::{self, Packet};
//! use ferrio_protocol::socketio::{self, Body};
//!
//! // A polling body with a text message and a binary message.
//! let packets: Vec<_> = engine::decode_payload(b"4hello\x1ebAQIDBA==")
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(packets[0], Packet::Message("hello"));
//! assert_eq!(packets[1], Packet::Binary(vec![1, 2, 3, 4]));
//!
//! // And back again.
//! let mut body = String::new();
//! engine::encode_payload_packet(&mut body, &packets[0]);
//! engine::encode_payload_packet(&mut body, &packets[1]);
//! assert_eq!(body, "4hello\x1ebAQIDBA==");
//!
//! // An Engine.IO message carrying a Socket.IO event, with an ack id.
//! let Packet::Message(text) = engine::decode_packet(r#"42/chat,7["hello",{"n":1}]"#).unwrap()
//! else { unreachable!() };
//! let packet = socketio::decode_text(text).unwrap();
//! assert_eq!((packet.nsp, packet.id), ("/chat", Some(7)));
//! let Body::Event { name, args, .. } = packet.body else { unreachable!() };
//! assert_eq!(name, "hello");
//! assert_eq!(&text[args[0].clone()], r#"{"n":1}"#);
//! ```
//!
//! # Modules
//!
//! - [`engine`]: Engine.IO packets and the long-polling payload codec.
//! - [`socketio`]: Socket.IO packets and the default parser (JSON text, binary attachments).
//! - `msgpack`: the msgpack parser, each packet one binary message (feature `msgpack`).
//!
//! # Feature flags
//!
//! | Feature   | Default | Enables                                                              |
//! |-----------|---------|----------------------------------------------------------------------|
//! | `msgpack` | no      | `msgpack`, wire-compatible with npm `socket.io-msgpack-parser` 3.x   |

// Library code never unwraps: peer-controlled data must not be able to panic it.
#![warn(clippy::unwrap_used)]

pub mod engine;
#[cfg(feature = "msgpack")]
pub mod msgpack;
pub mod socketio;
