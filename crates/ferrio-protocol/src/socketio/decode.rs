//! The decoder of the JSON parser: [`decode_text`].

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer as _, Visitor};
use serde_json::value::RawValue;

use super::json::{self, ScanError};
use super::placeholder::{self, Attachments};
use super::{
    Body, DecodeError, MAX_ACK_ID, MAX_ATTACHMENTS, MAX_DEPTH, PacketType, RESERVED_EVENTS,
    TextPacket,
};

/// Decodes a client's packet from a text message of the JSON parser (without the Engine.IO `4`
/// prefix), enforcing every decoder rule of the protocol.
///
/// Binary packets are checked as far as the text goes: the attachment count and every
/// placeholder. Their attachments are the caller's to collect (see
/// [`resolve_placeholders`](super::resolve_placeholders)).
///
/// Arguments are checked for JSON syntax, not for what a parser can represent: a number such as
/// `1e999` (Infinity to JavaScript) passes here and fails only when its argument is parsed.
/// The arguments of a binary packet are parsed to find their placeholders, so there such a
/// number (or a lone surrogate escape like `"\ud800"`) is refused, where the reference
/// parser would accept it; no official client sends either.
pub fn decode_text(input: &str) -> Result<TextPacket<'_>, DecodeError> {
    let bytes = input.as_bytes();
    let first = *bytes.first().ok_or(DecodeError::Empty)?;
    let kind = PacketType::from_digit(first).ok_or(DecodeError::UnknownType)?;
    if kind == PacketType::ConnectError {
        return Err(DecodeError::ConnectErrorFromClient);
    }
    let mut pos = 1;

    let binary = matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    let attachments = if binary {
        let (n, end) = digits(bytes, pos).ok_or(DecodeError::BadAttachments)?;
        if end == pos || bytes.get(end) != Some(&b'-') || n == 0 || n > MAX_ATTACHMENTS as u64 {
            return Err(DecodeError::BadAttachments);
        }
        pos = end + 1;
        n as usize
    } else {
        0
    };

    let nsp = if bytes.get(pos) == Some(&b'/') {
        let rest = &input[pos..];
        match rest.find(',') {
            Some(comma) => {
                pos += comma + 1;
                &rest[..comma]
            }
            None => {
                pos = input.len();
                rest
            }
        }
    } else {
        "/"
    };

    let id = if bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        if matches!(kind, PacketType::Connect | PacketType::Disconnect) {
            return Err(DecodeError::UnexpectedAckId);
        }
        let (id, end) = digits(bytes, pos).ok_or(DecodeError::BadAckId)?;
        if id > MAX_ACK_ID {
            return Err(DecodeError::BadAckId);
        }
        pos = end;
        Some(id)
    } else {
        None
    };

    // `pos` only ever moved past ASCII bytes, so it is a char boundary.
    let data = &input[pos..];
    let body = match kind {
        // Refused above already, before anything else is read.
        PacketType::ConnectError => return Err(DecodeError::ConnectErrorFromClient),
        PacketType::Connect if data.is_empty() => Body::None,
        PacketType::Connect => {
            check_depth(data)?;
            let raw =
                serde_json::from_str::<&RawValue>(data).map_err(|_| DecodeError::InvalidJson)?;
            if !raw.get().starts_with('{') {
                return Err(DecodeError::BadConnectData);
            }
            Body::Auth(range_of(input, raw))
        }
        PacketType::Disconnect if data.is_empty() => Body::None,
        PacketType::Disconnect => return Err(DecodeError::UnexpectedData),
        PacketType::Ack | PacketType::BinaryAck if id.is_none() => {
            return Err(DecodeError::MissingAckId);
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let mut elements = array(data, DecodeError::BadEventData)?;
            if elements.ranges.is_empty() {
                return Err(DecodeError::BadEventData);
            }
            let first = elements.ranges.remove(0);
            let name = event_name(&data[first])?;
            if RESERVED_EVENTS.contains(&&*name) {
                return Err(DecodeError::ReservedEventName);
            }
            if binary {
                check_placeholders(data, &elements.ranges, attachments)?;
            }
            json::shifted(&mut elements.ranges, pos);
            Body::Event {
                name,
                args: elements.ranges,
                compact: elements.compact,
            }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let mut elements = array(data, DecodeError::BadAckData)?;
            if binary {
                check_placeholders(data, &elements.ranges, attachments)?;
            }
            json::shifted(&mut elements.ranges, pos);
            Body::Ack {
                args: elements.ranges,
                compact: elements.compact,
            }
        }
    };

    Ok(TextPacket {
        kind,
        nsp,
        id,
        attachments,
        body,
    })
}

/// Reads a run of ASCII digits from `start`: its value and where it ends, or `None` when the
/// value overflows a `u64`.
fn digits(bytes: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    let mut end = start;
    while let Some(&b) = bytes.get(end).filter(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        end += 1;
    }
    Some((n, end))
}

/// The elements of `data`, a JSON array; `not_array` when the data is valid JSON but no array.
fn array(data: &str, not_array: DecodeError) -> Result<json::Elements, DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::MissingData);
    }
    json::scan_array(data).map_err(|err| match err {
        ScanError::Invalid => DecodeError::InvalidJson,
        ScanError::NotArray => not_array,
        ScanError::TooDeep => DecodeError::TooDeep,
    })
}

/// Where `raw` (borrowed from `input`) lies in `input`.
fn range_of(input: &str, raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - input.as_ptr() as usize;
    start..start + raw.get().len()
}

fn check_placeholders(
    data: &str,
    args: &[Range<usize>],
    attachments: usize,
) -> Result<(), DecodeError> {
    for range in args {
        placeholder::parse(&data[range.clone()], Attachments::Count(attachments))?;
    }
    Ok(())
}

/// Fails with [`DecodeError::TooDeep`] when arrays and objects in `json` nest deeper than
/// [`MAX_DEPTH`].
///
/// A linear scan that skips string contents, run before serde_json so that hostile input (say
/// 100k `[`) never reaches a recursive parser. On any prefix that serde_json accepts it counts
/// exactly what serde_json would; past a syntax error the count no longer matters.
pub(crate) fn check_depth(json: &str) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut strings = json::Strings::default();
    for &b in json.as_bytes() {
        if strings.holds(b) {
            continue;
        }
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The event name from the data array's first element (valid JSON).
fn event_name(text: &str) -> Result<Cow<'_, str>, DecodeError> {
    match text.as_bytes().first() {
        // The usual name: no escapes, so the text between the quotes.
        Some(b'"') if !text.contains('\\') => Ok(Cow::Borrowed(
            text.get(1..text.len().saturating_sub(1))
                .ok_or(DecodeError::InvalidJson)?,
        )),
        Some(b'"') => serde_json::Deserializer::from_str(text)
            .deserialize_str(StrVisitor)
            .map_err(|_| DecodeError::InvalidJson),
        // A valid JSON number, which Rust parses correctly rounded (as JavaScript does; serde_json
        // by default may be one ulp off) and out of range as ±infinity (as JavaScript does).
        Some(b'-' | b'0'..=b'9') => text
            .parse::<f64>()
            .map(|n| Cow::Owned(number_name(n)))
            .map_err(|_| DecodeError::BadEventName),
        _ => Err(DecodeError::BadEventName),
    }
}

/// A JSON string, borrowed when it has no escapes.
struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The name of an event named by a number, as JavaScript's `String(n)` writes it (Node's
/// emitters key events by that text): `1e3` is `1000`, `-0` is `0`, `1e21` is `1e+21`.
pub(crate) fn number_name(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if n == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as JavaScript does: `d.ddde<x>`.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i64 = exp.parse().unwrap_or(0);
    // The decimal point sits after `point` digits (JavaScript's `n`).
    let point = exp + 1;
    let k = digits.len() as i64;
    let mut out = String::with_capacity(digits.len() + 8);
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> TextPacket<'_> {
        decode_text(input).unwrap_or_else(|e| panic!("{input:?}: {e:?}"))
    }

    fn err(input: &str) -> DecodeError {
        match decode_text(input) {
            Ok(p) => panic!("{input:?} decoded: {p:?}"),
            Err(e) => e,
        }
    }

    /// The event name and the text of each argument.
    fn event(input: &str) -> (String, Vec<&str>) {
        match ok(input).body {
            Body::Event { name, args, .. } => (
                name.into_owned(),
                args.into_iter().map(|r| &input[r]).collect(),
            ),
            other => panic!("{input:?}: not an event: {other:?}"),
        }
    }

    fn ack_args(input: &str) -> Vec<&str> {
        match ok(input).body {
            Body::Ack { args, .. } => args.into_iter().map(|r| &input[r]).collect(),
            other => panic!("{input:?}: not an ack: {other:?}"),
        }
    }

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn event_in_default_namespace() {
        let p = ok(r#"2["a"]"#);
        assert_eq!(
            (p.kind, p.nsp, p.id, p.attachments),
            (PacketType::Event, "/", None, 0)
        );
        assert_eq!(event(r#"2["a"]"#), ("a".to_owned(), vec![]));
    }

    #[test]
    fn event_in_a_namespace() {
        let p = ok(r#"2/chat,["a"]"#);
        assert_eq!((p.nsp, p.id), ("/chat", None));
    }

    #[test]
    fn event_with_ack_id() {
        let p = ok(r#"21["a"]"#);
        assert_eq!((p.nsp, p.id), ("/", Some(1)));
        let p = ok(r#"2/chat,12["a",1]"#);
        assert_eq!((p.nsp, p.id), ("/chat", Some(12)));
        assert_eq!(event(r#"2/chat,12["a",1]"#), ("a".to_owned(), vec!["1"]));
    }

    #[test]
    fn arguments_are_ranges_of_raw_json() {
        let input = r#"2["ev", {"a" : [1, "x"]} ,null,"s\"q",-1.5e3 ]"#;
        assert_eq!(
            event(input),
            (
                "ev".to_owned(),
                vec![r#"{"a" : [1, "x"]}"#, "null", r#""s\"q""#, "-1.5e3"]
            )
        );
    }

    #[test]
    fn event_name_borrows_unless_escaped() {
        let Body::Event { name, .. } = ok(r#"2["plain"]"#).body else {
            panic!()
        };
        assert!(matches!(name, Cow::Borrowed("plain")));
        let Body::Event { name, .. } = ok(r#"2["t\u00e9\n"]"#).body else {
            panic!()
        };
        assert_eq!(name, "té\n");
    }

    #[test]
    fn number_event_names_become_their_javascript_text() {
        for (input, name) in [
            ("2[1]", "1"),
            ("2[-7]", "-7"),
            ("2[1.5]", "1.5"),
            ("2[1e3]", "1000"),
            ("2[1.0]", "1"),
            ("2[-0]", "0"),
            ("2[1e21]", "1e+21"),
            ("2[1.5e-7]", "1.5e-7"),
            ("2[0.000001]", "0.000001"),
            ("2[123456789012345678901]", "123456789012345680000"),
            ("2[9007199254740993]", "9007199254740992"),
            ("2[1E+2]", "100"),
            ("2[1e999]", "Infinity"),
            ("2[-1e999]", "-Infinity"),
        ] {
            assert_eq!(event(input).0, name, "{input}");
        }
    }

    #[test]
    fn number_name_matches_javascript() {
        for (n, text) in [
            (0.1, "0.1"),
            (100.0, "100"),
            (1e-7, "1e-7"),
            (-1.25e-10, "-1.25e-10"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (123.456, "123.456"),
        ] {
            assert_eq!(number_name(n), text);
        }
    }

    #[test]
    fn ack_packets() {
        let p = ok("3/chat,5[]");
        assert_eq!((p.kind, p.nsp, p.id), (PacketType::Ack, "/chat", Some(5)));
        assert_eq!(ack_args("3/chat,5[]"), Vec::<&str>::new());
        assert_eq!(
            ack_args(r#"30["x",{"y":[]}]"#),
            vec![r#""x""#, r#"{"y":[]}"#]
        );
    }

    #[test]
    fn connect_packets() {
        let p = ok("0");
        assert_eq!(
            (p.kind, p.nsp, p.body),
            (PacketType::Connect, "/", Body::None)
        );
        assert_eq!(ok("0/admin,").body, Body::None);
        assert_eq!(ok("0/admin").nsp, "/admin");
        let input = r#"0/admin,{"token":"abc"}"#;
        let Body::Auth(range) = ok(input).body else {
            panic!()
        };
        assert_eq!(&input[range], r#"{"token":"abc"}"#);
    }

    #[test]
    fn disconnect_packets() {
        assert_eq!(ok("1").kind, PacketType::Disconnect);
        assert_eq!(ok("1/chat,").nsp, "/chat");
        assert_eq!(ok("1/chat").body, Body::None);
    }

    #[test]
    fn namespace_runs_to_the_first_comma_or_the_end() {
        assert_eq!(ok("1/a/b?x=1").nsp, "/a/b?x=1");
        assert_eq!(ok(r#"2/é ü,["a"]"#).nsp, "/é ü");
        // No comma: everything is the namespace, so the event has no data.
        assert_eq!(err(r#"2/chat["a"]"#), DecodeError::MissingData);
        assert_eq!(ok("0/").nsp, "/");
        assert_eq!(ok("0/,").nsp, "/");
    }

    #[test]
    fn binary_packets() {
        let input = r#"51-["a",{"_placeholder":true,"num":0}]"#;
        let p = ok(input);
        assert_eq!((p.kind, p.attachments), (PacketType::BinaryEvent, 1));
        assert_eq!(event(input).1, vec![r#"{"_placeholder":true,"num":0}"#]);
        let p = ok(r#"610-/chat,7[{"_placeholder":true,"num":9}]"#);
        assert_eq!(
            (p.kind, p.attachments, p.nsp, p.id),
            (PacketType::BinaryAck, 10, "/chat", Some(7))
        );
        // Leading zeros are read as JavaScript's Number() reads them.
        assert_eq!(ok(r#"5002-["a"]"#).attachments, 2);
        // Key order and unused attachments do not matter.
        assert_eq!(
            ok(r#"52-["a",{"num":1,"_placeholder":true}]"#).attachments,
            2
        );
    }

    #[test]
    fn attachment_count_rules() {
        for input in [
            r#"50-["a"]"#,
            r#"511-["a"]"#,
            r#"5-["a"]"#,
            r#"5["a"]"#,
            r#"5+1-["a"]"#,
            r#"51["a"]"#,
            "5",
            "6",
            r#"599999999999999999999999999-["a"]"#,
            r#"6-1-0[]"#,
        ] {
            assert_eq!(err(input), DecodeError::BadAttachments, "{input}");
        }
        // Types 0-4 have no attachment count: `1-` reads as an ack id followed by bad JSON.
        assert_eq!(err(r#"21-["a"]"#), DecodeError::InvalidJson);
        assert_eq!(err("01-{}"), DecodeError::UnexpectedAckId);
    }

    #[test]
    fn packet_type_rules() {
        assert_eq!(err(""), DecodeError::Empty);
        assert_eq!(err("7"), DecodeError::UnknownType);
        assert_eq!(err("a"), DecodeError::UnknownType);
        assert_eq!(err(r#"é["a"]"#), DecodeError::UnknownType);
        assert_eq!(err("4{}"), DecodeError::ConnectErrorFromClient);
        assert_eq!(
            err(r#"4{"message":"x"}"#),
            DecodeError::ConnectErrorFromClient
        );
        assert_eq!(err("4"), DecodeError::ConnectErrorFromClient);
        assert_eq!(
            err("4/a,99999999999999999999999x"),
            DecodeError::ConnectErrorFromClient
        );
    }

    #[test]
    fn ack_id_rules() {
        assert_eq!(ok(r#"29007199254740991["a"]"#).id, Some(MAX_ACK_ID));
        assert_eq!(err(r#"29007199254740992["a"]"#), DecodeError::BadAckId);
        assert_eq!(
            err(r#"299999999999999999999999["a"]"#),
            DecodeError::BadAckId
        );
        assert_eq!(ok(r#"2007["a"]"#).id, Some(7));
        assert_eq!(err("3[]"), DecodeError::MissingAckId);
        assert_eq!(err("3/chat,[]"), DecodeError::MissingAckId);
        assert_eq!(
            err(r#"61-[{"_placeholder":true,"num":0}]"#),
            DecodeError::MissingAckId
        );
        assert_eq!(err("01"), DecodeError::UnexpectedAckId);
        assert_eq!(err("0/a,1{}"), DecodeError::UnexpectedAckId);
        assert_eq!(err("11"), DecodeError::UnexpectedAckId);
        assert_eq!(err(r#"2a["x"]"#), DecodeError::InvalidJson);
        assert_eq!(err(r#"2-1["x"]"#), DecodeError::InvalidJson);
    }

    #[test]
    fn connect_data_rules() {
        assert_eq!(err(r#"0/a,{"x":1}junk"#), DecodeError::InvalidJson);
        assert_eq!(err("0[]"), DecodeError::BadConnectData);
        assert_eq!(err(r#"0"token""#), DecodeError::BadConnectData);
        assert_eq!(err("0null"), DecodeError::BadConnectData);
        assert_eq!(err("0 "), DecodeError::InvalidJson);
        assert_eq!(err("0{"), DecodeError::InvalidJson);
    }

    #[test]
    fn disconnect_data_rules() {
        assert_eq!(err("1/a,{}"), DecodeError::UnexpectedData);
        assert_eq!(err("1{}"), DecodeError::UnexpectedData);
        assert_eq!(err("1 "), DecodeError::UnexpectedData);
    }

    #[test]
    fn event_data_rules() {
        assert_eq!(err("2"), DecodeError::MissingData);
        assert_eq!(err("2/chat,"), DecodeError::MissingData);
        assert_eq!(err("21"), DecodeError::MissingData);
        assert_eq!(err("2[]"), DecodeError::BadEventData);
        assert_eq!(err("2{}"), DecodeError::BadEventData);
        assert_eq!(err(r#"2"a""#), DecodeError::BadEventData);
        assert_eq!(err("2[{}]"), DecodeError::BadEventName);
        assert_eq!(err("2[null]"), DecodeError::BadEventName);
        assert_eq!(err("2[true]"), DecodeError::BadEventName);
        assert_eq!(err(r#"2[["a"]]"#), DecodeError::BadEventName);
        assert_eq!(err(r#"2["a"]x"#), DecodeError::InvalidJson);
        assert_eq!(err(r#"2["a",]"#), DecodeError::InvalidJson);
        assert_eq!(err(r#"2["a""#), DecodeError::InvalidJson);
        assert_eq!(err(r#"2["a\x"]"#), DecodeError::InvalidJson);
    }

    #[test]
    fn reserved_event_names() {
        for name in RESERVED_EVENTS {
            assert_eq!(
                err(&format!(r#"2["{name}",1]"#)),
                DecodeError::ReservedEventName
            );
            assert_eq!(
                err(&format!(r#"51-["{name}"]"#)),
                DecodeError::ReservedEventName
            );
        }
        // Escapes do not hide a reserved name; other names are fine.
        assert_eq!(err(r#"2["conn\u0065ct"]"#), DecodeError::ReservedEventName);
        for name in ["error", "Connect", "connect ", "message"] {
            assert_eq!(event(&format!(r#"2["{name}"]"#)).0, name);
        }
    }

    #[test]
    fn ack_data_rules() {
        assert_eq!(err("31"), DecodeError::MissingData);
        assert_eq!(err("31{}"), DecodeError::BadAckData);
        assert_eq!(err("31null"), DecodeError::BadAckData);
        assert_eq!(err("31[1,"), DecodeError::InvalidJson);
        assert_eq!(err("31[] x"), DecodeError::InvalidJson);
    }

    #[test]
    fn placeholder_rules() {
        for (input, why) in [
            (
                r#"51-["a",{"_placeholder":true,"num":1}]"#,
                "num out of range",
            ),
            (r#"51-["a",{"_placeholder":true}]"#, "num missing"),
            (r#"51-["a",{"_placeholder":false,"num":0}]"#, "not true"),
            (r#"51-["a",{"_placeholder":1,"num":0}]"#, "not a boolean"),
            (r#"51-["a",{"_placeholder":"true","num":0}]"#, "a string"),
            (
                r#"51-["a",{"_placeholder":true,"num":0,"x":1}]"#,
                "extra key",
            ),
            (r#"51-["a",{"_placeholder":true,"num":0.0}]"#, "float num"),
            (r#"51-["a",{"_placeholder":true,"num":-1}]"#, "negative num"),
            (r#"51-["a",{"_placeholder":true,"num":"0"}]"#, "string num"),
            (
                r#"51-["a",{"_placeholder":true,"num":0,"num":0}]"#,
                "duplicate key",
            ),
            (
                r#"51-["a",[1,{"x":{"_placeholder":true,"num":3}}]]"#,
                "nested, out of range",
            ),
            (r#"61-1[{"_placeholder":true,"num":1}]"#, "in an ack"),
            (
                r#"51-["a",{"\u005fplaceholder":true,"num":5}]"#,
                "escaped key",
            ),
        ] {
            assert_eq!(err(input), DecodeError::BadPlaceholder, "{why}: {input}");
        }
        // Nested placeholders are found; in non-binary packets these objects are plain data.
        ok(r#"52-["a",[1,{"x":{"_placeholder":true,"num":1}}]]"#);
        ok(r#"2["a",{"_placeholder":true,"num":99}]"#);
        ok(r#"2["a",{"_placeholder":"yes"}]"#);
    }

    #[test]
    fn nesting_limit() {
        // The data array itself is one level.
        assert_eq!(
            event(&format!(r#"2["a",{}]"#, nested(MAX_DEPTH - 1)))
                .1
                .len(),
            1
        );
        assert_eq!(
            err(&format!(r#"2["a",{}]"#, nested(MAX_DEPTH))),
            DecodeError::TooDeep
        );
        let deep_object = "{\"a\":".repeat(MAX_DEPTH - 1) + "1" + &"}".repeat(MAX_DEPTH - 1);
        ok(&format!(r#"2["a",{deep_object}]"#));
        ok(&format!(r#"51-["a",{deep_object}]"#));
        assert_eq!(
            err(&format!(r#"51-["a",[{deep_object}]]"#)),
            DecodeError::TooDeep
        );
        assert_eq!(
            err(&format!("31{}", nested(MAX_DEPTH + 1))),
            DecodeError::TooDeep
        );
        ok(&format!("31{}", nested(MAX_DEPTH)));
        // Brackets inside strings do not count, escaped quotes do not end strings.
        let in_string = format!(r#"2["a","\"{}"]"#, "[".repeat(1000));
        ok(&in_string);
        // Hostile input never recurses.
        assert_eq!(
            err(&format!("2{}", "[".repeat(100_000))),
            DecodeError::TooDeep
        );
        assert_eq!(
            err(&format!("0{}", "{\"a\":".repeat(100_000))),
            DecodeError::TooDeep
        );
    }

    #[test]
    fn depth_scan() {
        assert_eq!(check_depth(&nested(MAX_DEPTH)), Ok(()));
        assert_eq!(
            check_depth(&nested(MAX_DEPTH + 1)),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(
            check_depth(&format!(r#"["\\",{}]"#, nested(MAX_DEPTH - 1))),
            Ok(())
        );
        assert_eq!(
            check_depth(&format!(r#"["\\",{}]"#, nested(MAX_DEPTH))),
            Err(DecodeError::TooDeep)
        );
        // Closing brackets free levels again.
        assert_eq!(check_depth(&nested(MAX_DEPTH).repeat(3)), Ok(()));
    }

    #[test]
    fn whitespace_around_data_is_json_whitespace() {
        assert_eq!(event("2 [\"a\" , 1 ]\n"), ("a".to_owned(), vec!["1"]));
        let input = "0 {\"a\":1} ";
        let Body::Auth(range) = ok(input).body else {
            panic!()
        };
        assert_eq!(&input[range], "{\"a\":1}");
    }
}
