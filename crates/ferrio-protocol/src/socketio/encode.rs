//! The encoders of the JSON parser.
//!
//! Each appends one packet to a caller's `String`, which may already hold other text (say
//! the Engine.IO `4` prefix): nothing before the packet is touched, and on error the buffer is
//! left as it was.

use std::io;

use bytes::Bytes;
use serde::Serialize;
use serde_json::ser::Formatter;

use super::EncodeError;

/// Appends a CONNECT answer: `0[<nsp>,]{"sid":"<sid>"}`, with `"pid":"<pid>"` after the sid when
/// connection state recovery is on.
pub fn encode_connect(out: &mut String, nsp: &str, sid: &str, pid: Option<&str>) {
    out.push('0');
    push_nsp(out, nsp);
    out.push_str("{\"sid\":");
    push_json_str(out, sid);
    if let Some(pid) = pid {
        out.push_str(",\"pid\":");
        push_json_str(out, pid);
    }
    out.push('}');
}

/// Appends a CONNECT_ERROR: `4[<nsp>,]{"message":"<message>","data":<data>}`, without `data`
/// when it is `None`.
///
/// `data` is plain JSON: binary values in it are written as arrays of numbers, not
/// attachments (Socket.IO sends attachments with events and acks only).
pub fn encode_connect_error<D: Serialize + ?Sized>(
    out: &mut String,
    nsp: &str,
    message: &str,
    data: Option<&D>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push('4');
    push_nsp(out, nsp);
    out.push_str("{\"message\":");
    push_json_str(out, message);
    if let Some(data) = data {
        out.push_str(",\"data\":");
        let written = append_json(out, |bytes| {
            data.serialize(&mut serde_json::Serializer::new(bytes))
        });
        if let Err(e) = written {
            out.truncate(start);
            return Err(e);
        }
    }
    out.push('}');
    Ok(())
}

/// Appends a DISCONNECT: `1[<nsp>,]`.
pub fn encode_disconnect(out: &mut String, nsp: &str) {
    out.push('1');
    push_nsp(out, nsp);
}

/// Appends an EVENT: `2[<nsp>,][<id>]["<event>",<arg>...]`, and returns its attachments.
///
/// `args` must serialize as a sequence (a tuple, array, `Vec`, or anything that serde_json
/// writes as a JSON array, such as a `&RawValue` holding one); each element becomes one
/// argument, and `()` means none. Anything else is [`EncodeError::NotASequence`].
///
/// Every binary value (anything serialized with `serialize_bytes`: `bytes::Bytes`,
/// `rmpv::Value::Binary`, `serde_bytes`...) is replaced, depth first in serialization order,
/// by `{"_placeholder":true,"num":<i>}` and returned as attachment `i`. With attachments the
/// packet becomes a BINARY_EVENT: `5<n>-...`, its attachments to be sent after it.
///
/// `nsp` is written as is (when not `/`), so it must not contain a `,`.
pub fn encode_event<A: Serialize + ?Sized>(
    out: &mut String,
    nsp: &str,
    id: Option<u64>,
    event: &str,
    args: &A,
) -> Result<Vec<Bytes>, EncodeError> {
    let start = out.len();
    out.push('2');
    push_nsp(out, nsp);
    if let Some(id) = id {
        push_u64(out, id);
    }
    out.push('[');
    push_json_str(out, event);
    encode_packet_args(out, start, args, true)
}

/// Appends an ACK: `3[<nsp>,]<id>[<arg>...]` (`6<n>-...` with attachments), with the same rules
/// for `args` as [`encode_event`].
pub fn encode_ack<A: Serialize + ?Sized>(
    out: &mut String,
    nsp: &str,
    id: u64,
    args: &A,
) -> Result<Vec<Bytes>, EncodeError> {
    let start = out.len();
    out.push('3');
    push_nsp(out, nsp);
    push_u64(out, id);
    encode_packet_args(out, start, args, false)
}

/// Appends one value as JSON, its binary values replaced by placeholders numbered from
/// `attachments.len()` and pushed onto `attachments` (useful for a single argument).
///
/// On error both `out` and `attachments` are left as they were.
pub fn encode_value<T: Serialize + ?Sized>(
    out: &mut String,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    let (start, count) = (out.len(), attachments.len());
    let result = serialize_with_placeholders(out, value, attachments);
    if result.is_err() {
        out.truncate(start);
        attachments.truncate(count);
    }
    result
}

/// Writes the arguments of the packet that starts at `start`, either after `["<event>"` or
/// as the whole data array, then makes the packet binary if it has attachments.
fn encode_packet_args<A: Serialize + ?Sized>(
    out: &mut String,
    start: usize,
    args: &A,
    after_name: bool,
) -> Result<Vec<Bytes>, EncodeError> {
    let mut attachments = Vec::new();
    if let Err(e) = push_args(out, args, &mut attachments, after_name) {
        out.truncate(start);
        return Err(e);
    }
    if !attachments.is_empty() {
        // Rare: the header assumed a plain packet, so patch `2`/`3` into `5<n>-`/`6<n>-`.
        let binary = if after_name { '5' } else { '6' };
        let header = format!("{binary}{}-", attachments.len());
        out.replace_range(start..start + 1, &header);
    }
    Ok(attachments)
}

/// Serializes `args` and checks it came out as a JSON array (or `null`, no arguments). After
/// the event name the array's `[` becomes the `,` that follows the name, so nothing is copied.
fn push_args<A: Serialize + ?Sized>(
    out: &mut String,
    args: &A,
    attachments: &mut Vec<Bytes>,
    after_name: bool,
) -> Result<(), EncodeError> {
    let at = out.len();
    serialize_with_placeholders(out, args, attachments)?;
    let written = &out.as_bytes()[at..];
    let Some(open) = written.iter().position(|b| !is_json_whitespace(*b)) else {
        return Err(EncodeError::NotASequence);
    };
    match written[open] {
        b'[' if after_name => {
            let empty = written[open + 1..]
                .iter()
                .find(|b| !is_json_whitespace(**b))
                == Some(&b']');
            if empty {
                out.truncate(at);
                out.push(']');
            } else {
                out.replace_range(at + open..at + open + 1, ",");
            }
        }
        b'[' => {}
        // `()`, `None` and unit structs: no arguments.
        b'n' => {
            out.truncate(at);
            out.push_str(if after_name { "]" } else { "[]" });
        }
        _ => return Err(EncodeError::NotASequence),
    }
    Ok(())
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn serialize_with_placeholders<T: Serialize + ?Sized>(
    out: &mut String,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    append_json(out, |bytes| {
        let formatter = PlaceholderFormatter { attachments };
        value.serialize(&mut serde_json::Serializer::with_formatter(
            bytes, formatter,
        ))
    })
}

/// The compact JSON formatter, except that byte arrays become placeholders.
struct PlaceholderFormatter<'a> {
    attachments: &'a mut Vec<Bytes>,
}

impl Formatter for PlaceholderFormatter<'_> {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        let num = self.attachments.len();
        self.attachments.push(Bytes::copy_from_slice(value));
        write!(writer, "{{\"_placeholder\":true,\"num\":{num}}}")
    }
}

/// Lets serde_json append to `out`: it writes bytes, and the text it wrote is checked as
/// UTF-8 once, as a whole, rather than piece by piece as it writes (a verbatim argument is
/// one piece, the brackets and commas around it others). On error `out` is left as it was.
///
/// serde_json writes UTF-8 only, so the check never fails in practice; it is what keeps this
/// free of `unsafe`. A short buffer is taken over and checked whole (the usual case: a
/// packet's few header bytes, then its data); after a long one the new text is written apart
/// and appended, so appending packet after packet to one buffer stays linear.
fn append_json(
    out: &mut String,
    write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> Result<(), EncodeError> {
    /// Up to this many bytes already in `out` are checked again rather than copied.
    const TAKE_OVER: usize = 64;
    let start = out.len();
    if start > TAKE_OVER {
        let mut bytes = Vec::new();
        write(&mut bytes)?;
        out.push_str(std::str::from_utf8(&bytes).map_err(not_utf8)?);
        return Ok(());
    }
    let mut bytes = std::mem::take(out).into_bytes();
    let written = write(&mut bytes);
    if written.is_err() {
        bytes.truncate(start);
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            *out = text;
            Ok(written?)
        }
        Err(err) => {
            let mut bytes = err.into_bytes();
            bytes.truncate(start);
            *out = String::from_utf8(bytes).unwrap_or_default();
            written?;
            Err(not_utf8(()))
        }
    }
}

fn not_utf8<E>(_: E) -> EncodeError {
    EncodeError::Json(serde_json::Error::io(io::Error::new(
        io::ErrorKind::InvalidData,
        "serde_json wrote text that is not UTF-8",
    )))
}

/// Writes the namespace and its `,`, unless it is the default `/`.
fn push_nsp(out: &mut String, nsp: &str) {
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
}

fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn push_json_str(out: &mut String, s: &str) {
    // A str always serializes as JSON; on the impossible error nothing is appended.
    let _ = append_json(out, |bytes| {
        s.serialize(&mut serde_json::Serializer::new(bytes))
    });
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::socketio::{Body, PacketType, decode_text};

    /// After a long buffer the packet is written apart and appended; after a short one the
    /// buffer is taken over. Both give the same text, and an error leaves either unchanged.
    #[test]
    fn packets_append_after_short_and_long_text_alike() {
        for before in ["4", &"x".repeat(200)] {
            let mut out = before.to_owned();
            encode_ack(&mut out, "/", 7, &("é", [1, 2])).unwrap();
            assert_eq!(out, format!("{before}37[\"é\",[1,2]]"));

            let mut out = before.to_owned();
            let mut map = std::collections::HashMap::new();
            map.insert(vec![1u8], 1); // not a valid JSON object key
            assert!(encode_ack(&mut out, "/", 7, &(map,)).is_err());
            assert_eq!(out, before, "nothing of a failed packet is left");
        }
    }

    fn event<A: Serialize + ?Sized>(
        nsp: &str,
        id: Option<u64>,
        name: &str,
        args: &A,
    ) -> (String, Vec<Bytes>) {
        let mut out = String::new();
        let attachments = encode_event(&mut out, nsp, id, name, args).unwrap();
        (out, attachments)
    }

    fn ack<A: Serialize + ?Sized>(nsp: &str, id: u64, args: &A) -> (String, Vec<Bytes>) {
        let mut out = String::new();
        let attachments = encode_ack(&mut out, nsp, id, args).unwrap();
        (out, attachments)
    }

    /// Calls `serialize_bytes`, like `serde_bytes`.
    struct Blob(&'static [u8]);

    impl Serialize for Blob {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn connect() {
        let mut out = "4".to_owned();
        encode_connect(&mut out, "/", "abc", None);
        assert_eq!(out, r#"40{"sid":"abc"}"#);
        let mut out = String::new();
        encode_connect(&mut out, "/chat", "a\"b", Some("p"));
        assert_eq!(out, r#"0/chat,{"sid":"a\"b","pid":"p"}"#);
    }

    #[test]
    fn connect_error() {
        let mut out = "4".to_owned();
        encode_connect_error::<()>(&mut out, "/nope", "Invalid namespace", None).unwrap();
        assert_eq!(out, r#"44/nope,{"message":"Invalid namespace"}"#);
        let mut out = String::new();
        let data = serde_json::json!({"code": 7});
        encode_connect_error(&mut out, "/", "no\n", Some(&data)).unwrap();
        assert_eq!(out, r#"4{"message":"no\n","data":{"code":7}}"#);
        // Bytes in connect_error data are plain arrays.
        let mut out = String::new();
        encode_connect_error(&mut out, "/", "m", Some(&Blob(b"\x01\x02"))).unwrap();
        assert_eq!(out, r#"4{"message":"m","data":[1,2]}"#);
    }

    #[test]
    fn connect_error_failure_leaves_the_buffer() {
        let mut out = "4".to_owned();
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let e = encode_connect_error(&mut out, "/", "m", Some(&bad)).unwrap_err();
        assert!(matches!(e, EncodeError::Json(_)));
        assert_eq!(out, "4");
    }

    #[test]
    fn disconnect() {
        let mut out = "4".to_owned();
        encode_disconnect(&mut out, "/");
        assert_eq!(out, "41");
        let mut out = String::new();
        encode_disconnect(&mut out, "/chat");
        assert_eq!(out, "1/chat,");
    }

    #[test]
    fn events() {
        assert_eq!(event("/", None, "a", &()).0, r#"2["a"]"#);
        assert_eq!(event("/", None, "a", &[0u8; 0]).0, r#"2["a"]"#);
        assert_eq!(event("/", Some(12), "a", &(1, "x")).0, r#"212["a",1,"x"]"#);
        assert_eq!(
            event("/chat", Some(0), "a", &[true]).0,
            r#"2/chat,0["a",true]"#
        );
        assert_eq!(
            event("/chat", None, "a", &vec![1, 2]).0,
            r#"2/chat,["a",1,2]"#
        );
        assert_eq!(
            event("/", Some(u64::MAX), "é\"\\\u{1}", &("ü",)).0,
            "218446744073709551615[\"é\\\"\\\\\\u0001\",\"ü\"]"
        );
        // A struct argument is one argument.
        #[derive(Serialize)]
        struct Msg {
            text: &'static str,
        }
        assert_eq!(
            event("/", None, "m", &(Msg { text: "hi" },)).0,
            r#"2["m",{"text":"hi"}]"#
        );
        assert_eq!(event("/", None, "m", &None::<u8>).0, r#"2["m"]"#);
    }

    #[test]
    fn acks() {
        assert_eq!(ack("/", 5, &()).0, "35[]");
        assert_eq!(ack("/chat", 5, &("ok", 1)).0, r#"3/chat,5["ok",1]"#);
        assert_eq!(ack("/", 0, &[[1]]).0, "30[[1]]");
    }

    #[test]
    fn non_sequences_are_refused_and_leave_the_buffer() {
        #[derive(Serialize)]
        struct Msg {
            text: &'static str,
        }
        let mut out = "4".to_owned();
        for e in [
            encode_event(&mut out, "/", None, "a", &Msg { text: "x" }).unwrap_err(),
            encode_event(&mut out, "/", None, "a", "text").unwrap_err(),
            encode_event(&mut out, "/", None, "a", &1).unwrap_err(),
            encode_event(&mut out, "/", None, "a", &Blob(b"x")).unwrap_err(),
            encode_ack(&mut out, "/c", 1, &true).unwrap_err(),
            encode_ack(&mut out, "/c", 1, &serde_json::json!({"a": 1})).unwrap_err(),
        ] {
            assert!(matches!(e, EncodeError::NotASequence), "{e:?}");
        }
        assert_eq!(out, "4");
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let e = encode_event(&mut out, "/", None, "a", &(bad,)).unwrap_err();
        assert!(matches!(e, EncodeError::Json(_)));
        assert_eq!(out, "4");
    }

    #[test]
    fn binary_values_become_placeholders() {
        let args = (
            "x",
            Bytes::from_static(b"\x01"),
            vec![Blob(b"\x02\x03"), Blob(b"")],
            rmpv::Value::Map(vec![(rmpv::Value::from("k"), rmpv::Value::Binary(vec![4]))]),
        );
        let mut out = "4".to_owned();
        let attachments = encode_event(&mut out, "/chat", Some(3), "up", &args).unwrap();
        assert_eq!(
            out,
            concat!(
                r#"454-/chat,3["up","x",{"_placeholder":true,"num":0},"#,
                r#"[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}],"#,
                r#"{"k":{"_placeholder":true,"num":3}}]"#
            )
        );
        assert_eq!(attachments, [&b"\x01"[..], b"\x02\x03", b"", b"\x04"]);
        let (out, attachments) = ack("/", 9, &[Blob(b"z")]);
        assert_eq!(out, r#"61-9[{"_placeholder":true,"num":0}]"#);
        assert_eq!(attachments, [&b"z"[..]]);
        // More than a client may send is fine on the way out.
        let many: Vec<Blob> = (0..11).map(|_| Blob(b"b")).collect();
        let (out, attachments) = event("/", None, "m", &many);
        assert!(out.starts_with(r#"511-["m",{"_placeholder":true,"num":0},"#));
        assert_eq!(attachments.len(), 11);
    }

    #[test]
    fn raw_values_pass_through_verbatim() {
        let text = r#"2["ev",{"a" : [1, 2]},"s\u00e9", 1.50 ]"#;
        let Body::Event { name, args, .. } = decode_text(text).unwrap().body else {
            panic!()
        };
        let raws: Vec<&RawValue> = args
            .iter()
            .map(|r| serde_json::from_str(&text[r.clone()]).unwrap())
            .collect();
        assert_eq!(
            event("/", None, &name, &raws).0,
            r#"2["ev",{"a" : [1, 2]},"s\u00e9",1.50]"#
        );
        assert_eq!(ack("/", 1, &raws).0, r#"31[{"a" : [1, 2]},"s\u00e9",1.50]"#);
        // A raw value holding a whole array is a sequence too.
        let whole = RawValue::from_string(r#"[ 1 , {"b":2} ]"#.to_owned()).unwrap();
        assert_eq!(event("/", None, "e", &whole).0, r#"2["e", 1 , {"b":2} ]"#);
        let empty = RawValue::from_string("[ ]".to_owned()).unwrap();
        assert_eq!(event("/", None, "e", &empty).0, r#"2["e"]"#);
        assert_eq!(ack("/", 1, &empty).0, "31[ ]");
        let not_array = RawValue::from_string("{}".to_owned()).unwrap();
        let mut out = String::new();
        assert!(encode_event(&mut out, "/", None, "e", &not_array).is_err());
        // Every output decodes.
        for text in [
            event("/", None, "e", &whole).0,
            event("/", None, "e", &empty).0,
            ack("/", 1, &empty).0,
        ] {
            decode_text(&text).unwrap();
        }
    }

    #[test]
    fn encode_value_numbers_from_the_existing_attachments() {
        let mut out = "[".to_owned();
        let mut attachments = vec![Bytes::from_static(b"a")];
        encode_value(&mut out, &(Blob(b"b"), 1), &mut attachments).unwrap();
        assert_eq!(out, r#"[[{"_placeholder":true,"num":1},1]"#);
        assert_eq!(attachments.len(), 2);
        let bad: std::collections::HashMap<(u8, u8), Blob> = [((1, 2), Blob(b"c"))].into();
        assert!(encode_value(&mut out, &(Blob(b"d"), bad), &mut attachments).is_err());
        assert_eq!(out, r#"[[{"_placeholder":true,"num":1},1]"#);
        assert_eq!(attachments.len(), 2);
    }

    #[test]
    fn encoded_packets_decode_to_what_was_sent() {
        let (text, attachments) = event("/chat", Some(7), "up", &(1, Blob(b"\x09"), "s"));
        let packet = decode_text(&text).unwrap();
        assert_eq!(
            (packet.kind, packet.nsp, packet.id, packet.attachments),
            (PacketType::BinaryEvent, "/chat", Some(7), 1)
        );
        let Body::Event { name, args, .. } = packet.body else {
            panic!()
        };
        assert_eq!(name, "up");
        let values: Vec<_> = args
            .iter()
            .map(|r| crate::socketio::resolve_placeholders(&text[r.clone()], &attachments).unwrap())
            .collect();
        assert_eq!(
            values,
            [
                rmpv::Value::from(1),
                rmpv::Value::Binary(vec![9]),
                rmpv::Value::from("s")
            ]
        );
    }
}
