//! Criterion micro-benchmarks of the protocol codecs: Engine.IO packets and long-polling
//! payloads, the Socket.IO JSON parser and, with the feature `msgpack`, the msgpack parser.
//!
//! Run them with
//!
//! ```text
//! cargo bench -p ferrio-protocol --features msgpack              # every group
//! cargo bench -p ferrio-protocol                                 # without the msgpack groups
//! cargo bench -p ferrio-protocol --features msgpack -- --quick   # a faster, rougher pass
//! cargo bench -p ferrio-protocol --features msgpack -- socketio_decode/   # one group
//! ```
//!
//! Groups: `engine` (one WebSocket text frame), `payload` (a long-polling body),
//! `socketio_decode` / `socketio_encode` (the JSON parser), `msgpack_decode` / `msgpack_encode`.
//! Throughput is in bytes of wire format: the input of a decoder, the output of an encoder
//! (with the binary attachment, where there is one).
//!
//! Each benchmark warms up for 1 s and measures for 2 s (flags such as `--measurement-time 5`
//! override that); Criterion keeps the last run in `target/criterion` and reports the change
//! against it, and `--save-baseline NAME` / `--baseline NAME` compare against a named one.
//! On a busy machine the numbers move by tens of percent: compare runs made alike.
//!
//! Every benchmark checks once, before it is timed, that its codec gives the expected result,
//! so a broken codec fails the run instead of timing an error path.

use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrio_protocol::engine::{self, Packet};
use ferrio_protocol::socketio::{self, Body, PacketType, TextPacket};
use serde::Serialize;

/// The argument of the small events: `{"msg":"hello world","n":42}`.
#[derive(Serialize)]
struct Echo {
    msg: &'static str,
    n: u32,
}

const ECHO: Echo = Echo {
    msg: "hello world",
    n: 42,
};

/// A Socket.IO EVENT, as `decode_text` sees it (the Engine.IO `4` already removed).
const EVENT: &str = r#"2["echo",{"msg":"hello world","n":42}]"#;
/// The same with an ack id.
const EVENT_ACK: &str = r#"212["echo",{"msg":"hello world","n":42}]"#;
/// An event to a namespace, with an ack id.
const EVENT_NSP: &str = r#"2/chat,3["message",{"msg":"hello world","n":42}]"#;
/// A BINARY_EVENT whose one argument is its attachment.
const EVENT_BINARY: &str = r#"51-["upload",{"_placeholder":true,"num":0}]"#;
/// The acknowledgement of [`EVENT_ACK`].
const ACK: &str = r#"312[{"msg":"hello world","n":42}]"#;

/// The size of the binary attachment.
const ATTACHMENT_LEN: usize = 1024;
/// How many users make the large (about 10 KB) argument.
const USERS: u32 = 110;

/// One element of the large argument.
#[derive(Serialize)]
struct User {
    id: u32,
    name: String,
    email: String,
    active: bool,
    tags: [&'static str; 2],
}

fn users() -> Vec<User> {
    (0..USERS)
        .map(|id| User {
            id,
            name: format!("user-{id}"),
            email: format!("user-{id}@example.com"),
            active: id % 3 != 0,
            tags: ["alpha", "beta"],
        })
        .collect()
}

fn attachment() -> Bytes {
    (0..ATTACHMENT_LEN).map(|i| (i % 251) as u8).collect()
}

fn bytes(len: usize) -> Throughput {
    Throughput::Bytes(len as u64)
}

/// The event name and argument ranges of a decoded EVENT, or a panic.
fn event<'a>(packet: &'a TextPacket<'_>) -> (&'a str, &'a [Range<usize>]) {
    match &packet.body {
        Body::Event { name, args, .. } => (name, args),
        other => panic!("expected an event, decoded {other:?}"),
    }
}

fn engine_packets(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let frame = format!("4{EVENT}");

    assert_eq!(engine::decode_packet(&frame), Ok(Packet::Message(EVENT)));
    g.throughput(bytes(frame.len()));
    g.bench_function("decode_message", |b| {
        b.iter(|| engine::decode_packet(black_box(&frame)))
    });

    assert_eq!(engine::decode_packet("2"), Ok(Packet::Ping("")));
    g.throughput(bytes(1));
    g.bench_function("decode_ping", |b| {
        b.iter(|| engine::decode_packet(black_box("2")))
    });

    let message = Packet::Message(EVENT);
    assert_eq!(engine::encode_packet(&message), frame);
    g.throughput(bytes(frame.len()));
    g.bench_function("encode_message", |b| {
        b.iter(|| engine::encode_packet(black_box(&message)))
    });

    let ping = Packet::Ping("");
    assert_eq!(engine::encode_packet(&ping), "2");
    g.throughput(bytes(1));
    g.bench_function("encode_ping", |b| {
        b.iter(|| engine::encode_packet(black_box(&ping)))
    });
    g.finish();
}

fn polling_payloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload");

    // Ten events, as a server flushes them to a polling client.
    let messages: Vec<Packet<'_>> = (0..10).map(|_| Packet::Message(EVENT)).collect();
    let ten = vec![format!("4{EVENT}"); 10].join("\x1e");
    // A binary event and its attachment, as a polling client uploads them.
    let attachment = attachment();
    let binary_packets = [
        Packet::Message(EVENT_BINARY),
        Packet::Binary(attachment.to_vec()),
    ];
    let mut binary = format!("4{EVENT_BINARY}\x1eb");
    base64_into(&mut binary, &attachment);

    for (name, body, packets) in [
        ("10_messages", &ten, &messages[..]),
        ("binary_1k", &binary, &binary_packets[..]),
    ] {
        let decoded: Vec<_> = engine::decode_payload(body.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the payload decodes");
        assert_eq!(decoded, packets);
        g.throughput(bytes(body.len()));
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| {
                engine::decode_payload(black_box(body.as_bytes()))
                    .map(black_box)
                    .count()
            })
        });

        let mut out = String::new();
        let encode = |out: &mut String| {
            out.clear();
            for packet in packets {
                engine::encode_payload_packet(out, packet);
            }
        };
        encode(&mut out);
        assert_eq!(&out, body);
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| encode(black_box(&mut out)))
        });
    }
    g.finish();
}

/// Standard padded base64, written here rather than with the codec under test.
fn base64_into(out: &mut String, data: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

fn socketio_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("socketio_decode");
    let echo_arg = r#"{"msg":"hello world","n":42}"#;

    for (name, text, nsp, id, event_name) in [
        ("event", EVENT, "/", None, "echo"),
        ("event_ack", EVENT_ACK, "/", Some(12), "echo"),
        ("event_nsp", EVENT_NSP, "/chat", Some(3), "message"),
    ] {
        let packet = socketio::decode_text(text).expect("the event decodes");
        assert_eq!(
            (packet.kind, packet.nsp, packet.id),
            (PacketType::Event, nsp, id)
        );
        let (decoded_name, args) = event(&packet);
        assert_eq!(decoded_name, event_name);
        assert_eq!(args.len(), 1);
        assert_eq!(&text[args[0].clone()], echo_arg);
        g.throughput(bytes(text.len()));
        g.bench_function(name, |b| b.iter(|| socketio::decode_text(black_box(text))));
    }

    let packet = socketio::decode_text(ACK).expect("the ack decodes");
    assert_eq!((packet.kind, packet.id), (PacketType::Ack, Some(12)));
    let Body::Ack { args, .. } = &packet.body else {
        panic!("expected an ack, decoded {:?}", packet.body)
    };
    assert_eq!(&ACK[args[0].clone()], echo_arg);
    g.throughput(bytes(ACK.len()));
    g.bench_function("ack", |b| b.iter(|| socketio::decode_text(black_box(ACK))));

    // The text alone, then the text and the resolution of its placeholder.
    let attachments = [attachment()];
    let packet = socketio::decode_text(EVENT_BINARY).expect("the binary event decodes");
    assert_eq!(
        (packet.kind, packet.attachments),
        (PacketType::BinaryEvent, 1)
    );
    let (name, args) = event(&packet);
    assert_eq!((name, args.len()), ("upload", 1));
    let resolved = socketio::resolve_placeholders(&EVENT_BINARY[args[0].clone()], &attachments)
        .expect("the placeholder resolves");
    assert_eq!(resolved, rmpv::Value::Binary(attachments[0].to_vec()));
    g.throughput(bytes(EVENT_BINARY.len()));
    g.bench_function("binary_event", |b| {
        b.iter(|| socketio::decode_text(black_box(EVENT_BINARY)))
    });
    g.throughput(bytes(EVENT_BINARY.len() + ATTACHMENT_LEN));
    g.bench_function("binary_event_resolve_1k", |b| {
        b.iter(|| {
            let text = black_box(EVENT_BINARY);
            let packet = socketio::decode_text(text).expect("decodes");
            let Body::Event { args, .. } = &packet.body else {
                unreachable!("checked above")
            };
            args.iter()
                .map(|arg| socketio::resolve_placeholders(&text[arg.clone()], &attachments))
                .collect::<Result<Vec<_>, _>>()
        })
    });

    let users_json = serde_json::to_string(&users()).expect("users serialize");
    let large = format!(r#"2["echo",{users_json}]"#);
    let packet = socketio::decode_text(&large).expect("the large event decodes");
    let (name, args) = event(&packet);
    assert_eq!((name, args.len()), ("echo", 1));
    assert_eq!(&large[args[0].clone()], users_json);
    g.throughput(bytes(large.len()));
    g.bench_function("event_10k", |b| {
        b.iter(|| socketio::decode_text(black_box(&large)))
    });
    g.finish();
}

fn socketio_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("socketio_encode");
    let mut out = String::new();

    for (name, expected, nsp, id, event_name) in [
        ("event", EVENT, "/", None, "echo"),
        ("event_ack", EVENT_ACK, "/", Some(12), "echo"),
        ("event_nsp", EVENT_NSP, "/chat", Some(3), "message"),
    ] {
        let attachments = socketio::encode_event(&mut out, nsp, id, event_name, &(ECHO,))
            .expect("the event encodes");
        assert_eq!((out.as_str(), attachments.len()), (expected, 0));
        g.throughput(bytes(expected.len()));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                socketio::encode_event(black_box(&mut out), nsp, id, event_name, &(&ECHO,))
            })
        });
        out.clear();
    }

    let attachments = socketio::encode_ack(&mut out, "/", 12, &(ECHO,)).expect("the ack encodes");
    assert_eq!((out.as_str(), attachments.len()), (ACK, 0));
    g.throughput(bytes(ACK.len()));
    g.bench_function("ack", |b| {
        b.iter(|| {
            out.clear();
            socketio::encode_ack(black_box(&mut out), "/", 12, &(&ECHO,))
        })
    });
    out.clear();

    let file = attachment();
    let attachments = socketio::encode_event(&mut out, "/", None, "upload", &(&file,))
        .expect("the binary event encodes");
    assert_eq!(out, EVENT_BINARY);
    assert_eq!(attachments, std::slice::from_ref(&file));
    g.throughput(bytes(EVENT_BINARY.len() + ATTACHMENT_LEN));
    g.bench_function("binary_event_1k", |b| {
        b.iter(|| {
            out.clear();
            socketio::encode_event(black_box(&mut out), "/", None, "upload", &(&file,))
        })
    });
    out.clear();

    let users = users();
    let expected = format!(
        r#"2["echo",{}]"#,
        serde_json::to_string(&users).expect("users serialize")
    );
    socketio::encode_event(&mut out, "/", None, "echo", &(&users,)).expect("the event encodes");
    assert_eq!(out, expected);
    g.throughput(bytes(expected.len()));
    g.bench_function("event_10k", |b| {
        b.iter(|| {
            out.clear();
            socketio::encode_event(black_box(&mut out), "/", None, "echo", &(&users,))
        })
    });
    g.finish();
}

#[cfg(feature = "msgpack")]
mod msgpack {
    use super::*;
    use ferrio_protocol::msgpack::{self, MsgpackBody, MsgpackPacket};
    use ferrio_protocol::socketio::DecodeError;
    use rmpv::Value;

    fn echo_value() -> Value {
        Value::Map(vec![
            (Value::from("msg"), Value::from("hello world")),
            (Value::from("n"), Value::from(42u64)),
        ])
    }

    /// The packets of the JSON groups, encoded for the msgpack parser: name, bytes, and the
    /// packet that decodes from them.
    fn packets() -> Vec<(&'static str, Vec<u8>, MsgpackPacket)> {
        let event = |nsp: &str, id, name: &str, args| MsgpackPacket {
            kind: PacketType::Event,
            nsp: nsp.into(),
            id,
            body: MsgpackBody::Event {
                name: name.into(),
                args,
            },
        };
        let file = attachment();
        let users = users();
        // Written out by hand: rmpv's own serializer would make structs arrays, not maps.
        let users_value = Value::Array(
            users
                .iter()
                .map(|u| {
                    Value::Map(vec![
                        (Value::from("id"), Value::from(u.id)),
                        (Value::from("name"), Value::from(u.name.as_str())),
                        (Value::from("email"), Value::from(u.email.as_str())),
                        (Value::from("active"), Value::from(u.active)),
                        (
                            Value::from("tags"),
                            Value::Array(u.tags.iter().map(|&t| Value::from(t)).collect()),
                        ),
                    ])
                })
                .collect(),
        );
        vec![
            (
                "event",
                msgpack::encode_event("/", None, "echo", &(&ECHO,)).expect("encodes"),
                event("/", None, "echo", vec![echo_value()]),
            ),
            (
                "event_ack",
                msgpack::encode_event("/", Some(12), "echo", &(&ECHO,)).expect("encodes"),
                event("/", Some(12), "echo", vec![echo_value()]),
            ),
            (
                "event_nsp",
                msgpack::encode_event("/chat", Some(3), "message", &(&ECHO,)).expect("encodes"),
                event("/chat", Some(3), "message", vec![echo_value()]),
            ),
            (
                "ack",
                msgpack::encode_ack("/", 12, &(&ECHO,)).expect("encodes"),
                MsgpackPacket {
                    kind: PacketType::Ack,
                    nsp: "/".into(),
                    id: Some(12),
                    body: MsgpackBody::Ack {
                        args: vec![echo_value()],
                    },
                },
            ),
            (
                "binary_event_1k",
                msgpack::encode_event("/", None, "upload", &(&file,)).expect("encodes"),
                event("/", None, "upload", vec![Value::Binary(file.to_vec())]),
            ),
            (
                "event_10k",
                msgpack::encode_event("/", None, "echo", &(&users,)).expect("encodes"),
                event("/", None, "echo", vec![users_value]),
            ),
        ]
    }

    /// Asserts that `decoded` is `expected`, printing both only when they are short.
    fn check(name: &str, decoded: Result<MsgpackPacket, DecodeError>, expected: &MsgpackPacket) {
        let decoded = decoded.unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
        if decoded != *expected {
            let (decoded, expected) = (format!("{decoded:?}"), format!("{expected:?}"));
            let short = |s: &str| s.chars().take(300).collect::<String>();
            panic!(
                "{name}: decoded a different packet\n decoded: {}\nexpected: {}",
                short(&decoded),
                short(&expected)
            );
        }
    }

    pub(super) fn decode(c: &mut Criterion) {
        let mut g = c.benchmark_group("msgpack_decode");
        for (name, input, expected) in packets() {
            check(name, msgpack::decode(&input), &expected);
            g.throughput(bytes(input.len()));
            g.bench_function(name, |b| b.iter(|| msgpack::decode(black_box(&input))));
        }
        g.finish();
    }

    pub(super) fn encode(c: &mut Criterion) {
        let mut g = c.benchmark_group("msgpack_encode");
        let file = attachment();
        let users = users();
        // Each encoder's output is the input of the decode group, checked against its packet.
        let packets = packets();
        let mut bench = |name: &str, encode: &dyn Fn() -> Vec<u8>| {
            let (_, input, expected) = packets
                .iter()
                .find(|(n, ..)| *n == name)
                .expect("a packet of that name");
            let output = encode();
            assert!(&output == input, "{name}: the encoder's output changed");
            check(name, msgpack::decode(&output), expected);
            g.throughput(bytes(output.len()));
            g.bench_function(name, |b| b.iter(encode));
        };
        bench("event", &|| {
            msgpack::encode_event(black_box("/"), None, "echo", &(&ECHO,)).expect("encodes")
        });
        bench("event_ack", &|| {
            msgpack::encode_event(black_box("/"), Some(12), "echo", &(&ECHO,)).expect("encodes")
        });
        bench("event_nsp", &|| {
            msgpack::encode_event(black_box("/chat"), Some(3), "message", &(&ECHO,))
                .expect("encodes")
        });
        bench("ack", &|| {
            msgpack::encode_ack(black_box("/"), 12, &(&ECHO,)).expect("encodes")
        });
        bench("binary_event_1k", &|| {
            msgpack::encode_event(black_box("/"), None, "upload", &(&file,)).expect("encodes")
        });
        bench("event_10k", &|| {
            msgpack::encode_event(black_box("/"), None, "echo", &(&users,)).expect("encodes")
        });
        g.finish();
    }
}

#[cfg(feature = "msgpack")]
criterion_group! {
    name = benches;
    config = config();
    targets = engine_packets, polling_payloads, socketio_decode, socketio_encode,
        msgpack::decode, msgpack::encode
}
#[cfg(not(feature = "msgpack"))]
criterion_group! {
    name = benches;
    config = config();
    targets = engine_packets, polling_payloads, socketio_decode, socketio_encode
}
criterion_main!(benches);

/// Shorter than Criterion's defaults (3 s warm-up, 5 s measurement): these run in nanoseconds
/// to microseconds, so 2 s gives tight intervals. Command-line flags still override it.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}
