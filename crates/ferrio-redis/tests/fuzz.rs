//! Property-based fuzzing of the wire decoders (runs on stable): arbitrary bytes, mutated
//! fixtures and known-hostile inputs either decode or are refused with an error, never a
//! panic; generated messages of every type round-trip. The number of cases is
//! `PROPTEST_CASES` (proptest's default of 256 in a plain `cargo test`).

use std::path::Path;

use ferrio::adapter::{BroadcastFlags, BroadcastOptions, Room};
use ferrio_redis::wire::{
    BroadcastMessage, Channels, DecodeError, Limits, Request, RequestType, Response, WirePacket,
    parse_channel,
};
use proptest::prelude::*;
use rmpv::Value;

/// Every decoder on one input; none may panic, errors must render.
fn decode_everything(bytes: &[u8]) {
    let limits = Limits::default();
    let errors = [
        BroadcastMessage::decode(bytes, &limits).err(),
        Request::decode(bytes, &limits).err(),
        Response::decode(bytes, &limits, |_| Some(RequestType::Sockets)).err(),
        Response::decode(bytes, &limits, |_| Some(RequestType::AllRooms)).err(),
        Response::decode(bytes, &limits, |_| Some(RequestType::RemoteFetch)).err(),
        Response::decode(bytes, &limits, |_| None).err(),
    ];
    for err in errors.into_iter().flatten() {
        assert!(!err.to_string().is_empty());
    }
    let _ = Channels::new("socket.io", "/").received_on(bytes);
    let _ = parse_channel("socket.io", bytes);
}

fn fixture_bytes() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .map(|path| std::fs::read(path).unwrap())
        .collect();
    out.sort();
    out
}

/// Bytes biased towards msgpack markers and JSON punctuation.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => prop::sample::select(
            b"\x90\x91\x93\x80\x81\x83\xa0\xa3\xc0\xc2\xc3\xc4\xd9\xdc\xdd\xde\xdf\xcb\xcc\xcf\xd4{}[]\":,0129typerequestIduid".to_vec()
        ),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..96)
}

fn room() -> impl Strategy<Value = Room> {
    "[a-zA-Z0-9#/_-]{1,12}".prop_map(Room::from)
}

fn opts(with_flags: bool) -> impl Strategy<Value = BroadcastOptions> {
    let rooms = || prop::collection::vec(room(), 0..4);
    (
        rooms(),
        rooms(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            move |(rooms, except, local, volatile, timeout)| BroadcastOptions {
                rooms,
                except,
                flags: if with_flags {
                    BroadcastFlags {
                        local,
                        volatile,
                        timeout,
                    }
                } else {
                    BroadcastFlags::default()
                },
            },
        )
}

fn msgpack_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::F64),
        "\\PC{0,12}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{0,6}".prop_map(Value::from), inner), 0..4)
                .prop_map(Value::Map),
        ]
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn packet() -> impl Strategy<Value = WirePacket> {
    (
        "/[a-z]{0,6}",
        "[a-z]{1,8}",
        prop::collection::vec(msgpack_value(), 0..4),
    )
        .prop_map(|(nsp, event, args)| WirePacket::event(&nsp, &event, args))
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{6}"
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (id(), id(), prop::collection::vec(room(), 0..3)).prop_map(|(uid, request_id, rooms)| {
            Request::Sockets {
                uid,
                request_id,
                rooms,
            }
        }),
        (id(), id()).prop_map(|(uid, request_id)| Request::AllRooms { uid, request_id }),
        (
            prop::option::of(id()),
            opts(false),
            prop::collection::vec(room(), 0..3)
        )
            .prop_map(|(uid, opts, rooms)| Request::RemoteJoin { uid, opts, rooms }),
        (
            prop::option::of(id()),
            opts(false),
            prop::collection::vec(room(), 0..3)
        )
            .prop_map(|(uid, opts, rooms)| Request::RemoteLeave { uid, opts, rooms }),
        (prop::option::of(id()), opts(false), any::<bool>())
            .prop_map(|(uid, opts, close)| Request::RemoteDisconnect { uid, opts, close }),
        (id(), id(), opts(false)).prop_map(|(uid, request_id, opts)| Request::RemoteFetch {
            uid,
            request_id,
            opts
        }),
        (
            prop::option::of(id()),
            prop::option::of(id()),
            prop::collection::vec(json_value(), 1..4)
        )
            .prop_map(|(uid, request_id, data)| Request::ServerSideEmit {
                uid,
                request_id,
                data
            }),
        (id(), id(), packet(), opts(true)).prop_map(|(uid, request_id, packet, opts)| {
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            }
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (id(), prop::collection::vec("[A-Za-z0-9_-]{20}", 0..3)).prop_map(
            |(request_id, sockets)| Response::Sockets {
                request_id,
                sockets
            }
        ),
        (id(), prop::collection::vec(room(), 0..3))
            .prop_map(|(request_id, rooms)| Response::AllRooms { request_id, rooms }),
        id().prop_map(|request_id| Response::RemoteFetch {
            request_id,
            sockets: Vec::new()
        }),
        (id(), json_value())
            .prop_map(|(request_id, data)| Response::ServerSideEmit { request_id, data }),
        (id(), any::<u64>()).prop_map(|(request_id, client_count)| {
            Response::BroadcastClientCount {
                request_id,
                client_count,
            }
        }),
        (id(), msgpack_value())
            .prop_map(|(request_id, packet)| Response::BroadcastAck { request_id, packet }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in wire_bytes()) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let fixtures = fixture_bytes();
        let mut bytes = pick.get(&fixtures).clone();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        decode_everything(&bytes);
        // Every truncation of a valid message is refused or decodes, never panics.
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_everything(&bytes);
    }

    #[test]
    fn broadcasts_round_trip(uid in id(), packet in packet(), opts in opts(true)) {
        let message = BroadcastMessage { uid, packet, opts };
        prop_assert_eq!(BroadcastMessage::decode(&message.encode(), &Limits::default()).unwrap(), message);
    }

    #[test]
    fn requests_round_trip(request in request()) {
        let bytes = request.encode();
        prop_assert_eq!(bytes.first() == Some(&b'{'), !matches!(request, Request::Broadcast { .. }));
        prop_assert_eq!(Request::decode(&bytes, &Limits::default()).unwrap(), request);
    }

    #[test]
    fn responses_round_trip(response in response()) {
        let kind = response.request_type();
        let bytes = response.encode();
        let decoded = Response::decode(&bytes, &Limits::default(), |_| Some(kind)).unwrap();
        prop_assert_eq!(decoded, response);
    }
}

fn limits_error(bytes: &[u8]) -> DecodeError {
    let limits = Limits::default();
    let broadcast = BroadcastMessage::decode(bytes, &limits).expect_err("refused");
    let _ = Request::decode(bytes, &limits).expect_err("refused");
    let _ = Response::decode(bytes, &limits, |_| Some(RequestType::AllRooms)).expect_err("refused");
    broadcast
}

#[test]
fn hostile_inputs_are_refused() {
    // A 4 G element array and map, and a 4 GB string, claimed in a few bytes.
    for claim in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdf, 0xff, 0xff, 0xff, 0xff],
        &[0xdb, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(matches!(limits_error(claim), DecodeError::Msgpack(_)));
    }
    // 100 000 nested arrays, msgpack and JSON.
    assert!(matches!(
        limits_error(&[0x91; 100_000]),
        DecodeError::TooLarge { .. } | DecodeError::TooDeep { .. }
    ));
    assert!(matches!(
        limits_error(&[0x91; 1_000]),
        DecodeError::TooDeep { .. }
    ));
    let json = format!("{{\"a\":{}{}}}", "[".repeat(1_000), "]".repeat(1_000));
    assert!(matches!(
        Request::decode(json.as_bytes(), &Limits::default()),
        Err(DecodeError::TooDeep { .. })
    ));
    // A 5 MB string.
    let mut big = vec![0xdb, 0x00, 0x50, 0x00, 0x00];
    big.resize(5 + 0x50_0000, b'x');
    assert!(matches!(limits_error(&big), DecodeError::TooLarge { .. }));
    // Wrong field types in JSON requests and responses.
    for json in [
        r#"{"uid":1,"requestId":"a","type":1}"#,
        r#"{"uid":"u","type":2,"opts":{"rooms":"r","except":[]},"rooms":[]}"#,
        r#"{"uid":"u","type":4,"opts":{"rooms":[],"except":[]},"close":"yes"}"#,
        r#"{"uid":"u","requestId":"a","type":5,"opts":[]}"#,
        r#"{"uid":"u","type":6,"data":"ping"}"#,
        r#"{"uid":"u","type":"6","data":[]}"#,
        r#"{"uid":"u","type":10}"#,
        r#"{"uid":"u","type":-1}"#,
        r#"{"uid":"u","type":2.5}"#,
    ] {
        assert!(
            Request::decode(json.as_bytes(), &Limits::default()).is_err(),
            "{json}"
        );
    }
    for json in [
        r#"{"requestId":"a","type":8,"clientCount":-1}"#,
        r#"{"requestId":5,"rooms":[]}"#,
        r#"{"requestId":"a","rooms":{}}"#,
        r#"{"requestId":"a","sockets":[{"id":"short"}]}"#,
    ] {
        let pending = |_: &str| Some(RequestType::RemoteFetch);
        assert!(
            Response::decode(json.as_bytes(), &Limits::default(), pending).is_err(),
            "{json}"
        );
    }
}

#[test]
fn json_shaped_requests_are_accepted_as_msgpack_too() {
    // The Node adapter picks the decoder by the first byte, not by the type.
    let request = Request::AllRooms {
        uid: "u".into(),
        request_id: "r".into(),
    };
    let msgpack = Value::Map(vec![
        (Value::from("uid"), Value::from("u")),
        (Value::from("requestId"), Value::from("r")),
        (Value::from("type"), Value::from(1)),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &msgpack).unwrap();
    assert_eq!(
        Request::decode(&bytes, &Limits::default()).unwrap(),
        request
    );
}
