//! Read backpressure: a session whose reads the handler paused takes no further message from
//! its client, on either transport, until resumed; writes and pings go on meanwhile.

mod common;
use common::*;

use std::sync::Mutex;
use std::time::Duration;

use ferrio_engine::{
    CloseReason, EngineHandler, EngineIoConfig, EngineIoLayer, Message, Sid, Socket,
};
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long a test waits to be sure something does not happen.
const QUIET: Duration = Duration::from_millis(300);

/// Records messages and closes; a `pause` message pauses the session's reads.
struct Pausing {
    tx: mpsc::UnboundedSender<Event>,
    sockets: Sockets,
}

impl EngineHandler for Pausing {
    fn on_open(&self, socket: &Socket) {
        self.sockets.lock().unwrap().push(socket.clone());
    }
    fn on_message(&self, socket: &Socket, message: Message) {
        if message == Message::from("pause") {
            socket.pause_reading();
        }
        let _ = self.tx.send(Event::Message(socket.id(), message));
    }
    fn on_close(&self, socket: &Socket, reason: CloseReason) {
        let _ = self.tx.send(Event::Close(socket.id(), reason));
    }
}

async fn pausing_server(config: EngineIoConfig) -> (std::net::SocketAddr, Events, Sockets) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sockets = Sockets::default();
    let layer = EngineIoLayer::new(
        config,
        Pausing {
            tx,
            sockets: sockets.clone(),
        },
    );
    let addr = serve(axum::Router::new().layer(layer)).await;
    (addr, Events(rx), sockets)
}

fn socket_of(sockets: &Mutex<Vec<Socket>>, sid: Sid) -> Socket {
    let sockets = sockets.lock().unwrap();
    sockets.iter().find(|s| s.id() == sid).unwrap().clone()
}

/// Asserts that no message reaches the handler for [`QUIET`].
async fn assert_no_message(events: &mut Events) {
    if let Ok(Some(event)) = tokio::time::timeout(QUIET, events.0.recv()).await {
        panic!("expected nothing while reads are paused, got {event:?}");
    }
}

#[tokio::test]
async fn a_paused_websocket_reads_nothing_until_resumed_and_still_writes() {
    let (addr, mut events, sockets) = pausing_server(EngineIoConfig::default()).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "4pause").await;
    ws_send(&mut ws, "4a").await;
    ws_send(&mut ws, "4b").await;
    assert_eq!(events.message_of(sid).await, Message::from("pause"));
    assert_no_message(&mut events).await;

    let socket = socket_of(&sockets, sid);
    socket.send("while paused").unwrap();
    assert_eq!(ws_next_text(&mut ws).await, "4while paused");

    socket.resume_reading();
    assert_eq!(events.message_of(sid).await, Message::from("a"));
    assert_eq!(events.message_of(sid).await, Message::from("b"));
}

#[tokio::test]
async fn a_paused_polling_post_delivers_the_rest_of_its_payload_and_answers_after_resume() {
    let (addr, mut events, sockets) = pausing_server(EngineIoConfig::default()).await;
    let sid = http_handshake(addr).await;
    let uri = poll_uri(sid);

    let post = tokio::spawn(async move { http(addr, "POST", &uri, "4pause\x1e4a\x1e4b").await });
    assert_eq!(events.message_of(sid).await, Message::from("pause"));
    assert_no_message(&mut events).await;
    assert!(
        !post.is_finished(),
        "the post is answered only once delivered"
    );

    socket_of(&sockets, sid).resume_reading();
    assert_eq!(events.message_of(sid).await, Message::from("a"));
    assert_eq!(events.message_of(sid).await, Message::from("b"));
    let reply = tokio::time::timeout(Duration::from_secs(5), post)
        .await
        .expect("the post is answered after the resume")
        .unwrap();
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_session_paused_past_ping_timeout_closes_with_ping_timeout() {
    let config = EngineIoConfig::default()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(400));
    let (addr, mut events, _sockets) = pausing_server(config).await;
    let (mut ws, sid) = ws_handshake(addr).await;

    ws_send(&mut ws, "4pause").await;
    assert_eq!(events.message_of(sid).await, Message::from("pause"));
    // The heartbeat goes on while paused: pings come, and the client answers every one, but
    // no pong is read.
    let answering = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(frame) = ws_next(&mut ws).await {
            if frame.to_text().is_ok_and(|text| text == "2") {
                pings += 1;
                // The server may close meanwhile: a failed send is no failure of the test.
                let _ = ws.send(WsMessage::text("3")).await;
            }
        }
        pings
    });
    assert_eq!(events.close_of(sid).await, CloseReason::PingTimeout);
    let pings = answering.await.unwrap();
    assert!(pings >= 1, "a ping came while paused");
}
