//! The life of a session as the handler sees it: `on_open` first, `on_close` last and exactly
//! once, never inside another callback, even when the handler closes the session itself or
//! panics; and closed sessions never stay in the table.

mod common;
use common::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio_engine::{
    CloseReason, EngineHandler, EngineIoConfig, EngineIoLayer, Message, Sid, Socket,
};

/// Records callbacks in order; closes the session from inside `on_message` when asked to by
/// the text `close`, and panics on the text `panic` or from `on_open` when `panic_on_open`.
#[derive(Default)]
struct Strict {
    log: Mutex<Vec<String>>,
    inside_callback: AtomicBool,
    nested: AtomicBool,
    close_on_open: bool,
}

impl Strict {
    fn enter(&self) {
        if self.inside_callback.swap(true, Ordering::SeqCst) {
            self.nested.store(true, Ordering::SeqCst);
        }
    }
    fn leave(&self) {
        self.inside_callback.store(false, Ordering::SeqCst);
    }
    fn log(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
}

impl EngineHandler for Strict {
    fn on_open(&self, socket: &Socket) {
        self.enter();
        self.log("open".into());
        if self.close_on_open {
            socket.close();
        }
        self.leave();
    }

    fn on_message(&self, socket: &Socket, message: Message) {
        self.enter();
        let text = match &message {
            Message::Text(text) => text.to_string(),
            Message::Binary(_) => "binary".into(),
        };
        self.log(format!("message {text}"));
        match text.as_str() {
            "close" => {
                socket.close();
                self.log("after close".into());
            }
            "panic" => {
                self.leave();
                panic!("handler bug");
            }
            _ => {}
        }
        self.leave();
    }

    fn on_close(&self, _socket: &Socket, reason: CloseReason) {
        self.enter();
        self.log(format!("close {reason}"));
        self.leave();
    }
}

fn strict_app(handler: Strict) -> (axum::Router, ferrio_engine::EngineIo, Arc<Strict>) {
    let handler = Arc::new(handler);
    let layer = EngineIoLayer::from_arc(EngineIoConfig::default(), handler.clone());
    let engine = layer.engine();
    (axum::Router::new().layer(layer), engine, handler)
}

#[tokio::test]
async fn a_close_from_inside_on_message_is_reported_after_it_returns() {
    let (router, _engine, handler) = strict_app(Strict::default());
    let sid = handshake(&router).await;
    post(&router, &poll_uri(sid), "4hello\x1e4close\x1e4never").await;

    let log = handler.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "open",
            "message hello",
            "message close",
            "after close",
            "close forced close"
        ]
    );
    assert!(
        !handler.nested.load(Ordering::SeqCst),
        "a callback ran inside another"
    );
}

#[tokio::test]
async fn a_panicking_handler_closes_only_its_session() {
    let (router, engine, handler) = strict_app(Strict::default());
    let sid = handshake(&router).await;
    let other = handshake(&router).await;

    post(&router, &poll_uri(sid), "4panic\x1e4after").await;
    assert!(engine.get(sid).is_none(), "the session closed");
    get(&router, &poll_uri(sid)).await.assert_error(1);

    // The server and the other session go on.
    assert_eq!(post(&router, &poll_uri(other), "4fine").await.body, "ok");
    let log = handler.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "open",
            "open",
            "message panic",
            "close transport error",
            "message fine"
        ]
    );
}

#[tokio::test]
async fn a_panicking_handler_does_not_kill_a_websocket_connection_task_silently() {
    let (router, engine, handler) = strict_app(Strict::default());
    let addr = serve(router).await;
    let (mut ws, sid) = ws_handshake(addr).await;
    ws_send(&mut ws, "4panic").await;
    // The session is closed at once (not left to the ping timeout) and the socket with it.
    assert_eq!(ws_next(&mut ws).await, None);
    assert!(engine.get(sid).is_none());
    let log = handler.log.lock().unwrap().clone();
    assert_eq!(
        log.last().map(String::as_str),
        Some("close transport error")
    );
}

#[tokio::test]
async fn a_close_inside_on_open_comes_after_it_and_the_client_still_gets_the_close() {
    let (router, engine, handler) = strict_app(Strict {
        close_on_open: true,
        ..Strict::default()
    });
    let reply = get(&router, "/engine.io/?EIO=4&transport=polling").await;
    let sid = reply.sid();
    assert!(engine.is_empty());
    assert_eq!(get(&router, &poll_uri(sid)).await.body, "1");
    get(&router, &poll_uri(sid)).await.assert_error(1);
    let log = handler.log.lock().unwrap().clone();
    assert_eq!(log, ["open", "close forced close"]);
    assert!(!handler.nested.load(Ordering::SeqCst));
}

/// A server close that lands at the very moment the pong deadline passes must not leave the
/// session in the table (it once did, half of the time).
#[tokio::test(start_paused = true)]
async fn a_close_at_the_pong_deadline_leaves_nothing_behind() {
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_millis(200);
    let t = app(EngineIoConfig::default()
        .ping_interval(interval)
        .ping_timeout(timeout));
    let start = tokio::time::Instant::now();
    let mut sids: Vec<Sid> = Vec::new();
    for _ in 0..40 {
        sids.push(handshake(&t.router).await);
    }
    for &sid in &sids {
        let engine = t.engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + interval + timeout).await;
            if let Some(socket) = engine.get(sid) {
                socket.close();
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
    for sid in sids {
        // Forgotten: not even a last `close` packet is waiting any more.
        get(&t.router, &poll_uri(sid)).await.assert_error(1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lingering_closed_session_is_not_listed_but_still_collects_its_last_poll() {
    let t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    let socket = t.engine.get(sid).unwrap();
    socket.send("bye").unwrap();
    socket.close();

    assert!(t.engine.get(sid).is_none());
    assert!(t.engine.is_empty());
    assert!(t.engine.sockets().is_empty());
    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "4bye\x1e1");
}

#[tokio::test]
async fn only_refused_websocket_handshakes_close_their_connection() {
    use axum::body::Body;
    let t = app(EngineIoConfig::default());
    let sid = handshake(&t.router).await;
    // A client that offers an HTTP/2 upgrade on an ordinary poll keeps its connection.
    let poll = send(
        &t.router,
        http::Request::post(poll_uri(sid))
            .header("upgrade", "h2c")
            .header("connection", "upgrade")
            .body(Body::from("4x"))
            .unwrap(),
    )
    .await;
    assert_eq!(poll.body, "ok");
    assert!(poll.headers.get("connection").is_none());
    // A WebSocket handshake refused for its query closes its connection.
    let refused = send(
        &t.router,
        http::Request::get("/engine.io/?EIO=4&transport=nope")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    refused.assert_error(0);
    assert_eq!(refused.headers.get("connection").unwrap(), "close");
}

/// Sends a farewell and closes from inside `on_open`.
struct ByeOnOpen;

impl EngineHandler for ByeOnOpen {
    fn on_open(&self, socket: &Socket) {
        socket.send("bye").unwrap();
        socket.close();
    }
    fn on_message(&self, _: &Socket, _: Message) {}
}

#[tokio::test]
async fn what_on_open_sends_before_closing_reaches_the_polling_client_with_the_close() {
    let layer = EngineIoLayer::new(EngineIoConfig::default(), ByeOnOpen);
    let router = axum::Router::new().layer(layer);
    let sid = handshake(&router).await;
    assert_eq!(get(&router, &poll_uri(sid)).await.body, "4bye\x1e1");
    get(&router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test]
async fn a_closed_session_kept_for_its_last_poll_cannot_be_upgraded() {
    let layer = EngineIoLayer::new(EngineIoConfig::default(), ByeOnOpen);
    let addr = serve(axum::Router::new().layer(layer)).await;
    let sid = http_handshake(addr).await;
    assert_eq!(
        ws_connect(addr, &format!("EIO=4&transport=websocket&sid={sid}"))
            .await
            .err(),
        Some(http::StatusCode::BAD_REQUEST)
    );
    // The last poll still gets what was left for it.
    let reply = http(addr, "GET", &poll_uri(sid), "").await;
    assert_eq!(reply.body, "4bye\x1e1");
}

/// An `on_open` slow enough for a shutdown to start while it runs.
struct SlowOpen(Arc<std::sync::atomic::AtomicUsize>);

impl EngineHandler for SlowOpen {
    fn on_open(&self, _: &Socket) {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
    }
    fn on_message(&self, _: &Socket, _: Message) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_reaches_a_session_whose_on_open_is_still_running() {
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layer = EngineIoLayer::new(EngineIoConfig::default(), SlowOpen(entered.clone()));
    let engine = layer.engine();
    let router = axum::Router::new().layer(layer);
    let opening = {
        let router = router.clone();
        tokio::spawn(async move { handshake(&router).await })
    };
    while entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.close_all();
    let sid = opening.await.unwrap();
    assert!(engine.get(sid).is_none(), "the session survived close_all");
    assert_eq!(get(&router, &poll_uri(sid)).await.body, "1");
}
