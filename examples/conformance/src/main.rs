//! Reference server for the official protocol test suites (see `docs/examples.md`, section 1).
//!
//! ```text
//! cargo run -p conformance                        # Socket.IO at /socket.io/ (JSON parser)
//! PARSER=msgpack cargo run -p conformance         # the same with the msgpack parser
//! cargo run -p conformance -- engineio            # bare Engine.IO echo at /engine.io/
//! ```
//!
//! Binds `127.0.0.1:$PORT` (default 3000; `0` picks a free port), prints `listening on PORT`
//! once it accepts connections, logs to stderr (`RUST_LOG`, default `info`) and exits cleanly
//! on SIGINT or SIGTERM.

use std::time::Duration;

use axum::Router;
use ferrio::{AckSender, Io, Parser, Payload, SocketRef};
use ferrio_engine::{Cors, EngineHandler, EngineIoConfig, EngineIoLayer, Message, Socket};

#[path = "../../support/serve.rs"]
mod serve;

/// Sends every message back unchanged: text as text, binary as binary.
struct Echo;

impl EngineHandler for Echo {
    fn on_message(&self, socket: &Socket, message: Message) {
        if let Err(err) = socket.send(message) {
            tracing::warn!(sid = %socket.id(), %err, "echo not sent");
        }
    }
}

fn engine_config(path: &str) -> EngineIoConfig {
    EngineIoConfig::default()
        .path(path)
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .cors(Cors::any_origin())
}

fn parser_from_env() -> Parser {
    match std::env::var("PARSER").as_deref() {
        Ok("msgpack") => Parser::Msgpack,
        Ok("json") | Err(_) => Parser::Json,
        Ok(other) => {
            eprintln!("conformance: unknown PARSER {other:?} (expected `json` or `msgpack`)");
            std::process::exit(2);
        }
    }
}

/// Emits the handshake auth back as `auth`, as both namespaces of the contract do.
fn emit_auth(socket: SocketRef) {
    if let Err(err) = socket.emit_args("auth", &socket.auth().clone()) {
        tracing::warn!(%err, "auth not sent");
    }
}

fn socketio() -> (Router, Io) {
    let (layer, io) = Io::builder()
        .engine(|_| engine_config("/socket.io/"))
        .connect_timeout(Duration::from_millis(1000))
        .parser(parser_from_env())
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        emit_auth(socket.clone());
        socket.on("message", |socket: SocketRef, args: Payload| {
            if let Err(err) = socket.emit_args("message-back", &args) {
                tracing::warn!(%err, "message-back not sent");
            }
        });
        socket.on("message-with-ack", |args: Payload, ack: AckSender| {
            if let Err(err) = ack.send_args(&args) {
                tracing::warn!(%err, "ack not sent");
            }
        });
    });
    io.ns("/custom", emit_auth);
    (Router::new().layer(layer), io)
}

#[tokio::main]
async fn main() {
    serve::init_tracing();
    let mode = std::env::args().nth(1).unwrap_or_else(|| "socketio".into());
    match mode.as_str() {
        "engineio" => {
            let layer = EngineIoLayer::new(engine_config("/engine.io/"), Echo);
            let engine = layer.engine();
            serve::run(
                "conformance",
                Router::new().layer(layer),
                move || async move {
                    tracing::info!(sessions = engine.len(), "closing sessions");
                    engine.close_all();
                },
            )
            .await;
        }
        "socketio" => {
            let (app, io) = socketio();
            serve::run("conformance", app, move || async move { io.close().await }).await;
        }
        other => {
            eprintln!("conformance: unknown mode {other:?} (expected `socketio` or `engineio`)");
            std::process::exit(2);
        }
    }
}
