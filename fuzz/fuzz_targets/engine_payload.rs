//! A long-polling request body: decodes packet by packet until the first error, never panics,
//! yields no more packets than the separators allow, and the packets it yields survive an
//! encode/decode round trip.
#![no_main]

use ferrio_protocol::engine::{self, SEPARATOR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let mut packets = Vec::new();
    for item in engine::decode_payload(body) {
        match item {
            Ok(packet) => packets.push(packet),
            Err(err) => {
                assert!(!err.to_string().is_empty());
                break;
            }
        }
    }
    let separators = body.iter().filter(|&&b| b == SEPARATOR).count();
    assert!(packets.len() <= separators + 1);
    if packets.is_empty() {
        return;
    }
    // Base64 padding is optional on input, so the text may differ; the packets may not.
    let mut encoded = String::new();
    for packet in &packets {
        engine::encode_payload_packet(&mut encoded, packet);
    }
    let again = engine::decode_payload(encoded.as_bytes()).collect::<Result<Vec<_>, _>>();
    assert_eq!(again.as_ref(), Ok(&packets));
});
