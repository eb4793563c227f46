//! Everything an application uses, driven by the official clients in `tests/e2e` (the
//! contract is `docs/examples.md`, section 2) and by the benchmarks (section 4).
//!
//! ```text
//! cargo run --release -p interop                 # http://127.0.0.1:3000, Socket.IO at /socket.io/
//! PORT=0 PARSER=msgpack cargo run -p interop     # any free port, msgpack parser
//! ```
//!
//! Environment: `PORT` (default 3000), `SIO_PATH` (default `/socket.io/`), `PARSER=msgpack`,
//! `REDIS_URL` (the Redis adapter: several processes, and Node.js servers on
//! `@socket.io/redis-adapter`, form one cluster), `RECOVERY=1` (connection state recovery,
//! 120 s), `PING_INTERVAL_MS`, `PING_TIMEOUT_MS`. With `REDIS_URL`, `REDIS_STREAMS=1` selects
//! the Redis Streams adapter instead (wire-compatible with `@socket.io/redis-streams-adapter`
//! 0.3, stream `socket.io`, session keys `sio:session:`): with `RECOVERY=1`, a client
//! recovers on any server of the cluster. `WS_READ_BUFFER_BYTES` (benchmarks only) sets the
//! read buffer of each WebSocket (default 2048).

use std::time::Duration;

use axum::extract::Query;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferrio::adapter::{Recovery, ServerAck};
use ferrio::{
    AckSender, ConnectHandler, ConnectRefusal, Cors, Data, Io, Parser, Payload, SocketRef,
};
use ferrio_redis::{Forwarding, Health, RedisAdapter, RedisStreamsAdapter};
use serde::Deserialize;
use serde_json::{Value, json};

#[path = "../../support/serve.rs"]
mod serve;

/// jemalloc, set up (in `.cargo/config.toml`) to give freed memory back to the system within
/// half a second. With the system's (glibc) allocator, after a burst of 4 000 broadcasts of
/// 16 KB the server kept 12 to 63 MB it had freed (three runs); with this one, 2 MB (see
/// docs/security.md, "Memory after a burst").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The most `bcast` packets one `burst` may ask for.
const MAX_BURST: usize = 100_000;

fn exit_with(message: &str) -> ! {
    eprintln!("interop: {message}");
    std::process::exit(2);
}

/// The Socket.IO path (`SIO_PATH`, default `/socket.io/`).
fn sio_path() -> String {
    std::env::var("SIO_PATH").unwrap_or_else(|_| "/socket.io/".to_owned())
}

/// The address this node's peers reach it at: `ADVERTISE_ADDR`, or `127.0.0.1:<its port>`.
fn advertise_addr(port: u16) -> String {
    std::env::var("ADVERTISE_ADDR").unwrap_or_else(|_| format!("127.0.0.1:{port}"))
}

/// A duration in milliseconds from the environment; a value that is not a positive whole
/// number exits with status 2.
fn millis_from_env(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
        _ => exit_with(&format!(
            "{name} {value:?} is not a positive number of milliseconds"
        )),
    }
}

/// The WebSocket read buffer from `WS_READ_BUFFER_BYTES` (benchmarks only: `big-echo` runs
/// with the default and with 64 KiB); a value that is not a positive whole number exits with
/// status 2.
fn ws_read_buffer_from_env() -> Option<usize> {
    let value = std::env::var("WS_READ_BUFFER_BYTES").ok()?;
    match value.parse::<usize>() {
        Ok(bytes) if bytes > 0 => Some(bytes),
        _ => exit_with(&format!(
            "WS_READ_BUFFER_BYTES {value:?} is not a positive number of bytes"
        )),
    }
}

fn parser_from_env() -> Parser {
    match std::env::var("PARSER").as_deref() {
        Ok("msgpack") => Parser::Msgpack,
        Ok("json") | Err(_) => Parser::Json,
        Ok(other) => exit_with(&format!(
            "unknown PARSER {other:?} (expected json or msgpack)"
        )),
    }
}

fn on_root(socket: SocketRef) {
    let welcome = json!({ "id": socket.id().as_str() });
    let _ = socket.emit_args("welcome", &(WithAuth(welcome, socket.auth().clone()),));

    socket.on(
        "echo",
        |socket: SocketRef, args: Payload, ack: AckSender| {
            let result = if ack.is_requested() {
                ack.send_args(&args)
            } else {
                socket.emit_args("echo", &args)
            };
            if let Err(err) = result {
                tracing::warn!(%err, "echo not sent");
            }
        },
    );
    socket.on(
        "join",
        |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            socket.join(room);
            ack.send(&true)
        },
    );
    socket.on(
        "leave",
        |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            socket.leave(room);
            ack.send(&true)
        },
    );
    socket.on("rooms", |socket: SocketRef, ack: AckSender| {
        let own = socket.id();
        let mut rooms: Vec<String> = socket
            .rooms()
            .into_iter()
            .filter(|room| room.as_ref() != own.as_str())
            .map(|room| room.into_owned())
            .collect();
        rooms.sort();
        ack.send(&rooms)
    });
    // The sender too, if it is in the room: so from the namespace, not from the socket.
    socket.on("to-room", |io: Io, args: Payload| {
        let room: String = args.get(0)?;
        let event: String = args.get(1)?;
        let payload = args.arg(2);
        io.within(room).emit(&event, &payload)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    socket.on("broadcast", |socket: SocketRef, args: Payload| {
        let event: String = args.get(0)?;
        socket.broadcast().emit(&event, &args.arg(1))?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    socket.on(
        "ask",
        async |socket: SocketRef, args: Payload, ack: AckSender| {
            let answer = socket
                .emit_with_ack("question", &args.arg(0))
                .timeout(Duration::from_secs(2))
                .await;
            match answer {
                Ok(reply) => ack.send(&reply.arg(0)),
                Err(_) => ack.send(&json!({ "error": "timeout" })),
            }
        },
    );
    socket.on("burst", |io: Io, Data(burst): Data<Burst>| {
        if burst.n > MAX_BURST {
            return Err(format!("burst of {} exceeds {MAX_BURST}", burst.n));
        }
        for _ in 0..burst.n {
            io.emit("bcast", &burst.payload)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    socket.on("disconnect-me", |socket: SocketRef| socket.disconnect());
}

/// `{"id": ..., "auth": <auth>}` where the auth keeps its wire form (binary included).
struct WithAuth(Value, Payload);

impl serde::Serialize for WithAuth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("id", &self.0["id"])?;
        map.serialize_entry("auth", &self.1.arg(0))?;
        map.end()
    }
}

#[derive(Deserialize)]
struct Burst {
    n: usize,
    payload: Value,
}

fn check_token(Data(auth): Data<Value>) -> Result<(), ConnectRefusal> {
    if auth == json!({ "token": "let-me-in" }) {
        Ok(())
    } else {
        Err(ConnectRefusal::new("unauthorized").with_data(&json!({ "reason": "bad token" })))
    }
}

/// The cluster adapter `REDIS_URL` (and `REDIS_STREAMS`) selects.
#[derive(Clone)]
enum Redis {
    PubSub(RedisAdapter),
    Streams(RedisStreamsAdapter),
}

impl Redis {
    fn uid(&self) -> &str {
        match self {
            Self::PubSub(redis) => redis.uid(),
            Self::Streams(redis) => redis.uid(),
        }
    }

    fn health(&self) -> Health {
        match self {
            Self::PubSub(redis) => redis.health(),
            Self::Streams(redis) => redis.health(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::PubSub(_) => "pubsub",
            Self::Streams(_) => "streams",
        }
    }

    /// This node's part in a cluster without sticky sessions.
    fn forwarding(&self, advertise: String) -> Forwarding {
        match self {
            Self::PubSub(redis) => redis.forwarding(advertise),
            Self::Streams(redis) => redis.forwarding(advertise),
        }
    }
}

fn socketio(
    redis: Option<&Redis>,
    forwarding: Option<&Forwarding>,
    monitor: &Monitor,
) -> (ferrio::SocketIoLayer, Io) {
    let path = sio_path();
    let mut builder = Io::builder()
        .path(path)
        .cors(Cors::any_origin())
        .parser(parser_from_env());
    #[cfg(feature = "metrics")]
    {
        builder = builder.observe(monitor.metrics.clone());
    }
    if let Some(admin) = &monitor.admin {
        builder = builder.observe(admin.observer());
    }
    if let Some(interval) = millis_from_env("PING_INTERVAL_MS") {
        builder = builder.ping_interval(interval);
    }
    if let Some(timeout) = millis_from_env("PING_TIMEOUT_MS") {
        builder = builder.ping_timeout(timeout);
    }
    if std::env::var("RECOVERY").is_ok_and(|v| v == "1") {
        // 120 s, unless RECOVERY_MAX_DISCONNECTION_MS says otherwise (for tests of expiry).
        let duration =
            millis_from_env("RECOVERY_MAX_DISCONNECTION_MS").unwrap_or(Duration::from_secs(120));
        let recovery = Recovery::default().max_disconnection_duration(duration);
        builder = builder.connection_state_recovery(recovery);
    }
    match redis {
        Some(Redis::PubSub(redis)) => builder = builder.adapter(redis.factory()),
        Some(Redis::Streams(redis)) => builder = builder.adapter(redis.factory()),
        None => {}
    }
    if let Some(bytes) = ws_read_buffer_from_env() {
        builder = builder.engine(move |engine| engine.websocket_read_buffer_size(bytes));
    }
    if let Some(forwarding) = forwarding {
        let prefix = forwarding.sid_prefix();
        builder = builder.engine(move |engine| engine.sid_prefix(prefix));
    }
    let (layer, io) = builder.build_layer();
    io.ns("/", on_root);
    if let Some(admin) = &monitor.admin {
        admin.serve(&io);
    }
    // Server-side events from the other servers of the cluster: `ping` is answered with
    // its argument, so a test can check server-to-server acks in both directions.
    io.on_server_event("ping", |args: Payload, ack: ServerAck| {
        let data = args.get::<Value>(0).unwrap_or(Value::Null);
        let _ = ack.send(&json!({ "pong": data, "server": "ferrio" }));
    });
    io.ns(
        "/private",
        (|socket: SocketRef| {
            let _ = socket.emit("welcome", &json!({ "id": socket.id().as_str() }));
        })
        .with(check_token),
    );
    io.dyn_ns("^/tenant-[a-z0-9]+$", |socket: SocketRef| {
        let _ = socket.emit("welcome", &json!({ "nsp": socket.ns() }));
    })
    .expect("the tenant pattern is a valid regular expression");
    (layer, io)
}

/// A `500` with the error in a JSON body, for operations that failed.
fn internal_error(err: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": err.to_string() })),
    )
        .into_response()
}

/// A `400` with a JSON body, for requests the routes cannot read.
fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string() })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct EmitRequest {
    room: Option<String>,
    event: String,
    data: Value,
}

async fn emit(io: Io, body: Result<Json<EmitRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let result = match request.room {
        Some(room) => io.to(room).emit(&request.event, &request.data),
        None => io.emit(&request.event, &request.data),
    };
    match result {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(err) => bad_request(err),
    }
}

#[derive(Deserialize)]
struct RoomQuery {
    room: Option<String>,
}

async fn sockets(io: Io, Query(query): Query<RoomQuery>) -> Response {
    let operator = match query.room {
        Some(room) => io.to(room),
        None => io.within(Vec::<String>::new()),
    };
    match operator.fetch_sockets().await {
        Ok(sockets) => {
            let mut ids: Vec<String> = sockets.iter().map(|s| s.id.to_string()).collect();
            ids.sort();
            Json(json!({ "ids": ids })).into_response()
        }
        Err(err) => internal_error(err),
    }
}

#[derive(Deserialize)]
struct ServerEmitRequest {
    event: String,
    data: Value,
}

/// Emits a server-side event to the other servers and waits (2 s) for their answers.
async fn server_emit(io: Io, body: Result<Json<ServerEmitRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let answers = tokio::time::timeout(
        Duration::from_secs(2),
        io.server_side_emit_with_ack(&request.event, &(request.data,)),
    )
    .await;
    match answers {
        Ok(Ok(answers)) => {
            let responses: Vec<Value> = answers
                .iter()
                .map(|answer| answer.get::<Value>(0).unwrap_or(Value::Null))
                .collect();
            Json(json!({ "responses": responses })).into_response()
        }
        Ok(Err(err)) => internal_error(err),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({ "error": "no answer within 2 s" })),
        )
            .into_response(),
    }
}

/// The cluster as this server sees it: how many servers, and the Redis adapter's health.
async fn cluster(io: Io, redis: Option<Redis>) -> Response {
    let servers = io.server_count().await.ok();
    let redis = redis.map(|redis| {
        let health = redis.health();
        json!({
            "adapter": redis.kind(),
            "uid": redis.uid(),
            "connected": health.connected,
            "published": health.published,
            "unpublished": health.unpublished,
            "received": health.received,
            "malformed": health.malformed,
            "reconnects": health.reconnects,
        })
    });
    Json(json!({ "servers": servers, "redis": redis })).into_response()
}

#[derive(Deserialize)]
struct DisconnectRequest {
    room: Option<String>,
}

async fn disconnect(io: Io, body: Result<Json<DisconnectRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let result = match request.room {
        Some(room) => io.to(room).disconnect(),
        None => io.disconnect_sockets(),
    };
    match result {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(err) => internal_error(err),
    }
}

/// What watches the server: the Prometheus metrics (feature `metrics`).
struct Monitor {
    #[cfg(feature = "metrics")]
    metrics: ferrio::metrics::Metrics,
    /// `ADMIN=1`: the `@socket.io/admin-ui` protocol on `/admin`.
    admin: Option<ferrio_admin::AdminUi>,
}

/// The built Admin UI of the npm package `@socket.io/admin-ui`, installed by the
/// end-to-end tests' `npm ci`; `ADMIN_UI_DIR` points elsewhere.
const ADMIN_UI_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/e2e/node_modules/@socket.io/admin-ui/ui/dist"
);

/// The Admin UI server of `ADMIN=1`: user `admin`, password `admin-pass`, development mode,
/// not read-only.
fn admin_from_env() -> Option<ferrio_admin::AdminUi> {
    if !std::env::var("ADMIN").is_ok_and(|v| v == "1") {
        return None;
    }
    // A low cost: this demo's password is public anyway, and debug builds hash slowly.
    let hash = match bcrypt::hash("admin-pass", 6) {
        Ok(hash) => hash,
        Err(e) => exit_with(&format!("cannot hash the admin password: {e}")),
    };
    let mut admin = ferrio_admin::AdminUi::builder()
        .basic_auth("admin", hash)
        .mode(ferrio_admin::Mode::Development);
    if std::env::var("ADMIN_READONLY").is_ok_and(|v| v == "1") {
        admin = admin.readonly(true);
    }
    if let Some(interval) = millis_from_env("ADMIN_STATS_MS") {
        admin = admin.stats_interval(interval);
    }
    Some(admin.build())
}

impl Monitor {
    /// Adds `GET /metrics` when the metrics are built in, and with `ADMIN=1` the Admin UI
    /// under `/admin-ui/`.
    fn routes(&self, app: Router) -> Router {
        let app = if self.admin.is_some() {
            let dir = std::env::var("ADMIN_UI_DIR").unwrap_or_else(|_| ADMIN_UI_DIR.to_owned());
            app.nest_service("/admin-ui", tower_http::services::ServeDir::new(dir))
        } else {
            app
        };
        #[cfg(feature = "metrics")]
        let app = {
            let metrics = self.metrics.clone();
            app.route(
                "/metrics",
                get(move |io: Io| async move {
                    let content_type = ferrio::metrics::Metrics::CONTENT_TYPE;
                    (
                        [(axum::http::header::CONTENT_TYPE, content_type)],
                        metrics.render(&io),
                    )
                }),
            )
        };
        app
    }
}

#[tokio::main]
async fn main() {
    serve::init_tracing();
    // A bad setting exits with status 2 before the port is bound and announced.
    let _ = (
        millis_from_env("PING_INTERVAL_MS"),
        millis_from_env("PING_TIMEOUT_MS"),
        millis_from_env("RECOVERY_MAX_DISCONNECTION_MS"),
        parser_from_env(),
        ws_read_buffer_from_env(),
    );
    let streams = std::env::var("REDIS_STREAMS").is_ok_and(|v| v == "1");
    let redis = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let opened = if streams {
                RedisStreamsAdapter::open(&url).map(Redis::Streams)
            } else {
                RedisAdapter::open(&url).map(Redis::PubSub)
            };
            match opened {
                Ok(redis) => Some(redis),
                Err(e) => exit_with(&format!("REDIS_URL {url:?} is not a Redis URL: {e}")),
            }
        }
        _ if streams => exit_with("REDIS_STREAMS=1 needs REDIS_URL"),
        _ => None,
    };
    // With Redis, any node serves any session: requests for another node's sessions are
    // passed to it, at the address it announces.
    let listener = serve::bind("interop").await;
    let port = serve::port(&listener);
    let forwarding = redis
        .as_ref()
        .map(|redis| redis.forwarding(advertise_addr(port)));
    let monitor = Monitor {
        #[cfg(feature = "metrics")]
        metrics: ferrio::metrics::Metrics::new(),
        admin: admin_from_env(),
    };
    let (layer, io) = socketio(redis.as_ref(), forwarding.as_ref(), &monitor);
    if let Err(e) = io.ready().await {
        exit_with(&format!("the adapter did not start: {e}"));
    }
    if let Some(Err(e)) = match &forwarding {
        Some(forwarding) => Some(forwarding.announce().await),
        None => None,
    } {
        exit_with(&format!("cannot announce this node in Redis: {e}"));
    }
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/emit", post(emit))
        .route("/sockets", get(sockets))
        .route("/disconnect", post(disconnect))
        .route("/server-emit", post(server_emit))
        .route("/cluster", get(move |io: Io| cluster(io, redis.clone())));
    let app = monitor.routes(app).layer(layer);
    let app = match &forwarding {
        // Outermost, so it sees requests for other nodes' sessions first.
        Some(forwarding) => app.layer(forwarding.layer(&sio_path())),
        None => app,
    };
    serve::serve(
        "interop",
        listener,
        app,
        move || async move { io.close().await },
    )
    .await;
}
