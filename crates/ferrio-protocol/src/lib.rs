//! Wire formats of Engine.IO v4 (and, later, Socket.IO v5), with no I/O and no runtime.
//!
//! Everything here is a pure function of bytes, so it can be unit-tested and fuzzed alone and
//! reused by a client. Decoders are strict: input that breaks a rule of the protocol is an
//! error naming the rule, never a panic.
//!
//! ```
//! use ferrio_protocol::engine::{self, Packet};
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
//! ```

// Library code never unwraps: peer-controlled data must not be able to panic it.
#![warn(clippy::unwrap_used)]

pub mod engine;
