//! The engine's limits on HTTP requests: header size, slow post bodies, the hold of a poll,
//! open sessions and the rate of handshakes.

mod common;
use common::*;

use std::time::Duration;

use axum::body::Body;
use ferrio_engine::{CloseReason, EngineIoConfig, Message};
use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep};

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

/// Asserts one of the limit errors: its status and its exact JSON body.
fn assert_limit_error(reply: &Reply, status: u16, code: u8, message: &str) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        format!(r#"{{"code":{code},"message":"{message}"}}"#)
    );
}

/// `count` headers named `x-filler-N`, each with a value of `len` bytes.
fn filler(count: usize, len: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("x-filler-{i}"), "v".repeat(len)))
        .collect()
}

/// A valid WebSocket handshake, to send in memory: the engine checks it, but without a real
/// connection there is nothing to upgrade, so an accepted one ends in 400 code 3.
fn websocket_handshake_request() -> http::request::Builder {
    Request::get("/engine.io/?EIO=4&transport=websocket")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
}

// ---------------------------------------------------------------------------------------------
// Headers

#[tokio::test]
async fn more_headers_than_max_header_count_get_431_before_any_session_work() {
    let TestApp {
        router,
        engine,
        mut events,
    } = app(EngineIoConfig::default());
    let addr = serve(router).await;

    // The default is 64 lines; hyper alone would take up to 100.
    let refused = http_with_headers(addr, "GET", HANDSHAKE, &filler(70, 1), "").await;
    assert_limit_error(&refused, 431, 8, "Request header fields too large");
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(engine.is_empty(), "a refused handshake opened a session");

    // Refused before the session lookup: an unknown sid is not even noticed.
    let unknown = "/engine.io/?EIO=4&transport=polling&sid=nosuchsession";
    let refused = http_with_headers(addr, "GET", unknown, &filler(70, 1), "").await;
    assert_eq!(refused.status, 431, "body: {}", refused.body);

    // A request to an open session is refused too, and the session is left alone.
    let sid = http_handshake(addr).await;
    let refused = http_with_headers(addr, "POST", &poll_uri(sid), &filler(70, 1), "4no").await;
    assert_eq!(refused.status, 431, "body: {}", refused.body);
    let sent = http(addr, "POST", &poll_uri(sid), "4yes").await;
    assert_eq!(sent.body, "ok");
    assert_eq!(events.message_of(sid).await, Message::from("yes"));

    // Under the limit, a handshake with many headers is fine.
    let accepted = http_with_headers(addr, "GET", HANDSHAKE, &filler(50, 1), "").await;
    accepted.sid();
    assert_eq!(engine.len(), 2);
    assert!(
        events
            .drain()
            .iter()
            .all(|e| !matches!(e, Event::Message(_, m) if *m == Message::from("no"))),
        "a refused post was delivered"
    );
}

#[tokio::test]
async fn more_header_bytes_than_max_header_bytes_get_431() {
    let TestApp { router, engine, .. } = app(EngineIoConfig::default());
    let addr = serve(router).await;

    // The default is 16 KiB of names and values, counted over all lines.
    let one_big = [("x-big".to_owned(), "v".repeat(17 * 1024))];
    let refused = http_with_headers(addr, "GET", HANDSHAKE, &one_big, "").await;
    assert_limit_error(&refused, 431, 8, "Request header fields too large");
    let many_medium = filler(20, 1000);
    let refused = http_with_headers(addr, "GET", HANDSHAKE, &many_medium, "").await;
    assert_eq!(refused.status, 431, "body: {}", refused.body);
    assert!(engine.is_empty());

    let under = [("x-big".to_owned(), "v".repeat(15 * 1024))];
    http_with_headers(addr, "GET", HANDSHAKE, &under, "")
        .await
        .sid();
    assert_eq!(engine.len(), 1);
}

#[tokio::test]
async fn header_limits_are_settable() {
    let t = app(EngineIoConfig::default()
        .max_header_count(4)
        .max_header_bytes(64));
    let req = |headers: &[(&str, &str)]| {
        let mut req = Request::get(HANDSHAKE);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(Body::empty()).unwrap()
    };
    send(
        &t.router,
        req(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
    )
    .await
    .sid();
    let reply = send(
        &t.router,
        req(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]),
    )
    .await;
    assert_eq!(reply.status, 431);
    let reply = send(&t.router, req(&[("a", &"x".repeat(64))])).await;
    assert_eq!(reply.status, 431);
    assert_eq!(t.engine.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Slow post bodies

#[tokio::test]
async fn a_post_body_that_trickles_in_gets_408_and_closes_the_session_with_nothing_delivered() {
    let TestApp {
        router,
        engine,
        mut events,
    } = echo_app(EngineIoConfig::default().post_body_timeout(Duration::from_millis(200)));
    let addr = serve(router).await;
    let sid = http_handshake(addr).await;

    // A valid payload of 100 bytes, sent one byte every 50 ms: it would take 5 s in all.
    let payload = format!("4{}", "a".repeat(99));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain;charset=UTF-8\r\n\
         content-length: {}\r\n\r\n",
        poll_uri(sid),
        payload.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in payload.bytes() {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(50)).await;
        }
    });

    // Read the answer's head; the bound is generous, the limit is what must answer.
    let mut answer = Vec::new();
    let head_read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(head_read.is_ok(), "no answer within 30 s");
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(
        answer.starts_with("http/1.1 408"),
        "expected 408, got: {answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");

    let mut seen = Vec::new();
    let reason = loop {
        match events.next().await {
            Event::Close(s, reason) if s == sid => break reason,
            event => seen.push(event),
        }
    };
    assert_eq!(reason, CloseReason::TransportError);
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Message(..))),
        "part of a timed-out post was delivered: {seen:?}"
    );
    assert!(engine.get(sid).is_none());
    let later = http(addr, "POST", &poll_uri(sid), "4late").await;
    assert_eq!(later.status, 400);
    trickle.abort();
}

#[tokio::test(start_paused = true)]
async fn a_post_whose_body_never_ends_is_answered_408_after_post_body_timeout() {
    let mut t = echo_app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    let start = Instant::now();

    // A complete packet, then a body that never ends.
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(
        "4whole\u{1e}4par",
    ))]);
    let body = Body::from_stream(futures_util::StreamExt::chain(
        chunks,
        futures_util::stream::pending(),
    ));
    let req = Request::post(poll_uri(sid))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .unwrap();
    // Far past the default of 10 s on the paused clock, so a missing limit fails, not hangs.
    let reply = tokio::time::timeout(Duration::from_secs(60), send(&t.router, req))
        .await
        .expect("the post was not answered");
    assert_limit_error(&reply, 408, 9, "Request timeout");
    assert_eq!(start.elapsed(), Duration::from_secs(10), "the default");
    assert_eq!(t.events.next().await, Event::Open(sid));
    assert_eq!(
        t.events.next().await,
        Event::Close(sid, CloseReason::TransportError),
        "closed with nothing delivered"
    );
}

// ---------------------------------------------------------------------------------------------
// The hold of a poll

#[tokio::test(start_paused = true)]
async fn a_held_poll_on_an_idle_session_is_answered_by_the_next_ping() {
    let config = EngineIoConfig::default();
    let interval = Duration::from_secs(25);
    let mut t = app(config);
    let sid = handshake(&t.router).await;
    // The first ping is due `interval` after the handshake, then after each pong.
    let mut next_ping = Instant::now() + interval;

    for wait_before_polling in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(24),
    ] {
        sleep(wait_before_polling).await;
        let polled = Instant::now();
        // Bounded by far more than the interval, so a poll held forever fails the test.
        let reply = tokio::time::timeout(3 * interval, get(&t.router, &poll_uri(sid)))
            .await
            .expect("the held poll was never answered");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "2", "an idle poll ends with the ping");
        assert!(Instant::now() <= next_ping, "the poll outlived the ping");
        assert!(polled.elapsed() <= interval);

        // Answer the ping a little later; the next one is due an interval after the pong.
        sleep(Duration::from_secs(3)).await;
        assert_eq!(post(&t.router, &poll_uri(sid), "3").await.body, "ok");
        next_ping = Instant::now() + interval;
    }
    t.events.assert_no_close();
}

// ---------------------------------------------------------------------------------------------
// Open sessions

#[tokio::test]
async fn handshakes_over_max_sessions_get_503_and_open_sessions_are_unaffected() {
    let mut t = echo_app(EngineIoConfig::default().max_sessions(2));
    let a = handshake(&t.router).await;
    let b = handshake(&t.router).await;

    let refused = get(&t.router, HANDSHAKE).await;
    assert_limit_error(&refused, 503, 6, "Too many sessions");
    assert_eq!(t.engine.len(), 2);

    for sid in [a, b] {
        assert_eq!(post(&t.router, &poll_uri(sid), "4hi").await.body, "ok");
        assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "4hi");
    }

    // The client's close frees a slot.
    assert_eq!(post(&t.router, &poll_uri(a), "1").await.body, "ok");
    assert_eq!(t.events.close_of(a).await, CloseReason::TransportClose);
    let c = handshake(&t.router).await;
    assert_eq!(get(&t.router, HANDSHAKE).await.status, 503);

    // So does the server's, while the closed session waits for its last poll.
    assert!(t.engine.get(b).expect("b is open").close());
    let d = handshake(&t.router).await;
    assert_eq!(get(&t.router, &poll_uri(b)).await.body, "1");
    assert_eq!(get(&t.router, HANDSHAKE).await.status, 503);
    for sid in [c, d] {
        assert!(t.engine.get(sid).is_some());
    }
}

#[tokio::test]
async fn a_websocket_session_holds_a_slot_until_it_closes() {
    let TestApp {
        router,
        engine,
        mut events,
    } = app(EngineIoConfig::default().max_sessions(1));
    let addr = serve(router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    let refused = http(addr, "GET", HANDSHAKE, "").await;
    assert_limit_error(&refused, 503, 6, "Too many sessions");
    assert_eq!(
        ws_connect(addr, "EIO=4&transport=websocket").await.err(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(engine.len(), 1);

    ws_send(&mut ws, "1").await;
    assert_eq!(events.close_of(sid).await, CloseReason::TransportClose);
    http_handshake(addr).await;
    assert_eq!(engine.len(), 1);
}

#[tokio::test]
async fn a_handshake_refused_after_taking_its_slot_gives_it_back() {
    let t = app(EngineIoConfig::default()
        .max_sessions(1)
        .allow_request(|parts| parts.headers.contains_key("x-allowed")));
    // Refused by the hook.
    get(&t.router, HANDSHAKE).await.assert_error(4);
    // A WebSocket handshake whose upgrade cannot happen (no connection to take over here).
    let ws = websocket_handshake_request()
        .header("x-allowed", "1")
        .body(Body::empty())
        .unwrap();
    send(&t.router, ws).await.assert_error(3);

    let allowed = Request::get(HANDSHAKE)
        .header("x-allowed", "1")
        .body(Body::empty())
        .unwrap();
    send(&t.router, allowed).await.sid();
    assert_eq!(t.engine.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Handshake rate

#[tokio::test(start_paused = true)]
async fn handshakes_over_the_rate_get_429_until_the_bucket_refills() {
    let t = echo_app(EngineIoConfig::default().max_handshakes_per_second(2));
    let a = handshake(&t.router).await;
    handshake(&t.router).await;

    let refused = get(&t.router, HANDSHAKE).await;
    assert_limit_error(&refused, 429, 7, "Too many handshakes");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // A WebSocket handshake takes from the same bucket.
    let ws = websocket_handshake_request().body(Body::empty()).unwrap();
    assert_eq!(send(&t.router, ws).await.status, 429);

    // Requests of open sessions are not handshakes.
    for _ in 0..5 {
        assert_eq!(post(&t.router, &poll_uri(a), "4x").await.body, "ok");
        assert_eq!(get(&t.router, &poll_uri(a)).await.body, "4x");
    }
    assert_eq!(get(&t.router, HANDSHAKE).await.status, 429);

    // Half a second gives one token back, a quiet second the whole bucket.
    sleep(Duration::from_millis(500)).await;
    handshake(&t.router).await;
    assert_eq!(get(&t.router, HANDSHAKE).await.status, 429);
    sleep(Duration::from_secs(1)).await;
    handshake(&t.router).await;
    handshake(&t.router).await;
    assert_eq!(get(&t.router, HANDSHAKE).await.status, 429);
    assert_eq!(t.engine.len(), 5);
}
