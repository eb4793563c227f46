//! The chat itself: the Socket.IO handlers of namespace `/`, the HTTP routes, and the checks
//! every name, room and text goes through, whether it comes from a browser or from HTTP.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferrio::{
    AckSender, Bytes, ConnectHandler, ConnectRefusal, Data, EmitError, Extension, Io, IoBuilder,
    SocketIoLayer, SocketRef,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The longest room name, in characters.
const MAX_ROOM: usize = 64;
/// The longest user name, in characters.
const MAX_NAME: usize = 32;
/// The longest message, in characters.
const MAX_TEXT: usize = 500;

/// The page and its script, built into the binary.
const PAGE: &str = include_str!("../static/index.html");
const SCRIPT: &str = include_str!("../static/chat.js");

/// What the page may load and run: only files of this server (the Socket.IO connection
/// included), plus the page's own `<style>`. A message that slipped through as HTML still
/// could not run a script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'";

/// Who a socket is, as its connect middleware checked it: stored on the socket and read back
/// by the other handlers with the `Extension` extractor.
#[derive(Clone, Debug)]
struct Member {
    room: String,
    name: String,
}

/// The `auth` payload of the page's connection: `io({ auth: { room, name } })`.
#[derive(Deserialize)]
struct Join {
    room: String,
    name: String,
}

/// A chat message as every page receives it, in the `message` event.
#[derive(Serialize)]
struct Message<'a> {
    name: &'a str,
    text: &'a str,
}

/// `value` without surrounding whitespace, when what is left is neither empty nor longer than
/// `max` characters; otherwise a message saying what is wrong with `field`.
fn check(field: &str, value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err(format!("{field} is empty"))
    } else if value.chars().count() > max {
        Err(format!("{field} is longer than {max} characters"))
    } else {
        Ok(value.to_owned())
    }
}

/// Sends a message to every socket of `room`, on every server of the cluster. The one place
/// messages leave from: the socket handler and the HTTP route both call it.
fn post_to_room(io: &Io, room: &str, name: &str, text: &str) -> Result<(), EmitError> {
    io.to(room.to_owned())
        .emit("message", &Message { name, text })
}

/// Tells the pages of `room` that someone came or went. They answer by asking for the count
/// (the `online` event), so each page ends up with a count taken after the last change, even
/// when several changes race across the servers of a cluster.
fn presence_changed(io: &Io, room: &str) {
    if let Err(err) = io.to(room.to_owned()).emit_args("presence", &()) {
        tracing::warn!(room, %err, "presence not sent");
    }
}

/// The connect middleware: admits a client only with a valid room and name. A refused
/// client's `connect_error` gets the reason.
fn admit(socket: SocketRef, Data(join): Data<Join>) -> Result<(), ConnectRefusal> {
    let refuse = |reason: String| ConnectRefusal::new("invalid room or name").with_data(&reason);
    let room = check("room", &join.room, MAX_ROOM).map_err(refuse)?;
    let name = check("name", &join.name, MAX_NAME).map_err(refuse)?;
    socket.insert(Member { room, name });
    Ok(())
}

/// Runs for every admitted socket: joins its room and registers its handlers.
fn on_connect(socket: SocketRef, io: Io, Extension(member): Extension<Member>) {
    tracing::debug!(socket = %socket.id(), room = member.room, name = member.name, "joined");
    socket.join(member.room.clone());
    presence_changed(&io, &member.room);

    // `message` (text) + ack: sent to the whole room, the sender included, so every page
    // shows messages in the order the server saw them. The ack is `{"ok": true}` or
    // `{"error": "..."}`. A text that is not a string gets `{"error"}` from `Data` itself.
    socket.on(
        "message",
        |io: Io, Extension(member): Extension<Member>, Data(text): Data<String>, ack: AckSender| {
            let sent = check("text", &text, MAX_TEXT).and_then(|text| {
                post_to_room(&io, &member.room, &member.name, &text).map_err(|e| e.to_string())
            });
            match sent {
                Ok(()) => ack.send(&json!({ "ok": true })),
                Err(error) => ack.send(&json!({ "error": error })),
            }
        },
    );

    // `online` + ack: how many sockets are in the room. `fetch_sockets` asks every server of
    // the cluster (only this one with the in-memory adapter).
    socket.on(
        "online",
        async |io: Io, Extension(member): Extension<Member>, ack: AckSender| {
            let sockets = io.to(member.room).fetch_sockets().await;
            match sockets {
                Ok(sockets) => ack.send(&sockets.len()),
                Err(err) => ack.send(&json!({ "error": err.to_string() })),
            }
        },
    );

    // By now the socket has left its room: the count the others ask for leaves it out.
    socket.on_disconnect(|io: Io, Extension(member): Extension<Member>| {
        presence_changed(&io, &member.room);
    });
}

/// Builds the Socket.IO layer (with the builder's settings, the adapter among them) and
/// registers the chat on namespace `/`.
pub(crate) fn socketio(builder: IoBuilder) -> (SocketIoLayer, Io) {
    let (layer, io) = builder.build_layer();
    io.ns("/", on_connect.with(admit));
    (layer, io)
}

/// The body of `POST /api/rooms/{room}/messages`.
#[derive(Deserialize)]
struct PostMessage {
    name: String,
    text: String,
}

/// A `400` with a JSON body `{"error": "..."}`.
fn bad_request(error: impl std::fmt::Display) -> Response {
    let body = Json(json!({ "error": error.to_string() }));
    (StatusCode::BAD_REQUEST, body).into_response()
}

/// `POST /api/rooms/{room}/messages`, JSON `{"name": string, "text": string}`: an ordinary
/// axum handler that reaches Socket.IO through the `Io` extractor. 204 once sent; 400 with
/// `{"error": "..."}` for a body or a room it cannot accept.
async fn post_message(
    io: Io,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<PostMessage>, JsonRejection>,
) -> Response {
    let (Path(room), Json(body)) = match (room, body) {
        (Ok(room), Ok(body)) => (room, body),
        (Err(rejection), _) => return bad_request(rejection.body_text()),
        (_, Err(rejection)) => return bad_request(rejection.body_text()),
    };
    let checked = check("room", &room, MAX_ROOM).and_then(|room| {
        let name = check("name", &body.name, MAX_NAME)?;
        let text = check("text", &body.text, MAX_TEXT)?;
        Ok((room, name, text))
    });
    let (room, name, text) = match checked {
        Ok(checked) => checked,
        Err(error) => return bad_request(error),
    };
    match post_to_room(&io, &room, &name, &text) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            let body = Json(json!({ "error": err.to_string() }));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
    }
}

/// `body` as a JavaScript file.
fn javascript(body: Bytes) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
}

/// `GET /`: the page.
async fn page() -> impl IntoResponse {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    (headers, PAGE)
}

/// `GET /chat.js`: the page's script.
async fn script() -> impl IntoResponse {
    javascript(Bytes::from_static(SCRIPT.as_bytes()))
}

/// `GET /socket.io.min.js`: the Socket.IO browser client (the router's state).
async fn client(State(client_js): State<Bytes>) -> impl IntoResponse {
    javascript(client_js)
}

/// The whole app: the page, its script, the Socket.IO browser client (`client_js`, the
/// bytes of `socket.io.min.js`), the HTTP API, and Socket.IO itself (`layer`) around them.
pub(crate) fn router(client_js: Bytes, layer: SocketIoLayer) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/chat.js", get(script))
        .route("/socket.io.min.js", get(client))
        .route(
            "/api/rooms/{room}/messages",
            // A body is a name and a text: 16 KiB is plenty, and the handler says 400.
            post(post_message).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .with_state(client_js)
        .layer(layer)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let (layer, _io) = socketio(Io::builder());
        router(Bytes::from_static(b"/* client */"), layer)
    }

    /// POSTs `body` (sent as JSON) to `uri`; the status and the body read as JSON (`null`
    /// when empty).
    async fn post_json(uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    #[tokio::test]
    async fn a_good_message_is_accepted() {
        let body = json!({ "name": "ada", "text": "hello" }).to_string();
        let (status, body) = post_json("/api/rooms/lobby/messages", body).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(body, Value::Null);
    }

    #[tokio::test]
    async fn bad_input_gets_400_with_a_json_error() {
        let lobby = "/api/rooms/lobby/messages";
        let long_room = format!("/api/rooms/{}/messages", "r".repeat(MAX_ROOM + 1));
        let message = |name: &str, text: &str| json!({ "name": name, "text": text }).to_string();
        let cases = [
            (lobby, "{not json".to_owned()),
            (lobby, "[]".to_owned()),
            (lobby, json!({ "text": "hi" }).to_string()),
            (lobby, json!({ "name": "ada" }).to_string()),
            (lobby, json!({ "name": 7, "text": "hi" }).to_string()),
            (lobby, message("", "hi")),
            (lobby, message("ada", "  ")),
            (lobby, message("ada", &"x".repeat(MAX_TEXT + 1))),
            (lobby, message(&"n".repeat(MAX_NAME + 1), "hi")),
            (&long_room, message("ada", "hi")),
            ("/api/rooms/%20/messages", message("ada", "hi")),
            // Over the body limit: still a 400 with a JSON body, not a bare 413.
            (lobby, "x".repeat(64 * 1024)),
        ];
        for (uri, body) in cases {
            let shown: String = body.chars().take(60).collect();
            let (status, reply) = post_json(uri, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {shown}");
            let error = reply["error"].as_str().unwrap_or_default();
            assert!(!error.is_empty(), "{uri} {shown}: {reply}");
        }
    }

    #[tokio::test]
    async fn a_body_without_a_json_content_type_is_refused() {
        let request = Request::post("/api/rooms/lobby/messages")
            .body(Body::from(
                json!({ "name": "ada", "text": "hi" }).to_string(),
            ))
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn check_trims_and_counts_characters_not_bytes() {
        assert_eq!(check("name", "  ada ", 3), Ok("ada".to_owned()));
        assert_eq!(check("name", "ééé", 3), Ok("ééé".to_owned()));
        assert!(check("name", "éééé", 3).is_err());
        assert!(check("name", "\n\t ", 3).is_err());
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_script_and_the_client() {
        for (uri, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/chat.js", "text/javascript; charset=utf-8"),
            ("/socket.io.min.js", "text/javascript; charset=utf-8"),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let response = app().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
        }
    }
}
