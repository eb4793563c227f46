//! The axum integration: the layer among ordinary routes and tower-http layers, the `Io`
//! extractor, the router's state, custom paths, and the standalone service.

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use common::{Client, joined, serve};
use ferrio::{AckSender, Data, Io, SocketRef};
use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

/// Sends `request` to `app` in memory and returns the status and the body as text.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// `/` answers `ping` with `pong` and joins the room its client asks for.
fn setup(io: &Io) {
    io.ns("/", |socket: SocketRef| {
        socket.on("ping", |ack: AckSender| ack.send("pong"));
        socket.on(
            "join",
            |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room);
                ack.send(&true)
            },
        );
    });
}

/// Joins `/` and checks that the server answers an event.
async fn assert_socket_io_works(client: &mut Client) {
    client.join("/", None).await;
    client.send(r#"21["ping"]"#).await;
    assert_eq!(client.text().await, r#"31["pong"]"#);
}

/// An Engine.IO polling handshake at `path`: the status, and whether the body is an open
/// packet.
async fn polling_handshake(app: &Router, path: &str) -> (StatusCode, bool) {
    let (status, _, body) =
        call(app, get_request(&format!("{path}?EIO=4&transport=polling"))).await;
    (status, body.starts_with(r#"0{"sid":"#))
}

#[tokio::test]
async fn the_layer_leaves_ordinary_routes_answering() {
    let (layer, io) = Io::new_layer();
    setup(&io);
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route("/echo", post(|body: String| async move { body }))
        .layer(layer);
    let addr = serve(app.clone()).await;

    assert_eq!(call(&app, get_request("/hello")).await.2, "hi");
    let echo = Request::post("/echo").body(Body::from("text")).unwrap();
    assert_eq!(call(&app, echo).await.2, "text");
    assert_eq!(
        call(&app, get_request("/nope")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        polling_handshake(&app, "/socket.io/").await,
        (StatusCode::OK, true)
    );

    let mut client = Client::connect(addr).await;
    assert_socket_io_works(&mut client).await;
}

#[tokio::test]
async fn the_layer_works_under_cors_and_trace_layers() {
    let (layer, io) = Io::new_layer();
    setup(&io);
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .layer(layer)
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http());
    let addr = serve(app.clone()).await;

    let request = Request::get("/hello")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&app, request).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hi"));
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

    let mut client = Client::connect(addr).await;
    assert_socket_io_works(&mut client).await;
}

#[tokio::test]
async fn the_layer_works_around_cors_and_trace_layers() {
    let (layer, io) = Io::new_layer();
    setup(&io);
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .layer(layer);
    let addr = serve(app.clone()).await;
    let request = Request::get("/hello")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let mut client = Client::connect(addr).await;
    assert_socket_io_works(&mut client).await;
}

async fn notify(io: Io, Path(room): Path<String>, body: String) -> StatusCode {
    match io.to(room).emit("notice", &body) {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[tokio::test]
async fn the_io_extractor_lets_an_http_handler_emit_to_a_room() {
    let (layer, io) = Io::new_layer();
    setup(&io);
    let app = Router::new()
        .route("/notify/{room}", post(notify))
        .layer(layer);
    let addr = serve(app.clone()).await;
    let mut member = joined(addr).await;
    member.send(r#"21["join","news"]"#).await;
    assert_eq!(member.text().await, "31[true]");
    let mut outsider = joined(addr).await;

    let request = Request::post("/notify/news")
        .body(Body::from("extra!"))
        .unwrap();
    assert_eq!(call(&app, request).await.0, StatusCode::NO_CONTENT);
    assert_eq!(member.text().await, r#"2["notice","extra!"]"#);
    outsider.assert_quiet().await;
}

#[tokio::test]
async fn the_io_extractor_without_the_layer_is_a_500() {
    let app = Router::new().route("/", get(|_io: Io| async { "unreachable" }));
    let (status, _, body) = call(&app, get_request("/")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, ferrio::MissingIo.to_string());
}

#[tokio::test]
async fn io_as_router_state() {
    let (layer, io) = Io::new_layer();
    setup(&io);
    let app = Router::new()
        .route(
            "/count",
            get(|State(io): State<Io>| async move { io.sockets().len().to_string() }),
        )
        .with_state(io.clone())
        .layer(layer);
    let addr = serve(app.clone()).await;
    let _a = joined(addr).await;
    let _b = joined(addr).await;
    assert_eq!(call(&app, get_request("/count")).await.2, "2");
}

#[tokio::test]
async fn a_custom_path() {
    let (layer, io) = Io::builder().path("/rt/").build_layer();
    setup(&io);
    let app = Router::new().layer(layer);
    let addr = serve(app.clone()).await;
    let mut client = Client::connect_path(addr, "/rt/").await;
    assert_socket_io_works(&mut client).await;
    assert_eq!(polling_handshake(&app, "/rt").await, (StatusCode::OK, true));
    assert_eq!(
        polling_handshake(&app, "/socket.io/").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_layer_and_its_service_hand_out_the_same_io() {
    let (layer, io) = Io::new_layer();
    io.ns("/x", |_: SocketRef| {});
    assert!(layer.io().of("/x").is_some());
    let (service, io) = Io::builder().build_service();
    io.ns("/y", |_: SocketRef| {});
    assert!(service.io().of("/y").is_some());
}

#[tokio::test]
async fn build_service_under_route_service() {
    let (service, io) = Io::builder().build_service();
    setup(&io);
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route_service("/socket.io/", service);
    let addr = serve(app.clone()).await;
    let mut client = Client::connect(addr).await;
    assert_socket_io_works(&mut client).await;
    assert_eq!(
        polling_handshake(&app, "/socket.io/").await,
        (StatusCode::OK, true)
    );
    assert_eq!(call(&app, get_request("/hello")).await.2, "hi");
}

#[tokio::test]
async fn build_service_answers_404_outside_its_path() {
    let (service, _io) = Io::builder().build_service();
    let response = service.oneshot(get_request("/elsewhere")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn build_service_under_nest_service_with_path_slash() {
    let (service, io) = Io::builder().path("/").build_service();
    setup(&io);
    let app = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .nest_service("/socket.io", service);
    let addr = serve(app.clone()).await;
    assert_eq!(
        polling_handshake(&app, "/socket.io/").await,
        (StatusCode::OK, true)
    );
    let mut client = Client::connect(addr).await;
    assert_socket_io_works(&mut client).await;
    assert_eq!(call(&app, get_request("/hello")).await.2, "hi");
}
