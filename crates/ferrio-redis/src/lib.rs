//! The Redis adapter for ferrio, wire-compatible with the npm package
//! [`@socket.io/redis-adapter`](https://github.com/socketio/socket.io-redis-adapter) 8.3:
//! ferrio servers and Node.js socket.io servers on one Redis form one cluster.
//!
//! - [`RedisAdapter`]: a server's two connections (one publishes, one subscribes), shared
//!   by its namespaces; [`RedisAdapter::factory`] goes to
//!   [`IoBuilder::adapter`](ferrio::IoBuilder::adapter).
//! - [`RedisNamespace`]: the [`Adapter`](ferrio::adapter::Adapter) of one namespace.
//! - [`Health`]: whether Redis is reachable, and what could not be published.
//! - [`wire`]: the message formats, with bounded decoding of everything read from Redis.
//!
//! ```no_run
//! use ferrio::{Io, SocketRef};
//! use ferrio_redis::RedisAdapter;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisAdapter::open("redis://127.0.0.1:6379")?;
//! let (layer, io) = Io::builder().adapter(redis.factory()).build_layer();
//! io.ns("/", |socket: SocketRef| {
//!     // Reaches the sockets of every server of the cluster.
//!     socket.broadcast().emit("joined", socket.id().as_str()).ok();
//! });
//! io.ready().await?;
//! let app = axum::Router::<()>::new().layer(layer);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # When Redis goes away
//! Each connection reconnects on its own, waiting 20 ms and doubling up to 200 ms between
//! attempts ([`RedisAdapterConfig::reconnect_backoff`]). Meanwhile the server keeps serving
//! its own clients; messages for the other servers wait up to
//! [`RedisAdapterConfig::max_publish_delay`] (2 s) in a bounded queue, then are counted in
//! [`Health::unpublished`]; requests to the other servers (fetching sockets, listing rooms)
//! fail at once with an [`Unavailable`](ferrio::adapter::AdapterErrorKind::Unavailable)
//! error.
//!
//! # Untrusted input
//! Whatever is read from Redis is decoded within [`wire::Limits`]; a message that does not
//! decode is dropped, counted in [`Health::malformed`] and reported in a warning at most
//! once a second. Nothing read from Redis can panic the server.

mod adapter;
mod config;
mod connection;
mod forwarding;
mod health;
mod streams;
pub mod wire;

pub use adapter::{RedisAdapter, RedisNamespace};
pub use config::{RedisAdapterConfig, ResponseChannel};
pub use forwarding::{ForwardLayer, ForwardService, Forwarding};
pub use health::Health;
pub use streams::{RedisStreamsAdapter, RedisStreamsConfig, StreamsNamespace};

// The scaling guide's Rust code compiles as part of the test suite.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/scaling.md")]
mod scaling_guide {}
