//! One Engine.IO text packet (a WebSocket text frame): decodes or is refused, never panics,
//! and what decodes encodes back to the same text.
#![no_main]

use ferrio_protocol::engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame is UTF-8 by the time the engine sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match engine::decode_packet(text) {
        Ok(packet) => assert_eq!(engine::encode_packet(&packet), text),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
