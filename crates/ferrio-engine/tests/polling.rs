//! HTTP long-polling rules of the Engine.IO v4 protocol, driven in memory through `oneshot`.

mod common;
use common::*;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use ferrio_engine::{
    CloseReason, EngineHandler, EngineIoConfig, EngineIoLayer, Message, SendError, Sid, Socket,
};
use futures_util::StreamExt;
use http::Request;

const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";

/// The events that arrive up to and including the close of `sid`.
async fn events_until_close(events: &mut Events, sid: Sid) -> (Vec<Event>, CloseReason) {
    let mut seen = Vec::new();
    loop {
        match events.next().await {
            Event::Close(s, reason) if s == sid => return (seen, reason),
            event => seen.push(event),
        }
    }
}

fn messages_of(events: &[Event], sid: Sid) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(s, m) if *s == sid => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn socket(t: &TestApp, sid: Sid) -> Socket {
    t.engine.get(sid).expect("session is open")
}

/// A request whose body yields `chunks` and then never ends.
fn endless_post(uri: &str, chunks: &[&'static str]) -> Request<Body> {
    let head = futures_util::stream::iter(
        chunks
            .iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes())))
            .collect::<Vec<_>>(),
    );
    let body = Body::from_stream(head.chain(futures_util::stream::pending()));
    Request::post(uri)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Handshake

#[tokio::test]
async fn handshake_sends_the_open_packet_with_exact_keys_order_and_defaults() {
    let mut t = app(EngineIoConfig::default());
    let reply = get(&t.router, "/engine.io/?EIO=4&transport=polling&t=Nx1abc").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
    let sid = reply.sid();
    assert_eq!(sid.as_str().len(), 20);
    assert!(
        sid.as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid is not URL-safe base64: {sid}"
    );
    assert_eq!(
        reply.body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        )
    );
    assert_eq!(t.events.next().await, Event::Open(sid));
}

#[tokio::test]
async fn handshake_announces_the_configured_values() {
    let t = app(EngineIoConfig::default()
        .ping_interval(Duration::from_millis(1500))
        .ping_timeout(Duration::from_millis(700))
        .max_payload(4096));
    let reply = get(&t.router, "/engine.io/?EIO=4&transport=polling").await;
    let sid = reply.sid();
    assert_eq!(
        reply.body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":1500,"pingTimeout":700,"maxPayload":4096}}"#
        )
    );
}

#[tokio::test]
async fn handshake_offers_no_upgrade_when_upgrades_or_websocket_are_disabled() {
    for config in [
        EngineIoConfig::default().allow_upgrades(false),
        EngineIoConfig::default().websocket(false),
    ] {
        let t = app(config.clone());
        let reply = get(&t.router, "/engine.io/?EIO=4&transport=polling").await;
        let sid = reply.sid();
        assert_eq!(
            reply.body,
            format!(
                r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
            ),
            "{config:?}"
        );
    }
}

#[tokio::test]
async fn every_handshake_gets_a_new_session_id() {
    let t = app(EngineIoConfig::default());
    let a = handshake(&t.router).await;
    let b = handshake(&t.router).await;
    assert_ne!(a, b);
    assert_eq!(t.engine.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[tokio::test]
async fn post_answers_ok_and_get_returns_the_echoed_text() {
    let mut t = echo_app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let reply = post(&t.router, &poll_uri(sid), "4hello é✓").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
    assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(t.events.message_of(sid).await, Message::from("hello é✓"));

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(reply.body, "4hello é✓");
}

#[tokio::test]
async fn several_packets_are_joined_by_the_record_separator_both_ways() {
    let mut t = echo_app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let reply = post(&t.router, &poll_uri(sid), "4a\x1e4\x1e4c").await;
    assert_eq!(reply.body, "ok");
    assert_eq!(t.events.message_of(sid).await, Message::from("a"));
    assert_eq!(t.events.message_of(sid).await, Message::from(""));
    assert_eq!(t.events.message_of(sid).await, Message::from("c"));

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.body, "4a\x1e4\x1e4c");
}

#[tokio::test]
async fn binary_from_the_client_arrives_decoded_and_is_echoed_as_base64() {
    let mut t = echo_app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let reply = post(&t.router, &poll_uri(sid), "4a\x1ebAQID\x1eb+/8=").await;
    assert_eq!(reply.body, "ok");
    assert_eq!(t.events.message_of(sid).await, Message::from("a"));
    assert_eq!(
        t.events.message_of(sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    assert_eq!(
        t.events.message_of(sid).await,
        Message::Binary(Bytes::from_static(&[0xfb, 0xff]))
    );

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.body, "4a\x1ebAQID\x1eb+/8=");
}

#[tokio::test]
async fn binary_sent_by_the_server_is_polled_as_b_base64() {
    let t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    let socket = socket(&t, sid);
    socket.send(Bytes::from_static(&[0, 1, 2, 0xff])).unwrap();
    socket.send("text").unwrap();
    socket.send(Bytes::from_static(&[0xfb, 0xff])).unwrap();

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(reply.body, "bAAEC/w==\x1e4text\x1eb+/8=");
}

#[tokio::test(start_paused = true)]
async fn a_get_waits_until_something_is_sent() {
    let t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let pending = spawn_get(&t.router, &poll_uri(sid));
    settle().await;
    assert!(!pending.is_finished(), "a GET with nothing queued answered");

    socket(&t, sid).send("late").unwrap();
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "4late");
}

/// Sends three messages from `on_open`, before the handshake reply leaves.
struct Greeter;

impl EngineHandler for Greeter {
    fn on_open(&self, socket: &Socket) {
        socket.send("first").unwrap();
        socket.send(Bytes::from_static(&[1, 2])).unwrap();
        socket.send("third").unwrap();
    }
    fn on_message(&self, _socket: &Socket, _message: Message) {}
}

#[tokio::test]
async fn messages_sent_in_on_open_are_polled_in_order() {
    let router = Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(EngineIoLayer::new(EngineIoConfig::default(), Greeter));
    let sid = handshake(&router).await;
    let reply = get(&router, &poll_uri(sid)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "4first\x1ebAQI=\x1e4third");
}

#[tokio::test]
async fn past_the_outbound_limit_a_send_hands_the_message_back_and_the_session_closes() {
    // "4a" (2 bytes) fits the limit of 3; the binary [7, 7] would make 4.
    let mut t = app(EngineIoConfig::default()
        .outbound_budget(1)
        .outbound_limit(3));
    let sid = handshake(&t.router).await;
    let socket = socket(&t, sid);
    socket.send("a").unwrap();
    assert_eq!(socket.buffered_bytes(), 2);
    assert_eq!(
        socket.send(Bytes::from_static(&[7, 7])),
        Err(SendError::Full(Message::Binary(Bytes::from_static(&[
            7, 7
        ]))))
    );
    // Nothing is queued after a refusal, even what would fit: the client would miss a
    // message in the middle. The session is closed as a slow client instead.
    assert_eq!(socket.send("c"), Err(SendError::Full(Message::from("c"))));
    assert_eq!(t.events.close_of(sid).await, CloseReason::SlowClient);
    assert!(socket.is_closed());
    assert_eq!(socket.send("d"), Err(SendError::Closed(Message::from("d"))));
}

#[tokio::test]
async fn a_polling_client_that_keeps_polling_gets_everything_however_much_is_queued() {
    // A budget of 16 bytes, and 100 messages of 10 bytes queued at once: far over the budget,
    // but under the limit, and the client polls.
    let mut t = app(EngineIoConfig::default()
        .outbound_budget(16)
        .outbound_stall_timeout(Duration::from_millis(100)));
    let sid = handshake(&t.router).await;
    let socket = socket(&t, sid);
    for i in 0..100 {
        socket.send(format!("message{i:02}")).unwrap();
    }
    assert_eq!(socket.buffered_bytes(), 100 * 10);
    let body = get(&t.router, &poll_uri(sid)).await.body;
    assert_eq!(body.split('\x1e').count(), 100);
    assert_eq!(socket.buffered_bytes(), 0);
    // Well past the stall timeout: polled in time, the session is still open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!socket.is_closed());
    t.events.assert_no_close();
}

#[tokio::test]
async fn a_polling_client_over_its_budget_that_stops_polling_is_closed_as_a_slow_client() {
    let mut t = app(EngineIoConfig::default()
        .outbound_budget(16)
        .outbound_stall_timeout(Duration::from_millis(100)));
    let sid = handshake(&t.router).await;
    let socket = socket(&t, sid);
    for i in 0..10 {
        socket.send(format!("message{i:02}")).unwrap();
    }
    assert_eq!(t.events.close_of(sid).await, CloseReason::SlowClient);
    // Its queue is gone with it: no last poll collects it.
    assert_eq!(socket.buffered(), 0);
    assert_eq!(get(&t.router, &poll_uri(sid)).await.status, 400);
}

#[tokio::test]
async fn under_its_budget_a_client_that_does_not_poll_is_left_alone() {
    let mut t = app(EngineIoConfig::default()
        .outbound_budget(1000)
        .outbound_stall_timeout(Duration::from_millis(50)));
    let sid = handshake(&t.router).await;
    let socket = socket(&t, sid);
    for i in 0..10 {
        socket.send(format!("message{i:02}")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!socket.is_closed());
    t.events.assert_no_close();
    assert_eq!(
        get(&t.router, &poll_uri(sid))
            .await
            .body
            .split('\x1e')
            .count(),
        10
    );
}

// ---------------------------------------------------------------------------------------------
// Refused posts

#[tokio::test]
async fn an_octet_stream_post_is_refused_and_closes_the_session() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let reply = send(
        &t.router,
        Request::post(poll_uri(sid))
            .header("content-type", "application/octet-stream")
            .body(Body::from("4hello"))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400, "body: {}", reply.body);

    let (seen, _reason) = events_until_close(&mut t.events, sid).await;
    assert_eq!(messages_of(&seen, sid), vec![]);
    assert!(t.engine.get(sid).is_none());
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
    assert!(messages_of(&t.events.drain(), sid).is_empty());
}

#[tokio::test]
async fn invalid_payloads_are_refused_and_close_the_session_with_parse_error() {
    let cases: &[(&str, &'static [u8])] = &[
        ("unknown packet type", b"9x"),
        ("unknown packet type after a valid message", b"4a\x1ex"),
        ("bad base64", b"b@@@"),
        ("bad base64 after a valid message", b"4a\x1eb%%%%"),
        ("invalid UTF-8", b"4\xff\xfe"),
        ("invalid UTF-8 after a valid message", b"4a\x1e4\xc3"),
        ("empty body", b""),
        ("empty segment", b"4a\x1e\x1e4b"),
        ("trailing separator", b"4a\x1e"),
        ("leading separator", b"\x1e4a"),
    ];
    let mut t = app(EngineIoConfig::default());
    for &(case, body) in cases {
        let sid = handshake(&t.router).await;
        let reply = post(&t.router, &poll_uri(sid), body).await;
        assert_eq!(reply.status, 400, "{case}: body {}", reply.body);

        let (seen, reason) = events_until_close(&mut t.events, sid).await;
        assert_eq!(reason, CloseReason::ParseError, "{case}");
        assert_eq!(messages_of(&seen, sid), vec![], "{case}: message delivered");
        assert!(t.engine.get(sid).is_none(), "{case}: session still open");
        get(&t.router, &poll_uri(sid)).await.assert_error(1);
        assert!(messages_of(&t.events.drain(), sid).is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_post_over_max_payload_with_content_length_gets_413_and_the_session_survives() {
    let mut t = echo_app(EngineIoConfig::default().max_payload(16));
    let sid = handshake(&t.router).await;

    let body = format!("4{}", "x".repeat(16));
    let reply = send(
        &t.router,
        Request::post(poll_uri(sid))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 413, "body: {}", reply.body);

    // Exactly max_payload is allowed, and the session still works.
    let body = format!("4{}", "y".repeat(15));
    let reply = send(
        &t.router,
        Request::post(poll_uri(sid))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("content-length", body.len())
            .body(Body::from(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
    assert_eq!(
        t.events.message_of(sid).await,
        Message::from(&body[1..]),
        "the oversized payload was delivered"
    );
    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, body);
    assert!(!socket(&t, sid).is_closed());
}

#[tokio::test]
async fn a_streamed_post_over_max_payload_gets_413_and_the_session_survives() {
    let mut t = echo_app(EngineIoConfig::default().max_payload(16));
    let sid = handshake(&t.router).await;

    let chunks = futures_util::stream::iter(
        ["4xxxxxxx", "xxxxxxxx", "xxxxxxxx"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
    );
    let reply = send(
        &t.router,
        Request::post(poll_uri(sid))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Body::from_stream(chunks))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 413, "body: {}", reply.body);

    let reply = post(&t.router, &poll_uri(sid), "4next").await;
    assert_eq!(reply.body, "ok");
    assert_eq!(t.events.message_of(sid).await, Message::from("next"));
    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "4next");
    assert!(!socket(&t, sid).is_closed());
}

// ---------------------------------------------------------------------------------------------
// Concurrent and aborted requests

#[tokio::test(start_paused = true)]
async fn a_second_concurrent_get_closes_the_session() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let first = spawn_get(&t.router, &poll_uri(sid));
    settle().await;
    assert!(!first.is_finished());

    let second = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(second.status, 400, "body: {}", second.body);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.body, "1");

    t.events.close_of(sid).await;
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test(start_paused = true)]
async fn overlapping_posts_close_the_session() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let router = t.router.clone();
    let first = tokio::spawn(send_owned(router, endless_post(&poll_uri(sid), &["4a"])));
    settle().await;
    assert!(!first.is_finished(), "the endless post finished");

    let second = post(&t.router, &poll_uri(sid), "4b").await;
    assert_eq!(second.status, 400, "body: {}", second.body);

    let (seen, _reason) = events_until_close(&mut t.events, sid).await;
    assert!(!seen.contains(&Event::Message(sid, Message::from("b"))));
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
    first.abort();
}

async fn send_owned(router: Router, req: Request<Body>) -> Reply {
    send(&router, req).await
}

#[tokio::test(start_paused = true)]
async fn an_aborted_get_closes_the_session_with_transport_error() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let pending = spawn_get(&t.router, &poll_uri(sid));
    settle().await;
    assert!(!pending.is_finished());
    pending.abort();
    assert!(pending.await.unwrap_err().is_cancelled());

    assert_eq!(t.events.close_of(sid).await, CloseReason::TransportError);
    assert!(t.engine.get(sid).is_none());
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

// ---------------------------------------------------------------------------------------------
// Control packets from the client

#[tokio::test]
async fn a_client_ping_closes_the_session_with_parse_error() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    post(&t.router, &poll_uri(sid), "2").await.assert_error(3);
    assert_eq!(t.events.close_of(sid).await, CloseReason::ParseError);
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test]
async fn nothing_after_a_client_ping_is_delivered() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    post(&t.router, &poll_uri(sid), "2probe\x1e4after").await;
    let (_, reason) = events_until_close(&mut t.events, sid).await;
    assert_eq!(reason, CloseReason::ParseError);
    assert!(
        messages_of(&t.events.drain(), sid).is_empty(),
        "a message was delivered after the close"
    );
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test(start_paused = true)]
async fn a_client_close_answers_the_pending_get_with_noop() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let pending = spawn_get(&t.router, &poll_uri(sid));
    settle().await;
    assert!(!pending.is_finished());

    let reply = post(&t.router, &poll_uri(sid), "1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
    let pending = pending.await.unwrap();
    assert_eq!(pending.status, 200);
    assert_eq!(pending.body, "6");

    assert_eq!(t.events.close_of(sid).await, CloseReason::TransportClose);
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

/// A client's poll and its `close` post travel on separate connections and may arrive in
/// either order; a poll that arrives just after the close still ends cleanly with `6`.
#[tokio::test(start_paused = true)]
async fn a_poll_arriving_just_after_the_client_close_gets_noop_then_the_session_is_gone() {
    let mut t = app(EngineIoConfig::default().ping_timeout(Duration::from_millis(200)));
    let sid = handshake(&t.router).await;

    assert_eq!(post(&t.router, &poll_uri(sid), "1").await.body, "ok");
    assert_eq!(t.events.close_of(sid).await, CloseReason::TransportClose);
    assert!(
        t.engine.get(sid).is_none(),
        "closed sessions are not listed"
    );

    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "6");
    get(&t.router, &poll_uri(sid)).await.assert_error(1);

    // Without that poll, the closed session is forgotten after ping_timeout.
    let other = handshake(&t.router).await;
    assert_eq!(post(&t.router, &poll_uri(other), "1").await.body, "ok");
    tokio::time::sleep(Duration::from_millis(250)).await;
    get(&t.router, &poll_uri(other)).await.assert_error(1);
}

// ---------------------------------------------------------------------------------------------
// Server close

#[tokio::test(start_paused = true)]
async fn a_server_close_answers_the_pending_get_with_close() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let pending = spawn_get(&t.router, &poll_uri(sid));
    settle().await;
    assert!(!pending.is_finished());

    let socket = socket(&t, sid);
    assert!(socket.close());
    assert!(!socket.close(), "a second close reported success");
    let pending = pending.await.unwrap();
    assert_eq!(pending.status, 200);
    assert_eq!(pending.body, "1");

    assert_eq!(t.events.close_of(sid).await, CloseReason::ForcedClose);
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test]
async fn a_server_close_without_pending_get_is_collected_by_the_next_get() {
    let mut t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;

    let socket = socket(&t, sid);
    socket.send("a").unwrap();
    assert!(socket.close());
    assert!(socket.is_closed());
    assert_eq!(socket.send("b"), Err(SendError::Closed(Message::from("b"))));
    assert_eq!(t.events.close_of(sid).await, CloseReason::ForcedClose);

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "4a\x1e1");
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
    assert!(t.engine.get(sid).is_none());
}

// ---------------------------------------------------------------------------------------------
// The session table

#[tokio::test]
async fn engine_get_and_len_reflect_the_open_sessions() {
    let t = app(EngineIoConfig::default());
    assert!(t.engine.is_empty());
    assert_eq!(t.engine.len(), 0);

    let a = handshake(&t.router).await;
    let b = handshake(&t.router).await;
    assert_eq!(t.engine.len(), 2);
    assert_eq!(t.engine.get(a).map(|s| s.id()), Some(a));
    assert_eq!(t.engine.get(b).map(|s| s.id()), Some(b));
    let mut ids: Vec<Sid> = t.engine.sockets().iter().map(Socket::id).collect();
    ids.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(t.engine.get(Sid::random()).is_none());

    post(&t.router, &poll_uri(a), "1").await;
    assert_eq!(t.engine.len(), 1);
    assert!(t.engine.get(a).is_none());
    assert!(t.engine.get(b).is_some());
}
