//! A socket's life: why it leaves (every disconnect reason), the hooks around leaving,
//! catch-all listeners, per-packet and connect middlewares, dynamic namespaces, and the
//! handshake it came with.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::{
    Client, WAIT, assert_no_recv, eventually, join_root, joined, joined_to, recv,
    report_disconnect, root_server, server, socket_server,
};
use ferrio::{
    AckError, AckSender, ConnectHandler, ConnectRefusal, Data, DisconnectReason, Io, Payload,
    SocketRef, State, Transport,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

type Tx<T> = mpsc::UnboundedSender<T>;

/// A server whose namespaces `/` and `/b` report every disconnect on the returned channel,
/// and hand their sockets to the test on the other.
async fn reporting_server(
    builder: ferrio::IoBuilder,
) -> (
    SocketAddr,
    Io,
    mpsc::UnboundedReceiver<SocketRef>,
    mpsc::UnboundedReceiver<(String, DisconnectReason)>,
) {
    let (sockets_tx, sockets) = mpsc::unbounded_channel();
    let (tx, reasons) = mpsc::unbounded_channel();
    let (addr, io) = server(builder, move |io| {
        for nsp in ["/", "/b"] {
            let (sockets_tx, tx) = (sockets_tx.clone(), tx.clone());
            io.ns(nsp, move |socket: SocketRef| {
                report_disconnect(&socket, &tx);
                socket.on("kick", |socket: SocketRef| socket.disconnect());
                let _ = sockets_tx.send(socket);
            });
        }
    })
    .await;
    (addr, io, sockets, reasons)
}

// ---------------------------------------------------------------------------------------
// Disconnect reasons
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn client_namespace_disconnect_keeps_the_connection() {
    let (addr, _io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = Client::connect(addr).await;
    let first = client.join("/", None).await;
    client.join("/b", None).await;
    recv(&mut sockets).await;
    recv(&mut sockets).await;
    client.send("1/b,").await;
    assert_eq!(
        recv(&mut reasons).await,
        ("/b".to_owned(), DisconnectReason::ClientNamespaceDisconnect)
    );
    client.send("1").await;
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::ClientNamespaceDisconnect)
    );
    // Same connection, a new socket.
    let again = client.join("/", None).await;
    assert_ne!(again, first);
}

#[tokio::test]
async fn server_namespace_disconnect_sends_disconnect_and_keeps_the_connection() {
    let (addr, _io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/b"]).await;
    let root = recv(&mut sockets).await;
    client.send(r#"2/b,["kick"]"#).await;
    assert_eq!(client.text().await, "1/b,");
    assert_eq!(
        recv(&mut reasons).await,
        ("/b".to_owned(), DisconnectReason::ServerNamespaceDisconnect)
    );
    // `/` is still there.
    root.emit("still", &1).unwrap();
    assert_eq!(client.text().await, r#"2["still",1]"#);
    root.disconnect();
    assert_eq!(client.text().await, "1");
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::ServerNamespaceDisconnect)
    );
    // Disconnecting twice does nothing more.
    root.disconnect();
    client.assert_quiet().await;
    assert_no_recv(&mut reasons).await;
    client.join("/b", None).await;
}

#[tokio::test]
async fn transport_close_when_the_client_closes_the_websocket() {
    let (addr, _io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/b"]).await;
    recv(&mut sockets).await;
    client.close().await;
    let got: HashSet<_> = [recv(&mut reasons).await, recv(&mut reasons).await].into();
    assert_eq!(
        got,
        HashSet::from([
            ("/".to_owned(), DisconnectReason::TransportClose),
            ("/b".to_owned(), DisconnectReason::TransportClose),
        ])
    );
}

#[tokio::test]
async fn transport_close_when_the_client_sends_an_engine_io_close() {
    let (addr, _io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = joined(addr).await;
    recv(&mut sockets).await;
    client.send_engine("1").await;
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::TransportClose)
    );
}

#[tokio::test]
async fn a_client_that_vanishes_without_a_close_frame_leaves_too() {
    let (addr, io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let client = joined(addr).await;
    recv(&mut sockets).await;
    client.drop_connection();
    // A broken connection, as `DisconnectReason::TransportError` documents (the reference
    // server reports "transport close" here).
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::TransportError)
    );
    assert!(io.sockets().is_empty());
}

#[tokio::test]
async fn forced_server_close_reaches_every_namespace_of_the_connection() {
    let (addr, io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/b"]).await;
    let root = recv(&mut sockets).await;
    recv(&mut sockets).await;
    let _bystander = joined(addr).await;
    recv(&mut sockets).await;

    root.close();
    client.assert_closed().await;
    let got: HashSet<_> = [recv(&mut reasons).await, recv(&mut reasons).await].into();
    assert_eq!(
        got,
        HashSet::from([
            ("/".to_owned(), DisconnectReason::ForcedServerClose),
            ("/b".to_owned(), DisconnectReason::ForcedServerClose),
        ])
    );
    assert_no_recv(&mut reasons).await;
    assert_eq!(io.sockets().len(), 1, "other connections stay");
    assert!(
        io.engine()
            .unwrap()
            .get(ferrio::Sid::parse(&client.sid).unwrap())
            .is_none()
    );
}

#[tokio::test]
async fn io_close_closes_every_connection_and_fails_pending_acks() {
    let builder = Io::builder().ack_timeout(Duration::from_secs(30));
    let (addr, io, mut sockets, mut reasons) = reporting_server(builder).await;
    let mut a = joined_to(addr, &["/", "/b"]).await;
    let root = recv(&mut sockets).await;
    recv(&mut sockets).await;
    let mut b = joined(addr).await;
    recv(&mut sockets).await;
    let ack = root.emit_with_ack("q", &1);
    a.text().await;

    let start = Instant::now();
    io.close().await;
    let result = tokio::time::timeout(WAIT, ack).await.unwrap();
    assert!(matches!(result, Err(AckError::Disconnected)), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    a.assert_closed().await;
    b.assert_closed().await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let (nsp, reason) = recv(&mut reasons).await;
        got.push((nsp, reason.as_str()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("/".to_owned(), "server shutting down"),
            ("/".to_owned(), "server shutting down"),
            ("/b".to_owned(), "server shutting down"),
        ]
    );
    assert!(io.sockets().is_empty());
    eventually("the engine has no sessions", || {
        io.engine().unwrap().is_empty()
    })
    .await;

    // A connection that opens after the shutdown began is closed at once.
    let mut late = Client::connect(addr).await;
    late.assert_closed().await;
}

#[tokio::test]
async fn ping_timeout_when_the_client_does_not_answer_pings() {
    let builder = Io::builder()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(100));
    let (addr, _io, mut sockets, mut reasons) = reporting_server(builder).await;
    let mut silent = joined(addr).await;
    recv(&mut sockets).await;
    let start = Instant::now();
    // Read without answering: a ping comes, then the server gives up.
    let mut pinged = false;
    loop {
        match silent.next_raw(WAIT).await {
            Some(Some(text)) if text == "2" => pinged = true,
            Some(Some(other)) => panic!("unexpected {other}"),
            Some(None) => break,
            None => panic!("the server neither pinged nor closed"),
        }
    }
    assert!(pinged, "closed without pinging");
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::PingTimeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_client_that_answers_pings_stays() {
    let builder = Io::builder()
        .ping_interval(Duration::from_millis(50))
        .ping_timeout(Duration::from_millis(50));
    let (addr, _io, mut sockets, mut reasons) = reporting_server(builder).await;
    let mut client = joined(addr).await;
    let socket = recv(&mut sockets).await;
    // `assert_quiet` answers the pings it reads, over several ping periods.
    client.assert_quiet().await;
    client.assert_quiet().await;
    assert!(socket.connected());
    assert!(reasons.try_recv().is_err(), "the socket left");
}

#[tokio::test]
async fn a_handler_that_panics_before_awaiting_closes_its_connection_cleanly() {
    let (addr, io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/b"]).await;
    let root = recv(&mut sockets).await;
    root.on("boom", || -> () { panic!("handler bug") });
    client.send(r#"2["boom"]"#).await;
    client.assert_closed().await;
    let got: HashSet<_> = [recv(&mut reasons).await, recv(&mut reasons).await].into();
    assert_eq!(
        got,
        HashSet::from([
            ("/".to_owned(), DisconnectReason::TransportError),
            ("/b".to_owned(), DisconnectReason::TransportError),
        ])
    );
    assert!(io.sockets().is_empty());
    // The server goes on serving other connections.
    let _other = joined(addr).await;
}

#[tokio::test]
async fn parse_error_closes_the_connection() {
    let cases = [
        "9",                  // no such packet type
        r#"2["unterminated"#, // broken JSON
        r#"2/b,["ev"]"#,      // an event for a namespace not joined
        "1/b,",               // leaving a namespace not joined
        "0",                  // a second CONNECT to `/`
    ];
    for case in cases {
        let (addr, _io, mut sockets, mut reasons) = reporting_server(Io::builder()).await;
        let mut client = joined(addr).await;
        recv(&mut sockets).await;
        client.send(case).await;
        client.assert_closed().await;
        assert_eq!(
            recv(&mut reasons).await,
            ("/".to_owned(), DisconnectReason::ParseError),
            "after {case}"
        );
    }
}

#[tokio::test]
async fn connect_timeout_closes_a_connection_that_joins_no_namespace() {
    let builder = Io::builder().connect_timeout(Duration::from_millis(150));
    let (addr, _io, mut sockets, _reasons) = reporting_server(builder).await;
    let mut idle = Client::connect(addr).await;
    let start = Instant::now();
    idle.assert_closed().await;
    assert!(start.elapsed() >= Duration::from_millis(100));

    let mut joined = joined(addr).await;
    let socket = recv(&mut sockets).await;
    joined.assert_quiet().await;
    assert!(socket.connected());
}

// ---------------------------------------------------------------------------------------
// disconnecting / disconnect hooks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn disconnecting_sees_the_rooms_and_disconnect_comes_after_they_are_gone() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, BTreeSet<String>, usize)>();
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let (mut b, sb) = join_root(addr, &mut sockets).await;
    sa.join(["r", "s"]);
    sb.join("r");
    let rooms = |socket: &SocketRef| socket.rooms().into_iter().map(|r| r.into_owned()).collect();
    let (t1, t2) = (tx.clone(), tx);
    let io1 = io.clone();
    sa.on_disconnecting(move |socket: SocketRef, reason: DisconnectReason| {
        assert_eq!(reason, DisconnectReason::ClientNamespaceDisconnect);
        // The usual use: tell the rooms this socket is leaving.
        let _ = socket.to("r").emit("leaving", socket.id().as_str());
        let _ = t1.send(("disconnecting", rooms(&socket), io1.to("r").sockets().len()));
    });
    let io2 = io.clone();
    sa.on_disconnect(move |socket: SocketRef| {
        let _ = t2.send(("disconnect", rooms(&socket), io2.to("r").sockets().len()));
    });
    a.send("1").await;
    let own = sa.id().to_string();
    assert_eq!(
        recv(&mut rx).await,
        (
            "disconnecting",
            [own.clone(), "r".into(), "s".into()].into(),
            2
        )
    );
    // Gone from its rooms, its own included (as in the reference server).
    assert_eq!(recv(&mut rx).await, ("disconnect", BTreeSet::new(), 1));
    assert_eq!(b.text().await, format!(r#"2["leaving","{}"]"#, sa.id()));
    a.assert_quiet().await;
}

// ---------------------------------------------------------------------------------------
// Catch-all listeners and per-packet middlewares
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn on_any_sees_every_incoming_event_before_its_handler() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        io.ns("/", |socket: SocketRef, State(tx): State<Tx<String>>| {
            let any = tx.clone();
            socket.on_any(move |_: &SocketRef, event: &str, payload: &Payload| {
                let _ = any.send(format!("any {event} {}", payload.len()));
            });
            let second = tx.clone();
            socket.on_any(move |_: &SocketRef, event: &str, _: &Payload| {
                let _ = second.send(format!("second {event}"));
            });
            socket.on("handled", |State(tx): State<Tx<String>>| {
                let _ = tx.send("handler".to_owned());
            });
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["handled",1,2]"#).await;
    assert_eq!(recv(&mut rx).await, "any handled 2");
    assert_eq!(recv(&mut rx).await, "second handled");
    assert_eq!(recv(&mut rx).await, "handler");
    client.send(r#"21["unhandled"]"#).await;
    assert_eq!(recv(&mut rx).await, "any unhandled 0");
    assert_eq!(recv(&mut rx).await, "second unhandled");
    assert_no_recv(&mut rx).await;
}

#[tokio::test]
async fn on_any_outgoing_sees_what_the_socket_emits_but_not_broadcasts() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    socket.on_any_outgoing(move |_: &SocketRef, event: &str, payload: &Payload| {
        let _ = tx.send((event.to_owned(), payload.deserialize().unwrap()));
    });
    socket.emit("one", &1).unwrap();
    assert_eq!(recv(&mut rx).await, ("one".into(), json!([1])));
    socket.emit_args("two", &("a", "b")).unwrap();
    assert_eq!(recv(&mut rx).await, ("two".into(), json!(["a", "b"])));
    let _ack = socket.emit_with_ack("asked", &true);
    assert_eq!(recv(&mut rx).await, ("asked".into(), json!([true])));
    io.emit("broadcast", &0).unwrap();
    assert_no_recv(&mut rx).await;
    for _ in 0..4 {
        client.text().await;
    }
}

#[tokio::test]
async fn use_middleware_refusal_drops_the_event_and_answers_its_ack() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        io.ns("/", |socket: SocketRef, State(tx): State<Tx<String>>| {
            socket.use_middleware(|_: &SocketRef, event: &str, _: &Payload| {
                if event.starts_with("admin:") {
                    Err("forbidden")
                } else {
                    Ok(())
                }
            });
            socket.use_middleware(|_: &SocketRef, _: &str, payload: &Payload| {
                if payload.len() > 2 {
                    Err(format!("{} arguments is too many", payload.len()))
                } else {
                    Ok(())
                }
            });
            let any = tx.clone();
            socket.on_any(move |_: &SocketRef, event: &str, _: &Payload| {
                let _ = any.send(format!("any {event}"));
            });
            for event in ["admin:wipe", "chat"] {
                socket.on(event, |Data(n): Data<u32>, ack: AckSender| ack.send(&n));
            }
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["admin:wipe",1]"#).await;
    assert_eq!(client.text().await, r#"31[{"error":"forbidden"}]"#);
    client.send(r#"2["admin:wipe",1]"#).await;
    client.send(r#"22["chat",1,2,3]"#).await;
    assert_eq!(
        client.text().await,
        r#"32[{"error":"3 arguments is too many"}]"#
    );
    // Refused events reach no listener.
    assert_no_recv(&mut rx).await;
    client.send(r#"23["chat",5]"#).await;
    assert_eq!(client.text().await, "33[5]");
    assert_eq!(recv(&mut rx).await, "any chat");
}

// ---------------------------------------------------------------------------------------
// Connect middlewares
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn connect_middlewares_run_in_order_and_the_first_refusal_wins() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        let handler = |State(tx): State<Tx<String>>| {
            let _ = tx.send("handler".into());
        };
        let guarded = handler
            .with(|State(tx): State<Tx<String>>| {
                let _ = tx.send("first".into());
                Ok::<(), &str>(())
            })
            .with(|State(tx): State<Tx<String>>, Data(auth): Data<Value>| {
                let _ = tx.send("second".into());
                if auth["token"] == "ok" {
                    Ok(())
                } else {
                    Err(ConnectRefusal::new("unauthorized")
                        .with_data(&json!({ "reason": "bad token" })))
                }
            })
            .with(|State(tx): State<Tx<String>>| {
                let _ = tx.send("third".into());
                Err::<(), String>("third refuses too".into())
            });
        io.ns("/", guarded);
        io.ns(
            "/plain",
            handler.with(|| Err::<(), _>("closed for maintenance")),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send(r#"0{"token":"bad"}"#).await;
    assert_eq!(
        client.text().await,
        r#"4{"message":"unauthorized","data":{"reason":"bad token"}}"#
    );
    assert_eq!(recv(&mut rx).await, "first");
    assert_eq!(recv(&mut rx).await, "second");
    assert_no_recv(&mut rx).await;

    // The connection stays: try again, get past the second and stop at the third.
    client.send(r#"0{"token":"ok"}"#).await;
    assert_eq!(client.text().await, r#"4{"message":"third refuses too"}"#);
    for step in ["first", "second", "third"] {
        assert_eq!(recv(&mut rx).await, step);
    }
    client.send("0/plain,").await;
    assert_eq!(
        client.text().await,
        r#"4/plain,{"message":"closed for maintenance"}"#
    );
    assert_no_recv(&mut rx).await;
    assert!(io.sockets().is_empty());
    assert!(io.of("/plain").unwrap().is_empty());
}

#[tokio::test]
async fn rooms_joined_in_a_connect_middleware_are_kept() {
    let (tx, mut rx) = mpsc::unbounded_channel::<BTreeSet<String>>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        let handler = |socket: SocketRef, State(tx): State<Tx<BTreeSet<String>>>| {
            let _ = tx.send(socket.rooms().into_iter().map(|r| r.into_owned()).collect());
        };
        io.ns(
            "/",
            handler.with(|socket: SocketRef| {
                socket.join("vip");
                Ok::<(), &str>(())
            }),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    let id = client.join("/", None).await;
    assert_eq!(recv(&mut rx).await, BTreeSet::from([id, "vip".to_owned()]));
    assert_eq!(io.to("vip").sockets().len(), 1);
}

#[tokio::test]
async fn connect_middlewares_may_be_async_and_admit() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        let handler = |socket: SocketRef, State(tx): State<Tx<String>>| {
            let _ = tx.send(format!("handler {}", socket.get::<String>().unwrap()));
        };
        io.ns(
            "/",
            handler
                .with(async |socket: SocketRef, State(tx): State<Tx<String>>| {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let _ = tx.send("async".into());
                    socket.insert(String::from("checked"));
                    Ok::<(), ConnectRefusal>(())
                })
                .with(|State(tx): State<Tx<String>>| {
                    let _ = tx.send("sync".into());
                    Ok::<(), &str>(())
                }),
        );
        io.ns(
            "/slow-no",
            handler.with(async || {
                tokio::task::yield_now().await;
                Err::<(), _>("slow no")
            }),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0/slow-no,").await;
    assert_eq!(client.text().await, r#"4/slow-no,{"message":"slow no"}"#);
    let id = client.join("/", None).await;
    assert_eq!(recv(&mut rx).await, "async");
    assert_eq!(recv(&mut rx).await, "sync");
    assert_eq!(recv(&mut rx).await, "handler checked");
    assert_eq!(io.sockets()[0].id().as_str(), id);
}

#[tokio::test]
async fn a_connect_middleware_whose_extractor_fails_refuses_with_the_error() {
    let (addr, _io) = server(Io::builder(), |io| {
        let handler = || {};
        io.ns(
            "/",
            handler.with(|Data(n): Data<u32>| {
                assert_eq!(n, 1);
                Ok::<(), &str>(())
            }),
        );
        io.ns(
            "/state",
            handler.with(|State(_): State<u8>| Ok::<(), &str>(())),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send(r#"0{"n":1}"#).await;
    let refusal = client.text().await;
    assert!(
        refusal.starts_with(r#"4{"message":"invalid payload: "#),
        "{refusal}"
    );
    client.send("0/state,").await;
    assert_eq!(
        client.text().await,
        r#"4/state,{"message":"no state of type u8 was given to the server"}"#
    );
}

// ---------------------------------------------------------------------------------------
// Dynamic namespaces
// ---------------------------------------------------------------------------------------

fn welcome(socket: SocketRef, State(tx): State<Tx<(String, DisconnectReason)>>) {
    let _ = socket.emit("welcome", socket.ns());
    report_disconnect(&socket, &tx);
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[tokio::test]
async fn dyn_ns_creates_a_namespace_on_first_use_and_drops_it_with_its_last_socket() {
    let (tx, mut left) = mpsc::unbounded_channel::<(String, DisconnectReason)>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        io.dyn_ns(r"^/room-\d+$", welcome).unwrap();
    })
    .await;
    assert_eq!(io.namespaces(), ["/"]);
    let mut a = joined_to(addr, &["/room-1"]).await;
    assert_eq!(a.text().await, r#"2/room-1,["welcome","/room-1"]"#);
    assert_eq!(sorted(io.namespaces()), ["/", "/room-1"]);
    let mut b = joined_to(addr, &["/room-1"]).await;
    assert_eq!(b.text().await, r#"2/room-1,["welcome","/room-1"]"#);
    assert_eq!(io.of("/room-1").unwrap().len(), 2);

    // The namespace works like any other.
    io.of("/room-1").unwrap().emit("all", &1).unwrap();
    assert_eq!(a.text().await, r#"2/room-1,["all",1]"#);
    assert_eq!(b.text().await, r#"2/room-1,["all",1]"#);

    a.send("1/room-1,").await;
    recv(&mut left).await;
    assert!(io.of("/room-1").is_some(), "dropped with a socket left");
    b.close().await;
    assert_eq!(
        recv(&mut left).await,
        ("/room-1".to_owned(), DisconnectReason::TransportClose)
    );
    assert!(io.of("/room-1").is_none());
    assert_eq!(io.namespaces(), ["/"]);

    // Asked for again, it is made again.
    a.join("/room-1", None).await;
    assert_eq!(a.text().await, r#"2/room-1,["welcome","/room-1"]"#);
    assert_eq!(sorted(io.namespaces()), ["/", "/room-1"]);

    a.send("0/room-x,").await;
    assert_eq!(
        a.text().await,
        r#"4/room-x,{"message":"Invalid namespace"}"#
    );
    assert!(io.of("/room-x").is_none());
}

#[tokio::test]
async fn dyn_ns_fn_matches_with_a_predicate() {
    let (tx, _left) = mpsc::unbounded_channel::<(String, DisconnectReason)>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        io.dyn_ns_fn(
            |name| name.starts_with("/tenant-") && name.len() > 8,
            welcome,
        );
    })
    .await;
    let mut client = joined_to(addr, &["/tenant-acme"]).await;
    assert_eq!(
        client.text().await,
        r#"2/tenant-acme,["welcome","/tenant-acme"]"#
    );
    client.send("0/tenant-,").await;
    assert_eq!(
        client.text().await,
        r#"4/tenant-,{"message":"Invalid namespace"}"#
    );
    assert_eq!(sorted(io.namespaces()), ["/", "/tenant-acme"]);
}

#[tokio::test]
async fn dyn_ns_rejects_an_invalid_pattern() {
    let (layer, io) = Io::builder().build_layer();
    assert!(io.dyn_ns("(unclosed", || {}).is_err());
    drop(layer);
}

#[tokio::test]
async fn a_static_namespace_takes_precedence_over_a_dynamic_one() {
    let (tx, _left) = mpsc::unbounded_channel::<(String, DisconnectReason)>();
    let (addr, io) = server(Io::builder().with_state(tx), |io| {
        io.dyn_ns(r"^/room-\d+$", welcome).unwrap();
        io.ns("/room-7", |socket: SocketRef| {
            let _ = socket.emit("static", &7);
        });
    })
    .await;
    let mut client = joined_to(addr, &["/room-7"]).await;
    assert_eq!(client.text().await, r#"2/room-7,["static",7]"#);
    client.send("1/room-7,").await;
    client.join("/room-7", None).await;
    assert_eq!(client.text().await, r#"2/room-7,["static",7]"#);
    // A static namespace stays when empty.
    client.send("1/room-7,").await;
    client.join("/room-8", None).await;
    client.text().await;
    assert!(io.of("/room-7").is_some());
}

#[tokio::test]
async fn a_refused_connect_leaves_no_dynamic_namespace_behind() {
    let (addr, io) = server(Io::builder(), |io| {
        let handler = |_: SocketRef| {};
        io.dyn_ns(r"^/d-\w+$", handler.with(|| Err::<(), _>("no")))
            .unwrap();
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0/d-one,").await;
    assert_eq!(client.text().await, r#"4/d-one,{"message":"no"}"#);
    assert_eq!(io.namespaces(), ["/"]);
}

// ---------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn socket_exposes_the_handshake_of_its_connection() {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        io.ns("/", |socket: SocketRef, State(tx): State<Tx<Value>>| {
            let handshake = socket.handshake();
            let _ = tx.send(json!({
                "header": handshake.headers().get("x-custom").and_then(|v| v.to_str().ok()),
                "path": handshake.uri().path(),
                "uri_query": handshake.uri().query(),
                "query": handshake.query(),
                "ip": handshake.remote_addr().map(|a| a.ip().to_string()),
                "transport": socket.transport() == Transport::WebSocket,
                "connection": socket.connection_id().to_string(),
                "recent": handshake.issued_at().elapsed().unwrap() < Duration::from_secs(5),
            }));
        });
    })
    .await;
    let mut client =
        Client::connect_with(addr, "/socket.io/", "token=abc", &[("x-custom", "v1")]).await;
    client.join("/", None).await;
    let query = "EIO=4&transport=websocket&token=abc";
    assert_eq!(
        recv(&mut rx).await,
        json!({
            "header": "v1",
            "path": "/socket.io/",
            "uri_query": query,
            "query": query,
            "ip": "127.0.0.1",
            "transport": true,
            "connection": client.sid,
            "recent": true,
        })
    );
}

#[tokio::test]
async fn every_namespace_of_a_connection_shares_its_connection_id_but_not_its_socket_id() {
    let (tx, mut rx) = mpsc::unbounded_channel::<SocketRef>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        for nsp in ["/", "/b"] {
            io.ns(nsp, |socket: SocketRef, State(tx): State<Tx<SocketRef>>| {
                let _ = tx.send(socket);
            });
        }
    })
    .await;
    let client = joined_to(addr, &["/", "/b"]).await;
    let (root, b) = (recv(&mut rx).await, recv(&mut rx).await);
    assert_eq!(root.connection_id(), b.connection_id());
    assert_eq!(root.connection_id().as_str(), client.sid);
    assert_ne!(root.id(), b.id());
}

#[tokio::test]
async fn registering_a_namespace_again_replaces_its_handler_for_new_sockets() {
    let (addr, io) = root_server(Io::builder(), |socket| {
        let _ = socket.emit("v", &1);
    })
    .await;
    let mut first = joined(addr).await;
    assert_eq!(first.text().await, r#"2["v",1]"#);
    io.ns("/", |socket: SocketRef| {
        let _ = socket.emit("v", &2);
    });
    let mut second = joined(addr).await;
    assert_eq!(second.text().await, r#"2["v",2]"#);
    assert_eq!(io.sockets().len(), 2, "existing sockets stay");
}
