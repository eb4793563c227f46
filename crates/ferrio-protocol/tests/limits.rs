//! Resource bounds of the Socket.IO decoders: what one hostile packet can make them hold.

use bytes::Bytes;
use ferrio_protocol::socketio::{self, Body, DecodeError};
use rmpv::Value;

const PLACEHOLDER_0: &str = r#"{"_placeholder":true,"num":0}"#;

/// Total bytes held by `Binary` values inside `value`.
fn binary_bytes(value: &Value) -> usize {
    match value {
        Value::Binary(b) => b.len(),
        Value::Array(items) => items.iter().map(binary_bytes).sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| binary_bytes(k) + binary_bytes(v))
            .sum(),
        _ => 0,
    }
}

/// Resolving a placeholder copies its attachment, so one packet naming the same attachment
/// thousands of times (1 MB of placeholders and a 1 MB attachment) would resolve into
/// gigabytes. An encoder gives every buffer its own number: a number used twice is refused,
/// by the decoder and by the resolver alike.
#[test]
fn repeated_placeholders_do_not_multiply_an_attachment() {
    let attachment = Bytes::from(vec![7u8; 16 * 1024]);
    let text = format!(r#"51-["upload",[{}]]"#, vec![PLACEHOLDER_0; 2000].join(","));
    assert_eq!(
        socketio::decode_text(&text),
        Err(DecodeError::BadPlaceholder)
    );
    let list = &text[r#"51-["upload","#.len()..text.len() - 1];
    assert_eq!(
        socketio::resolve_placeholders(list, std::slice::from_ref(&attachment)),
        Err(DecodeError::BadPlaceholder)
    );

    // Each attachment named once resolves to the attachments' own size.
    let text = format!(r#"52-["upload",[{PLACEHOLDER_0},{{"_placeholder":true,"num":1}}]]"#);
    let packet = socketio::decode_text(&text).unwrap();
    let Body::Event { args, .. } = packet.body else {
        panic!("not an event")
    };
    let resolved =
        socketio::resolve_placeholders(&text[args[0].clone()], &[attachment.clone(), attachment])
            .unwrap();
    assert_eq!(binary_bytes(&resolved), 2 * 16 * 1024);
}

#[cfg(all(feature = "msgpack", target_os = "linux"))]
fn vm_peak() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPeak:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

/// A msgpack container's length is only a claim: nested containers that each claim 2^32-1
/// elements must not reserve room for them all at once (126 levels of a 1 MB message once
/// reserved 4.7 GB of address space before failing).
#[cfg(all(feature = "msgpack", target_os = "linux"))]
#[test]
fn msgpack_nested_lying_lengths_reserve_little() {
    let mut input = vec![
        0x83, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa3, b'n', b's', b'p', 0xa1, b'/', 0xa4, b'd',
        b'a', b't', b'a',
    ];
    for _ in 0..socketio::MAX_DEPTH - 1 {
        input.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    }
    input.resize(1_000_000, 0xc0);
    let before = vm_peak();
    assert_eq!(
        ferrio_protocol::msgpack::decode(&input),
        Err(DecodeError::InvalidMsgpack)
    );
    let grown = vm_peak().saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "a 1 MB message made the address space peak grow by {} MiB",
        grown >> 20
    );
}
