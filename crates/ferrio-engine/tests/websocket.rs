//! WebSocket sessions against a real server: handshake, messages, limits, heartbeat and closes.

mod common;
use common::*;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ferrio_engine::{CloseReason, EngineIoConfig, Message, Sid, Transport};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Collects events until `sid` closes; returns the messages seen on the way and the reason.
async fn messages_until_close(events: &mut Events, sid: Sid) -> (Vec<Message>, CloseReason) {
    let mut messages = Vec::new();
    loop {
        match events.next().await {
            Event::Message(s, message) if s == sid => messages.push(message),
            Event::Close(s, reason) if s == sid => return (messages, reason),
            _ => {}
        }
    }
}

#[tokio::test]
async fn handshake_sends_the_open_packet_first_with_its_keys_in_order() {
    let app = app(EngineIoConfig::default().max_payload(12_345));
    let mut events = app.events;
    let addr = serve(app.router).await;

    let mut ws = ws_connect(addr, "EIO=4&transport=websocket")
        .await
        .expect("handshake accepted");
    let open = ws_next_text(&mut ws).await;
    let json = open_json(&open);
    let sid = json["sid"].as_str().expect("sid is a string").to_owned();
    assert_eq!(sid.len(), 20, "sid is 15 random bytes in URL-safe base64");
    assert_eq!(
        open,
        format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":12345}}"#
        )
    );
    assert_eq!(events.next().await, Event::Open(Sid::parse(&sid).unwrap()));
}

#[tokio::test]
async fn text_message_is_echoed_as_text() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_next_text(&mut ws).await, "4hello");
    assert_eq!(events.message_of(sid).await, Message::from("hello"));
}

#[tokio::test]
async fn binary_message_stays_binary_without_prefix() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    let data = vec![0u8, 1, 2, 0xff, b'4'];
    ws.send(WsMessage::binary(data.clone())).await.unwrap();
    assert_eq!(
        events.message_of(sid).await,
        Message::from(data.clone()),
        "the whole frame is the message, no type byte stripped"
    );
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(echoed)) => assert_eq!(echoed.as_ref(), data.as_slice()),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn several_messages_keep_their_order() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    for i in 0..20 {
        if i % 5 == 4 {
            ws.send(WsMessage::binary(vec![i as u8])).await.unwrap();
        } else {
            ws_send(&mut ws, &format!("4m{i}")).await;
        }
    }
    for i in 0..20 {
        let expected = if i % 5 == 4 {
            Message::from(vec![i as u8])
        } else {
            Message::from(format!("m{i}"))
        };
        assert_eq!(events.message_of(sid).await, expected, "handler order");
        let frame = ws_next(&mut ws).await.expect("echo frame");
        let expected_frame = if i % 5 == 4 {
            WsMessage::binary(vec![i as u8])
        } else {
            WsMessage::text(format!("4m{i}"))
        };
        assert_eq!(frame, expected_frame, "echo order");
    }
}

#[tokio::test]
async fn message_over_max_payload_closes_with_1009() {
    let app = echo_app(EngineIoConfig::default().max_payload(1024));
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    // Just under the limit goes through.
    let fits = format!("4{}", "a".repeat(1000));
    ws_send(&mut ws, &fits).await;
    assert_eq!(ws_next_text(&mut ws).await, fits);

    ws_send(&mut ws, &format!("4{}", "x".repeat(2000))).await;
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));
    let (messages, reason) = messages_until_close(&mut events, sid).await;
    assert_eq!(reason, CloseReason::TransportError);
    assert_eq!(
        messages,
        vec![Message::from("a".repeat(1000))],
        "the oversized message is never delivered"
    );
}

#[tokio::test]
async fn fragmented_message_over_max_payload_closes_with_1009() {
    let app = echo_app(EngineIoConfig::default().max_payload(1024));
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    // Fragments that add up to less than the limit are reassembled into one message.
    let small = format!("4{}", "s".repeat(299));
    let (head, tail) = small.split_at(150);
    ws.send(WsMessage::Frame(Frame::message(
        head.to_owned(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    ws.send(WsMessage::Frame(Frame::message(
        tail.to_owned(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(ws_next_text(&mut ws).await, small);

    // Each fragment fits, together they do not.
    let chunk = "y".repeat(500);
    let frames = [
        Frame::message(format!("4{chunk}"), OpCode::Data(Data::Text), false),
        Frame::message(chunk.clone(), OpCode::Data(Data::Continue), false),
        Frame::message(chunk, OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        // The server may already have closed before the last fragment is written.
        if ws.send(WsMessage::Frame(frame)).await.is_err() {
            break;
        }
    }
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));
    let (messages, reason) = messages_until_close(&mut events, sid).await;
    assert_eq!(reason, CloseReason::TransportError);
    assert_eq!(messages, vec![Message::from("s".repeat(299))]);
}

/// Bytes that show where each one came from: a shifted or dropped piece cannot go unseen.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn messages_far_bigger_than_the_read_buffer_arrive_intact() {
    // The smallest read buffer: the engine reads ahead while the big messages stream in.
    let config = EngineIoConfig::default()
        .websocket_read_buffer_size(256)
        .max_payload(2_000_000);
    let app = echo_app(config);
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    let big = pattern(1_500_000);
    // Multi-byte characters cut at every read boundary.
    let text = format!("4{}", "é€😀".repeat(40_000));
    // Sent back to back with small ones: the reads switch to the large buffer and back.
    ws.send(WsMessage::binary(big.clone())).await.unwrap();
    ws_send(&mut ws, "4small").await;
    ws_send(&mut ws, &text).await;
    ws.send(WsMessage::binary(vec![7u8; 300])).await.unwrap();
    ws_send(&mut ws, "4last").await;

    assert_eq!(events.message_of(sid).await, Message::from(big.clone()));
    assert_eq!(events.message_of(sid).await, Message::from("small"));
    assert_eq!(
        events.message_of(sid).await,
        Message::from(text[1..].to_owned())
    );
    assert_eq!(events.message_of(sid).await, Message::from(vec![7u8; 300]));
    assert_eq!(events.message_of(sid).await, Message::from("last"));
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(echoed)) => assert!(echoed.as_ref() == big.as_slice()),
        other => panic!(
            "expected the big binary echo, got {:?}",
            other.map(|m| m.len())
        ),
    }
    assert_eq!(ws_next_text(&mut ws).await, "4small");
    assert_eq!(ws_next_text(&mut ws).await, text);
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(vec![7u8; 300]))
    );
    assert_eq!(ws_next_text(&mut ws).await, "4last");
    events.assert_no_close();
}

#[tokio::test]
async fn a_big_message_over_max_payload_still_closes_with_1009() {
    let config = EngineIoConfig::default()
        .websocket_read_buffer_size(256)
        .max_payload(100_000);
    let app = echo_app(config);
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    // Just under the limit, far bigger than the read buffer: delivered.
    let fits = pattern(100_000);
    ws.send(WsMessage::binary(fits.clone())).await.unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(fits.clone()))
    );

    // The server may close before the whole message is written.
    let _ = ws.send(WsMessage::binary(pattern(400_000))).await;
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));
    let (messages, reason) = messages_until_close(&mut events, sid).await;
    assert_eq!(reason, CloseReason::TransportError);
    assert_eq!(messages, vec![Message::from(fits)]);
}

#[tokio::test]
async fn client_ping_is_a_parse_error() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "2").await;
    assert_eq!(events.close_of(sid).await, CloseReason::ParseError);
    assert_eq!(ws_next(&mut ws).await, None, "the connection is closed");
}

#[tokio::test]
async fn invalid_packet_closes_the_connection() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "abc").await;
    assert_eq!(ws_next(&mut ws).await, None, "the connection is closed");
    assert_eq!(events.close_of(sid).await, CloseReason::ParseError);
    assert!(app.engine.get(sid).is_none(), "the session is gone");
}

#[tokio::test]
async fn client_close_packet_closes_the_session() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "1").await;
    assert_eq!(events.close_of(sid).await, CloseReason::TransportClose);
    assert_eq!(ws_next(&mut ws).await, None, "the connection is closed");
    assert!(app.engine.get(sid).is_none());
}

#[tokio::test]
async fn client_close_frame_closes_the_session() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws.close(None).await.unwrap();
    assert_eq!(events.close_of(sid).await, CloseReason::TransportClose);
    assert!(app.engine.get(sid).is_none());
    // The closing handshake completes: the server answers with a close frame of its own.
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the server answers the close");
    assert!(
        matches!(answer, Some(Ok(WsMessage::Close(_)))),
        "expected a close frame, got {answer:?}"
    );
}

#[tokio::test]
async fn over_websocket_each_ping_comes_ping_interval_after_the_last_pong() {
    let interval = Duration::from_millis(200);
    let config = EngineIoConfig::default()
        .ping_interval(interval)
        .ping_timeout(Duration::from_secs(5));
    let app = echo_app(config);
    let addr = serve(app.router).await;
    let start = tokio::time::Instant::now();
    let (mut ws, sid) = ws_handshake(addr).await;

    assert_eq!(ws_next_text(&mut ws).await, "2");
    assert!(start.elapsed() >= interval, "not before ping_interval");
    for _ in 0..3 {
        // Answer late, and talk meanwhile: messages are not pongs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        ws_send(&mut ws, "4hello").await;
        assert_eq!(ws_next_text(&mut ws).await, "4hello");
        let ponged = tokio::time::Instant::now();
        ws_send(&mut ws, "3").await;
        assert_eq!(ws_next_text(&mut ws).await, "2");
        assert!(ponged.elapsed() >= interval, "{:?}", ponged.elapsed());
    }
    assert!(app.engine.get(sid).is_some());
}

#[tokio::test]
async fn heartbeat_pings_and_closes_without_pong() {
    let config = EngineIoConfig::default()
        .ping_interval(Duration::from_millis(100))
        // Generous enough for a loaded machine to answer the first ping in time.
        .ping_timeout(Duration::from_millis(400));
    let app = app(config);
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    assert_eq!(ws_next_text(&mut ws).await, "2");
    ws_send(&mut ws, "3").await;
    assert_eq!(
        ws_next_text(&mut ws).await,
        "2",
        "a new ping after the pong"
    );
    // The first pong kept the session alive past its first deadline; no answer now.
    assert_eq!(events.close_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(ws_next(&mut ws).await, None, "the connection is closed");
    assert!(app.engine.get(sid).is_none());
}

#[tokio::test]
async fn server_close_flushes_queued_messages_first() {
    let app = app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    let socket = app.engine.get(sid).expect("session");
    socket.send("one").unwrap();
    socket.send(vec![7u8]).unwrap();
    socket.send("two").unwrap();
    assert!(socket.close());
    assert!(!socket.close(), "a second close does nothing");

    let mut frames = Vec::new();
    while let Some(frame) = ws_next(&mut ws).await {
        frames.push(frame);
    }
    assert_eq!(
        frames[..3],
        [
            WsMessage::text("4one"),
            WsMessage::binary(vec![7u8]),
            WsMessage::text("4two")
        ],
        "queued messages come before the close"
    );
    assert!(
        frames[3..].iter().all(|f| *f == WsMessage::text("1")),
        "nothing but a close packet after them: {frames:?}"
    );
    assert_eq!(events.close_of(sid).await, CloseReason::ForcedClose);
    assert!(socket.is_closed());
}

#[tokio::test]
async fn socket_transport_is_websocket() {
    let app = app(EngineIoConfig::default());
    let addr = serve(app.router).await;
    let (_ws, sid) = ws_handshake(addr).await;
    let socket = app.engine.get(sid).expect("session");
    assert_eq!(socket.transport(), Transport::WebSocket);
    assert_eq!(socket.protocol(), 4);
}

#[tokio::test]
async fn query_errors_refuse_the_handshake() {
    let app = echo_app(EngineIoConfig::default());
    let mut events = app.events;
    let addr = serve(app.router).await;

    for query in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=3&transport=websocket",
        "EIO=4",
        "EIO=4&transport=abc",
        "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA",
        "EIO=4&transport=websocket&sid=nope",
    ] {
        assert_eq!(
            ws_connect(addr, query).await.err(),
            Some(http::StatusCode::BAD_REQUEST),
            "query {query}"
        );
    }
    assert!(app.engine.is_empty(), "no session opened");
    assert!(events.drain().is_empty(), "no handler event");

    // The server still serves everyone else.
    let (mut ws, sid) = ws_handshake(addr).await;
    assert_eq!(events.next().await, Event::Open(sid));
    ws_send(&mut ws, "4still here").await;
    assert_eq!(ws_next_text(&mut ws).await, "4still here");
}

#[tokio::test]
async fn handshake_records_remote_addr_headers_and_query() {
    let app = app(EngineIoConfig::default());
    let addr = serve(app.router).await;

    let mut req = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket&token=abc")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-ferrio-test", http::HeaderValue::from_static("yes"));
    let mut ws = ws_connect_request(req).await.expect("handshake");
    let open = open_json(&ws_next_text(&mut ws).await);
    let sid = Sid::parse(open["sid"].as_str().unwrap()).unwrap();

    let socket = app.engine.get(sid).expect("session");
    let handshake = socket.handshake();
    let remote = handshake.remote_addr().expect("remote address recorded");
    assert_eq!(remote.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(
        remote.port(),
        addr.port(),
        "the client's port, not the server's"
    );
    assert_eq!(handshake.headers()["x-ferrio-test"], "yes");
    assert_eq!(
        handshake.query(),
        Some("EIO=4&transport=websocket&token=abc")
    );
    assert_eq!(handshake.uri().path(), "/engine.io/");
}

#[tokio::test]
async fn a_refused_handshake_closes_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = echo_app(EngineIoConfig::default());
    let addr = serve(app.router).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /engine.io/?EIO=4&transport=abc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    // The server answers and then closes: reading to the end terminates.
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response))
        .await
        .expect("the server closed the connection")
        .unwrap();
    let response = String::from_utf8_lossy(&response).to_lowercase();
    assert!(response.starts_with("http/1.1 400"), "{response}");
    assert!(response.contains("connection: close"), "{response}");
    assert!(response.contains(r#"{"code":0,"message":"transport unknown"}"#));
}

/// A burst far over the outbound budget: a client that reads gets all of it, in order; one
/// that stopped reading is closed as a slow client, its queue dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_client_gets_a_whole_burst_and_a_stalled_one_is_closed() {
    use ferrio_engine::PreparedMessage;
    const COUNT: usize = 2000;
    let app = app(EngineIoConfig::default()
        .outbound_budget(64 * 1024)
        .outbound_stall_timeout(Duration::from_millis(200)));
    let mut events = app.events;
    let engine = app.engine.clone();
    let addr = serve(app.router).await;

    let (mut reader, reader_sid) = ws_handshake(addr).await;
    let (stalled, stalled_sid) = ws_handshake(addr).await;
    let sockets = [
        engine.get(reader_sid).unwrap(),
        engine.get(stalled_sid).unwrap(),
    ];

    // 2 000 messages of 8 KiB (16 MiB): far more than the kernel's socket buffers hold.
    let filler = "x".repeat(8 * 1024);
    for i in 0..COUNT {
        let message = PreparedMessage::text(&format!("{i:05}{filler}"));
        for socket in &sockets {
            socket.send_prepared(&message).unwrap();
        }
    }
    let read = tokio::spawn(async move {
        let mut next = 0;
        while next < COUNT {
            let text = ws_next_text(&mut reader).await;
            assert_eq!(text[1..6], format!("{next:05}"), "messages arrive in order");
            next += 1;
        }
        reader
    });

    assert_eq!(events.close_of(stalled_sid).await, CloseReason::SlowClient);
    assert_eq!(
        sockets[1].buffered(),
        0,
        "the stalled client's queue is dropped"
    );
    let mut reader = read.await.expect("the reading client got every message");
    assert!(!sockets[0].is_closed());
    assert_eq!(sockets[0].buffered_bytes(), 0);
    sockets[0].send("after").unwrap();
    assert_eq!(ws_next_text(&mut reader).await, "4after");
    drop(stalled);
}
