//! An Engine.IO v4 server as a [`tower`] service, to mount in any axum `Router`.
//!
//! It speaks both transports of the protocol, HTTP long-polling and WebSocket, upgrades from
//! the first to the second, runs the heartbeat, and hands the layer above (Socket.IO, or your
//! own) three events through [`EngineHandler`]: a session opened, a message arrived, a session
//! closed. Each session is reached through a cheap, cloneable [`Socket`].
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use ferrio_engine::{Cors, EngineHandler, EngineIoConfig, EngineIoLayer, Message, Socket};
//!
//! /// Sends every message back to its sender.
//! struct Echo;
//!
//! impl EngineHandler for Echo {
//!     fn on_message(&self, socket: &Socket, message: Message) {
//!         let _ = socket.send(message);
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let config = EngineIoConfig::default().cors(Cors::any_origin());
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .layer(EngineIoLayer::new(config, Echo));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//!     axum::serve(listener, app).await.unwrap();
//! }
//! ```
//!
//! The service needs no network to be exercised: here a polling handshake, served in memory.
//!
//! ```
//! use axum::body::Body;
//! use ferrio_engine::{EngineHandler, EngineIoConfig, EngineIoLayer, Message, Socket};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! struct Quiet;
//! impl EngineHandler for Quiet {
//!     fn on_message(&self, _: &Socket, _: Message) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = EngineIoLayer::new(EngineIoConfig::default(), Quiet);
//! let engine = layer.engine();
//! let service = layer.into_service();
//!
//! let request = http::Request::get("/engine.io/?EIO=4&transport=polling")
//!     .body(Body::empty())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.starts_with(br#"0{"sid":""#));
//! assert_eq!(engine.len(), 1);
//! # }
//! ```
//!
//! # Behaviour
//!
//! - Requests under the configured path (default `/engine.io/`, with or without the trailing
//!   slash) are served by the engine; every other request reaches the wrapped service
//!   untouched.
//! - Refused requests get the protocol's error table ([`EngineError`]): `400` (or `403`) with
//!   `{"code":N,"message":"..."}`. The engine's own limits answer in the same form, with
//!   codes 6 to 9 and the status of each limit (`503`, `429`, `431`, `408`).
//! - Bodies and WebSocket messages are bounded by
//!   [`max_payload`](EngineIoConfig::max_payload). Outbound queues are bounded in bytes: a
//!   client that reads gets every message however fast the server sends; one that leaves
//!   more than its [`outbound_budget`](EngineIoConfig::outbound_budget) unread and stops
//!   reading, or reaches its [`outbound_limit`](EngineIoConfig::outbound_limit), is closed
//!   ([`CloseReason::SlowClient`]) and its memory freed.
//! - Requests to the engine are bounded in headers by
//!   [`max_header_count`](EngineIoConfig::max_header_count) and
//!   [`max_header_bytes`](EngineIoConfig::max_header_bytes), polling bodies in time by
//!   [`post_body_timeout`](EngineIoConfig::post_body_timeout); and, when set, open sessions
//!   by [`max_sessions`](EngineIoConfig::max_sessions) and new ones by
//!   [`max_handshakes_per_second`](EngineIoConfig::max_handshakes_per_second).
//! - With a [`Cors`] allow-list, WebSocket handshakes and upgrades from other origins are
//!   refused like polls (browsers do not restrict WebSocket by origin themselves); requests
//!   without `Origin` are not browsers' and pass.
//! - A WebSocket session costs one task, which owns the connection and runs the heartbeat;
//!   a polling session costs one small heartbeat task and owns no task between polls.
//!
//! # Limits around the engine
//!
//! The engine's limits know the protocol: they count handshakes rather than polls, and refuse
//! at once rather than make a request wait. Generic middleware around the whole router adds
//! what they do not cover:
//!
//! - `tower::limit::ConcurrencyLimitLayer` bounds the requests in flight. It makes the
//!   excess wait instead of refusing it; a held poll occupies a permit for up to
//!   `ping_interval`, so size it for the number of polling clients, while a WebSocket holds
//!   one only until its `101` (bound WebSockets with `max_sessions`).
//! - `tower_http::timeout::TimeoutLayer` bounds each request; it must allow more than
//!   `ping_interval`, or it cuts polls short and their sessions close ("transport error").
//! - `tower_http::limit::RequestBodyLimitLayer` bounds the bodies of the other routes (the
//!   engine's own are bounded by `max_payload`).
//!
//! `tower::limit::RateLimitLayer` is no substitute for `max_handshakes_per_second`: it makes
//! requests wait rather than refusing them, and it would count every poll and post.
//! Connection-level limits belong to the HTTP server: `axum::serve` leaves hyper's header
//! read timeout off (it sets no timer) and accepts every connection, so a server exposed to
//! the internet wants a proxy in front or its own hyper accept loop.
//!
//! # Feature flags
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | [`Handshake::remote_addr`] from axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`); without it, only a `SocketAddr` request extension is read |

// Library code never unwraps: peer-controlled data must not be able to panic it.
#![warn(clippy::unwrap_used)]

mod body;
mod coalesce;
mod config;
mod cors;
mod engine;
mod error;
mod flow;
mod handler;
mod handshake;
mod heartbeat;
mod limits;
mod message;
mod polling;
mod readahead;
mod service;
mod sid;
mod socket;
#[cfg(feature = "metrics")]
mod stats;
mod utf8;
mod websocket;

pub use body::ResponseBody;
pub use config::EngineIoConfig;
pub use cors::Cors;
pub use error::EngineError;
pub use handler::{CloseReason, EngineHandler, Message, Transport};
pub use handshake::Handshake;
pub use message::{PreparedMessage, SendError};
pub use service::{
    EngineIo, EngineIoLayer, EngineIoService, NotFound, ResponseFuture, WeakEngineIo,
};
pub use sid::{InvalidSid, Sid, SidPrefix};
pub use socket::Socket;
#[cfg(feature = "metrics")]
pub use stats::EngineStatsSnapshot;
pub use utf8::Utf8Bytes;

// The code of the guides compiles as part of the test suite.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/engine.md")]
mod engine_guide {}
