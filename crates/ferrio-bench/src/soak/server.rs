//! `ferrio-bench soak-server`: the server the soak drives, built with `ferrio` like an
//! application would be (a layer on an axum `Router`, served by `axum::serve`).
//!
//! Namespace `/`: `echo` acknowledges its arguments, `join` joins a room and acks `true`.
//! Every `--tick-ms` it emits `tick` with `--tick-bytes` of text to room `ticks`.
//! `GET /soak/stats` answers `{"sessions", "sockets", "rooms", "tasks"}` from inside the
//! process: open Engine.IO sessions ([`ferrio::EngineIo::len`]), sockets on `/`
//! ([`ferrio::NamespaceRef::len`]), rooms of `/` with a member, each socket's own room
//! included ([`ferrio::NamespaceRef::rooms`]), and alive tokio tasks (the runtime's metrics).

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use ferrio::{AckSender, Data, Io, Payload, SocketRef};
use serde_json::{Value, json};

use crate::BoxError;
use crate::args::Args;

#[path = "../../peers/serve.rs"]
mod serve;

/// The room the periodic broadcast goes to.
pub(crate) const TICK_ROOM: &str = "ticks";

/// The server's timers and broadcast, as the harness passes them on the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerConfig {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    /// Also the upgrade timeout and the connect timeout.
    pub(crate) connect_timeout: Duration,
    pub(crate) tick: Duration,
    pub(crate) tick_bytes: usize,
}

impl ServerConfig {
    pub(crate) fn from_args(args: &mut Args) -> Result<Self, BoxError> {
        let ms = |args: &mut Args, name: &str, default: &str| -> Result<Duration, BoxError> {
            Ok(Duration::from_millis(args.value(name, default)?))
        };
        Ok(ServerConfig {
            ping_interval: ms(args, "ping-interval-ms", "5000")?,
            ping_timeout: ms(args, "ping-timeout-ms", "5000")?,
            connect_timeout: ms(args, "connect-timeout-ms", "5000")?,
            tick: ms(args, "tick-ms", "200")?,
            tick_bytes: args.value("tick-bytes", "2048")?,
        })
    }

    /// The same settings as command-line options for [`ServerConfig::from_args`].
    pub(crate) fn to_args(self) -> Vec<String> {
        let ms = |d: Duration| d.as_millis().to_string();
        [
            ("--ping-interval-ms", ms(self.ping_interval)),
            ("--ping-timeout-ms", ms(self.ping_timeout)),
            ("--connect-timeout-ms", ms(self.connect_timeout)),
            ("--tick-ms", ms(self.tick)),
            ("--tick-bytes", self.tick_bytes.to_string()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_owned(), value])
        .collect()
    }

    /// The longest a silent peer keeps an Engine.IO session open: a ping interval, then the
    /// ping timeout.
    pub(crate) fn heartbeat_deadline(&self) -> Duration {
        self.ping_interval + self.ping_timeout
    }
}

/// Runs the soak server until SIGINT/SIGTERM (`PORT` as for the examples; `0` picks one).
pub(crate) fn run(mut args: Args) -> Result<(), BoxError> {
    let config = ServerConfig::from_args(&mut args)?;
    args.finish()?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config));
    Ok(())
}

async fn serve(config: ServerConfig) {
    let (layer, io) = Io::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .connect_timeout(config.connect_timeout)
        .engine(|engine| engine.upgrade_timeout(config.connect_timeout))
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("echo", |args: Payload, ack: AckSender| ack.send_args(&args));
        socket.on(
            "join",
            |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room);
                ack.send(&true)
            },
        );
    });
    let ticker = tokio::spawn(tick(io.clone(), config));
    let stats_io = io.clone();
    let app = Router::new()
        .route("/soak/stats", get(move || stats(stats_io.clone())))
        .layer(layer);
    serve::run("soak-server", app, async move {
        ticker.abort();
        io.close().await;
    })
    .await;
}

/// The periodic broadcast to [`TICK_ROOM`].
async fn tick(io: Io, config: ServerConfig) {
    let payload = json!({ "pad": "t".repeat(config.tick_bytes) });
    let mut interval = tokio::time::interval(config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    loop {
        interval.tick().await;
        n += 1;
        if let Err(err) = io.to(TICK_ROOM).emit("tick", &(n, &payload)) {
            tracing::warn!(%err, "tick not sent");
        }
    }
}

async fn stats(io: Io) -> Json<Value> {
    let sessions = io.engine().map_or(0, |engine| engine.len());
    let root = io.of("/");
    let sockets = root.as_ref().map_or(0, |ns| ns.len());
    let rooms = match &root {
        Some(ns) => ns.rooms().await.map_or(0, |rooms| rooms.len()),
        None => 0,
    };
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    Json(json!({ "sessions": sessions, "sockets": sockets, "rooms": rooms, "tasks": tasks }))
}
