//! One packet of the msgpack parser (a binary Engine.IO message): decodes or is refused, never
//! panics, keeps the decoder's promises, and what decodes encodes back to the same packet.
#![no_main]

use ferrio_protocol::msgpack::{self, MsgpackBody};
use ferrio_protocol::socketio::{MAX_ACK_ID, PacketType, RESERVED_EVENTS};
use libfuzzer_sys::fuzz_target;
use rmpv::Value;

fuzz_target!(|input: &[u8]| {
    let packet = match msgpack::decode(input) {
        Ok(packet) => packet,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    assert!(matches!(
        packet.kind,
        PacketType::Connect | PacketType::Disconnect | PacketType::Event | PacketType::Ack
    ));
    assert!(packet.id.is_none_or(|id| id <= MAX_ACK_ID));
    let bytes = match &packet.body {
        MsgpackBody::None => {
            assert!(matches!(
                packet.kind,
                PacketType::Connect | PacketType::Disconnect
            ));
            if packet.kind != PacketType::Disconnect {
                return;
            }
            msgpack::encode_disconnect(&packet.nsp)
        }
        MsgpackBody::Auth(auth) => {
            assert!(matches!(auth, Value::Map(_)));
            return;
        }
        MsgpackBody::Event { name, args } => {
            assert!(!RESERVED_EVENTS.contains(&name.as_str()));
            msgpack::encode_event(&packet.nsp, packet.id, name, args).expect("encodes")
        }
        MsgpackBody::Ack { args } => {
            let id = packet.id.expect("an acknowledgement has an id");
            msgpack::encode_ack(&packet.nsp, id, args).expect("encodes")
        }
    };
    let again = msgpack::decode(&bytes).expect("an encoded packet decodes");
    assert_eq!(
        (again.kind, &again.nsp, again.id),
        (packet.kind, &packet.nsp, packet.id)
    );
    let args = |body: &MsgpackBody| match body {
        MsgpackBody::Event { name, args } => (Some(name.clone()), args.clone()),
        MsgpackBody::Ack { args } => (None, args.clone()),
        _ => (None, Vec::new()),
    };
    let ((name, before), (name2, after)) = (args(&packet.body), args(&again.body));
    assert_eq!(name, name2);
    assert!(same(&Value::Array(before), &Value::Array(after)));
});

/// Equality with floats compared bit for bit, so that a NaN equals itself.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}
