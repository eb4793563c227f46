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

#[tokio::test]
async fn a_batch_arrives_whole_and_in_order_or_not_at_all() {
    use ferrio_engine::{PreparedMessage, SendError};
    // A batch is 7 + 2 + 1 bytes: the limit leaves room for two unread batches, not three.
    let app = app(EngineIoConfig::default()
        .outbound_budget(1)
        .outbound_limit(20));
    let sid = handshake(&app.router).await;
    let socket = app.engine.get(sid).unwrap();

    socket.send("before").unwrap();
    let batch = [
        PreparedMessage::text("header"),
        PreparedMessage::binary(vec![1u8, 2]),
        PreparedMessage::binary(vec![3u8]),
    ];
    socket.send_batch(&batch).unwrap();
    assert_eq!(
        get(&app.router, &poll_uri(sid)).await.body,
        "4before\x1e4header\x1ebAQI=\x1ebAw=="
    );

    socket.send_batch(&batch).unwrap();
    socket.send_batch(&batch).unwrap();
    // A third batch does not fit, and none of it is queued.
    assert_eq!(socket.send_batch(&batch), Err(SendError::Full(())));
    assert_eq!(socket.buffered(), 6);
    assert_eq!(socket.buffered_bytes(), 20);

    socket.close();
    assert_eq!(socket.send_batch(&batch), Err(SendError::Closed(())));
}

/// Many tasks sending batches at once: every batch still arrives contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_never_interleave() {
    use ferrio_engine::PreparedMessage;
    let app = app(EngineIoConfig::default());
    let sid = handshake(&app.router).await;
    let socket = app.engine.get(sid).unwrap();

    let senders: Vec<_> = (0..8)
        .map(|task| {
            let socket = socket.clone();
            tokio::spawn(async move {
                for round in 0..20 {
                    let batch: Vec<_> = (0..3)
                        .map(|part| PreparedMessage::text(&format!("{task}.{round}.{part}")))
                        .collect();
                    socket.send_batch(&batch).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let body = get(&app.router, &poll_uri(sid)).await.body;
    let packets: Vec<&str> = body.split('\x1e').collect();
    assert_eq!(packets.len(), 8 * 20 * 3);
    for triple in packets.chunks(3) {
        let prefix = triple[0]
            .strip_suffix(".0")
            .expect("a batch starts with part 0");
        assert_eq!(
            triple,
            [
                format!("{prefix}.0"),
                format!("{prefix}.1"),
                format!("{prefix}.2")
            ],
            "a batch was split: {triple:?}"
        );
    }
}

#[tokio::test]
async fn a_session_carries_one_attached_value_of_the_layer_above() {
    let app = app(EngineIoConfig::default());
    let sid = handshake(&app.router).await;
    let socket = app.engine.get(sid).unwrap();
    assert_eq!(socket.attached::<String>(), None);
    assert_eq!(socket.attach(String::from("state")), Ok(()));
    // Once attached, the value stays; a second one is handed back.
    assert_eq!(
        socket.attach(String::from("other")),
        Err(String::from("other"))
    );
    assert_eq!(socket.attach(7u32), Err(7u32));
    // Every handle of the session sees it, by its type only.
    let again = app.engine.get(sid).unwrap();
    assert_eq!(
        again.attached::<String>().map(String::as_str),
        Some("state")
    );
    assert_eq!(again.attached::<u32>(), None);
}

#[tokio::test]
async fn buffered_counts_what_the_transport_has_not_taken_yet() {
    let app = app(EngineIoConfig::default());
    let sid = handshake(&app.router).await;
    let socket = app.engine.get(sid).unwrap();
    assert_eq!(socket.buffered(), 0);
    socket.send("a").unwrap();
    socket.send("b").unwrap();
    assert_eq!(socket.buffered(), 2);
    // A poll takes everything queued.
    assert_eq!(get(&app.router, &poll_uri(sid)).await.body, "4a\x1e4b");
    assert_eq!(socket.buffered(), 0);
}
