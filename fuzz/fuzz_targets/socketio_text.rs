//! One Socket.IO packet of the default (JSON) parser: decodes or is refused, never panics, and
//! a decoded packet keeps the decoder's promises (namespace shape, ack id range, attachment
//! count, argument ranges that hold valid JSON on char boundaries). The arguments of a binary
//! packet then go through placeholder resolution, as the server does once the attachments
//! have arrived.
#![no_main]

use bytes::Bytes;
use ferrio_protocol::socketio::{
    self, Body, MAX_ACK_ID, MAX_ATTACHMENTS, PacketType, RESERVED_EVENTS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let packet = match socketio::decode_text(input) {
        Ok(packet) => packet,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    assert_ne!(packet.kind, PacketType::ConnectError);
    assert!(packet.nsp.starts_with('/') && !packet.nsp.contains(','));
    assert!(packet.id.is_none_or(|id| id <= MAX_ACK_ID));
    let binary = matches!(packet.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    assert_eq!(binary, (1..=MAX_ATTACHMENTS).contains(&packet.attachments));
    assert!(binary || packet.attachments == 0);
    let ranges = match &packet.body {
        Body::None => {
            assert!(matches!(
                packet.kind,
                PacketType::Connect | PacketType::Disconnect
            ));
            Vec::new()
        }
        Body::Auth(range) => {
            assert_eq!(packet.kind, PacketType::Connect);
            assert!(input[range.clone()].starts_with('{'), "auth is an object");
            vec![range.clone()]
        }
        Body::Event { name, args } => {
            assert!(!RESERVED_EVENTS.contains(&&**name));
            args.clone()
        }
        Body::Ack { args } => {
            assert!(packet.id.is_some());
            args.clone()
        }
    };
    let attachments: Vec<Bytes> = (0..packet.attachments)
        .map(|i| Bytes::from(vec![i as u8; i]))
        .collect();
    for range in ranges {
        let text = input.get(range).expect("argument range on char boundaries");
        assert!(serde_json::from_str::<&RawValue>(text).is_ok(), "{text}");
        if binary {
            let _ = socketio::resolve_placeholders(text, &attachments);
        }
    }
});
