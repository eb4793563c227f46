//! Property-based fuzzing of the Engine.IO and Socket.IO decoders (runs on stable).
//!
//! Every input either decodes or is refused with an error; nothing panics, and what decodes
//! encodes back to an equivalent form. The number of cases is `PROPTEST_CASES` (proptest's
//! default of 256 in a plain `cargo test`; `scripts/test.sh` runs many more).

use ferrio_protocol::engine::{self, DecodeError, Packet};
use proptest::prelude::*;

/// Bytes biased towards the protocol's own alphabet, so the fuzzer reaches deep branches.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"0123456b\x1e=+/AQIDBAprobe".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..64)
}

fn packet() -> impl Strategy<Value = Packet<'static>> {
    // Text data must not contain the separator, which is how payloads frame packets.
    let text = "[^\x1e]{0,24}".prop_map(|s| &*Box::leak(s.into_boxed_str()));
    prop_oneof![
        Just(Packet::Close),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
        text.clone().prop_map(Packet::Ping),
        text.clone().prop_map(Packet::Pong),
        text.clone().prop_map(Packet::Message),
        text.prop_map(Packet::Open),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Packet::Binary),
    ]
}

proptest! {
    #[test]
    fn decode_packet_never_panics_and_round_trips(text in "\\PC{0,40}") {
        if let Ok(packet) = engine::decode_packet(&text) {
            prop_assert_eq!(engine::encode_packet(&packet), text);
        }
    }

    #[test]
    fn decode_payload_never_panics(body in wire_bytes()) {
        let mut decoded = Vec::new();
        for item in engine::decode_payload(&body) {
            match item {
                Ok(packet) => decoded.push(packet),
                Err(err) => {
                    // Errors name a real rule and render without panicking.
                    prop_assert!(!err.to_string().is_empty());
                    break;
                }
            }
        }
        // Never more packets than separators allow.
        let separators = body.iter().filter(|&&b| b == engine::SEPARATOR).count();
        prop_assert!(decoded.len() <= separators + 1);
    }

    #[test]
    fn decode_payload_of_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = engine::decode_payload(&body).collect::<Result<Vec<_>, DecodeError>>();
    }

    #[test]
    fn encoded_payloads_decode_to_the_same_packets(packets in prop::collection::vec(packet(), 1..8)) {
        let mut body = String::new();
        for p in &packets {
            engine::encode_payload_packet(&mut body, p);
        }
        let decoded = engine::decode_payload(body.as_bytes()).collect::<Result<Vec<_>, _>>();
        prop_assert_eq!(decoded, Ok(packets));
    }
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: the JSON parser's decoder and encoders.

mod socketio_json {
    use bytes::Bytes;
    use ferrio_protocol::socketio::{
        self, Body, DecodeError, MAX_ACK_ID, MAX_ATTACHMENTS, PacketType, RESERVED_EVENTS,
        TextPacket,
    };
    use proptest::prelude::*;
    use rmpv::Value;
    use serde_json::value::RawValue;

    /// Text biased towards the parser's own alphabet, so the fuzzer reaches deep branches.
    fn json_ish(max: usize) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            6 => prop::sample::select(
                &[
                    "0", "1", "2", "3", "4", "5", "6", "9", "-", "/", ",", "[", "]", "{", "}",
                    "\"", ":", "\\", " ", ".", "e", "true", "false", "null", "\"a\"",
                    "\"_placeholder\"", "\"num\"", "\"connect\"", "\\u0041",
                    "{\"_placeholder\":true,\"num\":0}",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
    }

    /// Mostly valid JSON in the shapes packets carry: placeholders (good and bad), reserved
    /// names, escapes, nesting.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(
            &[
                "null",
                "true",
                "0",
                "7",
                "-1.5e3",
                "1e999",
                "\"a\"",
                "\"connect\"",
                "\"\\u0041\\\"\"",
                "\"é\"",
                "{}",
                "[]",
                "{\"_placeholder\":true,\"num\":0}",
                "{\"_placeholder\":true,\"num\":1}",
                "{\"num\":0,\"_placeholder\":true}",
                "{\"_placeholder\":false,\"num\":0}",
                "{\"_placeholder\":true,\"num\":0.0}",
                "{\"_placeholder\":true,\"num\":0,\"x\":1}",
            ][..],
        )
        .prop_map(str::to_owned);
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (
                        prop::sample::select(&["a", "num", "_placeholder", ""][..]),
                        inner
                    ),
                    0..3
                )
                .prop_map(|kv| {
                    let kv: Vec<_> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", kv.join(","))
                }),
            ]
        })
    }

    /// Data: mostly an array of arguments, sometimes mutated by one character.
    fn data_text() -> impl Strategy<Value = String> {
        let name = prop::sample::select(&["\"a\"", "\"connect\"", "\"\"", "1", "\"\\u00e9\""][..]);
        let data = prop_oneof![
            4 => prop::collection::vec(json_text(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            4 => (name, prop::collection::vec(json_text(), 0..4))
                .prop_map(|(name, v)| format!("[{name}{}]", v.iter().map(|a| format!(",{a}")).collect::<String>())),
            1 => json_text(),
            1 => json_ish(16),
            1 => Just(String::new()),
        ];
        let mutation = prop::option::weighted(
            0.3,
            (
                any::<prop::sample::Index>(),
                any::<bool>(),
                prop::sample::select(&['[', ']', '{', '}', '"', ',', '\\', ':', '0', 'x'][..]),
            ),
        );
        (data, mutation).prop_map(|(mut data, mutation)| {
            if let Some((at, insert, c)) = mutation {
                let boundaries: Vec<usize> = (0..=data.len())
                    .filter(|&i| data.is_char_boundary(i))
                    .collect();
                let at = boundaries[at.index(boundaries.len())];
                if insert {
                    data.insert(at, c);
                } else if at < data.len() {
                    data.remove(at);
                }
            }
            data
        })
    }

    /// Packets that mostly get past the header, to exercise the data rules.
    fn packet_text() -> impl Strategy<Value = String> {
        let header = prop::sample::select(
            &[
                "0", "1", "2", "2", "3", "4", "5", "6", "51-", "52-", "510-", "511-", "61-", "62-",
                "7",
            ][..],
        );
        let nsp = prop::sample::select(&["", "", "/", "/chat,", "/,", "/a/b,"][..]);
        let id = prop_oneof![
            Just(String::new()),
            (0u64..1000).prop_map(|n| n.to_string())
        ];
        (header, nsp, id, data_text()).prop_map(|(h, n, i, body)| format!("{h}{n}{i}{body}"))
    }

    /// Checks everything a decoded packet promises.
    fn check_invariants(input: &str, packet: &TextPacket<'_>) -> Result<(), TestCaseError> {
        prop_assert_ne!(packet.kind, PacketType::ConnectError);
        prop_assert!(packet.nsp.starts_with('/') && !packet.nsp.contains(','));
        prop_assert!(packet.id.is_none_or(|id| id <= MAX_ACK_ID));
        let binary = matches!(packet.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
        prop_assert_eq!(binary, (1..=MAX_ATTACHMENTS).contains(&packet.attachments));
        prop_assert!(binary || packet.attachments == 0);
        let ranges = match &packet.body {
            Body::None => {
                prop_assert!(matches!(
                    packet.kind,
                    PacketType::Connect | PacketType::Disconnect
                ));
                vec![]
            }
            Body::Auth(range) => {
                prop_assert_eq!(packet.kind, PacketType::Connect);
                prop_assert!(input[range.clone()].starts_with('{'), "auth is an object");
                vec![range.clone()]
            }
            Body::Event { name, args, .. } => {
                prop_assert!(!RESERVED_EVENTS.contains(&&**name));
                args.to_vec()
            }
            Body::Ack { args, .. } => {
                prop_assert!(packet.id.is_some());
                args.to_vec()
            }
        };
        for range in ranges {
            let text = input.get(range);
            prop_assert!(text.is_some(), "range off a char boundary");
            prop_assert!(serde_json::from_str::<&RawValue>(text.unwrap_or("")).is_ok());
        }
        Ok(())
    }

    /// Values the JSON parser carries unchanged: no F32 (JSON has one float type), string keys,
    /// finite floats.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::F64),
            "\\PC{0,8}".prop_map(Value::from),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("[a-z_]{0,6}".prop_map(Value::from), inner), 0..5)
                    .prop_map(Value::Map),
            ]
        })
    }

    /// Equality, with floats compared as serde_json's default (best-effort, not
    /// `float_roundtrip`) parsing allows: a few units in the last place, more for subnormals.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::F64(x), Value::F64(y)) => {
                x == y || (x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= 64)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
            }
            _ => a == b,
        }
    }

    /// The arguments as values, as the server reads them: placeholders resolved in binary
    /// packets, plain data in others. `None` for numbers out of f64's range (`1e999`), which
    /// the decoder checks for syntax only.
    fn try_resolve(
        text: &str,
        args: &[std::ops::Range<usize>],
        attachments: &[Bytes],
    ) -> Option<Vec<Value>> {
        args.iter()
            .map(|r| {
                let raw = &text[r.clone()];
                if attachments.is_empty() {
                    serde_json::from_str(raw).ok()
                } else {
                    socketio::resolve_placeholders(raw, attachments).ok()
                }
            })
            .collect()
    }

    fn resolve(text: &str, args: &[std::ops::Range<usize>], attachments: &[Bytes]) -> Vec<Value> {
        try_resolve(text, args, attachments).expect("arguments resolve")
    }

    proptest! {
        #[test]
        fn decode_text_never_panics(input in json_ish(40)) {
            if let Ok(packet) = socketio::decode_text(&input) {
                check_invariants(&input, &packet)?;
            }
        }

        #[test]
        fn decode_text_of_any_text_never_panics(input in "\\PC{0,64}") {
            if let Ok(packet) = socketio::decode_text(&input) {
                check_invariants(&input, &packet)?;
            }
        }

        #[test]
        fn decoded_packets_keep_their_promises(input in packet_text()) {
            match socketio::decode_text(&input) {
                Ok(packet) => check_invariants(&input, &packet)?,
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        /// Raw arguments re-emitted as `&RawValue`s decode to the same texts.
        #[test]
        fn raw_arguments_reencode_verbatim(input in packet_text()) {
            let Ok(packet) = socketio::decode_text(&input) else { return Ok(()) };
            let raw = |args: &[std::ops::Range<usize>]| -> Vec<&RawValue> {
                args.iter().map(|r| serde_json::from_str(&input[r.clone()]).unwrap()).collect()
            };
            let mut out = String::from("4");
            match &packet.body {
                Body::Event { name, args, .. } => {
                    let attachments =
                        socketio::encode_event(&mut out, packet.nsp, packet.id, name, &raw(args)).unwrap();
                    prop_assert!(attachments.is_empty());
                    let again = socketio::decode_text(&out[1..]).unwrap();
                    prop_assert_eq!((again.nsp, again.id), (packet.nsp, packet.id));
                    let Body::Event { name: name2, args: args2, .. } = again.body else {
                        return Err(TestCaseError::fail("not an event"));
                    };
                    prop_assert_eq!(&name2, name);
                    let texts: Vec<_> = args.iter().map(|r| &input[r.clone()]).collect();
                    let texts2: Vec<_> = args2.iter().map(|r| &out[1..][r.clone()]).collect();
                    prop_assert_eq!(texts, texts2);
                }
                Body::Ack { args, .. } => {
                    let id = packet.id.unwrap();
                    socketio::encode_ack(&mut out, packet.nsp, id, &raw(args)).unwrap();
                    let again = socketio::decode_text(&out[1..]).unwrap();
                    prop_assert_eq!((again.nsp, again.id), (packet.nsp, packet.id));
                    let Body::Ack { args: args2, .. } = again.body else {
                        return Err(TestCaseError::fail("not an ack"));
                    };
                    let texts: Vec<_> = args.iter().map(|r| &input[r.clone()]).collect();
                    let texts2: Vec<_> = args2.iter().map(|r| &out[1..][r.clone()]).collect();
                    prop_assert_eq!(texts, texts2);
                }
                Body::None | Body::Auth(_) => {}
            }
        }

        /// Decoded binary packets, their placeholders resolved and the values encoded again,
        /// resolve to the same values.
        #[test]
        fn resolved_values_reencode_to_the_same_values(input in packet_text()) {
            let Ok(packet) = socketio::decode_text(&input) else { return Ok(()) };
            let attachments: Vec<Bytes> =
                (0..packet.attachments).map(|i| Bytes::from(vec![i as u8; i])).collect();
            let (Body::Event { args, .. } | Body::Ack { args, .. }) = &packet.body else {
                return Ok(());
            };
            let Some(values) = try_resolve(&input, args, &attachments) else { return Ok(()) };
            let mut out = String::new();
            let attachments2 = match &packet.body {
                Body::Event { name, .. } =>
                    socketio::encode_event(&mut out, packet.nsp, packet.id, name, &values).unwrap(),
                _ => socketio::encode_ack(&mut out, packet.nsp, packet.id.unwrap(), &values).unwrap(),
            };
            let again = socketio::decode_text(&out).unwrap();
            let (Body::Event { args: args2, .. } | Body::Ack { args: args2, .. }) = &again.body else {
                return Err(TestCaseError::fail("not an event or ack"));
            };
            let values2 = resolve(&out, args2, &attachments2);
            prop_assert_eq!(values.len(), values2.len());
            for (a, b) in values.iter().zip(&values2) {
                prop_assert!(same(a, b), "{a} != {b}");
            }
        }

        #[test]
        fn resolve_placeholders_never_panics(json in json_ish(40), n in 0usize..3) {
            let attachments: Vec<Bytes> = (0..n).map(|i| Bytes::from(vec![i as u8])).collect();
            let _ = socketio::resolve_placeholders(&json, &attachments);
        }

        #[test]
        fn encoded_events_decode_to_the_same_values(
            nsp in prop_oneof![Just("/".to_owned()), "/[a-z0-9/]{0,8}"],
            id in prop::option::of(0..=MAX_ACK_ID),
            name in "\\PC{0,10}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str())),
            args in prop::collection::vec(json_value(), 0..5),
        ) {
            let mut out = String::from("4");
            let attachments = socketio::encode_event(&mut out, &nsp, id, &name, &args).unwrap();
            if attachments.len() > MAX_ATTACHMENTS {
                // Fine to send, too many to receive.
                prop_assert_eq!(socketio::decode_text(&out[1..]), Err(DecodeError::BadAttachments));
                return Ok(());
            }
            let packet = socketio::decode_text(&out[1..]).unwrap();
            let kind = if attachments.is_empty() { PacketType::Event } else { PacketType::BinaryEvent };
            prop_assert_eq!((packet.kind, packet.nsp, packet.id, packet.attachments), (kind, &*nsp, id, attachments.len()));
            let Body::Event { name: name2, args: ranges, .. } = &packet.body else {
                return Err(TestCaseError::fail("not an event"));
            };
            prop_assert_eq!(name2, &name);
            let values = resolve(&out[1..], ranges, &attachments);
            prop_assert_eq!(values.len(), args.len());
            for (a, b) in args.iter().zip(&values) {
                prop_assert!(same(a, b), "{a} != {b}");
            }
        }

        #[test]
        fn encoded_acks_decode_to_the_same_values(
            id in 0..=MAX_ACK_ID,
            args in prop::collection::vec(json_value(), 0..5),
        ) {
            let mut out = String::new();
            let attachments = socketio::encode_ack(&mut out, "/a", id, &args).unwrap();
            if attachments.len() > MAX_ATTACHMENTS {
                prop_assert_eq!(socketio::decode_text(&out), Err(DecodeError::BadAttachments));
                return Ok(());
            }
            let packet = socketio::decode_text(&out).unwrap();
            prop_assert_eq!(packet.id, Some(id));
            let Body::Ack { args: ranges, .. } = &packet.body else {
                return Err(TestCaseError::fail("not an ack"));
            };
            let values = resolve(&out, ranges, &attachments);
            prop_assert_eq!(values.len(), args.len());
            for (a, b) in args.iter().zip(&values) {
                prop_assert!(same(a, b), "{a} != {b}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: the msgpack parser.

#[cfg(feature = "msgpack")]
mod socketio_msgpack {
    use ferrio_protocol::msgpack::{self, MsgpackBody, MsgpackPacket};
    use ferrio_protocol::socketio::{MAX_ACK_ID, PacketType, RESERVED_EVENTS};
    use proptest::prelude::*;
    use rmpv::Value;

    /// Bytes biased towards packet maps: markers, the four keys, notepack's extensions.
    fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            6 => prop::sample::select(
                vec![
                    &b"\x82"[..], b"\x83", b"\x84", b"\xa4type", b"\xa3nsp", b"\xa1/", b"\xa4data",
                    b"\xa2id", b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x90",
                    b"\x91", b"\x92", b"\xa1a", b"\xa7connect", b"\xd4\x00\x00", b"\xc7\x01\x00",
                    b"\xc4\x01", b"\xc0", b"\xc1", b"\xdc\x00", b"\xdd\xff", b"\xde", b"\xcb",
                    b"\xcf\x00\x20", b"\xff", b"\x81",
                ]
            )
            .prop_map(<[u8]>::to_vec),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(Value::F64),
            any::<f32>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(Value::F32),
            "\\PC{0,8}".prop_map(Value::from),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
            // Type 0 is notepack's: undefined, ArrayBuffer or Date.
            (1i8..=127, prop::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(t, d)| Value::Ext(t, d)),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((inner.clone(), inner), 0..5).prop_map(Value::Map),
            ]
        })
    }

    /// Packet maps of every shape (good and bad fields), sometimes with one byte changed,
    /// inserted or removed, or cut short.
    fn packet_bytes() -> impl Strategy<Value = Vec<u8>> {
        let kind = prop_oneof![(0u8..=7).prop_map(Value::from), Just(Value::from("2"))];
        let nsp = prop_oneof![4 => Just(Value::from("/")), 1 => Just(Value::from("/chat")), 1 => Just(Value::from(1))];
        let name = prop_oneof![
            prop::sample::select(&["a", "connect", ""][..]).prop_map(Value::from),
            Just(Value::from(1)),
            Just(Value::Nil),
        ];
        let data = prop_oneof![
            4 => (name, prop::collection::vec(value(), 0..3)).prop_map(|(name, mut args)| {
                args.insert(0, name);
                Value::Array(args)
            }),
            1 => prop::collection::vec(value(), 0..3).prop_map(Value::Array),
            1 => value(),
        ];
        let id = prop_oneof![
            4 => (0u64..100).prop_map(Value::from),
            1 => Just(Value::from(-1)),
            1 => Just(Value::F64(1.0)),
        ];
        let mutation =
            prop::option::weighted(0.3, (any::<prop::sample::Index>(), 0u8..4, any::<u8>()));
        (
            kind,
            nsp,
            prop::option::weighted(0.8, data),
            prop::option::of(id),
            mutation,
        )
            .prop_map(|(kind, nsp, data, id, mutation)| {
                let mut entries = vec![(Value::from("type"), kind), (Value::from("nsp"), nsp)];
                entries.extend(data.map(|d| (Value::from("data"), d)));
                entries.extend(id.map(|id| (Value::from("id"), id)));
                let mut bytes = Vec::new();
                rmpv::encode::write_value(&mut bytes, &Value::Map(entries)).unwrap();
                if let Some((at, op, byte)) = mutation {
                    let at = at.index(bytes.len());
                    match op {
                        0 => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        2 => drop(bytes.remove(at)),
                        _ => bytes.truncate(at),
                    }
                }
                bytes
            })
    }

    fn check_invariants(packet: &MsgpackPacket) -> Result<(), TestCaseError> {
        prop_assert!(matches!(
            packet.kind,
            PacketType::Connect | PacketType::Disconnect | PacketType::Event | PacketType::Ack
        ));
        prop_assert!(packet.id.is_none_or(|id| id <= MAX_ACK_ID));
        match &packet.body {
            MsgpackBody::None => {
                prop_assert!(packet.kind != PacketType::Event && packet.kind != PacketType::Ack)
            }
            MsgpackBody::Auth(auth) => prop_assert!(matches!(auth, Value::Map(_))),
            MsgpackBody::Event { name, .. } => {
                prop_assert!(!RESERVED_EVENTS.contains(&name.as_str()))
            }
            MsgpackBody::Ack { .. } => prop_assert!(packet.id.is_some()),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn decode_never_panics(input in wire_bytes()) {
            match msgpack::decode(&input) {
                Ok(packet) => check_invariants(&packet)?,
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn decode_of_arbitrary_bytes_never_panics(input in prop::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = msgpack::decode(&input) {
                check_invariants(&packet)?;
            }
        }

        /// Any msgpack value at all, as a packet's data, decodes or is refused without a panic.
        #[test]
        fn any_data_never_panics(kind in 0u8..8, data in value(), id in prop::option::of(value())) {
            let mut entries = vec![
                (Value::from("type"), Value::from(kind)),
                (Value::from("nsp"), Value::from("/")),
                (Value::from("data"), data),
            ];
            if let Some(id) = id {
                entries.push((Value::from("id"), id));
            }
            let mut input = Vec::new();
            rmpv::encode::write_value(&mut input, &Value::Map(entries)).unwrap();
            if let Ok(packet) = msgpack::decode(&input) {
                check_invariants(&packet)?;
            }
        }

        #[test]
        fn encoded_events_decode_to_the_same_packet(
            nsp in "\\PC{0,8}",
            id in prop::option::of(0..=MAX_ACK_ID),
            name in "\\PC{0,10}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str())),
            args in prop::collection::vec(value(), 0..5),
        ) {
            let bytes = msgpack::encode_event(&nsp, id, &name, &args).unwrap();
            let packet = msgpack::decode(&bytes).unwrap();
            prop_assert_eq!(packet, MsgpackPacket {
                kind: PacketType::Event,
                nsp,
                id,
                body: MsgpackBody::Event { name, args },
            });
        }

        #[test]
        fn encoded_acks_decode_to_the_same_packet(
            id in 0..=MAX_ACK_ID,
            args in prop::collection::vec(value(), 0..5),
        ) {
            let bytes = msgpack::encode_ack("/", id, &args).unwrap();
            let packet = msgpack::decode(&bytes).unwrap();
            prop_assert_eq!(packet.id, Some(id));
            prop_assert_eq!(packet.body, MsgpackBody::Ack { args });
        }

        #[test]
        fn decode_of_near_packets_never_panics(input in packet_bytes()) {
            match msgpack::decode(&input) {
                Ok(packet) => check_invariants(&packet)?,
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        /// What decodes, encoded again, decodes to the same packet.
        #[test]
        fn decoded_packets_reencode(input in prop_oneof![wire_bytes(), packet_bytes()]) {
            let Ok(packet) = msgpack::decode(&input) else { return Ok(()) };
            let bytes = match &packet.body {
                MsgpackBody::Event { name, args, .. } =>
                    msgpack::encode_event(&packet.nsp, packet.id, name, args).unwrap(),
                MsgpackBody::Ack { args, .. } =>
                    msgpack::encode_ack(&packet.nsp, packet.id.unwrap(), args).unwrap(),
                MsgpackBody::None if packet.kind == PacketType::Disconnect =>
                    msgpack::encode_disconnect(&packet.nsp),
                _ => return Ok(()),
            };
            prop_assert_eq!(msgpack::decode(&bytes).unwrap(), packet);
        }
    }
}
