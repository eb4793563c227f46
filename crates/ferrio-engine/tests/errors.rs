//! The Engine.IO error table and request routing: every code with its exact body, the order of
//! the checks, the engine's path, and requests that belong to the inner router.

mod common;
use common::*;

use axum::body::Body;
use ferrio_engine::{EngineIoConfig, Message, Sid};
use http::Request;

const TRANSPORT_UNKNOWN: (u8, &str) = (0, "Transport unknown");
const SESSION_ID_UNKNOWN: (u8, &str) = (1, "Session ID unknown");
const BAD_HANDSHAKE_METHOD: (u8, &str) = (2, "Bad handshake method");
const BAD_REQUEST: (u8, &str) = (3, "Bad request");
const FORBIDDEN: (u8, &str) = (4, "Forbidden");
const UNSUPPORTED_PROTOCOL_VERSION: (u8, &str) = (5, "Unsupported protocol version");

async fn request(t: &TestApp, method: &str, uri: &str) -> Reply {
    send(
        &t.router,
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn expect(t: &TestApp, method: &str, uri: &str, (code, message): (u8, &str)) {
    let reply = request(t, method, uri).await;
    assert!(
        reply.status == 400 || reply.status == 403,
        "{method} {uri}: status {} body {}",
        reply.status,
        reply.body
    );
    reply.assert_exact_error(code, message);
}

/// Every request of the error table, against the session `victim` where one is needed.
async fn every_error(t: &TestApp, victim: Sid) {
    let e = "/engine.io/";
    expect(t, "GET", &format!("{e}?EIO=4"), TRANSPORT_UNKNOWN).await;
    expect(t, "GET", e, TRANSPORT_UNKNOWN).await;
    expect(
        t,
        "GET",
        &format!("{e}?EIO=4&transport=abc"),
        TRANSPORT_UNKNOWN,
    )
    .await;
    expect(
        t,
        "GET",
        &format!("{e}?EIO=4&transport="),
        TRANSPORT_UNKNOWN,
    )
    .await;
    expect(
        t,
        "GET",
        &format!("{e}?EIO=4&transport=POLLING"),
        TRANSPORT_UNKNOWN,
    )
    .await;
    // The transport is checked before the method and the sid.
    expect(t, "POST", &format!("{e}?EIO=4"), TRANSPORT_UNKNOWN).await;
    expect(
        t,
        "GET",
        &format!("{e}?EIO=4&transport=abc&sid={victim}"),
        TRANSPORT_UNKNOWN,
    )
    .await;

    expect(
        t,
        "GET",
        &format!("{e}?transport=polling"),
        UNSUPPORTED_PROTOCOL_VERSION,
    )
    .await;
    for eio in ["abc", "3", "", "5", "04"] {
        expect(
            t,
            "GET",
            &format!("{e}?EIO={eio}&transport=polling"),
            UNSUPPORTED_PROTOCOL_VERSION,
        )
        .await;
    }
    expect(
        t,
        "GET",
        &format!("{e}?EIO=3&transport=polling&sid={victim}"),
        UNSUPPORTED_PROTOCOL_VERSION,
    )
    .await;
    expect(
        t,
        "POST",
        &format!("{e}?EIO=3&transport=polling&sid={victim}"),
        UNSUPPORTED_PROTOCOL_VERSION,
    )
    .await;

    let unknown = Sid::random();
    let long = "a".repeat(2048);
    for sid in [unknown.as_str(), "__proto__", "constructor", &long, ""] {
        expect(
            t,
            "GET",
            &format!("{e}?EIO=4&transport=polling&sid={sid}"),
            SESSION_ID_UNKNOWN,
        )
        .await;
        expect(
            t,
            "POST",
            &format!("{e}?EIO=4&transport=polling&sid={sid}"),
            SESSION_ID_UNKNOWN,
        )
        .await;
    }
    // The sid is checked before the method.
    expect(
        t,
        "PUT",
        &format!("{e}?EIO=4&transport=polling&sid={unknown}"),
        SESSION_ID_UNKNOWN,
    )
    .await;

    for method in ["POST", "PUT", "DELETE"] {
        expect(
            t,
            method,
            &format!("{e}?EIO=4&transport=polling"),
            BAD_HANDSHAKE_METHOD,
        )
        .await;
    }

    expect(
        t,
        "PUT",
        &format!("{e}?EIO=4&transport=polling&sid={victim}"),
        BAD_REQUEST,
    )
    .await;
    expect(
        t,
        "GET",
        &format!("{e}?EIO=4&transport=websocket"),
        BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn every_code_has_its_exact_json_body() {
    let t = app(EngineIoConfig::default());
    let victim = handshake(&t.router).await;
    every_error(&t, victim).await;
}

#[tokio::test]
async fn missing_both_eio_and_transport_is_transport_unknown() {
    let t = app(EngineIoConfig::default());
    expect(&t, "GET", "/engine.io/", TRANSPORT_UNKNOWN).await;
    expect(&t, "GET", "/engine.io/?t=123", TRANSPORT_UNKNOWN).await;
    assert!(t.engine.is_empty());
}

#[tokio::test]
async fn a_disabled_transport_is_unknown() {
    let t = app(EngineIoConfig::default().polling(false));
    expect(
        &t,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        TRANSPORT_UNKNOWN,
    )
    .await;
    assert!(t.engine.is_empty());

    let t = app(EngineIoConfig::default().websocket(false));
    expect(
        &t,
        "GET",
        "/engine.io/?EIO=4&transport=websocket",
        TRANSPORT_UNKNOWN,
    )
    .await;
    let sid = handshake(&t.router).await;
    expect(
        &t,
        "GET",
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        TRANSPORT_UNKNOWN,
    )
    .await;
}

#[tokio::test]
async fn a_websocket_request_without_upgrade_headers_is_a_bad_request() {
    let t = app(EngineIoConfig::default());
    expect(
        &t,
        "GET",
        "/engine.io/?EIO=4&transport=websocket",
        BAD_REQUEST,
    )
    .await;
    let sid = handshake(&t.router).await;
    expect(
        &t,
        "GET",
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        BAD_REQUEST,
    )
    .await;
    assert_eq!(t.engine.len(), 1);
}

#[tokio::test]
async fn a_refusing_allow_request_hook_answers_403_code_4() {
    let t = app(EngineIoConfig::default().allow_request(|parts| {
        parts
            .headers
            .get("x-token")
            .is_some_and(|token| token == "secret")
    }));
    let reply = get(&t.router, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(reply.status, 403);
    reply.assert_exact_error(FORBIDDEN.0, FORBIDDEN.1);
    assert!(t.engine.is_empty(), "a refused handshake opened a session");

    let allowed = send(
        &t.router,
        Request::get("/engine.io/?EIO=4&transport=polling")
            .header("x-token", "secret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let sid = allowed.sid();
    assert_eq!(t.engine.len(), 1);
    assert!(t.engine.get(sid).is_some());
}

#[tokio::test]
async fn errors_never_close_another_session() {
    let mut t = echo_app(EngineIoConfig::default());
    let victim = handshake(&t.router).await;
    let healthy = handshake(&t.router).await;

    every_error(&t, victim).await;

    let closed: Vec<_> = t
        .events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, Event::Close(sid, _) if *sid == healthy))
        .collect();
    assert_eq!(closed, vec![], "an error closed the healthy session");
    assert!(t.engine.get(healthy).is_some());

    let reply = post(&t.router, &poll_uri(healthy), "4still here").await;
    assert_eq!(reply.body, "ok");
    assert_eq!(
        t.events.message_of(healthy).await,
        Message::from("still here")
    );
    let reply = get(&t.router, &poll_uri(healthy)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "4still here");
}

#[tokio::test]
async fn refused_requests_open_no_session() {
    let t = app(EngineIoConfig::default());
    let victim = handshake(&t.router).await;
    every_error(&t, victim).await;
    let ids: Vec<Sid> = t.engine.sockets().iter().map(|s| s.id()).collect();
    assert_eq!(ids, vec![victim]);
}

// ---------------------------------------------------------------------------------------------
// Paths

#[tokio::test]
async fn the_path_matches_with_and_without_trailing_slash() {
    let mut t = echo_app(EngineIoConfig::default());
    let a = get(&t.router, "/engine.io/?EIO=4&transport=polling")
        .await
        .sid();
    let b = get(&t.router, "/engine.io?EIO=4&transport=polling")
        .await
        .sid();
    assert_eq!(t.engine.len(), 2);

    // Later requests of a session may use either form too.
    let reply = post(
        &t.router,
        &format!("/engine.io?EIO=4&transport=polling&sid={a}"),
        "4x",
    )
    .await;
    assert_eq!(reply.body, "ok");
    assert_eq!(t.events.message_of(a).await, Message::from("x"));
    assert_eq!(get(&t.router, &poll_uri(a)).await.body, "4x");
    expect(
        &t,
        "GET",
        "/engine.io?EIO=4&transport=polling&sid=nope",
        SESSION_ID_UNKNOWN,
    )
    .await;
    assert!(t.engine.get(b).is_some());
}

#[tokio::test]
async fn a_custom_path_moves_the_engine() {
    let t = app(EngineIoConfig::default().path("/realtime/"));
    let a = get(&t.router, "/realtime/?EIO=4&transport=polling")
        .await
        .sid();
    let b = get(&t.router, "/realtime?EIO=4&transport=polling")
        .await
        .sid();
    assert_ne!(a, b);
    expect(
        &t,
        "GET",
        "/realtime/?EIO=4&transport=polling&sid=nope",
        SESSION_ID_UNKNOWN,
    )
    .await;

    // The default path is now an ordinary route of the inner router, which has none there.
    let reply = get(&t.router, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(reply.status, 404);
    assert_eq!(t.engine.len(), 2);
}

#[tokio::test]
async fn requests_outside_the_path_reach_the_inner_router_untouched() {
    let t = app(EngineIoConfig::default());

    let health = get(&t.router, "/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");
    // axum's own content type, not the engine's.
    assert_eq!(
        health.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let health = get(&t.router, "/health?EIO=4&transport=polling").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");

    for uri in [
        "/nope",
        "/",
        "/engine.iox",
        "/engine.iox?EIO=4&transport=polling",
        "/engine.iox/?EIO=4&transport=polling",
        "/engine?EIO=4&transport=polling",
    ] {
        let reply = get(&t.router, uri).await;
        assert_eq!(reply.status, 404, "{uri}: body {}", reply.body);
        assert!(reply.body.is_empty(), "{uri}: body {}", reply.body);
    }
    assert!(t.engine.is_empty());
}
