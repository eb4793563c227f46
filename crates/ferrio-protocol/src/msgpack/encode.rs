//! The encoders of the msgpack parser: one packet, one binary message.
//!
//! Packets are maps with the keys in the order the Node server writes them (`type`, `data`,
//! `id`, `nsp`), so the bytes match npm's encoder. Values go through rmp-serde: structs as maps
//! with field names, binary values (`serialize_bytes`) as `bin`, integers in their smallest form.

use serde::Serialize;

use crate::socketio::EncodeError;

/// A CONNECT answer: `{type: 0, data: {sid, pid?}, nsp}`.
pub fn encode_connect(nsp: &str, sid: &str, pid: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + nsp.len() + sid.len());
    out.push(0x83);
    push_key_type(&mut out, 0);
    push_str(&mut out, "data").expect(SHORT);
    out.push(if pid.is_some() { 0x82 } else { 0x81 });
    push_str(&mut out, "sid").expect(SHORT);
    push_str(&mut out, sid).expect(SHORT);
    if let Some(pid) = pid {
        push_str(&mut out, "pid").expect(SHORT);
        push_str(&mut out, pid).expect(SHORT);
    }
    push_key_nsp(&mut out, nsp).expect(SHORT);
    out
}

/// A CONNECT_ERROR: `{type: 4, data: {message, data?}, nsp}`, without the inner `data` when it
/// is `None`.
pub fn encode_connect_error<D: Serialize + ?Sized>(
    nsp: &str,
    message: &str,
    data: Option<&D>,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(32 + nsp.len() + message.len());
    out.push(0x83);
    push_key_type(&mut out, 4);
    push_str(&mut out, "data")?;
    out.push(if data.is_some() { 0x82 } else { 0x81 });
    push_str(&mut out, "message")?;
    push_str(&mut out, message)?;
    if let Some(data) = data {
        push_str(&mut out, "data")?;
        serialize(&mut out, data)?;
    }
    push_key_nsp(&mut out, nsp)?;
    Ok(out)
}

/// A DISCONNECT: `{type: 1, nsp}`.
pub fn encode_disconnect(nsp: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + nsp.len());
    out.push(0x82);
    push_key_type(&mut out, 1);
    push_key_nsp(&mut out, nsp).expect(SHORT);
    out
}

/// An EVENT: `{type: 2, data: [event, ...args], id?, nsp}`.
///
/// `args` must serialize as a sequence (a tuple, array or `Vec`), each element one argument, or
/// as `()` for none; else [`EncodeError::NotASequence`]. Binary values stay inline as `bin`.
/// (A serde_json `RawValue` has no msgpack form: pass `rmpv::Value`s or typed values.)
pub fn encode_event<A: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    args: &A,
) -> Result<Vec<u8>, EncodeError> {
    let args = serialize_args(args)?;
    let count = u32::try_from(args.count)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or(EncodeError::TooLarge)?;
    let mut out = Vec::with_capacity(32 + nsp.len() + event.len() + args.bytes.len());
    out.push(if id.is_some() { 0x84 } else { 0x83 });
    push_key_type(&mut out, 2);
    push_str(&mut out, "data")?;
    push_array_len(&mut out, count);
    push_str(&mut out, event)?;
    out.extend_from_slice(&args.bytes[args.elements..]);
    if let Some(id) = id {
        push_str(&mut out, "id")?;
        push_uint(&mut out, id);
    }
    push_key_nsp(&mut out, nsp)?;
    Ok(out)
}

/// An ACK: `{type: 3, data: [...args], id, nsp}`, with the same rules for `args` as
/// [`encode_event`].
pub fn encode_ack<A: Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    args: &A,
) -> Result<Vec<u8>, EncodeError> {
    let args = serialize_args(args)?;
    let mut out = Vec::with_capacity(32 + nsp.len() + args.bytes.len());
    out.push(0x84);
    push_key_type(&mut out, 3);
    push_str(&mut out, "data")?;
    if args.count == 0 {
        // Also when `()` was written as nil.
        out.push(0x90);
    } else {
        out.extend_from_slice(&args.bytes);
    }
    push_str(&mut out, "id")?;
    push_uint(&mut out, id);
    push_key_nsp(&mut out, nsp)?;
    Ok(out)
}

const SHORT: &str = "namespaces, socket ids and keys are far shorter than msgpack's 4 GiB limit";

/// Arguments serialized as a msgpack array: `bytes[elements..]` are its `count` elements.
struct Args {
    bytes: Vec<u8>,
    count: usize,
    elements: usize,
}

fn serialize_args<A: Serialize + ?Sized>(args: &A) -> Result<Args, EncodeError> {
    let mut bytes = Vec::new();
    serialize(&mut bytes, args)?;
    let (count, elements) = match bytes.first() {
        Some(&m @ 0x90..=0x9f) => (usize::from(m & 0x0f), 1),
        Some(0xdc) => (usize::from(u16::from_be_bytes(header(&bytes)?)), 3),
        Some(0xdd) => {
            let n = u32::from_be_bytes(header(&bytes)?);
            (usize::try_from(n).map_err(|_| EncodeError::TooLarge)?, 5)
        }
        // `()` and `None`: no arguments.
        Some(0xc0) => (0, 1),
        _ => return Err(EncodeError::NotASequence),
    };
    Ok(Args {
        bytes,
        count,
        elements,
    })
}

/// The `N` length bytes after an array marker.
fn header<const N: usize>(bytes: &[u8]) -> Result<[u8; N], EncodeError> {
    bytes
        .get(1..1 + N)
        .and_then(|b| b.try_into().ok())
        .ok_or(EncodeError::NotASequence)
}

fn serialize<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    value.serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())?;
    Ok(())
}

fn push_key_type(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(b"\xa4type");
    out.push(kind);
}

fn push_key_nsp(out: &mut Vec<u8>, nsp: &str) -> Result<(), EncodeError> {
    out.extend_from_slice(b"\xa3nsp");
    push_str(out, nsp)
}

fn push_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(len) = u8::try_from(len) {
        out.extend_from_slice(&[0xd9, len]);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        let len = u32::try_from(len).map_err(|_| EncodeError::TooLarge)?;
        out.push(0xdb);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn push_array_len(out: &mut Vec<u8>, len: u32) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xdc);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

fn push_uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[0xcc, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(0xcd);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0xce);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}
