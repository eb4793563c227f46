//! Upgrades from polling to WebSocket against a real server, and aborted polls.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::Duration;

use ferrio_engine::{CloseReason, EngineIoConfig, Message, Sid, Transport};
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Starts a poll in the background; its reply comes through the handle.
fn spawn_poll(addr: SocketAddr, sid: Sid) -> tokio::task::JoinHandle<Reply> {
    let uri = poll_uri(sid);
    tokio::spawn(async move { http(addr, "GET", &uri, "").await })
}

/// A poll's reply, which must come within 5 s.
async fn reply_of(poll: tokio::task::JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("poll answered within 5 s")
        .expect("poll task")
}

/// A polling round trip with the echo handler: POST a message, GET it back.
async fn assert_polling_echo(addr: SocketAddr, sid: Sid, text: &str) {
    let posted = http(addr, "POST", &poll_uri(sid), &format!("4{text}")).await;
    assert_eq!((posted.status.as_u16(), posted.body.as_str()), (200, "ok"));
    let polled = http(addr, "GET", &poll_uri(sid), "").await;
    assert_eq!(polled.status, 200);
    assert_eq!(polled.body, format!("4{text}"));
}

/// A WebSocket echo round trip on an upgraded session.
async fn assert_ws_echo(ws: &mut WsClient, text: &str) {
    ws_send(ws, &format!("4{text}")).await;
    assert_eq!(ws_next_text(ws).await, format!("4{text}"));
}

/// Asserts that a WebSocket opened for `sid` is refused, or closed without carrying anything.
async fn assert_ws_rejected(addr: SocketAddr, sid: Sid) {
    match ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}")).await {
        Err(status) => assert_eq!(status, http::StatusCode::BAD_REQUEST),
        Ok(mut ws) => {
            // Whatever the client sends, the server only closes this socket; the send may
            // fail if it already has.
            let _ = ws.send(WsMessage::text("2probe")).await;
            assert_eq!(
                ws_next(&mut ws).await,
                None,
                "the extra WebSocket is closed"
            );
        }
    }
}

#[tokio::test]
async fn full_upgrade_from_polling() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;

    let handshake = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", "").await;
    let sid = handshake.sid();
    assert_eq!(
        open_json(&handshake.body)["upgrades"],
        serde_json::json!(["websocket"])
    );
    let socket = app.engine.get(sid).expect("session");
    assert_eq!(socket.transport(), Transport::Polling);

    let pending = spawn_poll(addr, sid);
    // Let the poll reach the server; it gets `6` whether it was pending or arrives later.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_next_text(&mut ws).await, "3probe");

    let pending = reply_of(pending).await;
    assert_eq!((pending.status.as_u16(), pending.body.as_str()), (200, "6"));

    // Sent while probing: kept for the WebSocket, not given to polls.
    socket.send("during probe").unwrap();
    socket.send(vec![1u8, 2]).unwrap();
    let during = reply_of(spawn_poll(addr, sid)).await;
    assert_eq!((during.status.as_u16(), during.body.as_str()), (200, "6"));
    assert_eq!(socket.transport(), Transport::Polling, "not before `5`");

    ws_send(&mut ws, "5").await;
    assert_eq!(ws_next_text(&mut ws).await, "4during probe");
    assert_eq!(
        ws_next(&mut ws).await,
        Some(tokio_tungstenite::tungstenite::Message::binary(vec![
            1u8, 2
        ]))
    );
    assert_eq!(socket.transport(), Transport::WebSocket);

    http(addr, "GET", &poll_uri(sid), "").await.assert_error(3);
    http(addr, "POST", &poll_uri(sid), "4nope")
        .await
        .assert_error(3);
    assert!(
        !socket.is_closed(),
        "refused polls do not close the session"
    );

    assert_ws_echo(&mut ws, "after upgrade").await;
    assert_eq!(events.message_of(sid).await, Message::from("after upgrade"));
    assert!(app.engine.get(sid).is_some());
}

#[tokio::test]
async fn an_upgraded_session_keeps_one_heartbeat() {
    let interval = Duration::from_millis(300);
    let config = EngineIoConfig::default()
        .ping_interval(interval)
        .ping_timeout(Duration::from_secs(5));
    let app = echo_app(config);
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;
    let mut ws = ws_upgrade(addr, sid).await;

    for _ in 0..2 {
        assert_eq!(ws_next_text(&mut ws).await, "2");
        let ponged = tokio::time::Instant::now();
        ws_send(&mut ws, "3").await;
        // One ping per interval: a second heartbeat would ping again at once.
        assert_eq!(ws_next_text(&mut ws).await, "2");
        assert!(ponged.elapsed() >= interval, "{:?}", ponged.elapsed());
        ws_send(&mut ws, "3").await;
    }
    assert!(app.engine.get(sid).is_some());
}

#[tokio::test]
async fn second_websocket_for_upgraded_session_is_rejected() {
    let app = echo_app(EngineIoConfig::default());
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;
    let mut ws = ws_upgrade(addr, sid).await;
    assert_ws_echo(&mut ws, "first").await;

    assert_ws_rejected(addr, sid).await;

    assert_ws_echo(&mut ws, "still first").await;
    let socket = app.engine.get(sid).expect("session survives");
    assert_eq!(socket.transport(), Transport::WebSocket);
}

#[tokio::test]
async fn second_websocket_while_probing_is_rejected() {
    let app = echo_app(EngineIoConfig::default());
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("first websocket");
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_next_text(&mut ws).await, "3probe");

    assert_ws_rejected(addr, sid).await;

    ws_send(&mut ws, "5").await;
    assert_ws_echo(&mut ws, "upgraded").await;
    assert_eq!(
        app.engine.get(sid).expect("session").transport(),
        Transport::WebSocket
    );
}

#[tokio::test]
async fn upgrade_without_probe_closes_that_websocket() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket");
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_next(&mut ws).await, None, "the WebSocket is closed");

    assert_polling_echo(addr, sid, "polling").await;
    assert_eq!(
        events.message_of(sid).await,
        Message::from("polling"),
        "the message on the failed WebSocket is not delivered"
    );
    let socket = app.engine.get(sid).expect("session survives");
    assert_eq!(socket.transport(), Transport::Polling);
}

#[tokio::test]
async fn probe_followed_by_other_packet_closes_that_websocket() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket");
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_next_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "4not an upgrade").await;
    assert_eq!(ws_next(&mut ws).await, None, "the WebSocket is closed");

    assert_polling_echo(addr, sid, "polling").await;
    assert_eq!(events.message_of(sid).await, Message::from("polling"));
    let socket = app.engine.get(sid).expect("session survives");
    assert_eq!(socket.transport(), Transport::Polling);
}

#[tokio::test]
async fn abandoned_upgrade_is_cancelled_after_upgrade_timeout() {
    let config = EngineIoConfig::default().upgrade_timeout(Duration::from_millis(200));
    let app = echo_app(config);
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let started = tokio::time::Instant::now();
    let mut abandoned = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket");
    assert_eq!(
        ws_next(&mut abandoned).await,
        None,
        "the silent WebSocket is closed by the server"
    );
    // Timers never fire early, so only the lower bound is certain.
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "closed after the upgrade timeout, not at once ({:?})",
        started.elapsed()
    );

    assert_polling_echo(addr, sid, "still polling").await;
    let socket = app.engine.get(sid).expect("session survives");
    assert_eq!(socket.transport(), Transport::Polling);

    let mut ws = ws_upgrade(addr, sid).await;
    assert_ws_echo(&mut ws, "upgraded").await;
    assert_eq!(socket.transport(), Transport::WebSocket);
}

#[tokio::test]
async fn aborted_pending_poll_closes_the_session() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // Long enough on loopback for the poll to become pending.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        events
            .drain()
            .iter()
            .all(|e| !matches!(e, Event::Close(..))),
        "a pending poll alone does not close the session"
    );
    drop(stream);

    assert_eq!(events.close_of(sid).await, CloseReason::TransportError);
    http(addr, "GET", &poll_uri(sid), "").await.assert_error(1);
}

#[tokio::test]
async fn upgrades_disabled_refuse_websocket_with_sid() {
    let app = echo_app(EngineIoConfig::default().allow_upgrades(false));
    let addr = serve(app.router).await;

    let handshake = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", "").await;
    assert_eq!(
        open_json(&handshake.body)["upgrades"],
        serde_json::json!([])
    );
    let sid = handshake.sid();

    assert_eq!(
        ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
            .await
            .err(),
        Some(http::StatusCode::BAD_REQUEST)
    );
    assert_polling_echo(addr, sid, "polling").await;
    assert_eq!(
        app.engine.get(sid).expect("session").transport(),
        Transport::Polling
    );
}

#[tokio::test]
async fn an_oversized_message_on_the_probing_websocket_closes_it_with_1009() {
    let app = echo_app(EngineIoConfig::default().max_payload(1024));
    let addr = serve(app.router).await;
    let sid = http_handshake(addr).await;

    let mut ws = ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket");
    ws.send(WsMessage::text(format!("4{}", "x".repeat(2048))))
        .await
        .unwrap();
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));

    // The session itself goes on over polling.
    assert_polling_echo(addr, sid, "still polling").await;
    assert_eq!(
        app.engine.get(sid).expect("session").transport(),
        Transport::Polling
    );
}
