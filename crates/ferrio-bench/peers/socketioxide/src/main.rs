//! Benchmark peer: the benchmark contract of `interop` (`docs/examples.md`, section 4,
//! plus `welcome`, `join`, `/health` and `/emit`) served by socketioxide 0.18.9, used the way
//! its README shows. It exists only to be measured beside Ferrio.
//!
//! ```text
//! PORT=0 cargo run --release -p bench-peer-socketioxide    # prints `listening on PORT`
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::{Sid, Socket};
use tower_http::cors::CorsLayer;

#[path = "../../serve.rs"]
mod serve;

/// The most `bcast` packets one `burst` may ask for.
const MAX_BURST: usize = 100_000;

/// Whether the client asked for an ack. `AckSender` cannot tell, and `echo` answers with an
/// ack when asked and with an `echo` event otherwise.
struct AckRequested(bool);

impl<A: Adapter> FromMessageParts<A> for AckRequested {
    type Error = Infallible;

    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self(ack_id.is_some()))
    }
}

/// A struct rather than `json!`, which would sort the keys: the frame reads like `interop`'s.
#[derive(Serialize)]
struct Welcome {
    id: Sid,
    auth: Value,
}

#[derive(Deserialize)]
struct Burst {
    n: usize,
    payload: Value,
}

/// An `echo` argument: JSON, or binary (one attachment, as the `big-echo` scenario sends).
/// socketioxide hands a binary attachment to the argument's `Deserialize` as bytes, and
/// sends bytes a `Serialize` gives it (`serialize_bytes`) as an attachment again; its own
/// documentation points to `rmpv::Value` for mixed arguments. This type keeps
/// `serde_json::Value` for JSON, so the JSON echo scenarios measure what they measured before,
/// and adds the one case `serde_json::Value` cannot hold. Binary nested inside JSON is not
/// served (no scenario sends it).
enum EchoArg {
    Json(Value),
    Binary(Vec<u8>),
}

impl Serialize for EchoArg {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EchoArg::Json(value) => value.serialize(serializer),
            EchoArg::Binary(bytes) => serializer.serialize_bytes(bytes),
        }
    }
}

impl<'de> Deserialize<'de> for EchoArg {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EchoArgVisitor)
    }
}

/// Bytes become [`EchoArg::Binary`]; everything else is read as a `serde_json::Value`.
struct EchoArgVisitor;

impl<'de> serde::de::Visitor<'de> for EchoArgVisitor {
    type Value = EchoArg;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value or binary data")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<EchoArg, E> {
        Ok(EchoArg::Binary(v.to_vec()))
    }
    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<EchoArg, E> {
        Ok(EchoArg::Binary(v))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::Bool(v)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::from(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::from(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::from(v)))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::String(v)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::Null))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<EchoArg, E> {
        Ok(EchoArg::Json(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<EchoArg, D::Error> {
        Value::deserialize(d).map(EchoArg::Json)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<EchoArg, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(EchoArg::Json)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<EchoArg, A::Error> {
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(EchoArg::Json)
    }
}

/// `Data<EchoArg>` is the first argument (socketioxide's extractor has no "all arguments"
/// form); the benchmark sends exactly one. socketioxide 0.18 has only async handlers and spawns a
/// task for every call (`handler/message.rs`); there is no inline form to choose instead.
async fn on_connect(socket: SocketRef, Data(auth): Data<Value>) {
    let welcome = Welcome {
        id: socket.id,
        auth,
    };
    let _ = socket.emit("welcome", &welcome);

    socket.on(
        "echo",
        async |socket: SocketRef,
               Data(arg): Data<EchoArg>,
               ack: AckSender,
               AckRequested(asked): AckRequested| {
            let _ = if asked {
                ack.send(&arg)
            } else {
                socket.emit("echo", &arg)
            };
        },
    );
    socket.on("burst", async |io: SocketIo, Data(burst): Data<Burst>| {
        if burst.n > MAX_BURST {
            return;
        }
        for _ in 0..burst.n {
            // Like `interop`: the burst stops at the first refused emit.
            if io.emit("bcast", &burst.payload).await.is_err() {
                return;
            }
        }
    });
    socket.on(
        "join",
        async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            socket.join(room);
            let _ = ack.send(&true);
        },
    );
}

#[derive(Deserialize)]
struct EmitRequest {
    room: Option<String>,
    event: String,
    data: Value,
}

/// A `400` with a JSON body, as `interop` answers requests it cannot read.
fn bad_request(message: impl std::fmt::Display) -> Response {
    let body = Json(json!({ "error": message.to_string() }));
    (StatusCode::BAD_REQUEST, body).into_response()
}

async fn emit(
    State(io): State<SocketIo>,
    body: Result<Json<EmitRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let sent = match request.room {
        Some(room) => io.to(room).emit(&request.event, &request.data).await,
        None => io.emit(&request.event, &request.data).await,
    };
    match sent {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(err) => bad_request(err),
    }
}

#[tokio::main]
async fn main() {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(25_000))
        .ping_timeout(Duration::from_millis(20_000))
        .max_payload(1_000_000)
        // socketioxide's default is 128 queued packets per socket; Ferrio's is 1024. The same
        // bound for both, so a burst either peer can take is one the other can take too.
        .max_buffer_size(1024)
        .build_layer();
    io.ns("/", on_connect);

    let app = Router::new()
        .route("/health", get(async || "ok"))
        .route("/emit", post(emit))
        .with_state(io.clone())
        .layer(layer)
        // socketioxide leaves CORS to tower-http; any origin, with credentials, like `interop`.
        .layer(CorsLayer::very_permissive());
    serve::run(
        "bench-peer-socketioxide",
        app,
        async move { io.close().await },
    )
    .await;
}
