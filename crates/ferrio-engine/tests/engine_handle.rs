//! The `EngineIo` handle: finding sessions and closing them all for a graceful shutdown.

mod common;

use common::*;
use ferrio_engine::{CloseReason, EngineIoConfig};

// Virtual time: a short sleep lets the spawned poll reach its wait, deterministically.
#[tokio::test(start_paused = true)]
async fn close_all_ends_every_session_with_forced_close() {
    let mut app = app(EngineIoConfig::default());
    let a = handshake(&app.router).await;
    let b = handshake(&app.router).await;
    assert_eq!(app.engine.len(), 2);
    app.engine
        .get(a)
        .expect("session a")
        .send("last words")
        .unwrap();

    // a has no poll in flight; b has one.
    let router = app.router.clone();
    let pending_b = tokio::spawn(async move { get(&router, &poll_uri(b)).await });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert!(!pending_b.is_finished(), "b's poll waits for data");

    app.engine.close_all();

    assert_eq!(pending_b.await.unwrap().body, "1");
    // a's next poll collects what was queued, then the close.
    assert_eq!(
        get(&app.router, &poll_uri(a)).await.body,
        "4last words\x1e1"
    );
    get(&app.router, &poll_uri(a)).await.assert_error(1);
    get(&app.router, &poll_uri(b)).await.assert_error(1);
    assert!(app.engine.is_empty());

    // close_all goes through the sessions in no particular order.
    let mut closes: Vec<_> = app
        .events
        .drain()
        .into_iter()
        .filter_map(|event| match event {
            Event::Close(sid, reason) => Some((sid, reason)),
            _ => None,
        })
        .collect();
    closes.sort_by_key(|(sid, _)| *sid);
    let mut expected = vec![(a, CloseReason::ForcedClose), (b, CloseReason::ForcedClose)];
    expected.sort_by_key(|(sid, _)| *sid);
    assert_eq!(closes, expected);
}

#[tokio::test]
async fn sockets_compare_by_session() {
    let app = app(EngineIoConfig::default());
    let a = handshake(&app.router).await;
    let b = handshake(&app.router).await;
    assert_eq!(app.engine.get(a).unwrap(), app.engine.get(a).unwrap());
    assert_ne!(app.engine.get(a).unwrap(), app.engine.get(b).unwrap());
    // Key maps by `Socket::id()`, which never changes.
    assert_eq!(app.engine.get(a).unwrap().id(), a);
}
