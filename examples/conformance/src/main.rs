//! Reference server for the official protocol test suites (see `../shared/CONTRACTS.md`).
//!
//! ```text
//! cargo run -p conformance -- engineio   # bare Engine.IO echo at /engine.io/
//! PORT=4000 cargo run -p conformance -- engineio
//! ```
//!
//! Binds `127.0.0.1:$PORT` (default 3000; `0` picks a free port), prints `listening on PORT`
//! once it accepts connections, logs to stderr (`RUST_LOG`, default `info`) and exits cleanly
//! on SIGINT or SIGTERM.

use std::time::Duration;

use axum::Router;
use ferrio_engine::{
    Cors, EngineHandler, EngineIo, EngineIoConfig, EngineIoLayer, Message, Socket,
};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

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

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let mode = std::env::args().nth(1).unwrap_or_else(|| "socketio".into());
    let (app, engine) = match mode.as_str() {
        "engineio" => {
            let layer = EngineIoLayer::new(engine_config("/engine.io/"), Echo);
            let engine = layer.engine();
            (Router::new().layer(layer), engine)
        }
        "socketio" => {
            eprintln!("conformance: the socketio mode needs the Socket.IO layer, not built yet");
            std::process::exit(2);
        }
        other => {
            eprintln!("conformance: unknown mode {other:?} (expected `socketio` or `engineio`)");
            std::process::exit(2);
        }
    };

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| {
            eprintln!("conformance: PORT must be a port number, got {port:?}");
            std::process::exit(2);
        }),
        Err(_) => 3000,
    };
    let listener = match TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await
    {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("conformance: cannot bind 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("listening on {port}");
    tracing::info!(port, mode, "conformance server ready");

    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown(engine))
    .await;
    tracing::debug!("server stopped");
    if let Err(err) = served {
        eprintln!("conformance: server error: {err}");
        std::process::exit(1);
    }
}

/// Resolves on SIGINT or SIGTERM, after closing every session so that pending polls end and
/// clients see a close rather than a dropped connection.
async fn shutdown(engine: EngineIo) {
    shutdown_signal().await;
    tracing::info!(sessions = engine.len(), "shutting down");
    engine.close_all();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
