//! Placeholder resolution of a binary packet's argument: any text, with 0 to 10 attachments
//! (chosen by the first byte), resolves or is refused, never panics. A value that resolves
//! names each attachment at most once.
#![no_main]

use bytes::Bytes;
use ferrio_protocol::socketio::{self, MAX_ATTACHMENTS};
use libfuzzer_sys::fuzz_target;
use rmpv::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(rest) else {
        return;
    };
    let n = usize::from(count) % (MAX_ATTACHMENTS + 1);
    // Distinct contents, so a count of binaries in the value tells which were used.
    let attachments: Vec<Bytes> = (0..n).map(|i| Bytes::from(vec![i as u8; i + 1])).collect();
    if let Ok(value) = socketio::resolve_placeholders(json, &attachments) {
        let mut seen = vec![0usize; n];
        count_binaries(&value, &mut seen);
        assert!(seen.iter().all(|&times| times <= 1), "{seen:?}");
    }
});

fn count_binaries(value: &Value, seen: &mut [usize]) {
    match value {
        Value::Binary(bytes) => {
            if let Some(times) = bytes.len().checked_sub(1).and_then(|i| seen.get_mut(i)) {
                *times += 1;
            }
        }
        Value::Array(items) => items.iter().for_each(|v| count_binaries(v, seen)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| count_binaries(v, seen)),
        _ => {}
    }
}
