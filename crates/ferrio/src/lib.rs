//! A Socket.IO v5 server as a tower layer: mount it in any axum `Router`, and reach its
//! rooms and broadcasts from ordinary HTTP handlers.
//!
//! ```no_run
//! use axum::{Json, Router, routing::post};
//! use ferrio::{AckSender, Data, Io, SocketRef};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Notice { room: String, text: String }
//!
//! // A plain axum handler that pushes to a room.
//! async fn notify(io: Io, Json(notice): Json<Notice>) {
//!     let _ = io.to(notice.room).emit("notice", &notice.text);
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let (layer, io) = Io::new_layer();
//!     io.ns("/", |socket: SocketRef| {
//!         socket.on("join", |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
//!             socket.join(room);
//!             let _ = ack.send(&true);
//!         });
//!     });
//!     let app = Router::new().route("/notify", post(notify)).layer(layer);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//!     axum::serve(listener, app).await.unwrap();
//! }
//! ```
//!
//! The same server, driven in memory over HTTP long-polling (what a client does on the wire):
//!
//! ```
//! use axum::{Router, body::Body, http::Request};
//! use ferrio::{Io, SocketRef};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (layer, io) = Io::new_layer();
//! io.ns("/", |socket: SocketRef| {
//!     let _ = socket.emit("hello", "world");
//! });
//! let app = Router::new().layer(layer);
//! let call = |method: &str, uri: &str, body: &'static str| {
//!     let req = Request::builder().method(method).uri(uri).body(Body::from(body)).unwrap();
//!     let app = app.clone();
//!     async move {
//!         let res = app.oneshot(req).await.unwrap();
//!         String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
//!     }
//! };
//!
//! // The Engine.IO handshake opens a session...
//! let open = call("GET", "/socket.io/?EIO=4&transport=polling", "").await;
//! let sid = &open[9..29]; // 0{"sid":"<20 characters>",...
//! let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
//! // ...the client joins `/`...
//! assert_eq!(call("POST", &uri, "40").await, "ok");
//! // ...and gets its socket id, then the event its connect handler emitted.
//! let reply = call("GET", &uri, "").await;
//! let packets: Vec<&str> = reply.split('\x1e').collect();
//! assert!(packets[0].starts_with(r#"40{"sid":""#));
//! assert_eq!(packets[1], r#"42["hello","world"]"#);
//! # }
//! ```
//!
//! # Handlers
//! Connect, event and disconnect handlers are functions (async or not) whose arguments are
//! extractors, as in axum: [`SocketRef`], [`Data`], [`TryData`], [`Args`], [`Payload`],
//! [`AckSender`], [`Event`], [`State`], [`Extension`], [`Io`], [`DisconnectReason`]. A handler
//! that returns `Result<(), E>` has its errors logged with the namespace, socket and event.
//! A handler runs on the connection's task until it first waits, so what it emits before
//! an `.await` keeps the order of the client's packets; only then is it spawned.
//!
//! # Limits on what a client sends
//! Besides the Engine.IO limits (`max_payload`; the outbound budget, stall timeout and
//! limit that disconnect slow clients, see [`EngineIoConfig::outbound_budget`]), three
//! settings of [`IoBuilder`] bound what one client can make the server do:
//!
//! | setting | default | when it is reached |
//! |---|---|---|
//! | [`max_concurrent_handlers`](IoBuilder::max_concurrent_handlers) | 64 per connection | the connection stops reading until one of its waiting handlers ends (backpressure; nothing is dropped) |
//! | [`max_namespaces_per_connection`](IoBuilder::max_namespaces_per_connection) | 100 | a further CONNECT gets a CONNECT_ERROR saying so; the connection goes on |
//! | [`event_rate_limit`](IoBuilder::event_rate_limit) | none | events over a socket's [`RateLimit`] are dropped, or its socket disconnected ([`RateLimitPolicy`]) |
//!
//! # Feature flags
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | the [`Io`] extractor for axum handlers |
//! | `msgpack` | no | `Parser::Msgpack`, compatible with `socket.io-msgpack-parser` |
//! | `metrics` | no | [`metrics::Metrics`]: Prometheus metrics (an [`Observer`]) |

// Library code never unwraps: peer-controlled data must not be able to panic it.
#![warn(clippy::unwrap_used)]

// Leaf modules first: they import nothing else of the crate but each other, in this order.
mod ack;
mod error;
mod parser;
mod payload;
// The adapter seam imports only the leaves above.
pub mod adapter;
// The Socket.IO server, on top of the seam.
mod builder;
mod client;
mod connect;
mod extract;
pub mod handler;
mod io;
#[cfg(feature = "metrics")]
pub mod metrics;
mod namespace;
pub mod observe;
mod operators;
mod rate_limit;
mod registry;
mod server;
mod socket;
// The tower and axum glue.
#[cfg(feature = "axum")]
mod axum;
mod layer;

pub use ack::{AckFuture, AckResult, BroadcastAckFuture};
pub use adapter::{IntoRooms, Room};
#[cfg(feature = "axum")]
pub use axum::MissingIo;
pub use builder::IoBuilder;
/// Binary data: a `Bytes` anywhere in an event's arguments travels as binary.
pub use bytes::Bytes;
pub use error::{
    AckError, AdapterError, ConnectRefusal, DisconnectReason, EmitError, InvalidPattern,
};
pub use extract::{
    Args, Data, Event, EventParts, Extension, MissingExtension, MissingState, ServerGone, State,
    TryData,
};
pub use ferrio_engine::{
    Cors, EngineIo, EngineIoConfig, Handshake, NotFound, ResponseBody, ResponseFuture, Sid,
    SidPrefix, Transport,
};
pub use handler::ConnectHandler;
pub use io::{Io, WeakIo};
pub use layer::{SocketIoLayer, SocketIoService};
pub use namespace::NamespaceRef;
pub use observe::Observer;
pub use operators::{BroadcastOperator, RemoteSocket};
pub use parser::Parser;
pub use payload::{Arg, Payload, PayloadError};
pub use rate_limit::{RateLimit, RateLimitPolicy};
pub use socket::{AckSender, SocketRef};

// The code of the README and the guides compiles as part of the test suite.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/getting-started.md")]
mod getting_started {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/axum.md")]
mod axum_guide {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/emitting-from-http.md")]
mod emitting_from_http {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/concepts.md")]
mod concepts {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/axum-patterns.md")]
mod axum_patterns {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/security.md")]
mod security {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/compression.md")]
mod compression_guide {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/troubleshooting.md")]
mod troubleshooting {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/migrating-from-node.md")]
mod migrating_from_node {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/migrating-from-socketioxide.md")]
mod migrating_from_socketioxide {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/recovery.md")]
mod recovery_guide {}
