//! Who may open a WebSocket, against a real server: the CORS allow-list (cross-site WebSocket
//! hijacking) and the `allow_request` hook, on new WebSocket sessions and on upgrades.

mod common;
use common::*;

use std::net::SocketAddr;

use ferrio_engine::{Cors, EngineIoConfig, Message, Sid, Transport};
use http::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request as WsRequest;

const GOOD: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

/// A WebSocket request for the engine with extra headers.
fn ws_request(addr: SocketAddr, query: &str, headers: &[(&'static str, &str)]) -> WsRequest {
    let mut req = format!("ws://{addr}/engine.io/?{query}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        req.headers_mut()
            .insert(*name, value.parse().expect("valid header value"));
    }
    req
}

/// Runs the upgrade of `sid` on a WebSocket sent with `headers`.
async fn upgrade_with(addr: SocketAddr, sid: Sid, headers: &[(&'static str, &str)]) -> WsClient {
    let query = format!("EIO=4&transport=websocket&sid={sid}");
    let mut ws = ws_connect_request(ws_request(addr, &query, headers))
        .await
        .expect("upgrade accepted");
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_next_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    ws
}

/// A polling round trip with the echo handler.
async fn assert_polling_echo(addr: SocketAddr, sid: Sid, text: &str) {
    let posted = http(addr, "POST", &poll_uri(sid), &format!("4{text}")).await;
    assert_eq!((posted.status.as_u16(), posted.body.as_str()), (200, "ok"));
    let polled = http(addr, "GET", &poll_uri(sid), "").await;
    assert_eq!(polled.body, format!("4{text}"));
}

// ---------------------------------------------------------------------------------------------
// Origin

#[tokio::test]
async fn a_websocket_handshake_from_a_refused_origin_is_refused() {
    let TestApp {
        router,
        engine,
        mut events,
    } = echo_app(EngineIoConfig::default().cors(Cors::allow_origins([GOOD])));
    let addr = serve(router).await;

    for bad in [
        EVIL,
        "https://app.example.evil",
        "http://app.example",
        "null",
    ] {
        let refused = ws_connect_request(ws_request(
            addr,
            "EIO=4&transport=websocket",
            &[("origin", bad)],
        ))
        .await;
        // 400 with code 3, as a poll from that origin gets.
        assert_eq!(refused.err(), Some(StatusCode::BAD_REQUEST), "origin {bad}");
    }
    assert!(engine.is_empty(), "a refused origin opened a session");

    // Listed origins, and clients that send no Origin (not browsers), are let in.
    let (mut sids, mut sockets) = (Vec::new(), Vec::new());
    for headers in [&[("origin", GOOD)][..], &[]] {
        let mut ws = ws_connect_request(ws_request(addr, "EIO=4&transport=websocket", headers))
            .await
            .expect("websocket accepted");
        let open = open_json(&ws_next_text(&mut ws).await);
        sids.push(Sid::parse(open["sid"].as_str().expect("sid")).expect("valid sid"));
        ws_send(&mut ws, "4hi").await;
        assert_eq!(ws_next_text(&mut ws).await, "4hi");
        sockets.push(ws);
    }
    assert_eq!(engine.len(), 2);
    assert_eq!(
        events.next().await,
        Event::Open(sids[0]),
        "the first session is the first allowed one"
    );
}

#[tokio::test]
async fn an_upgrade_from_a_refused_origin_is_refused_and_the_session_stays_on_polling() {
    let TestApp {
        router,
        engine,
        mut events,
    } = echo_app(EngineIoConfig::default().cors(Cors::allow_origins([GOOD])));
    let addr = serve(router).await;
    let sid = http_handshake(addr).await;

    let query = format!("EIO=4&transport=websocket&sid={sid}");
    let refused = ws_connect_request(ws_request(addr, &query, &[("origin", EVIL)])).await;
    assert_eq!(refused.err(), Some(StatusCode::BAD_REQUEST));
    let socket = engine.get(sid).expect("the session survives");
    assert_eq!(socket.transport(), Transport::Polling);
    assert_polling_echo(addr, sid, "still polling").await;

    let mut ws = upgrade_with(addr, sid, &[("origin", GOOD)]).await;
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_next_text(&mut ws).await, "4upgraded");
    assert_eq!(socket.transport(), Transport::WebSocket);
    assert_eq!(events.message_of(sid).await, Message::from("still polling"));
}

// ---------------------------------------------------------------------------------------------
// allow_request

fn token_required() -> EngineIoConfig {
    EngineIoConfig::default().allow_request(|parts| {
        parts
            .headers
            .get("x-token")
            .is_some_and(|token| token == "secret")
    })
}

#[tokio::test]
async fn allow_request_runs_on_websocket_handshakes() {
    let TestApp { router, engine, .. } = echo_app(token_required());
    let addr = serve(router).await;

    let refused = ws_connect(addr, "EIO=4&transport=websocket").await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    assert!(engine.is_empty());

    let mut ws = ws_connect_request(ws_request(
        addr,
        "EIO=4&transport=websocket",
        &[("x-token", "secret")],
    ))
    .await
    .expect("an allowed handshake");
    open_json(&ws_next_text(&mut ws).await);
    assert_eq!(engine.len(), 1);
}

#[tokio::test]
async fn allow_request_runs_on_upgrades_and_a_refusal_keeps_the_session_on_polling() {
    let TestApp { router, engine, .. } = echo_app(token_required());
    let addr = serve(router).await;
    let token = [("x-token".to_owned(), "secret".to_owned())];
    let sid = http_with_headers(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        &token,
        "",
    )
    .await
    .sid();

    let refused = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    let socket = engine.get(sid).expect("the session survives");
    assert_eq!(socket.transport(), Transport::Polling);
    // Polls and posts of an open session do not run the hook.
    assert_polling_echo(addr, sid, "still polling").await;

    let mut ws = upgrade_with(addr, sid, &[("x-token", "secret")]).await;
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_next_text(&mut ws).await, "4upgraded");
    assert_eq!(socket.transport(), Transport::WebSocket);
}
