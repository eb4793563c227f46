//! The msgpack parser on the wire (`Parser::Msgpack`, compatible with npm
//! `socket.io-msgpack-parser`): each packet one binary message, a map `{type, data?, id?,
//! nsp}` in that key order, binary values inline. Invalid packets close the connection and
//! leak nothing, as with the JSON parser.
//!
//! Runs with the `msgpack` feature (on in `cargo test --workspace`, which the interop example
//! unifies in).
#![cfg(feature = "msgpack")]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::polling::PollingClient;
use common::{Client, Frame, echo_handlers, eventually, server};
use ferrio::{AckSender, ConnectHandler, ConnectRefusal, Data, Io, Parser, Payload, SocketRef};
use ferrio_protocol::engine::Packet;
use ferrio_protocol::socketio::MAX_DEPTH;
use rmpv::Value;
use serde::Serialize;

// ---------------------------------------------------------------- msgpack helpers

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::from(key), value))
            .collect(),
    )
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn bin(data: &[u8]) -> Value {
    Value::Binary(data.to_vec())
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// A client's packet: `{type, nsp, data?, id?}`.
fn packet(kind: u8, nsp: &str, data: Option<Value>, id: Option<u64>) -> Vec<u8> {
    let mut entries = vec![("type", Value::from(kind)), ("nsp", Value::from(nsp))];
    if let Some(data) = data {
        entries.push(("data", data));
    }
    if let Some(id) = id {
        entries.push(("id", Value::from(id)));
    }
    encode(&map(entries))
}

fn event(nsp: &str, id: Option<u64>, name: &str, args: Vec<Value>) -> Vec<u8> {
    let mut data = vec![Value::from(name)];
    data.extend(args);
    packet(2, nsp, Some(arr(data)), id)
}

/// A packet the server sends, as Node's encoder lays it out: `type`, `data`, `id`, `nsp`.
fn server_packet(kind: u8, nsp: &str, data: Option<Value>, id: Option<u64>) -> Value {
    let mut entries = vec![("type", Value::from(kind))];
    if let Some(data) = data {
        entries.push(("data", data));
    }
    if let Some(id) = id {
        entries.push(("id", Value::from(id)));
    }
    entries.push(("nsp", Value::from(nsp)));
    map(entries)
}

fn server_event(nsp: &str, name: &str, args: Vec<Value>) -> Value {
    let mut data = vec![Value::from(name)];
    data.extend(args);
    server_packet(2, nsp, Some(arr(data)), None)
}

fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The next packet: one binary message holding exactly one msgpack value.
async fn recv_packet(client: &mut Client) -> Value {
    let bytes = client.binary().await;
    let mut rest = &bytes[..];
    let value = rmpv::decode::read_value(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the packet: {bytes:?}");
    value
}

/// Joins `nsp` with optional auth; returns the socket id after checking the reply's layout.
async fn join(client: &mut Client, nsp: &str, auth: Option<Value>) -> String {
    client.send_binary(&packet(0, nsp, auth, None)).await;
    let reply = recv_packet(client).await;
    let sid = field(&reply, "data")
        .and_then(|data| field(data, "sid"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}"))
        .to_owned();
    let data = map(vec![("sid", Value::from(sid.as_str()))]);
    assert_eq!(reply, server_packet(0, nsp, Some(data), None));
    sid
}

/// A new client joined to each of `namespaces` (without auth), in order.
async fn joined_to(addr: SocketAddr, namespaces: &[&str]) -> Client {
    let mut client = Client::connect(addr).await;
    for nsp in namespaces {
        join(&mut client, nsp, None).await;
    }
    client
}

/// Sends an echo and asserts that its reply is the very next packet.
async fn assert_next_is_echo(client: &mut Client, nsp: &str, tag: &str) {
    client
        .send_binary(&event(nsp, None, "echo", vec![Value::from(tag)]))
        .await;
    assert_eq!(
        recv_packet(client).await,
        server_event(nsp, "echo", vec![Value::from(tag)])
    );
}

// ---------------------------------------------------------------- the server

fn handlers(socket: &SocketRef) {
    echo_handlers(socket);
    socket.on("kick", |socket: SocketRef| socket.disconnect());
    socket.on("ask", |socket: SocketRef, payload: Payload| async move {
        if let Ok(answer) = socket.emit_with_ack("question", &payload.arg(0)).await {
            let _ = socket.emit_args("answer", &answer);
        }
    });
}

/// `/`, `/a`, `/c` with [`handlers`]; `/deny` and `/b` refuse.
async fn msgpack_server() -> (SocketAddr, Io) {
    server(Io::builder().parser(Parser::Msgpack), |io| {
        io.ns("/", |s: SocketRef| handlers(&s));
        io.ns("/a", |s: SocketRef| handlers(&s));
        io.ns("/c", |s: SocketRef| handlers(&s));
        let deny = || {
            Err::<(), _>(ConnectRefusal::new("denied").with_data(&serde_json::json!({"code": 1})))
        };
        io.ns("/deny", (|s: SocketRef| handlers(&s)).with(deny));
        io.ns(
            "/b",
            (|s: SocketRef| handlers(&s)).with(|| Err::<(), _>("nope")),
        );
    })
    .await
}

// ---------------------------------------------------------------- CONNECT

#[tokio::test]
async fn connect_replies_are_maps_of_type_data_nsp_with_fresh_socket_ids() {
    let (addr, _io) = msgpack_server().await;
    let mut client = Client::connect(addr).await;
    let root = join(&mut client, "/", None).await;
    let a = join(&mut client, "/a", None).await;
    for id in [&root, &a] {
        assert_eq!(id.len(), 20);
        assert_ne!(*id, client.sid);
    }
    assert_ne!(root, a);
}

#[tokio::test]
async fn connect_auth_reaches_the_handler_and_defaults_to_an_empty_map() {
    let (addr, _io) = server(Io::builder().parser(Parser::Msgpack), |io| {
        io.ns("/", |socket: SocketRef| {
            let _ = socket.emit("auth", &socket.auth().arg(0));
        });
        io.ns(
            "/a",
            |socket: SocketRef, Data(token): Data<serde_json::Value>| {
                let _ = socket.emit("token", &token["token"]);
            },
        );
        io.ns("/c", |socket: SocketRef| {
            let _ = socket.emit("auth", &socket.auth().arg(0));
        });
    })
    .await;
    let mut client = joined_to(addr, &["/"]).await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/", "auth", vec![map(vec![])])
    );
    let auth = map(vec![
        ("token", Value::from("t")),
        ("n", arr(vec![1.into(), 2.into()])),
    ]);
    join(&mut client, "/a", Some(auth)).await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/a", "token", vec![Value::from("t")])
    );
    // socket.io-client sends `data: undefined` (notepack: fixext 1 of type 0): no auth.
    let mut undefined_data = vec![0x83, 0xa4];
    undefined_data.extend_from_slice(b"type");
    undefined_data.push(0x00);
    undefined_data.push(0xa3);
    undefined_data.extend_from_slice(b"nsp");
    undefined_data.push(0xa2);
    undefined_data.extend_from_slice(b"/c");
    undefined_data.push(0xa4);
    undefined_data.extend_from_slice(b"data");
    undefined_data.extend_from_slice(&[0xd4, 0x00, 0x00]);
    client.send_binary(&undefined_data).await;
    let reply = recv_packet(&mut client).await;
    assert_eq!(field(&reply, "type"), Some(&Value::from(0)), "{reply}");
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/c", "auth", vec![map(vec![])])
    );
}

#[tokio::test]
async fn refusals_are_connect_errors_with_message_and_optional_data() {
    let (addr, io) = msgpack_server().await;
    let mut client = Client::connect(addr).await;
    client.send_binary(&packet(0, "/deny", None, None)).await;
    let data = map(vec![
        ("message", Value::from("denied")),
        ("data", map(vec![("code", Value::from(1))])),
    ]);
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(4, "/deny", Some(data), None)
    );
    client.send_binary(&packet(0, "/b", None, None)).await;
    let data = map(vec![("message", Value::from("nope"))]);
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(4, "/b", Some(data), None)
    );
    client.send_binary(&packet(0, "/nope", None, None)).await;
    let data = map(vec![("message", Value::from("Invalid namespace"))]);
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(4, "/nope", Some(data), None)
    );
    // The connection is kept.
    join(&mut client, "/", None).await;
    assert_next_is_echo(&mut client, "/", "in").await;
    assert!(io.of("/deny").unwrap().is_empty());
}

// ---------------------------------------------------------------- EVENT and ACK

#[tokio::test]
async fn events_carry_binary_inline_both_ways() {
    let (addr, _io) = msgpack_server().await;
    let mut client = joined_to(addr, &["/"]).await;
    let args = vec![
        Value::from(1),
        Value::from("s"),
        bin(&[1, 2, 3]),
        map(vec![(
            "k",
            arr(vec![Value::from(true), Value::Nil, bin(&[])]),
        )]),
        Value::from(-5),
        Value::F64(1.5),
    ];
    client
        .send_binary(&event("/", None, "echo", args.clone()))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/", "echo", args)
    );
    // No attachment follows: the next message is the next reply.
    assert_next_is_echo(&mut client, "/", "next").await;
}

#[tokio::test]
async fn server_emits_keep_bytes_inline_at_any_depth() {
    #[derive(Serialize)]
    struct Nested {
        name: &'static str,
        file: Bytes,
        parts: Vec<Bytes>,
    }
    let (addr, _io) = server(Io::builder().parser(Parser::Msgpack), |io| {
        io.ns("/a", |socket: SocketRef| {
            socket.on("go", |socket: SocketRef, ack: AckSender| {
                let nested = Nested {
                    name: "n",
                    file: Bytes::from_static(b"one"),
                    parts: vec![Bytes::from_static(b"two"), Bytes::new()],
                };
                let _ = socket.emit_args("bin", &(Bytes::from_static(b"zero"), nested));
                let _ = ack.send(&Bytes::from_static(&[0, 255]));
            });
        });
    })
    .await;
    let mut client = joined_to(addr, &["/a"]).await;
    client
        .send_binary(&event("/a", Some(3), "go", vec![]))
        .await;
    let nested = map(vec![
        ("name", Value::from("n")),
        ("file", bin(b"one")),
        ("parts", arr(vec![bin(b"two"), bin(b"")])),
    ]);
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/a", "bin", vec![bin(b"zero"), nested])
    );
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(3, "/a", Some(arr(vec![bin(&[0, 255])])), Some(3))
    );
}

#[tokio::test]
async fn acks_answer_with_the_id_and_namespace_of_the_event() {
    let (addr, _io) = msgpack_server().await;
    let mut client = joined_to(addr, &["/", "/a"]).await;
    client
        .send_binary(&event(
            "/a",
            Some(7),
            "ack",
            vec![Value::from("x"), bin(&[9])],
        ))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(
            3,
            "/a",
            Some(arr(vec![Value::from("x"), bin(&[9])])),
            Some(7)
        )
    );
    client
        .send_binary(&event("/", Some(0), "ack", vec![]))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(3, "/", Some(arr(vec![])), Some(0))
    );
    // The largest id a JavaScript number holds exactly.
    let max = (1 << 53) - 1;
    client
        .send_binary(&event("/", Some(max), "ack", vec![]))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(3, "/", Some(arr(vec![])), Some(max))
    );
    assert_next_is_echo(&mut client, "/", "no second ack").await;
}

#[tokio::test]
async fn server_acks_are_resolved_by_the_clients_ack_and_unknown_ids_ignored() {
    let (addr, _io) = msgpack_server().await;
    let mut client = joined_to(addr, &["/a"]).await;
    client
        .send_binary(&event("/a", None, "ask", vec![Value::from("q")]))
        .await;
    let question = recv_packet(&mut client).await;
    let id = field(&question, "id").and_then(Value::as_u64).unwrap();
    assert_eq!(
        question,
        server_packet(
            2,
            "/a",
            Some(arr(vec![Value::from("question"), Value::from("q")])),
            Some(id)
        )
    );
    client
        .send_binary(&packet(
            3,
            "/a",
            Some(arr(vec![Value::from("stray")])),
            Some(id + 1),
        ))
        .await;
    client
        .send_binary(&packet(
            3,
            "/a",
            Some(arr(vec![bin(&[1]), Value::from("a")])),
            Some(id),
        ))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/a", "answer", vec![bin(&[1]), Value::from("a")])
    );
}

// ---------------------------------------------------------------- DISCONNECT

#[tokio::test]
async fn disconnects_leave_one_namespace_both_ways() {
    let (addr, io) = msgpack_server().await;
    let mut client = joined_to(addr, &["/", "/a"]).await;
    client.send_binary(&packet(1, "/a", None, None)).await;
    eventually("the socket left /a", || io.of("/a").unwrap().is_empty()).await;
    assert_next_is_echo(&mut client, "/", "root").await;

    join(&mut client, "/a", None).await;
    client.send_binary(&event("/a", None, "kick", vec![])).await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_packet(1, "/a", None, None)
    );
    assert!(io.of("/a").unwrap().is_empty());
    assert_next_is_echo(&mut client, "/", "root").await;
    assert_eq!(io.engine().unwrap().len(), 1);
}

// ---------------------------------------------------------------- invalid packets

/// A client in `/` and `/a` sends `messages` (binary unless `text`); the connection must
/// close, the counts return, and a healthy client keep its echoes.
async fn assert_closes(messages: Vec<Msg>) {
    let (addr, io) = msgpack_server().await;
    let mut healthy = joined_to(addr, &["/"]).await;
    let mut victim = joined_to(addr, &["/", "/a"]).await;
    for message in messages {
        match message {
            Msg::Text(text) => victim.send(text).await,
            Msg::Binary(data) => victim.send_binary(&data).await,
        }
    }
    victim.assert_closed().await;
    let counts = || {
        (
            io.engine().unwrap().len(),
            io.of("/").unwrap().len(),
            io.of("/a").unwrap().len(),
        )
    };
    eventually("connection and sockets released", || counts() == (1, 1, 0)).await;
    assert_next_is_echo(&mut healthy, "/", "healthy").await;
}

enum Msg {
    Text(&'static str),
    Binary(Vec<u8>),
}

impl From<Vec<u8>> for Msg {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data)
    }
}

impl From<&'static str> for Msg {
    fn from(text: &'static str) -> Self {
        Self::Text(text)
    }
}

macro_rules! closes {
    ($($name:ident: $($message:expr),+;)*) => {$(
        #[tokio::test]
        async fn $name() {
            assert_closes(vec![$(Msg::from($message)),+]).await;
        }
    )*};
}

fn raw(entries: Vec<(&str, Value)>) -> Vec<u8> {
    encode(&map(entries))
}

/// `levels` arrays, one inside the other.
fn nested(levels: usize) -> Value {
    (0..levels).fold(Value::Nil, |inner, _| arr(vec![inner]))
}

closes! {
    a_text_message: r#"2["echo"]"#;
    an_empty_message: vec![];
    the_reserved_marker: vec![0xc1];
    a_truncated_map: vec![0x83, 0xa4, b't', b'y', b'p', b'e'];
    not_a_map: encode(&arr(vec![2.into(), "/".into()]));
    trailing_bytes_after_the_packet: {
        let mut bytes = event("/", None, "echo", vec![]);
        bytes.push(0xc0);
        bytes
    };
    a_key_named_twice: raw(vec![
        ("type", 2.into()),
        ("nsp", "/".into()),
        ("data", arr(vec!["echo".into()])),
        ("type", 2.into()),
    ]);
    unknown_type_7: packet(7, "/", Some(arr(vec!["echo".into()])), None);
    binary_event_type_5: packet(5, "/", Some(arr(vec!["echo".into()])), None);
    binary_ack_type_6: packet(6, "/", Some(arr(vec![])), Some(1));
    client_connect_error: packet(4, "/", Some(map(vec![])), None);
    type_as_a_string: raw(vec![("type", "2".into()), ("nsp", "/".into()), ("data", arr(vec!["echo".into()]))]);
    type_missing: raw(vec![("nsp", "/".into()), ("data", arr(vec!["echo".into()]))]);
    type_negative: raw(vec![("type", (-1).into()), ("nsp", "/".into())]);
    namespace_missing: raw(vec![("type", 2.into()), ("data", arr(vec!["echo".into()]))]);
    namespace_not_a_string: raw(vec![("type", 2.into()), ("nsp", 1.into()), ("data", arr(vec!["echo".into()]))]);
    ack_id_of_2_pow_53: event("/", Some(1 << 53), "ack", vec![]);
    ack_id_negative: raw(vec![
        ("type", 2.into()),
        ("nsp", "/".into()),
        ("data", arr(vec!["ack".into()])),
        ("id", (-1).into()),
    ]);
    ack_id_a_string: raw(vec![
        ("type", 2.into()),
        ("nsp", "/".into()),
        ("data", arr(vec!["ack".into()])),
        ("id", "1".into()),
    ]);
    ack_id_on_a_connect: packet(0, "/c", None, Some(1));
    ack_id_on_a_disconnect: packet(1, "/a", None, Some(1));
    ack_without_id: packet(3, "/", Some(arr(vec![])), None);
    ack_data_not_an_array: packet(3, "/", Some(map(vec![])), Some(1));
    disconnect_with_data: packet(1, "/a", Some(map(vec![])), None);
    event_without_data: packet(2, "/", None, None);
    event_data_a_map: packet(2, "/", Some(map(vec![("echo", 1.into())])), None);
    event_data_an_empty_array: packet(2, "/", Some(arr(vec![])), None);
    event_named_by_nil: packet(2, "/", Some(arr(vec![Value::Nil])), None);
    event_named_by_a_map: packet(2, "/", Some(arr(vec![map(vec![])])), None);
    event_named_by_a_boolean: packet(2, "/", Some(arr(vec![true.into()])), None);
    event_reserved_connect: event("/", None, "connect", vec![]);
    event_reserved_connect_error: event("/", None, "connect_error", vec![]);
    event_reserved_disconnect: event("/a", Some(1), "disconnect", vec![]);
    event_reserved_disconnecting: event("/", None, "disconnecting", vec![]);
    event_reserved_new_listener: event("/", None, "newListener", vec![]);
    event_reserved_remove_listener: event("/", None, "removeListener", vec![]);
    connect_data_a_string: packet(0, "/c", Some("x".into()), None);
    connect_data_an_array: packet(0, "/c", Some(arr(vec![1.into()])), None);
    nesting_one_level_past_the_bound: event("/", None, "echo", vec![nested(MAX_DEPTH)]);
    nesting_far_too_deep: event("/", None, "echo", vec![nested(1000)]);
    event_for_a_namespace_not_joined: event("/c", None, "echo", vec![]);
    event_for_an_unknown_namespace: event("/nope", None, "echo", vec![]);
    ack_for_a_namespace_not_joined: packet(3, "/c", Some(arr(vec![])), Some(1));
    second_connect: packet(0, "/a", None, None);
}

#[tokio::test]
async fn nesting_exactly_at_the_bound_is_accepted() {
    let (addr, _io) = msgpack_server().await;
    let mut client = joined_to(addr, &["/"]).await;
    // The data array is the first of MAX_DEPTH levels, as with the JSON parser.
    let inner = nested(MAX_DEPTH - 1);
    client
        .send_binary(&event("/", None, "echo", vec![inner.clone()]))
        .await;
    assert_eq!(
        recv_packet(&mut client).await,
        server_event("/", "echo", vec![inner])
    );
}

// ---------------------------------------------------------------- long-polling

#[tokio::test]
async fn msgpack_packets_travel_over_long_polling_as_base64() {
    let (addr, io) = msgpack_server().await;
    let client = PollingClient::connect(addr).await;
    client
        .send_packets(&[Packet::Binary(packet(0, "/", None, None))])
        .await;
    let polled = client.poll_frames().await;
    let [Frame::Binary(reply)] = &polled.frames[..] else {
        panic!("expected one binary message: {polled:?}");
    };
    let reply = rmpv::decode::read_value(&mut &reply[..]).unwrap();
    assert_eq!(field(&reply, "type"), Some(&Value::from(0)));

    let args = vec![bin(&[0, 1]), Value::from("x")];
    client
        .send_packets(&[Packet::Binary(event("/", Some(4), "ack", args.clone()))])
        .await;
    let polled = client.poll_frames().await;
    let [Frame::Binary(reply)] = &polled.frames[..] else {
        panic!("expected one binary message: {polled:?}");
    };
    let reply = rmpv::decode::read_value(&mut &reply[..]).unwrap();
    assert_eq!(reply, server_packet(3, "/", Some(arr(args)), Some(4)));

    // A text message is never msgpack: the session ends and nothing stays behind.
    client.send(&[r#"2["echo"]"#]).await;
    client.assert_closed().await;
    eventually("session and socket released", || {
        io.engine().unwrap().is_empty() && io.of("/").unwrap().is_empty()
    })
    .await;
}
