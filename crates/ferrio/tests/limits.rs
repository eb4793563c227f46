//! The inbound limits of a connection: how many of its handlers may wait at once (read
//! backpressure beyond), how many namespaces it may join, and the rate of its events.

mod common;
use common::polling::{PollingClient, http};
use common::*;

use std::sync::Arc;

use ferrio::{AckSender, DisconnectReason, Io, RateLimit, RateLimitPolicy, SocketRef};
use tokio::sync::{Semaphore, mpsc};

// ---- Waiting handlers and read backpressure ----

/// A server whose `/` sockets handle `wait` with an async handler that reports its start on
/// the channel and then waits for a permit of the gate, and `echo` with the echo handlers.
async fn gated_server(
    builder: ferrio::IoBuilder,
) -> (
    std::net::SocketAddr,
    Arc<Semaphore>,
    mpsc::UnboundedReceiver<u64>,
) {
    let gate = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let handler_gate = gate.clone();
    let (addr, _io) = root_server(builder, move |socket| {
        echo_handlers(socket);
        let (gate, tx) = (handler_gate.clone(), tx.clone());
        socket.on("wait", move |ferrio::Data(n): ferrio::Data<u64>| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                let _ = tx.send(n);
                // Forgotten, not released: each handler takes one permit the test gives.
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
            }
        });
    })
    .await;
    (addr, gate, rx)
}

#[tokio::test]
async fn a_connection_with_its_bound_of_waiting_handlers_reads_nothing_until_one_ends() {
    let builder = Io::builder().max_concurrent_handlers(2);
    let (addr, gate, mut started) = gated_server(builder).await;
    let mut client = joined(addr).await;

    for n in 1..=3 {
        client.send(&format!(r#"2["wait",{n}]"#)).await;
    }
    client.send(r#"2["echo","after"]"#).await;
    assert_eq!(recv(&mut started).await, 1);
    assert_eq!(recv(&mut started).await, 2);
    // Two handlers wait: the third `wait` and the echo are not read.
    assert_no_recv(&mut started).await;
    client.assert_quiet().await;

    // One ends: the connection reads again, until the third handler makes two again.
    gate.add_permits(1);
    assert_eq!(recv(&mut started).await, 3);
    client.assert_quiet().await;

    gate.add_permits(1);
    assert_eq!(client.text().await, r#"2["echo","after"]"#);
    gate.add_permits(1);
    assert_next_is_echo(&mut client, "/", "still reading").await;
}

#[tokio::test]
async fn by_default_64_handlers_may_wait_per_connection() {
    let (addr, gate, mut started) = gated_server(Io::builder()).await;
    let mut client = joined(addr).await;
    client.set_nodelay();

    for n in 1..=65 {
        client.send(&format!(r#"2["wait",{n}]"#)).await;
    }
    for n in 1..=64 {
        assert_eq!(recv(&mut started).await, n);
    }
    assert_no_recv(&mut started).await;
    gate.add_permits(1);
    assert_eq!(recv(&mut started).await, 65);
    gate.add_permits(64);
    assert_next_is_echo(&mut client, "/", "unblocked").await;
}

#[tokio::test]
async fn a_polling_post_is_answered_only_once_a_waiting_handler_makes_room() {
    let builder = Io::builder().max_concurrent_handlers(1);
    let (addr, gate, mut started) = gated_server(builder).await;
    let client = PollingClient::connect(addr).await;
    client.join("/").await;

    let target = format!("/socket.io/?EIO=4&transport=polling&sid={}", client.sid);
    let body = "42[\"wait\",1]\u{1e}42[\"wait\",2]";
    let post = tokio::spawn(async move { http(addr, "POST", &target, body.as_bytes()).await });
    assert_eq!(recv(&mut started).await, 1);
    assert_no_recv(&mut started).await;
    assert!(!post.is_finished(), "the post waits for the handler");

    gate.add_permits(1);
    assert_eq!(recv(&mut started).await, 2);
    let reply = post.await.unwrap();
    assert_eq!((reply.status, reply.text()), (200, "ok".to_owned()));
    gate.add_permits(1);
}

#[tokio::test]
async fn handlers_that_finish_without_waiting_are_not_counted() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let builder = Io::builder().max_concurrent_handlers(1);
    let (addr, _io) = root_server(builder, move |socket| {
        echo_handlers(socket);
        let tx = tx.clone();
        socket.on("ready", move |ferrio::Data(n): ferrio::Data<u64>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(n);
            }
        });
    })
    .await;
    let mut client = joined(addr).await;
    for n in 0..200 {
        client.send(&format!(r#"2["ready",{n}]"#)).await;
    }
    assert_next_is_echo(&mut client, "/", "done").await;
    for n in 0..200 {
        assert_eq!(recv(&mut rx).await, n);
    }
}

// ---- Namespaces per connection ----

/// A server with `/` and the dynamic namespaces `/dyn-<n>`, echoing on all of them.
async fn dynamic_server(builder: ferrio::IoBuilder) -> (std::net::SocketAddr, Io) {
    server(builder, |io| {
        io.ns("/", |socket: SocketRef| echo_handlers(&socket));
        io.dyn_ns(r"^/dyn-\d+$", |socket: SocketRef| echo_handlers(&socket))
            .unwrap();
    })
    .await
}

#[tokio::test]
async fn a_connect_beyond_the_namespace_limit_is_refused_and_the_connection_goes_on() {
    let (addr, io) = dynamic_server(Io::builder().max_namespaces_per_connection(3)).await;
    let mut client = joined_to(addr, &["/", "/dyn-1", "/dyn-2"]).await;

    client.send("0/dyn-3,").await;
    assert_eq!(
        client.text().await,
        r#"4/dyn-3,{"message":"Too many namespaces: a connection may join at most 3"}"#
    );
    assert!(
        !io.namespaces().contains(&"/dyn-3".to_owned()),
        "no namespace is created for a refused CONNECT"
    );
    for nsp in ["/", "/dyn-1", "/dyn-2"] {
        assert_next_is_echo(&mut client, nsp, "still joined").await;
    }

    // Leaving a namespace makes room.
    client.send("1/dyn-1,").await;
    client.join("/dyn-3", None).await;
    assert_next_is_echo(&mut client, "/dyn-3", "joined").await;
}

#[tokio::test]
async fn by_default_a_connection_may_join_100_namespaces() {
    let (addr, _io) = dynamic_server(Io::builder()).await;
    let mut client = Client::connect(addr).await;
    client.set_nodelay();
    client.join("/", None).await;
    for n in 1..100 {
        client.join(&format!("/dyn-{n}"), None).await;
    }
    client.send("0/dyn-100,").await;
    assert_eq!(
        client.text().await,
        r#"4/dyn-100,{"message":"Too many namespaces: a connection may join at most 100"}"#
    );
    assert_next_is_echo(&mut client, "/dyn-99", "still joined").await;
}

// ---- Event rate limit ----

/// A server whose `/` and `/probe` sockets report each `count` event as `(namespace, n)`, and
/// answer `ping` with an ack.
async fn counting_server(
    builder: ferrio::IoBuilder,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(String, u64)>,
    mpsc::UnboundedReceiver<(String, DisconnectReason)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (gone_tx, gone) = mpsc::unbounded_channel();
    let (addr, _io) = server(builder, move |io| {
        for nsp in ["/", "/probe"] {
            let (tx, gone_tx) = (tx.clone(), gone_tx.clone());
            io.ns(nsp, move |socket: SocketRef| {
                let tx = tx.clone();
                report_disconnect(&socket, &gone_tx);
                socket.on(
                    "count",
                    move |socket: SocketRef, ferrio::Data(n): ferrio::Data<u64>| {
                        let _ = tx.send((socket.ns().to_owned(), n));
                    },
                );
                socket.on("ping", |ack: AckSender| {
                    let _ = ack.send(&"pong");
                });
            });
        }
    })
    .await;
    (addr, rx, gone)
}

/// Sends `ping` with ack id `id` on `/probe` and waits for its answer: every packet sent
/// before it on the connection has been handled by then.
async fn probe(client: &mut Client, id: u64) {
    client.send(&format!(r#"2/probe,{id}["ping"]"#)).await;
    assert_eq!(client.text().await, format!(r#"3/probe,{id}["pong"]"#));
}

#[tokio::test]
async fn events_over_the_rate_limit_are_dropped_and_the_socket_stays() {
    let builder = Io::builder().event_rate_limit(RateLimit::per_second(1).burst(3));
    let (addr, mut counted, mut gone) = counting_server(builder).await;
    let mut client = joined_to(addr, &["/", "/probe"]).await;
    client.set_nodelay();

    for n in 0..20 {
        client.send(&format!(r#"2["count",{n}]"#)).await;
    }
    // `/probe` has a bucket of its own.
    probe(&mut client, 1).await;
    let mut handled = Vec::new();
    while let Ok((nsp, n)) = counted.try_recv() {
        assert_eq!(nsp, "/");
        handled.push(n);
    }
    // The burst passes; the rest is dropped (unless sending took 17 s, one more a second).
    assert_eq!(handled[..3], [0, 1, 2], "the burst goes through in order");
    assert!(handled.len() < 20, "{} of 20 events handled", handled.len());
    // The socket and the connection stay; the client is told nothing.
    assert_no_recv(&mut gone).await;
    client.assert_quiet().await;
}

#[tokio::test]
async fn a_socket_over_its_rate_limit_with_the_disconnect_policy_leaves_its_namespace() {
    let limit = RateLimit::per_second(1)
        .burst(3)
        .policy(RateLimitPolicy::Disconnect);
    let (addr, mut counted, mut gone) =
        counting_server(Io::builder().event_rate_limit(limit)).await;
    let mut client = joined_to(addr, &["/", "/probe"]).await;

    for n in 0..4 {
        client.send(&format!(r#"2["count",{n}]"#)).await;
    }
    assert_eq!(client.text().await, "1", "a DISCONNECT for `/`");
    assert_eq!(
        recv(&mut gone).await,
        ("/".to_owned(), DisconnectReason::RateLimited)
    );
    for n in 0..3 {
        assert_eq!(recv(&mut counted).await, ("/".to_owned(), n));
    }
    assert_no_recv(&mut counted).await;
    // Only that socket left: the connection and its other namespace go on.
    probe(&mut client, 7).await;
}

#[tokio::test]
async fn by_default_events_are_not_rate_limited() {
    let (addr, mut counted, _gone) = counting_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/probe"]).await;
    client.set_nodelay();

    for n in 0..2000 {
        client.send(&format!(r#"2["count",{n}]"#)).await;
    }
    probe(&mut client, 1).await;
    for n in 0..2000 {
        assert_eq!(recv(&mut counted).await, ("/".to_owned(), n));
    }
}
