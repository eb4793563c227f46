//! Property-based fuzzing of the Engine.IO decoders (runs on stable).
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
