use bytes::Bytes;
use rmpv::Value;

use super::*;
use crate::socketio::{EncodeError, MAX_DEPTH};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn write(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// Encodes a packet map with rmpv's writer (not ours).
fn packet(entries: &[(&str, Value)]) -> Vec<u8> {
    write(&map(entries))
}

fn event(name: Value, args: Vec<Value>) -> Value {
    let mut data = vec![name];
    data.extend(args);
    Value::Array(data)
}

fn err(input: &[u8]) -> DecodeError {
    match decode(input) {
        Ok(p) => panic!("{} decoded: {p:?}", to_hex(input)),
        Err(e) => e,
    }
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Array(vec![]), |inner, _| Value::Array(vec![inner]))
}

// Bytes written by the npm package's encoder (socket.io-msgpack-parser 3.0.2, notepack.io
// 2.2.0), for packets shaped as socket.io-client 4 builds them.

#[test]
fn npm_connect_without_auth_sends_undefined_data() {
    // {type: 0, data: undefined, nsp: "/"}
    let p = decode(&hex("83a47479706500a464617461d40000a36e7370a12f")).unwrap();
    assert_eq!(
        p,
        MsgpackPacket {
            kind: PacketType::Connect,
            nsp: "/".into(),
            id: None,
            body: MsgpackBody::None
        }
    );
}

#[test]
fn npm_connect_with_auth() {
    // {type: 0, data: {token: "abc", n: 1}, nsp: "/admin"}
    let p = decode(&hex(
        "83a47479706500a46461746182a5746f6b656ea3616263a16e01a36e7370a62f61646d696e",
    ))
    .unwrap();
    assert_eq!(p.nsp, "/admin");
    assert_eq!(
        p.body,
        MsgpackBody::Auth(map(&[("token", s("abc")), ("n", Value::from(1))]))
    );
}

#[test]
fn npm_event_with_client_options() {
    // {type: 2, data: ["hello", "world", 1, {a: [true, null]}], options: {compress: true}, nsp: "/"}
    let p = decode(&hex(
        "84a47479706502a46461746194a568656c6c6fa5776f726c640181a16192c3c0a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    ))
    .unwrap();
    assert_eq!(
        (p.kind, p.nsp.as_str(), p.id),
        (PacketType::Event, "/", None)
    );
    assert_eq!(
        p.body,
        MsgpackBody::Event {
            name: "hello".into(),
            args: vec![
                s("world"),
                Value::from(1),
                map(&[("a", Value::Array(vec![Value::Boolean(true), Value::Nil]))]),
            ],
        }
    );
}

#[test]
fn npm_event_with_binary_and_id() {
    // {type: 2, data: ["upload", Buffer [1, 2, 3], 1.5, -7], options: .., id: 12, nsp: "/chat"}
    let p = decode(&hex(
        "85a47479706502a46461746194a675706c6f6164c403010203cb3ff8000000000000f9a76f7074696f6e7381a8636f6d7072657373c3a269640ca36e7370a52f63686174",
    ))
    .unwrap();
    assert_eq!((p.nsp.as_str(), p.id), ("/chat", Some(12)));
    assert_eq!(
        p.body,
        MsgpackBody::Event {
            name: "upload".into(),
            args: vec![
                Value::Binary(vec![1, 2, 3]),
                Value::F64(1.5),
                Value::from(-7)
            ],
        }
    );
}

#[test]
fn npm_browser_array_buffer_is_binary() {
    // {type: 2, data: ["ab", new Uint8Array([1, 2, 3]).buffer], options: .., nsp: "/"}
    let p = decode(&hex(
        "84a47479706502a46461746192a26162c70300010203a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    ))
    .unwrap();
    let MsgpackBody::Event { args, .. } = p.body else {
        panic!()
    };
    assert_eq!(args, [Value::Binary(vec![1, 2, 3])]);
}

#[test]
fn npm_undefined_and_dates_inside_data() {
    // {type: 2, data: ["u", undefined, {a: undefined, b: 1}], options: .., nsp: "/"}
    let p = decode(&hex(
        "84a47479706502a46461746193a175d4000082a161d40000a16201a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    ))
    .unwrap();
    let MsgpackBody::Event { args, .. } = p.body else {
        panic!()
    };
    assert_eq!(
        args,
        [Value::Nil, map(&[("a", Value::Nil), ("b", Value::from(1))])]
    );
    // {type: 2, data: ["d", new Date(0)], ..}: notepack's date stays an extension.
    let p = decode(&hex(
        "84a47479706502a46461746192a164d7000000000000000000a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    ))
    .unwrap();
    let MsgpackBody::Event { args, .. } = p.body else {
        panic!()
    };
    assert_eq!(args, [Value::Ext(0, vec![0; 8])]);
}

#[test]
fn npm_acks() {
    // {type: 3, id: 5, data: ["ok", Buffer [255]], nsp: "/"}
    let p = decode(&hex(
        "84a47479706503a2696405a46461746192a26f6bc401ffa36e7370a12f",
    ))
    .unwrap();
    assert_eq!((p.kind, p.id), (PacketType::Ack, Some(5)));
    assert_eq!(
        p.body,
        MsgpackBody::Ack {
            args: vec![s("ok"), Value::Binary(vec![255])]
        }
    );
    // {type: 3, id: 0, data: [], nsp: "/"}
    let p = decode(&hex("84a47479706503a2696400a46461746190a36e7370a12f")).unwrap();
    assert_eq!((p.id, p.body), (Some(0), MsgpackBody::Ack { args: vec![] }));
}

#[test]
fn npm_disconnect() {
    // {type: 1, nsp: "/chat"}
    let p = decode(&hex("82a47479706501a36e7370a52f63686174")).unwrap();
    assert_eq!(
        (p.kind, p.nsp.as_str(), p.body),
        (PacketType::Disconnect, "/chat", MsgpackBody::None)
    );
    // {type: 1, nsp: "/", data: undefined}
    let p = decode(&hex("83a47479706501a36e7370a12fa464617461d40000")).unwrap();
    assert_eq!(p.body, MsgpackBody::None);
}

#[test]
fn npm_largest_ack_id_and_number_names() {
    // {type: 2, data: ["x"], options: .., id: 9007199254740991, nsp: "/"}
    let p = decode(&hex(
        "85a47479706502a46461746191a178a76f7074696f6e7381a8636f6d7072657373c3a26964cf001fffffffffffffa36e7370a12f",
    ))
    .unwrap();
    assert_eq!(p.id, Some(MAX_ACK_ID));
    // {type: 2, data: [42, "a"], options: .., nsp: "/"}
    let p = decode(&hex(
        "84a47479706502a464617461922aa161a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    ))
    .unwrap();
    assert_eq!(
        p.body,
        MsgpackBody::Event {
            name: "42".into(),
            args: vec![s("a")]
        }
    );
}

#[test]
fn npm_wide_headers() {
    // {type: 2, data: ["big", "x" * 40, [0, 1000, .., 15000], {k0: 0, k1: -100000, .., k15: -1500000}], ..}
    let p = decode(&hex(concat!(
        "84a47479706502a46461746194a3626967d92878787878787878787878787878787878787878787878787878",
        "787878787878787878787878787878dc001000cd03e8cd07d0cd0bb8cd0fa0cd1388cd1770cd1b58cd1f40cd",
        "2328cd2710cd2af8cd2ee0cd32c8cd36b0cd3a98de0010a26b3000a26b31d2fffe7960a26b32d2fffcf2c0a2",
        "6b33d2fffb6c20a26b34d2fff9e580a26b35d2fff85ee0a26b36d2fff6d840a26b37d2fff551a0a26b38d2ff",
        "f3cb00a26b39d2fff24460a36b3130d2fff0bdc0a36b3131d2ffef3720a36b3132d2ffedb080a36b3133d2ff",
        "ec29e0a36b3134d2ffeaa340a36b3135d2ffe91ca0a76f7074696f6e7381a8636f6d7072657373c3a36e7370",
        "a12f",
    )))
    .unwrap();
    let MsgpackBody::Event { name, args } = p.body else {
        panic!()
    };
    assert_eq!(name, "big");
    assert_eq!(args[0], s(&"x".repeat(40)));
    assert_eq!(
        args[1],
        Value::Array((0..16).map(|i| Value::from(i * 1000)).collect())
    );
    let Value::Map(entries) = &args[2] else {
        panic!()
    };
    assert_eq!(entries.len(), 16);
    assert_eq!(entries[15], (s("k15"), Value::from(-1_500_000)));
}

// Our encoder writes byte for byte what the npm encoder writes for the same packet as the
// Node server builds it (hex from socket.io-msgpack-parser 3.0.2).

#[test]
fn connect_bytes_match_npm() {
    // {type: 0, data: {sid: "abc"}, nsp: "/"}
    assert_eq!(
        to_hex(&encode_connect("/", "abc", None)),
        "83a47479706500a46461746181a3736964a3616263a36e7370a12f"
    );
    // {type: 0, data: {sid: "abc", pid: "p1"}, nsp: "/chat"}
    assert_eq!(
        to_hex(&encode_connect("/chat", "abc", Some("p1"))),
        "83a47479706500a46461746182a3736964a3616263a3706964a27031a36e7370a52f63686174"
    );
}

#[test]
fn connect_error_bytes_match_npm() {
    // {type: 4, data: {message: "Invalid namespace"}, nsp: "/nope"}
    assert_eq!(
        to_hex(&encode_connect_error::<()>("/nope", "Invalid namespace", None).unwrap()),
        "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365a36e7370a52f6e6f7065"
    );
    // {type: 4, data: {message: "no", data: {code: 7}}, nsp: "/"}
    let data = serde_json::json!({"code": 7});
    assert_eq!(
        to_hex(&encode_connect_error("/", "no", Some(&data)).unwrap()),
        "83a47479706504a46461746182a76d657373616765a26e6fa46461746181a4636f646507a36e7370a12f"
    );
}

#[test]
fn event_bytes_match_npm() {
    // {type: 2, data: ["news", {hello: "world"}, Buffer [9, 8]], nsp: "/"}
    let args = (
        serde_json::json!({"hello": "world"}),
        Bytes::from_static(&[9, 8]),
    );
    assert_eq!(
        to_hex(&encode_event("/", None, "news", &args).unwrap()),
        "83a47479706502a46461746193a46e65777381a568656c6c6fa5776f726c64c4020908a36e7370a12f"
    );
    // {type: 2, data: ["ask"], id: 3, nsp: "/chat"}
    assert_eq!(
        to_hex(&encode_event("/chat", Some(3), "ask", &()).unwrap()),
        "84a47479706502a46461746191a361736ba2696403a36e7370a52f63686174"
    );
}

#[test]
fn disconnect_and_ack_bytes_match_npm() {
    // {type: 1, nsp: "/"}
    assert_eq!(
        to_hex(&encode_disconnect("/")),
        "82a47479706501a36e7370a12f"
    );
    // {type: 3, data: [1, "two"], id: 7, nsp: "/"}
    assert_eq!(
        to_hex(&encode_ack("/", 7, &(1, "two")).unwrap()),
        "84a47479706503a4646174619201a374776fa2696407a36e7370a12f"
    );
}

#[test]
fn encoders_take_sequences_only() {
    #[derive(serde::Serialize)]
    struct Msg {
        text: &'static str,
    }
    for e in [
        encode_event("/", None, "a", &Msg { text: "x" }).unwrap_err(),
        encode_event("/", None, "a", "text").unwrap_err(),
        encode_event("/", None, "a", &Bytes::from_static(b"x")).unwrap_err(),
        encode_ack("/", 1, &7).unwrap_err(),
    ] {
        assert!(matches!(e, EncodeError::NotASequence), "{e:?}");
    }
    // A struct inside the arguments is a map with its field names.
    let bytes = encode_event("/", None, "m", &(Msg { text: "hi" },)).unwrap();
    let MsgpackBody::Event { args, .. } = decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(args, [map(&[("text", s("hi"))])]);
}

#[test]
fn encoded_packets_decode_to_what_was_sent() {
    let args: Vec<Value> = (0..20)
        .map(|i| match i % 4 {
            0 => Value::from(i),
            1 => Value::Binary(vec![i as u8; 300]),
            2 => s(&"é".repeat(i as usize * 10)),
            _ => map(&[
                ("n", Value::from(-(i as i64) * 70_000)),
                ("f", Value::F64(0.5)),
            ]),
        })
        .collect();
    let bytes = encode_event("/x", Some(MAX_ACK_ID), "ev", &args).unwrap();
    assert_eq!(
        decode(&bytes).unwrap(),
        MsgpackPacket {
            kind: PacketType::Event,
            nsp: "/x".into(),
            id: Some(MAX_ACK_ID),
            body: MsgpackBody::Event {
                name: "ev".into(),
                args: args.clone()
            },
        }
    );
    let bytes = encode_ack("/", 0, &args).unwrap();
    assert_eq!(decode(&bytes).unwrap().body, MsgpackBody::Ack { args });
    let bytes = encode_ack("/", 0, &()).unwrap();
    assert_eq!(
        decode(&bytes).unwrap().body,
        MsgpackBody::Ack { args: vec![] }
    );
}

#[test]
fn packet_type_rules() {
    let with_type = |t: Value| packet(&[("type", t), ("nsp", s("/"))]);
    assert_eq!(
        err(&with_type(Value::from(4))),
        DecodeError::ConnectErrorFromClient
    );
    // The npm decoder accepts types 0..=4 only: no binary types on this wire.
    for t in [
        Value::from(5),
        Value::from(6),
        Value::from(7),
        Value::from(-1),
        s("0"),
        Value::F64(0.0),
        Value::Nil,
    ] {
        assert_eq!(err(&with_type(t.clone())), DecodeError::UnknownType, "{t}");
    }
    assert_eq!(err(&packet(&[("nsp", s("/"))])), DecodeError::UnknownType);
}

#[test]
fn namespace_rules() {
    assert_eq!(
        err(&packet(&[("type", Value::from(1))])),
        DecodeError::BadNamespace
    );
    for nsp in [Value::from(1), Value::Nil, Value::Binary(b"/".to_vec())] {
        let input = packet(&[("type", Value::from(1)), ("nsp", nsp)]);
        assert_eq!(err(&input), DecodeError::BadNamespace);
    }
    // Any string is a namespace, as for the npm decoder; unknown ones fail on lookup.
    let input = packet(&[("type", Value::from(1)), ("nsp", s("chat"))]);
    assert_eq!(decode(&input).unwrap().nsp, "chat");
}

#[test]
fn ack_id_rules() {
    let with_id = |kind: u8, id: Value| {
        packet(&[
            ("type", Value::from(kind)),
            ("nsp", s("/")),
            ("id", id),
            ("data", event(s("a"), vec![])),
        ])
    };
    for id in [
        Value::from(MAX_ACK_ID + 1),
        Value::from(u64::MAX),
        Value::from(-1),
        Value::F64(1.0),
        s("1"),
        Value::Nil,
    ] {
        assert_eq!(err(&with_id(2, id.clone())), DecodeError::BadAckId, "{id}");
    }
    assert_eq!(
        decode(&with_id(3, Value::from(MAX_ACK_ID))).unwrap().id,
        Some(MAX_ACK_ID)
    );
    // Ids only for events and acks, and acks need one.
    let connect = packet(&[
        ("type", Value::from(0)),
        ("nsp", s("/")),
        ("id", Value::from(1)),
    ]);
    assert_eq!(err(&connect), DecodeError::UnexpectedAckId);
    let disconnect = packet(&[
        ("type", Value::from(1)),
        ("nsp", s("/")),
        ("id", Value::from(1)),
    ]);
    assert_eq!(err(&disconnect), DecodeError::UnexpectedAckId);
    let ack = packet(&[
        ("type", Value::from(3)),
        ("nsp", s("/")),
        ("data", Value::Array(vec![])),
    ]);
    assert_eq!(err(&ack), DecodeError::MissingAckId);
}

#[test]
fn data_rules() {
    let with_data = |kind: u8, data: Value| {
        let id = if kind == 3 {
            Value::from(1)
        } else {
            Value::from(0)
        };
        let mut entries = vec![("type", Value::from(kind)), ("nsp", s("/")), ("data", data)];
        if kind >= 2 {
            entries.push(("id", id));
        }
        packet(&entries)
    };
    for (kind, data, expected) in [
        (0, Value::Array(vec![]), DecodeError::BadConnectData),
        (0, Value::Nil, DecodeError::BadConnectData),
        (0, s("token"), DecodeError::BadConnectData),
        (1, Value::Nil, DecodeError::UnexpectedData),
        (1, map(&[]), DecodeError::UnexpectedData),
        (2, Value::Array(vec![]), DecodeError::BadEventData),
        (2, map(&[]), DecodeError::BadEventData),
        (2, Value::Nil, DecodeError::BadEventData),
        (
            2,
            event(Value::Boolean(true), vec![]),
            DecodeError::BadEventName,
        ),
        (2, event(Value::Nil, vec![]), DecodeError::BadEventName),
        (
            2,
            event(Value::Binary(b"a".to_vec()), vec![]),
            DecodeError::BadEventName,
        ),
        (3, map(&[]), DecodeError::BadAckData),
        (3, Value::Nil, DecodeError::BadAckData),
    ] {
        assert_eq!(
            err(&with_data(kind, data.clone())),
            expected,
            "{kind} {data}"
        );
    }
    for kind in [2, 3] {
        let input = packet(&[
            ("type", Value::from(kind)),
            ("nsp", s("/")),
            ("id", Value::from(1)),
        ]);
        assert_eq!(err(&input), DecodeError::MissingData);
    }
    for name in RESERVED_EVENTS {
        assert_eq!(
            err(&with_data(2, event(s(name), vec![Value::from(1)]))),
            DecodeError::ReservedEventName
        );
    }
    for (name, text) in [
        (Value::from(-3), "-3"),
        (Value::F64(1e21), "1e+21"),
        (Value::F32(0.5), "0.5"),
    ] {
        let p = decode(&with_data(2, event(name, vec![]))).unwrap();
        assert_eq!(
            p.body,
            MsgpackBody::Event {
                name: text.into(),
                args: vec![]
            }
        );
    }
}

#[test]
fn strings_are_read_as_node_reads_them() {
    // A str holding invalid UTF-8 reads with U+FFFD, like Buffer.toString("utf8").
    let mut input = packet(&[
        ("type", Value::from(2)),
        ("nsp", s("/")),
        ("data", event(s("ab"), vec![])),
    ]);
    let at = input.windows(3).position(|w| w == b"\xa2ab").unwrap();
    input[at + 1] = 0xff;
    let p = decode(&input).unwrap();
    assert_eq!(
        p.body,
        MsgpackBody::Event {
            name: "\u{fffd}b".into(),
            args: vec![]
        }
    );
}

#[test]
fn malformed_messages() {
    assert_eq!(err(&[]), DecodeError::Empty);
    let good = packet(&[("type", Value::from(1)), ("nsp", s("/"))]);
    decode(&good).unwrap();
    // Truncated anywhere, or followed by anything.
    for end in 1..good.len() {
        assert_eq!(err(&good[..end]), DecodeError::InvalidMsgpack, "{end}");
    }
    let mut trailing = good.clone();
    trailing.push(0xc0);
    assert_eq!(err(&trailing), DecodeError::InvalidMsgpack);
    // The reserved marker, anywhere.
    assert_eq!(err(&[0xc1]), DecodeError::InvalidMsgpack);
    let mut input = packet(&[
        ("type", Value::from(2)),
        ("nsp", s("/")),
        ("data", event(s("a"), vec![Value::Nil])),
    ]);
    *input.last_mut().unwrap() = 0xc1;
    assert_eq!(err(&input), DecodeError::InvalidMsgpack);
    // Well-formed but no map.
    assert_eq!(
        err(&write(&Value::Array(vec![Value::from(2)]))),
        DecodeError::BadPacketMap
    );
    assert_eq!(err(&[0x02]), DecodeError::BadPacketMap);
    assert_eq!(err(&[0x02, 0x02]), DecodeError::InvalidMsgpack);
    // Lengths that lie: no large allocation, just an error.
    let mut input = hex("83a47479706502a36e7370a12fa464617461");
    input.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(err(&input), DecodeError::InvalidMsgpack);
    let mut input = hex("83a47479706502a36e7370a12fa464617461");
    input.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc6, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(err(&input), DecodeError::InvalidMsgpack);
}

#[test]
fn keys_named_twice_and_unknown_keys() {
    let mut twice = vec![0x83];
    twice.extend(write(&s("type")));
    twice.push(1);
    twice.extend(write(&s("nsp")));
    twice.extend(write(&s("/")));
    twice.extend(write(&s("type")));
    twice.push(2);
    assert_eq!(err(&twice), DecodeError::BadPacketMap);
    // Unknown keys, string or not, are skipped like the client's `options`.
    let input = write(&Value::Map(vec![
        (s("type"), Value::from(1)),
        (Value::from(7), map(&[("x", Value::Nil)])),
        (s("nsp"), s("/")),
        (s("extra"), Value::Array(vec![Value::from(1)])),
    ]));
    assert_eq!(decode(&input).unwrap().kind, PacketType::Disconnect);
}

#[test]
fn nesting_limit() {
    let with_arg = |arg: Value| {
        packet(&[
            ("type", Value::from(2)),
            ("nsp", s("/")),
            ("data", event(s("a"), vec![arg])),
        ])
    };
    // As in the JSON parser, the data array is the first of MAX_DEPTH levels.
    decode(&with_arg(nested(MAX_DEPTH - 2))).unwrap();
    assert_eq!(err(&with_arg(nested(MAX_DEPTH - 1))), DecodeError::TooDeep);
    // Hostile input never recurses far.
    let mut input = hex("83a47479706502a36e7370a12fa464617461");
    input.extend(std::iter::repeat_n(0x91, 100_000));
    input.push(0x90);
    assert_eq!(err(&input), DecodeError::TooDeep);
    let mut input = hex("83a47479706500a36e7370a12fa464617461");
    input.extend(std::iter::repeat_n([0x81, 0xa1, b'a'], 100_000).flatten());
    input.push(0x80);
    assert_eq!(err(&input), DecodeError::TooDeep);
}
