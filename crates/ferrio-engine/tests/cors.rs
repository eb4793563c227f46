//! Cross-origin headers of the engine's responses: disabled, any origin, an allow-list, and
//! preflight requests.

mod common;
use common::*;

use axum::body::Body;
use ferrio_engine::{Cors, EngineIoConfig, Message};
use http::Request;

const ORIGIN: &str = "https://app.example";

fn with_origin(method: &str, uri: &str, origin: &str, body: &'static str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("origin", origin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(body))
        .unwrap()
}

fn access_control_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

fn assert_origin_allowed(reply: &Reply, origin: &str, what: &str) {
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(origin),
        "{what}: {:?}",
        reply.headers
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true"),
        "{what}: {:?}",
        reply.headers
    );
}

#[tokio::test]
async fn disabled_cors_adds_no_access_control_headers() {
    let mut t = echo_app(EngineIoConfig::default().cors(Cors::disabled()));
    let uri = "/engine.io/?EIO=4&transport=polling";

    let open = send(&t.router, with_origin("GET", uri, ORIGIN, "")).await;
    let sid = open.sid();
    assert_eq!(access_control_headers(&open), Vec::<String>::new());

    let posted = send(
        &t.router,
        with_origin("POST", &poll_uri(sid), ORIGIN, "4hi"),
    )
    .await;
    assert_eq!(posted.body, "ok");
    assert_eq!(access_control_headers(&posted), Vec::<String>::new());
    assert_eq!(t.events.message_of(sid).await, Message::from("hi"));

    let polled = send(&t.router, with_origin("GET", &poll_uri(sid), ORIGIN, "")).await;
    assert_eq!(polled.body, "4hi");
    assert_eq!(access_control_headers(&polled), Vec::<String>::new());

    let error = send(
        &t.router,
        with_origin(
            "GET",
            "/engine.io/?EIO=4&transport=polling&sid=x",
            ORIGIN,
            "",
        ),
    )
    .await;
    error.assert_error(1);
    assert_eq!(access_control_headers(&error), Vec::<String>::new());

    let preflight = send(
        &t.router,
        Request::options(uri)
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_ne!(preflight.status, 204);
    assert_eq!(access_control_headers(&preflight), Vec::<String>::new());
}

#[tokio::test]
async fn any_origin_echoes_the_origin_with_credentials_on_every_response() {
    let mut t = echo_app(EngineIoConfig::default().cors(Cors::any_origin()));
    for origin in [ORIGIN, "http://localhost:8080"] {
        let open = send(
            &t.router,
            with_origin("GET", "/engine.io/?EIO=4&transport=polling", origin, ""),
        )
        .await;
        let sid = open.sid();
        assert_origin_allowed(&open, origin, "handshake");

        let posted = send(
            &t.router,
            with_origin("POST", &poll_uri(sid), origin, "4hi"),
        )
        .await;
        assert_eq!(posted.status, 200);
        assert_eq!(posted.body, "ok");
        assert_origin_allowed(&posted, origin, "post");
        assert_eq!(t.events.message_of(sid).await, Message::from("hi"));

        let polled = send(&t.router, with_origin("GET", &poll_uri(sid), origin, "")).await;
        assert_eq!(polled.body, "4hi");
        assert_origin_allowed(&polled, origin, "poll");

        let error = send(
            &t.router,
            with_origin(
                "GET",
                "/engine.io/?EIO=4&transport=polling&sid=x",
                origin,
                "",
            ),
        )
        .await;
        error.assert_exact_error(1, "Session ID unknown");
        assert_origin_allowed(&error, origin, "error");

        let error = send(
            &t.router,
            with_origin("GET", "/engine.io/?EIO=4", origin, ""),
        )
        .await;
        error.assert_exact_error(0, "Transport unknown");
        assert_origin_allowed(&error, origin, "error");
    }
}

#[tokio::test]
async fn any_origin_adds_nothing_without_an_origin_header() {
    let t = app(EngineIoConfig::default().cors(Cors::any_origin()));
    let open = get(&t.router, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(open.status, 200);
    assert_eq!(open.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn an_allow_list_accepts_listed_origins_and_refuses_others_with_code_3() {
    let allowed = "https://good.example";
    let mut t = echo_app(
        EngineIoConfig::default().cors(Cors::allow_origins([allowed, "http://localhost:3000"])),
    );
    let uri = "/engine.io/?EIO=4&transport=polling";

    let open = send(&t.router, with_origin("GET", uri, allowed, "")).await;
    let sid = open.sid();
    assert_origin_allowed(&open, allowed, "handshake");

    for bad in [
        "https://evil.example",
        "https://good.example.evil",
        "http://good.example",
        "null",
    ] {
        let refused = send(&t.router, with_origin("GET", uri, bad, "")).await;
        refused.assert_exact_error(3, "Bad request");
        assert_eq!(
            refused.header("access-control-allow-origin"),
            None,
            "a refused origin was granted: {bad}"
        );

        // A refused origin reaches no session either.
        let refused = send(
            &t.router,
            with_origin("POST", &poll_uri(sid), bad, "4stolen"),
        )
        .await;
        refused.assert_exact_error(3, "Bad request");
        let refused = send(&t.router, with_origin("GET", &poll_uri(sid), bad, "")).await;
        refused.assert_exact_error(3, "Bad request");
    }
    assert_eq!(t.engine.len(), 1, "a refused origin opened a session");

    let posted = send(
        &t.router,
        with_origin("POST", &poll_uri(sid), allowed, "4ok"),
    )
    .await;
    assert_eq!(posted.body, "ok");
    assert_origin_allowed(&posted, allowed, "post");
    assert_eq!(t.events.message_of(sid).await, Message::from("ok"));
    let polled = send(&t.router, with_origin("GET", &poll_uri(sid), allowed, "")).await;
    assert_eq!(polled.body, "4ok");
    assert_origin_allowed(&polled, allowed, "poll");
}

#[tokio::test]
async fn a_preflight_is_answered_204_with_methods_and_echoed_headers() {
    for cors in [Cors::any_origin(), Cors::allow_origins([ORIGIN])] {
        let t = app(EngineIoConfig::default().cors(cors));
        let preflight = send(
            &t.router,
            Request::options("/engine.io/?EIO=4&transport=polling")
                .header("origin", ORIGIN)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-custom")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(preflight.status, 204, "body: {}", preflight.body);
        assert!(preflight.body.is_empty());
        assert_origin_allowed(&preflight, ORIGIN, "preflight");
        let methods = preflight
            .header("access-control-allow-methods")
            .expect("Access-Control-Allow-Methods");
        let methods: Vec<&str> = methods.split(',').map(str::trim).collect();
        assert!(methods.contains(&"GET"), "{methods:?}");
        assert!(methods.contains(&"POST"), "{methods:?}");
        assert_eq!(
            preflight.header("access-control-allow-headers"),
            Some("content-type,x-custom")
        );
        assert!(t.engine.is_empty(), "a preflight opened a session");
    }
}

#[tokio::test]
async fn a_preflight_from_a_refused_origin_is_refused() {
    let t = app(EngineIoConfig::default().cors(Cors::allow_origins([ORIGIN])));
    let preflight = send(
        &t.router,
        Request::options("/engine.io/?EIO=4&transport=polling")
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    preflight.assert_exact_error(3, "Bad request");
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    assert_eq!(preflight.header("access-control-allow-methods"), None);
}
