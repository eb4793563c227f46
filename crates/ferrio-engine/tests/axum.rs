//! The engine layer inside a real axum `Router`, under tower-http's CORS and trace layers.

mod common;
use common::*;

use std::net::SocketAddr;

use axum::Router;
use ferrio_engine::{EngineIoConfig, Message, Sid};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

/// The test app's router (engine layer plus `GET /health`) under CORS and tracing.
fn full_stack(router: Router) -> Router {
    router
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
}

/// A WebSocket to `path` on a real server.
async fn ws_at(addr: SocketAddr, path_and_query: &str) -> Result<WsClient, http::StatusCode> {
    let req = format!("ws://{addr}{path_and_query}")
        .into_client_request()
        .unwrap();
    ws_connect_request(req).await
}

#[tokio::test]
async fn other_routes_still_answer() {
    let app = echo_app(EngineIoConfig::default());
    let addr = serve(full_stack(app.router)).await;

    let health = http(addr, "GET", "/health", "").await;
    assert_eq!((health.status.as_u16(), health.body.as_str()), (200, "ok"));
    assert_eq!(health.headers["access-control-allow-origin"], "*");

    let missing = http(addr, "GET", "/nowhere", "").await;
    assert_eq!(missing.status, 404);
    assert!(app.engine.is_empty(), "no session from other routes");
}

#[tokio::test]
async fn polling_works_through_the_full_stack() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(full_stack(app.router)).await;

    let handshake = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", "").await;
    let sid = handshake.sid();
    assert_eq!(
        handshake.headers["content-type"],
        "text/plain; charset=UTF-8"
    );
    assert_eq!(
        handshake.headers["access-control-allow-origin"], "*",
        "the outer CORS layer saw the engine's response"
    );
    assert_eq!(events.next().await, Event::Open(sid));

    let uri = poll_uri(sid);
    let posted = http(addr, "POST", &uri, "4hi\x1e4there").await;
    assert_eq!((posted.status.as_u16(), posted.body.as_str()), (200, "ok"));
    let polled = http(addr, "GET", &uri, "").await;
    assert_eq!(
        (polled.status.as_u16(), polled.body.as_str()),
        (200, "4hi\x1e4there")
    );
    assert_eq!(events.message_of(sid).await, Message::from("hi"));
    assert_eq!(events.message_of(sid).await, Message::from("there"));

    // Engine errors pass through the stack unchanged.
    http(addr, "GET", "/engine.io/?EIO=4", "")
        .await
        .assert_error(0);
}

#[tokio::test]
async fn websocket_works_through_the_full_stack() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(full_stack(app.router)).await;

    let (mut ws, sid) = ws_handshake(addr).await;
    assert_eq!(events.next().await, Event::Open(sid));
    ws_send(&mut ws, "4through layers").await;
    assert_eq!(ws_next_text(&mut ws).await, "4through layers");
    assert_eq!(
        events.message_of(sid).await,
        Message::from("through layers")
    );

    // An upgrade from polling works through the stack as well.
    let polling = http_handshake(addr).await;
    let mut upgraded = ws_upgrade(addr, polling).await;
    ws_send(&mut upgraded, "4upgraded").await;
    assert_eq!(ws_next_text(&mut upgraded).await, "4upgraded");
}

#[tokio::test]
async fn custom_path_is_served_with_and_without_trailing_slash() {
    let app = echo_app(EngineIoConfig::default().path("/rt/"));
    let addr = serve(full_stack(app.router)).await;

    let mut sockets = Vec::new();
    for path in ["/rt/", "/rt"] {
        let handshake = http(addr, "GET", &format!("{path}?EIO=4&transport=polling"), "").await;
        let sid = handshake.sid();
        let uri = format!("{path}?EIO=4&transport=polling&sid={sid}");
        let posted = http(addr, "POST", &uri, "4ping").await;
        assert_eq!(posted.body, "ok", "POST on {path}");
        assert_eq!(
            http(addr, "GET", &uri, "").await.body,
            "4ping",
            "GET on {path}"
        );

        let mut ws = ws_at(addr, &format!("{path}?EIO=4&transport=websocket"))
            .await
            .unwrap_or_else(|status| panic!("websocket on {path}: {status}"));
        let open = open_json(&ws_next_text(&mut ws).await);
        assert!(Sid::parse(open["sid"].as_str().unwrap()).is_some());
        ws_send(&mut ws, "4hello").await;
        assert_eq!(ws_next_text(&mut ws).await, "4hello");
        // Kept open: a dropped WebSocket ends its session.
        sockets.push(ws);
    }
    assert_eq!(app.engine.len(), 4);

    // The default path now belongs to the inner router.
    let default = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", "").await;
    assert_eq!(default.status, 404);
    assert_eq!(
        ws_at(addr, "/engine.io/?EIO=4&transport=websocket")
            .await
            .err(),
        Some(http::StatusCode::NOT_FOUND)
    );
    // Paths that merely start with the engine's path are not the engine's.
    assert_eq!(
        http(addr, "GET", "/rtx/?EIO=4&transport=polling", "")
            .await
            .status,
        404
    );
    assert_eq!(
        http(addr, "GET", "/rt/x?EIO=4&transport=polling", "")
            .await
            .status,
        404
    );
    assert_eq!(app.engine.len(), 4, "no session from the refused paths");
}
