//! A small browser chat served by one axum app: the page, the official Socket.IO browser
//! client, Socket.IO itself and an HTTP API that posts into rooms (the contract is
//! `docs/examples.md`, section 3).
//!
//! ```text
//! ./scripts/demo.sh                               # installs the browser client, then runs this
//! cargo run --release -p chat                     # http://127.0.0.1:3000/?room=lobby
//! REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run --release -p chat   # a second node
//! ```
//!
//! Environment: `PORT` (default 3000), `REDIS_URL` (the Redis adapter: several chat
//! processes form one cluster; unset or empty: the in-memory adapter).
//!
//! The handlers and routes are in `chat.rs`; this file reads the environment and starts.

use ferrio::{Bytes, Io};
use ferrio_redis::RedisAdapter;

mod chat;

#[path = "../../support/serve.rs"]
mod serve;

/// The browser client, from the npm package `socket.io-client` that `npm ci` installs next
/// to this example (its `package.json`). Read at startup, served as `/socket.io.min.js`:
/// the page works without any other server, offline included.
const CLIENT_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/socket.io-client/dist/socket.io.min.js"
);

fn exit_with(message: &str) -> ! {
    eprintln!("chat: {message}");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    serve::init_tracing();
    let client_js = match std::fs::read(CLIENT_JS) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => exit_with(&format!(
            "cannot read the Socket.IO browser client at {CLIENT_JS} ({err}).\n\
             chat: install it with `npm ci` in examples/chat, or start the demo with \
             ./scripts/demo.sh, which does it for you"
        )),
    };

    // With REDIS_URL, messages and presence reach the sockets of every chat process
    // sharing that Redis; without it, those of this process.
    let mut builder = Io::builder();
    let redis = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => match RedisAdapter::open(&url) {
            Ok(redis) => Some(redis),
            Err(e) => exit_with(&format!("REDIS_URL {url:?} is not a Redis URL: {e}")),
        },
        _ => None,
    };
    if let Some(redis) = &redis {
        builder = builder.adapter(redis.factory());
    }
    let (layer, io) = chat::socketio(builder);
    if let Err(e) = io.ready().await {
        exit_with(&format!("the adapter did not start: {e}"));
    }

    let app = chat::router(client_js, layer);
    serve::run("chat", app, move || async move { io.close().await }).await;
}
