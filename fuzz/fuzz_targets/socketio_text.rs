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
        Body::Event {
            name,
            args,
            compact,
        } => {
            assert!(!RESERVED_EVENTS.contains(&&**name));
            check_compact(input, args, *compact);
            args.to_vec()
        }
        Body::Ack { args, compact } => {
            assert!(packet.id.is_some());
            check_compact(input, args, *compact);
            args.to_vec()
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

/// `compact` holds exactly when no argument has whitespace outside its strings.
fn check_compact(input: &str, args: &[std::ops::Range<usize>], compact: bool) {
    let loose = args.iter().any(|range| {
        matches!(
            ferrio_protocol::socketio::compact_json(&input[range.clone()]),
            std::borrow::Cow::Owned(_)
        )
    });
    // The event name (the first element) is a string or a number: never loose, so the flag
    // speaks of the arguments alone.
    assert_eq!(compact, !loose, "compact flag wrong for {input:?}");
}
