//! Robustness: the server is freed when unused, panicking user code and racing
//! connects/disconnects leave no stale state, and handles work outside the runtime.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, WAIT, eventually, join_root, server, socket_server};
use ferrio::{AckSender, ConnectHandler, Io, SocketRef};

/// The engine owns the server through its handler; the server only holds the engine
/// weakly, so dropping every handle and layer frees what the server owns (its state,
/// namespaces, handlers, adapters).
#[tokio::test]
async fn server_is_freed_when_every_handle_is_dropped() {
    let marker = Arc::new(());
    let weak = Arc::downgrade(&marker);
    let (layer, io) = Io::builder().with_state(marker).build_layer();
    drop(layer);
    drop(io);
    assert!(
        weak.upgrade().is_none(),
        "the server's state outlives every handle to the server (Server <-> Engine cycle)"
    );
}

/// `on_close` closes the connection's sockets in a loop; a panic in the first socket's
/// disconnect hook (caught by the engine) aborts the loop, so the other namespaces keep a
/// socket forever: it stays in `Namespace::sockets`, holding the Engine.IO session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_disconnect_hook_leaves_no_socket_in_other_namespaces() {
    let (addr, io) = server(Io::builder(), |io| {
        io.ns("/", |socket: SocketRef| {
            socket.on_disconnect(|| {
                if true {
                    panic!("user bug in a disconnect hook");
                }
            });
        });
        io.ns("/b", |_: SocketRef| {});
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/", None).await;
    client.join("/b", None).await;
    let b = io.of("/b").unwrap();
    assert_eq!(b.len(), 1);
    client.close().await;
    eventually("the /b socket leaves when the connection closes", || {
        b.is_empty()
    })
    .await;
}

/// A panic in a `disconnecting` hook aborts `close_with` after `connected` was cleared but
/// before the socket is removed anywhere: it stays in its namespace for good (a zombie
/// that every broadcast still targets), and no later close can remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_disconnecting_hook_leaves_no_zombie_socket() {
    let (addr, io) = server(Io::builder(), |io| {
        io.ns("/", |socket: SocketRef| {
            socket.on_disconnecting(|| {
                if true {
                    panic!("user bug in a disconnecting hook");
                }
            });
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/", None).await;
    client.close().await;
    let root = io.of("/").unwrap();
    eventually("the socket leaves `/` when its connection closes", || {
        root.is_empty()
    })
    .await;
}

/// A connect middleware that panics (inline) refuses the socket ("internal error") and
/// ends its connect: the dynamic namespace it created is dropped again, so no client can
/// create one per name that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_namespace_is_dropped_after_a_panicking_middleware() {
    let (addr, io) = server(Io::builder(), |io| {
        let handler = (|_: SocketRef| {}).with(|| -> Result<(), String> {
            if true {
                panic!("user bug in a middleware");
            }
            Ok(())
        });
        io.dyn_ns("^/tenant-[0-9]+$", handler).unwrap();
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0/tenant-1,").await;
    // The panic refuses the socket, and the connection stays.
    assert_eq!(
        client.text().await,
        r#"4/tenant-1,{"message":"internal error"}"#
    );
    eventually("the unused dynamic namespace is dropped", || {
        io.of("/tenant-1").is_none()
    })
    .await;
}

/// A connect middleware that panics after its first `.await` (on a spawned task) refuses
/// the socket too, and the client's retry is a new CONNECT, not a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_retry_after_a_panicking_async_middleware_keeps_the_connection() {
    let (addr, _io) = server(Io::builder(), |io| {
        let handler = (|_: SocketRef| {}).with(|| async {
            tokio::task::yield_now().await;
            if true {
                panic!("user bug in an async middleware");
            }
            Ok::<(), String>(())
        });
        io.ns("/a", handler);
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0/a,").await;
    assert_eq!(client.text().await, r#"4/a,{"message":"internal error"}"#);
    // The retry is a new CONNECT, refused the same way; the connection stays.
    client.send("0/a,").await;
    assert_eq!(client.text().await, r#"4/a,{"message":"internal error"}"#);
    client.join("/", None).await;
}

/// `Io::ns` on a name that a dynamic pattern already created keeps `dynamic: true`
/// (`and_modify(set_setup)`): the namespace registered as static vanishes when its last
/// socket leaves, and later clients get the dynamic handler instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_namespace_registered_over_a_dynamic_one_stays() {
    let (addr, io) = server(Io::builder(), |io| {
        io.dyn_ns("^/tenant-[0-9]+$", |socket: SocketRef| {
            let _ = socket.emit("who", "dynamic");
        })
        .unwrap();
    })
    .await;
    let mut first = Client::connect(addr).await;
    first.join("/tenant-1", None).await;
    assert_eq!(first.text().await, r#"2/tenant-1,["who","dynamic"]"#);

    io.ns("/tenant-1", |socket: SocketRef| {
        let _ = socket.emit("who", "static");
    });
    first.send("1/tenant-1,").await;
    eventually("the first socket has left", || {
        io.of("/tenant-1").is_none_or(|ns| ns.is_empty())
    })
    .await;
    assert!(
        io.of("/tenant-1").is_some(),
        "the namespace registered with `Io::ns` was dropped as a dynamic one"
    );
    let mut second = Client::connect(addr).await;
    second.join("/tenant-1", None).await;
    assert_eq!(second.text().await, r#"2/tenant-1,["who","static"]"#);
}

/// `SocketRef::disconnect` sends DISCONNECT first and removes the socket from its client
/// only after the `disconnecting` hook: a client that reconnects to the namespace as soon
/// as it reads the DISCONNECT is taken for a duplicate CONNECT and its whole connection is
/// closed ("parse error"). The hook here just takes a while (any real work does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_right_after_a_server_disconnect_keeps_the_connection() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    socket.on_disconnecting(|| std::thread::sleep(Duration::from_millis(300)));
    let disconnecting = std::thread::spawn(move || socket.disconnect());
    assert_eq!(client.text().await, "1", "the server's DISCONNECT");
    // The client reconnects to `/` at once, as `socket.connect()` in a disconnect listener does.
    client.send("0").await;
    match client.next_within(WAIT).await {
        Some(Some(common::Frame::Text(reply))) => {
            assert!(
                reply.starts_with(r#"0{"sid":""#),
                "not a CONNECT reply: {reply}"
            )
        }
        other => panic!("the reconnect was not admitted; got {other:?}"),
    }
    disconnecting.join().unwrap();
}

/// With an async connect middleware, admission (CONNECT reply) and the connect handler run
/// on a spawned task while the connection task keeps dispatching: an event the client sends
/// as soon as it reads the CONNECT reply can be dispatched before the (synchronous) connect
/// handler has registered its listeners, and is silently dropped. In Node (and here without
/// an async middleware) a synchronous connect handler always registers first. The
/// `block_in_place` sleep widens the window; without it the window is open whenever the
/// connection task runs on another worker than the spawned admission task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_right_after_connect_reaches_the_handler_with_an_async_middleware() {
    let (addr, _io) = server(Io::builder(), |io| {
        let handler = (|socket: SocketRef| {
            // Blocking setup done the way tokio recommends in a synchronous context.
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(200)));
            socket.on("hello", |ack: AckSender| {
                let _ = ack.send("hi");
            });
        })
        .with(|| async {
            tokio::task::yield_now().await;
            Ok::<(), String>(())
        });
        io.ns("/", handler);
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/", None).await;
    client.send(r#"21["hello"]"#).await;
    match client.next_within(WAIT).await {
        Some(Some(common::Frame::Text(reply))) => assert_eq!(reply, r#"31["hi"]"#),
        other => panic!("the event sent right after the CONNECT reply was lost: {other:?}"),
    }
}

/// An ack can be asked for from a thread outside the runtime (its timer starts when it is
/// first awaited, on the runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_can_be_requested_outside_the_runtime() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let ack = std::thread::spawn(move || socket.emit_with_ack("q", &1))
        .join()
        .expect("requesting an ack outside the runtime does not panic");
    let request = client.text().await;
    let id = request
        .strip_prefix('2')
        .and_then(|rest| rest.strip_suffix(r#"["q",1]"#))
        .expect("an event with an ack id");
    client.send(&format!("3{id}[\"a\"]")).await;
    let answer = tokio::time::timeout(WAIT, ack).await.unwrap().unwrap();
    assert_eq!(answer.get::<String>(0).unwrap(), "a");
}

/// What a middleware registered on a socket it then refuses is dropped with the socket: a
/// handler that holds its own socket would otherwise keep both alive.
#[tokio::test]
async fn a_refused_socket_drops_what_its_middleware_registered() {
    let marker = Arc::new(());
    let weak = Arc::downgrade(&marker);
    let (addr, _io) = server(Io::builder(), move |io| {
        let marker = marker.clone();
        let refuse = move |socket: SocketRef| -> Result<(), String> {
            let (held, me) = (marker.clone(), socket.clone());
            socket.on("e", move || {
                let _ = (&held, &me);
            });
            Err("no".into())
        };
        io.ns("/a", (|_: SocketRef| {}).with(refuse));
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0/a,").await;
    assert_eq!(client.text().await, r#"4/a,{"message":"no"}"#);
    eventually("the refused socket's handler is dropped", || {
        // Only the namespace setup's own clone remains.
        weak.strong_count() == 1
    })
    .await;
}
