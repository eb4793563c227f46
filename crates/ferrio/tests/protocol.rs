//! The Socket.IO v5 wire protocol (socket.io-protocol, v5), checked packet by packet with a
//! raw client: CONNECT and its replies, refusals, the connect timeout, events, acks both
//! ways, binary attachments, the JSON the server writes, DISCONNECT, ordering.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::polling::PollingClient;
use common::{
    Client, Frame, assert_next_is_echo, echo_handlers, event_server, eventually, joined, joined_to,
    nsp_prefix, recv, report_disconnect, root_server, server,
};
use ferrio::{
    AckError, AckSender, Args, ConnectHandler, ConnectRefusal, Data, DisconnectReason, Io,
    IoBuilder, Payload, SocketRef,
};
use ferrio_protocol::engine::Packet;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// A server with `/` and `/a`, both with [`echo_handlers`].
async fn echo_server(builder: IoBuilder) -> (SocketAddr, Io) {
    server(builder, |io| {
        io.ns("/", |s: SocketRef| echo_handlers(&s));
        io.ns("/a", |s: SocketRef| echo_handlers(&s));
    })
    .await
}

/// The ack id of a server's event `2[<nsp>,]<id>[...]`.
fn ack_id_of(packet: &str, nsp: &str) -> u64 {
    let rest = packet
        .strip_prefix(&format!("2{}", nsp_prefix(nsp)))
        .unwrap_or_else(|| panic!("not an event of {nsp}: {packet}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(!digits.is_empty(), "event without ack id: {packet}");
    digits.parse().unwrap()
}

fn placeholder(num: usize) -> String {
    format!(r#"{{"_placeholder":true,"num":{num}}}"#)
}

// ---------------------------------------------------------------- CONNECT

#[tokio::test]
async fn connect_without_auth_gives_the_handler_an_empty_object() {
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns(
            "/",
            |socket: SocketRef, Data(auth): Data<serde_json::Value>| {
                assert_eq!(socket.auth().len(), 1);
                let _ = socket.emit("auth", &auth);
            },
        );
    })
    .await;
    let mut client = joined(addr).await;
    assert_eq!(client.text().await, r#"2["auth",{}]"#);
}

#[tokio::test]
async fn connect_with_auth_gives_the_handler_the_object_as_sent() {
    #[derive(Deserialize)]
    struct Auth {
        token: String,
        n: Vec<u32>,
    }
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/", |socket: SocketRef| {
            // Forwarded raw: key order and formatting as the client wrote them.
            let _ = socket.emit("auth", &socket.auth().arg(0));
        });
        io.ns("/a", |socket: SocketRef, Data(auth): Data<Auth>| {
            let _ = socket.emit_args("typed", &(auth.token, auth.n));
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    client
        .join("/", Some(r#"{"z":1,"token":"t","a":[1,2]}"#))
        .await;
    assert_eq!(
        client.text().await,
        r#"2["auth",{"z":1,"token":"t","a":[1,2]}]"#
    );
    client.join("/a", Some(r#"{"token":"x","n":[3,4]}"#)).await;
    assert_eq!(client.text().await, r#"2/a,["typed","x",[3,4]]"#);
}

#[tokio::test]
async fn connect_reply_carries_a_fresh_socket_id_and_names_only_other_namespaces() {
    let (tx, mut ids) = mpsc::unbounded_channel();
    let (addr, _io) = server(Io::builder(), |io| {
        let t = tx.clone();
        io.ns("/", move |socket: SocketRef| {
            let _ = t.send(socket.id().as_str().to_owned());
        });
        io.ns("/a", move |socket: SocketRef| {
            let _ = tx.send(socket.id().as_str().to_owned());
        });
    })
    .await;
    let mut client = Client::connect(addr).await;

    client.send("0").await;
    let root = recv(&mut ids).await;
    assert_eq!(client.text().await, format!(r#"0{{"sid":"{root}"}}"#));

    client.send("0/a,").await;
    let a = recv(&mut ids).await;
    assert_eq!(client.text().await, format!(r#"0/a,{{"sid":"{a}"}}"#));

    for id in [&root, &a] {
        assert_eq!(id.len(), 20, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id} is not URL-safe base64"
        );
        assert_ne!(*id, client.sid, "a socket id is not the Engine.IO sid");
    }
    assert_ne!(root, a, "each namespace gets its own socket id");

    // A second connection gets other ids.
    let mut other = Client::connect(addr).await;
    other.send("0").await;
    assert_ne!(recv(&mut ids).await, root);
    other.text().await;
}

#[tokio::test]
async fn a_namespace_may_end_at_the_end_of_the_packet() {
    let (addr, io) = echo_server(Io::builder()).await;
    let mut client = Client::connect(addr).await;
    client.send("0/a").await;
    let reply = client.text().await;
    assert!(reply.starts_with(r#"0/a,{"sid":""#), "{reply}");
    assert_eq!(io.of("/a").unwrap().len(), 1);
    assert_next_is_echo(&mut client, "/a", "x").await;
    client.send("1/a").await;
    eventually("the socket left /a", || io.of("/a").unwrap().is_empty()).await;
}

#[tokio::test]
async fn a_socket_is_in_a_room_named_after_its_id() {
    let (tx, mut rooms) = mpsc::unbounded_channel();
    let (addr, io) = server(Io::builder(), |io| {
        io.ns("/", |s: SocketRef| echo_handlers(&s));
        io.ns("/a", move |socket: SocketRef| {
            echo_handlers(&socket);
            let _ = tx.send((socket.id(), socket.rooms()));
        });
    })
    .await;
    let mut first = Client::connect(addr).await;
    let root_id = first.join("/", None).await;
    let a_id = first.join("/a", None).await;
    let (sid, socket_rooms) = recv(&mut rooms).await;
    assert_eq!(sid.as_str(), a_id);
    assert_eq!(socket_rooms, vec![a_id.clone()]);

    let mut second = joined_to(addr, &["/", "/a"]).await;
    recv(&mut rooms).await;

    io.to(root_id.clone()).emit("direct", &1).unwrap();
    io.of("/a")
        .unwrap()
        .to(a_id.clone())
        .emit("direct", &2)
        .unwrap();
    assert_eq!(first.text().await, r#"2["direct",1]"#);
    assert_eq!(first.text().await, r#"2/a,["direct",2]"#);
    // The emits above were queued before this echo is even asked for.
    assert_next_is_echo(&mut second, "/", "nothing for me").await;
    assert_next_is_echo(&mut second, "/a", "nothing for me").await;
}

#[tokio::test]
async fn an_unknown_namespace_is_refused_and_the_connection_kept() {
    let (addr, io) = echo_server(Io::builder()).await;
    let mut client = Client::connect(addr).await;
    client.send("0/nope,").await;
    assert_eq!(
        client.text().await,
        r#"4/nope,{"message":"Invalid namespace"}"#
    );
    client.send(r#"0/nope,{"token":1}"#).await;
    assert_eq!(
        client.text().await,
        r#"4/nope,{"message":"Invalid namespace"}"#
    );
    assert!(
        io.of("/nope").is_none(),
        "no namespace created for the asking"
    );
    client.join("/a", None).await;
    assert_next_is_echo(&mut client, "/a", "still here").await;
    assert_eq!(io.engine().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refusing_middleware_answers_connect_error_with_its_message_and_data() {
    let (tx, mut admitted) = mpsc::unbounded_channel();
    let (addr, io) = server(Io::builder(), |io| {
        let t = tx.clone();
        let handler = move |socket: SocketRef| {
            echo_handlers(&socket);
            let _ = t.send(socket.ns().to_owned());
        };
        io.ns(
            "/",
            handler.clone().with(|Data(auth): Data<serde_json::Value>| {
                if auth["token"] == "ok" {
                    Ok(())
                } else {
                    Err(ConnectRefusal::new("bad token").with_data(&json!({"codes": [1, 2]})))
                }
            }),
        );
        io.ns("/b", handler.with(|| Err::<(), _>("nope")));
        io.ns("/a", move |s: SocketRef| {
            echo_handlers(&s);
            let _ = tx.send(s.ns().to_owned());
        });
    })
    .await;
    let mut client = Client::connect(addr).await;

    client.send(r#"0{"token":"bad"}"#).await;
    assert_eq!(
        client.text().await,
        r#"4{"message":"bad token","data":{"codes":[1,2]}}"#
    );
    client.send("0/b,").await;
    assert_eq!(client.text().await, r#"4/b,{"message":"nope"}"#);
    assert!(io.of("/").unwrap().is_empty());
    assert!(io.of("/b").unwrap().is_empty());

    // The connection is kept: other namespaces, and the refused one again, can be joined.
    client.join("/a", None).await;
    assert_eq!(recv(&mut admitted).await, "/a");
    client.join("/", Some(r#"{"token":"ok"}"#)).await;
    assert_eq!(
        recv(&mut admitted).await,
        "/",
        "the handler runs once admitted"
    );
    assert_next_is_echo(&mut client, "/", "in").await;
}

#[tokio::test]
async fn a_connection_that_joins_nothing_is_closed_after_the_connect_timeout() {
    let (addr, io) = echo_server(Io::builder().connect_timeout(Duration::from_millis(200))).await;
    let mut idle = Client::connect(addr).await;
    // Being refused is not joining.
    let mut refused = Client::connect(addr).await;
    refused.send("0/nope,").await;
    assert_eq!(
        refused.text().await,
        r#"4/nope,{"message":"Invalid namespace"}"#
    );
    let mut joined = joined(addr).await;

    idle.assert_closed().await;
    refused.assert_closed().await;
    let engine = io.engine().unwrap();
    eventually("only the joined connection left", || engine.len() == 1).await;
    // Well past the timeout, the joined one is still served.
    assert!(
        joined
            .next_within(Duration::from_millis(400))
            .await
            .is_none()
    );
    assert_next_is_echo(&mut joined, "/", "alive").await;
}

// ---------------------------------------------------------------- EVENT and ACK

#[tokio::test]
async fn events_reach_their_handlers_with_their_arguments() {
    #[derive(Deserialize)]
    struct Point {
        x: i64,
        y: i64,
    }
    let (addr, _io) = root_server(Io::builder(), |socket| {
        echo_handlers(socket);
        socket.on("add", |socket: SocketRef, Data(p): Data<Point>| {
            let _ = socket.emit("sum", &(p.x + p.y));
        });
        socket.on("42", |socket: SocketRef, payload: Payload| {
            let _ = socket.emit_args("number-name", &payload);
        });
    })
    .await;
    let mut client = joined(addr).await;
    let args = r#"1,"two",{"three":[3,3.5,-1e3]},null,true,"é\"\\""#;
    client.send(&format!(r#"2["echo",{args}]"#)).await;
    assert_eq!(client.text().await, format!(r#"2["echo",{args}]"#));
    client.send(r#"2["add",{"x":40,"y":2}]"#).await;
    assert_eq!(client.text().await, r#"2["sum",42]"#);
    // An event named by a number is the event named by its decimal text.
    client.send(r#"2[42,"n"]"#).await;
    assert_eq!(client.text().await, r#"2["number-name","n"]"#);
}

#[tokio::test]
async fn an_event_named_error_is_an_ordinary_event() {
    let (addr, _io) = root_server(Io::builder(), |socket| {
        echo_handlers(socket);
        socket.on(
            "error",
            |socket: SocketRef, payload: Payload, ack: AckSender| {
                let _ = socket.emit_args("error-seen", &payload);
                let _ = ack.send(&"handled");
            },
        );
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["error","boom"]"#).await;
    assert_eq!(client.text().await, r#"2["error-seen","boom"]"#);
    client.send(r#"25["error",{"x":1}]"#).await;
    assert_eq!(client.text().await, r#"2["error-seen",{"x":1}]"#);
    assert_eq!(client.text().await, r#"35["handled"]"#);
    assert_next_is_echo(&mut client, "/", "connection kept").await;
}

#[tokio::test]
async fn an_ack_is_answered_once_with_the_id_and_namespace_of_the_event() {
    let (addr, _io) = echo_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/a"]).await;

    client.send(r#"21["ack","x",{"k":[1]}]"#).await;
    assert_eq!(client.text().await, r#"31["x",{"k":[1]}]"#);
    assert_next_is_echo(&mut client, "/", "no second ack").await;

    client.send(r#"2/a,12["ack",7]"#).await;
    assert_eq!(client.text().await, "3/a,12[7]");
    assert_next_is_echo(&mut client, "/a", "no second ack").await;

    client.send(r#"20["ack"]"#).await;
    assert_eq!(client.text().await, "30[]", "ack id 0, no arguments");

    // No id, no ack: the handler's send does nothing.
    client.send(r#"2["ack","x"]"#).await;
    assert_next_is_echo(&mut client, "/", "no ack asked").await;

    // The largest id a JavaScript number holds exactly.
    client.send(r#"29007199254740991["ack",1]"#).await;
    assert_eq!(client.text().await, "39007199254740991[1]");
}

/// A server whose `ask` handler emits `question` with an ack to its client and reports the
/// outcome as `answer` (the client's arguments) or `ack-error`.
async fn asking_server(builder: IoBuilder) -> (SocketAddr, Io) {
    fn asking(socket: &SocketRef) {
        echo_handlers(socket);
        socket.on(
            "ask",
            |socket: SocketRef, Data(q): Data<String>| async move {
                let _ = match socket.emit_with_ack("question", &q).await {
                    Ok(answer) => socket.emit_args("answer", &answer),
                    Err(e) => socket.emit("ack-error", &e.to_string()),
                };
            },
        );
        socket.on("ask-two", |socket: SocketRef| async move {
            let (one, two) = tokio::join!(
                socket.emit_with_ack("question", &1),
                socket.emit_with_ack("question", &2)
            );
            let one: String = one.unwrap().get(0).unwrap();
            let two: String = two.unwrap().get(0).unwrap();
            let _ = socket.emit_args("answers", &(one, two));
        });
    }
    server(builder, |io| {
        io.ns("/", |s: SocketRef| asking(&s));
        io.ns("/a", |s: SocketRef| asking(&s));
    })
    .await
}

#[tokio::test]
async fn a_server_ack_is_resolved_by_the_clients_ack_packet() {
    let (addr, _io) = asking_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/a"]).await;

    client.send(r#"2["ask","q1"]"#).await;
    let question = client.text().await;
    let id = ack_id_of(&question, "/");
    assert_eq!(question, format!(r#"2{id}["question","q1"]"#));
    client.send(&format!(r#"3{id}["a1",{{"n":2}}]"#)).await;
    assert_eq!(client.text().await, r#"2["answer","a1",{"n":2}]"#);

    client.send(r#"2/a,["ask","q2"]"#).await;
    let question = client.text().await;
    let id = ack_id_of(&question, "/a");
    assert_eq!(question, format!(r#"2/a,{id}["question","q2"]"#));
    client.send(&format!(r#"3/a,{id}[]"#)).await;
    assert_eq!(client.text().await, r#"2/a,["answer"]"#);
}

#[tokio::test]
async fn server_acks_pending_together_have_distinct_ids_and_resolve_in_any_order() {
    let (addr, _io) = asking_server(Io::builder()).await;
    let mut client = joined(addr).await;
    client.send(r#"2["ask-two"]"#).await;
    let first = client.text().await;
    let second = client.text().await;
    let (id1, id2) = (ack_id_of(&first, "/"), ack_id_of(&second, "/"));
    assert_ne!(id1, id2);
    assert_eq!(first, format!(r#"2{id1}["question",1]"#));
    assert_eq!(second, format!(r#"2{id2}["question",2]"#));
    client.send(&format!(r#"3{id2}["two"]"#)).await;
    client.send(&format!(r#"3{id1}["one"]"#)).await;
    assert_eq!(client.text().await, r#"2["answers","one","two"]"#);
}

#[tokio::test]
async fn acks_for_unknown_or_answered_ids_are_ignored() {
    let (addr, io) = asking_server(Io::builder()).await;
    let mut client = joined_to(addr, &["/", "/a"]).await;

    client.send(r#"2["ask","q"]"#).await;
    let id = ack_id_of(&client.text().await, "/");
    client.send(r#"3999999["stray"]"#).await;
    client.send(&format!(r#"3{}["wrong id"]"#, id + 1)).await;
    // The right id in the wrong namespace is another socket's (unknown) id.
    client
        .send(&format!(r#"3/a,{id}["wrong namespace"]"#))
        .await;
    client.send(&format!(r#"3{id}["right"]"#)).await;
    assert_eq!(client.text().await, r#"2["answer","right"]"#);
    // Answered already.
    client.send(&format!(r#"3{id}["again"]"#)).await;
    assert_next_is_echo(&mut client, "/", "kept").await;
    assert_next_is_echo(&mut client, "/a", "kept").await;
    assert_eq!(io.of("/").unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_ack_times_out_and_a_late_answer_is_ignored() {
    let (addr, _io) = asking_server(Io::builder().ack_timeout(Duration::from_millis(150))).await;
    let mut client = joined(addr).await;
    client.send(r#"2["ask","q"]"#).await;
    let id = ack_id_of(&client.text().await, "/");
    assert_eq!(
        client.text().await,
        format!(r#"2["ack-error","{}"]"#, AckError::Timeout)
    );
    client.send(&format!(r#"3{id}["late"]"#)).await;
    assert_next_is_echo(&mut client, "/", "kept").await;
}

#[tokio::test]
async fn server_acks_pending_on_a_socket_that_leaves_fail_at_once() {
    let (tx, mut outcomes) = mpsc::unbounded_channel();
    let (addr, _io) = server(Io::builder().ack_timeout(Duration::from_secs(60)), |io| {
        io.ns("/", |s: SocketRef| echo_handlers(&s));
        io.ns("/a", move |socket: SocketRef| {
            let tx = tx.clone();
            socket.on("ask", move |socket: SocketRef| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(socket.emit_with_ack("question", &()).await);
                }
            });
        });
    })
    .await;
    let mut client = joined_to(addr, &["/", "/a"]).await;
    client.send(r#"2/a,["ask"]"#).await;
    client.text().await;
    client.send("1/a,").await;
    let outcome = recv(&mut outcomes).await;
    assert!(
        matches!(outcome, Err(AckError::Disconnected)),
        "{outcome:?} (the ack timeout is 60 s, the wait 5 s)"
    );
    assert_next_is_echo(&mut client, "/", "kept").await;
}

// ---------------------------------------------------------------- binary

#[derive(Serialize)]
struct Nested {
    name: &'static str,
    file: Bytes,
    parts: Vec<Part>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Part {
    Raw(Bytes),
    Inner { inner: Bytes },
}

#[tokio::test]
async fn a_server_emit_with_binary_becomes_placeholders_and_attachments_depth_first() {
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/", |s: SocketRef| echo_handlers(&s));
        io.ns("/a", |socket: SocketRef| {
            socket.on("go", |socket: SocketRef| {
                let nested = Nested {
                    name: "n",
                    file: Bytes::from_static(b"one"),
                    parts: vec![
                        Part::Raw(Bytes::from_static(b"two")),
                        Part::Inner {
                            inner: Bytes::from_static(b""),
                        },
                    ],
                };
                let args = (
                    Bytes::from_static(b"zero"),
                    nested,
                    "text",
                    Bytes::from_static(&[0, 255]),
                );
                let _ = socket.emit_args("bin", &args);
            });
        });
    })
    .await;
    let mut client = joined_to(addr, &["/a"]).await;
    client.send(r#"2/a,["go"]"#).await;
    let expected = format!(
        r#"55-/a,["bin",{},{{"name":"n","file":{},"parts":[{},{{"inner":{}}}]}},"text",{}]"#,
        placeholder(0),
        placeholder(1),
        placeholder(2),
        placeholder(3),
        placeholder(4)
    );
    assert_eq!(client.text().await, expected);
    let attachments: [&[u8]; 5] = [b"zero", b"one", b"two", b"", &[0, 255]];
    for data in attachments {
        assert_eq!(client.binary().await, data);
    }
}

#[tokio::test]
async fn binary_acks_and_binary_events_with_ack_ids_keep_the_header_order() {
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/a", |socket: SocketRef| {
            socket.on("binack", |ack: AckSender| {
                let _ = ack.send_args(&("ok", Bytes::from_static(b"\x01\x02")));
            });
            socket.on("ask", |socket: SocketRef| async move {
                let answer = socket
                    .emit_with_ack("file", &Bytes::from_static(b"\x09"))
                    .await;
                let _ = socket.emit_args("answer", &answer.unwrap());
            });
        });
    })
    .await;
    let mut client = joined_to(addr, &["/a"]).await;
    client.send(r#"2/a,4["binack"]"#).await;
    assert_eq!(
        client.text().await,
        format!(r#"61-/a,4["ok",{}]"#, placeholder(0))
    );
    assert_eq!(client.binary().await, &b"\x01\x02"[..]);

    client.send(r#"2/a,["ask"]"#).await;
    let header = client.text().await;
    let rest = header
        .strip_prefix("51-/a,")
        .unwrap_or_else(|| panic!("{header}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(rest, format!(r#"{digits}["file",{}]"#, placeholder(0)));
    assert_eq!(client.binary().await, &b"\x09"[..]);
    // A binary ack from the client resolves it, its attachment as bytes.
    client
        .send(&format!(r#"61-/a,{digits}[{},"x"]"#, placeholder(0)))
        .await;
    client.send_binary(b"\xAA\xBB").await;
    assert_eq!(
        client.text().await,
        format!(r#"51-/a,["answer",{},"x"]"#, placeholder(0))
    );
    assert_eq!(client.binary().await, &b"\xAA\xBB"[..]);
}

#[tokio::test]
async fn two_binary_packets_are_never_interleaved() {
    let (addr, _io) = event_server(Io::builder(), "two", |socket: SocketRef| {
        let one = (Bytes::from_static(b"a1"), Bytes::from_static(b"a2"));
        let _ = socket.emit_args("one", &one);
        let _ = socket.emit("two", &Bytes::from_static(b"b1"));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["two"]"#).await;
    let frames = [
        client.next().await.unwrap(),
        client.next().await.unwrap(),
        client.next().await.unwrap(),
        client.next().await.unwrap(),
        client.next().await.unwrap(),
    ];
    assert_eq!(
        frames,
        [
            Frame::Text(format!(
                r#"52-["one",{},{}]"#,
                placeholder(0),
                placeholder(1)
            )),
            Frame::Binary(Bytes::from_static(b"a1")),
            Frame::Binary(Bytes::from_static(b"a2")),
            Frame::Text(format!(r#"51-["two",{}]"#, placeholder(0))),
            Frame::Binary(Bytes::from_static(b"b1")),
        ]
    );
}

#[tokio::test]
async fn client_binary_events_reach_handlers_with_their_bytes() {
    #[derive(Deserialize)]
    struct Upload {
        name: String,
        file: Bytes,
    }
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/", |socket: SocketRef| {
            echo_handlers(&socket);
            socket.on("upload", |socket: SocketRef, Data(up): Data<Upload>| {
                let _ = socket.emit_args("uploaded", &(up.name, up.file.to_vec()));
            });
        });
        io.ns("/a", |socket: SocketRef| {
            socket.on(
                "pair",
                |Args((a, b)): Args<(Bytes, Bytes)>, ack: AckSender| {
                    let _ = ack.send_args(&(a.to_vec(), b.to_vec()));
                },
            );
        });
    })
    .await;
    let mut client = joined_to(addr, &["/", "/a"]).await;

    client
        .send(&format!(
            r#"51-["upload",{{"name":"f","file":{}}}]"#,
            placeholder(0)
        ))
        .await;
    client.send_binary(&[1, 2, 3]).await;
    assert_eq!(client.text().await, r#"2["uploaded","f",[1,2,3]]"#);

    client
        .send(&format!(
            r#"52-/a,7["pair",{},{}]"#,
            placeholder(1),
            placeholder(0)
        ))
        .await;
    client.send_binary(&[0]).await;
    client.send_binary(&[1, 1]).await;
    assert_eq!(
        client.text().await,
        "3/a,7[[1,1],[0]]",
        "num indexes the attachments"
    );

    // Forwarded as received: the same placeholders, the same attachments.
    client
        .send(&format!(r#"51-["echo","x",{}]"#, placeholder(0)))
        .await;
    client.send_binary(b"\xFF\x00").await;
    assert_eq!(
        client.text().await,
        format!(r#"51-["echo","x",{}]"#, placeholder(0))
    );
    assert_eq!(client.binary().await, &b"\xFF\x00"[..]);
}

#[tokio::test]
async fn ten_attachments_are_accepted() {
    let (addr, _io) = echo_server(Io::builder()).await;
    let mut client = joined(addr).await;
    let args: Vec<String> = (0..10).map(placeholder).collect();
    let packet = format!(r#"510-["echo",{}]"#, args.join(","));
    client.send(&packet).await;
    for i in 0..10u8 {
        client.send_binary(&[i]).await;
    }
    assert_eq!(client.text().await, packet);
    for i in 0..10u8 {
        assert_eq!(client.binary().await, &[i][..]);
    }
}

// ---------------------------------------------------------------- JSON written

#[tokio::test]
async fn the_server_writes_compact_json_in_insertion_order() {
    #[derive(Serialize)]
    struct Inner {
        y: Option<u8>,
        b: &'static str,
    }
    #[derive(Serialize)]
    struct Ordered {
        zebra: u8,
        apple: [u8; 2],
        mid: Inner,
        empty: Vec<u8>,
    }
    let (addr, _io) = root_server(Io::builder(), |socket| {
        socket.on("go", |socket: SocketRef, ack: AckSender| {
            let value = Ordered {
                zebra: 1,
                apple: [1, 2],
                mid: Inner {
                    y: None,
                    b: "s\"q\n",
                },
                empty: vec![],
            };
            let _ = socket.emit_args("ordered", &(&value, "é", 1.5, -2));
            let _ = ack.send(&value);
        });
        socket.on("none", |socket: SocketRef| {
            let _ = socket.emit_args("none", &());
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"23["go"]"#).await;
    let value = r#"{"zebra":1,"apple":[1,2],"mid":{"y":null,"b":"s\"q\n"},"empty":[]}"#;
    assert_eq!(
        client.text().await,
        format!(r#"2["ordered",{value},"é",1.5,-2]"#)
    );
    assert_eq!(client.text().await, format!("33[{value}]"));
    client.send(r#"2["none"]"#).await;
    assert_eq!(client.text().await, r#"2["none"]"#);
}

#[tokio::test]
async fn forwarded_arguments_are_written_as_compact_json() {
    let (addr, _io) = echo_server(Io::builder()).await;
    let mut client = joined(addr).await;
    client
        .send("2[ \"echo\" , 1 , {\"a\" : [ 2 ,\n3 ] } ]")
        .await;
    assert_eq!(client.text().await, r#"2["echo",1,{"a":[2,3]}]"#);
    client.send("21[\"ack\", { \"k\" :\t\"v\" } ]").await;
    assert_eq!(client.text().await, r#"31[{"k":"v"}]"#);
}

// ---------------------------------------------------------------- DISCONNECT

#[tokio::test]
async fn a_client_disconnect_leaves_that_namespace_only() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (addr, io) = server(Io::builder(), |io| {
        for name in ["/", "/a"] {
            let tx = tx.clone();
            io.ns(name, move |socket: SocketRef| {
                echo_handlers(&socket);
                report_disconnect(&socket, &tx);
            });
        }
    })
    .await;
    let mut client = joined(addr).await;
    let first_a = client.join("/a", None).await;

    client.send("1/a,").await;
    assert_eq!(
        recv(&mut reasons).await,
        ("/a".to_owned(), DisconnectReason::ClientNamespaceDisconnect)
    );
    assert!(io.of("/a").unwrap().is_empty());
    assert_next_is_echo(&mut client, "/", "root still works").await;
    assert_eq!(io.engine().unwrap().len(), 1);

    // Leaving every namespace keeps the connection too; both can be joined again.
    client.send("1").await;
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::ClientNamespaceDisconnect)
    );
    assert!(io.of("/").unwrap().is_empty());
    assert_eq!(io.engine().unwrap().len(), 1);
    let second_a = client.join("/a", None).await;
    assert_ne!(first_a, second_a, "a new socket");
    client.join("/", None).await;
    assert_next_is_echo(&mut client, "/a", "back").await;
    assert_next_is_echo(&mut client, "/", "back").await;
}

#[tokio::test]
async fn a_server_namespace_disconnect_sends_disconnect_and_keeps_the_connection() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (addr, io) = server(Io::builder(), |io| {
        for name in ["/", "/a"] {
            let tx = tx.clone();
            io.ns(name, move |socket: SocketRef| {
                echo_handlers(&socket);
                socket.on("kick", |socket: SocketRef| socket.disconnect());
                report_disconnect(&socket, &tx);
            });
        }
    })
    .await;
    let mut client = joined_to(addr, &["/", "/a"]).await;

    client.send(r#"2/a,["kick"]"#).await;
    assert_eq!(client.text().await, "1/a,");
    assert_eq!(
        recv(&mut reasons).await,
        ("/a".to_owned(), DisconnectReason::ServerNamespaceDisconnect)
    );
    assert!(io.of("/a").unwrap().is_empty());
    assert_next_is_echo(&mut client, "/", "root still works").await;

    client.send(r#"2["kick"]"#).await;
    assert_eq!(client.text().await, "1");
    assert_eq!(
        recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::ServerNamespaceDisconnect)
    );
    assert_eq!(io.engine().unwrap().len(), 1);
    client.join("/a", None).await;
    assert_next_is_echo(&mut client, "/a", "rejoined").await;
}

// ---------------------------------------------------------------- ordering

#[tokio::test]
async fn many_events_keep_their_order_both_ways() {
    let (addr, _io) = root_server(Io::builder(), |socket| {
        echo_handlers(socket);
        socket.on("burst", |socket: SocketRef, Data(n): Data<u32>| {
            for i in 0..n {
                let _ = socket.emit("n", &i);
            }
        });
    })
    .await;
    let mut client = joined(addr).await;

    const N: u32 = 300;
    for i in 0..N {
        if i % 2 == 0 {
            client.send(&format!(r#"2["echo",{i}]"#)).await;
        } else {
            client.send(&format!(r#"2{i}["ack",{i}]"#)).await;
        }
    }
    for i in 0..N {
        let expected = if i % 2 == 0 {
            format!(r#"2["echo",{i}]"#)
        } else {
            format!("3{i}[{i}]")
        };
        assert_eq!(client.text().await, expected);
    }

    client.send(r#"2["burst",1000]"#).await;
    for i in 0..1000 {
        assert_eq!(client.text().await, format!(r#"2["n",{i}]"#));
    }
}

// ---------------------------------------------------------------- long-polling

#[tokio::test]
async fn the_same_packets_travel_over_long_polling() {
    let (addr, io) = echo_server(Io::builder()).await;
    let client = PollingClient::connect(addr).await;
    let id = client.join("/").await;
    assert_eq!(id.len(), 20);
    client.join("/a").await;
    client
        .send(&[r#"2["echo",1]"#, r#"2/a,5["ack","x"]"#])
        .await;
    let mut frames = Vec::new();
    while frames.len() < 2 {
        let polled = client.poll_frames().await;
        assert!(!polled.closed);
        frames.extend(polled.frames);
    }
    assert_eq!(
        frames,
        [
            Frame::Text(r#"2["echo",1]"#.to_owned()),
            Frame::Text(r#"3/a,5["x"]"#.to_owned())
        ]
    );

    // Binary: attachments as `b<base64>` both ways.
    let header = format!(r#"51-["echo",{}]"#, placeholder(0));
    client
        .send_packets(&[Packet::Message(&header), Packet::Binary(vec![1, 2, 255])])
        .await;
    let mut frames = Vec::new();
    while frames.len() < 2 {
        frames.extend(client.poll_frames().await.frames);
    }
    assert_eq!(
        frames,
        [
            Frame::Text(header.clone()),
            Frame::Binary(Bytes::from_static(&[1, 2, 255]))
        ]
    );

    client.send(&["1/a,"]).await;
    eventually("the socket left /a", || io.of("/a").unwrap().is_empty()).await;
    assert_eq!(io.of("/").unwrap().len(), 1);
}

#[tokio::test]
async fn the_namespace_slash_written_by_a_client_is_never_written_back() {
    let (addr, io) = echo_server(Io::builder()).await;
    let mut client = Client::connect(addr).await;
    client.send("0/,").await;
    let reply = client.text().await;
    assert!(reply.starts_with(r#"0{"sid":""#), "{reply}");
    client.send(r#"2/,3["ack","x"]"#).await;
    assert_eq!(client.text().await, r#"33["x"]"#);
    client.send(r#"2/,["echo"]"#).await;
    assert_eq!(client.text().await, r#"2["echo"]"#);
    assert_eq!(io.of("/").unwrap().len(), 1);
}

#[tokio::test]
async fn refusal_data_keeps_its_own_field_order() {
    #[derive(serde::Serialize)]
    struct Reason {
        zone: u8,
        area: &'static str,
    }
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns(
            "/",
            (|_: SocketRef| {}).with(|| {
                Err::<(), _>(ConnectRefusal::new("no").with_data(&Reason { zone: 1, area: "x" }))
            }),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    assert_eq!(
        client.text().await,
        r#"4{"message":"no","data":{"zone":1,"area":"x"}}"#
    );
}
