//! Binary placeholders: `{"_placeholder":true,"num":<i>}` stands for attachment `i`.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use rmpv::Value;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{DecodeError, check_depth};

/// What placeholders are checked against.
#[derive(Debug, Clone, Copy)]
pub(super) enum Attachments<'b> {
    /// Only the announced number of attachments: placeholders are checked, and read as nil.
    Count(usize),
    /// The attachments themselves: placeholders become their binary values.
    Buffers(&'b [Bytes]),
}

impl Attachments<'_> {
    fn get(self, num: usize) -> Option<Value> {
        match self {
            Self::Count(n) => (num < n).then_some(Value::Nil),
            Self::Buffers(buffers) => buffers.get(num).map(|b| Value::Binary(b.to_vec())),
        }
    }
}

/// The placeholders of a binary packet's argument replaced by their attachments, as a dynamic
/// value.
///
/// JSON numbers become rmpv integers (or `F64` when not integers), objects `Map`s with `String`
/// keys, and placeholders `Binary`. Every object with a `_placeholder` key must be exactly a
/// placeholder (`_placeholder` is `true`, `num` an integer below `attachments.len()`, no other
/// key), and each attachment may be named once (an encoder gives every buffer its own number;
/// naming one many times would multiply it), else [`DecodeError::BadPlaceholder`].
///
/// ```
/// # use ferrio_protocol::socketio::resolve_placeholders;
/// let attachments = [bytes::Bytes::from_static(b"\x01\x02")];
/// let value = resolve_placeholders(r#"{"file":{"_placeholder":true,"num":0}}"#, &attachments)
///     .unwrap();
/// assert_eq!(value["file"], rmpv::Value::Binary(vec![1, 2]));
/// ```
pub fn resolve_placeholders(json: &str, attachments: &[Bytes]) -> Result<Value, DecodeError> {
    parse(json, Attachments::Buffers(attachments))
}

/// Parses one JSON value, checking (and resolving) its placeholders.
pub(super) fn parse(json: &str, attachments: Attachments<'_>) -> Result<Value, DecodeError> {
    check_depth(json)?;
    let bad_placeholder = Cell::new(false);
    let used = Cell::new(0u64);
    let seed = ValueSeed {
        attachments,
        bad_placeholder: &bad_placeholder,
        used: &used,
    };
    let mut de = serde_json::Deserializer::from_str(json);
    seed.deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|_| {
            if bad_placeholder.get() {
                DecodeError::BadPlaceholder
            } else {
                DecodeError::InvalidJson
            }
        })
}

/// Builds a [`Value`] from any JSON value; a bad placeholder sets the flag before failing, so
/// the caller can tell it from a syntax error.
#[derive(Clone, Copy)]
struct ValueSeed<'s> {
    attachments: Attachments<'s>,
    bad_placeholder: &'s Cell<bool>,
    /// The attachments named so far, one bit each (there are at most `MAX_ATTACHMENTS`).
    used: &'s Cell<u64>,
}

impl ValueSeed<'_> {
    fn placeholder<E: de::Error>(self, entries: &[(Value, Value)]) -> Result<Value, E> {
        let (mut flag, mut num) = (None, None);
        if let [(k1, v1), (k2, v2)] = entries {
            for (key, value) in [(k1, v1), (k2, v2)] {
                match key.as_str() {
                    Some("_placeholder") => flag = Some(value),
                    Some("num") => num = Some(value),
                    _ => {}
                }
            }
        }
        let resolved = match (flag, num) {
            (Some(Value::Boolean(true)), Some(Value::Integer(n))) => n
                .as_u64()
                .filter(|&n| n < 64 && self.used.get() & (1 << n) == 0)
                .and_then(|n| {
                    self.used.set(self.used.get() | (1 << n));
                    usize::try_from(n).ok()
                })
                .and_then(|n| self.attachments.get(n)),
            _ => None,
        };
        resolved.ok_or_else(|| {
            self.bad_placeholder.set(true);
            E::custom("invalid placeholder")
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        let mut is_placeholder = false;
        while let Some(key) = map.next_key::<String>()? {
            is_placeholder |= key == "_placeholder";
            let value = map.next_value_seed(self)?;
            entries.push((Value::from(key), value));
        }
        if is_placeholder {
            self.placeholder(&entries)
        } else {
            Ok(Value::Map(entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::MAX_DEPTH;

    fn buffers() -> Vec<Bytes> {
        vec![Bytes::from_static(b"\x00"), Bytes::from_static(b"\x01\x02")]
    }

    #[test]
    fn placeholders_become_binary() {
        let value = resolve_placeholders(
            r#"[{"_placeholder":true,"num":1},{"a":{"num":0,"_placeholder":true}},"x"]"#,
            &buffers(),
        )
        .unwrap();
        assert_eq!(
            value,
            Value::Array(vec![
                Value::Binary(vec![1, 2]),
                Value::Map(vec![(Value::from("a"), Value::Binary(vec![0]))]),
                Value::from("x"),
            ])
        );
    }

    #[test]
    fn json_values_map_to_rmpv() {
        let value = resolve_placeholders(
            r#"{"u":18446744073709551615,"i":-5,"f":1.5,"big":1e30,"s":"é\n","n":null,"b":false,"a":[]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            value,
            Value::Map(vec![
                (Value::from("u"), Value::from(u64::MAX)),
                (Value::from("i"), Value::from(-5)),
                (Value::from("f"), Value::F64(1.5)),
                (Value::from("big"), Value::F64(1e30)),
                (Value::from("s"), Value::from("é\n")),
                (Value::from("n"), Value::Nil),
                (Value::from("b"), Value::Boolean(false)),
                (Value::from("a"), Value::Array(vec![])),
            ])
        );
    }

    #[test]
    fn bad_placeholders() {
        for json in [
            r#"{"_placeholder":true,"num":2}"#,
            r#"{"_placeholder":true}"#,
            r#"{"_placeholder":false,"num":0}"#,
            r#"{"_placeholder":true,"num":0,"extra":null}"#,
            r#"{"_placeholder":true,"num":1.0}"#,
            r#"{"_placeholder":true,"num":-1}"#,
            r#"{"_placeholder":true,"_placeholder":true}"#,
            r#"[[{"_placeholder":null,"num":0}]]"#,
        ] {
            assert_eq!(
                resolve_placeholders(json, &buffers()),
                Err(DecodeError::BadPlaceholder),
                "{json}"
            );
        }
        assert_eq!(
            resolve_placeholders(r#"{"_placeholder":true,"num":0}"#, &[]),
            Err(DecodeError::BadPlaceholder)
        );
    }

    #[test]
    fn invalid_json_and_depth() {
        assert_eq!(
            resolve_placeholders("[1,", &[]),
            Err(DecodeError::InvalidJson)
        );
        assert_eq!(
            resolve_placeholders("1 2", &[]),
            Err(DecodeError::InvalidJson)
        );
        assert_eq!(resolve_placeholders("", &[]), Err(DecodeError::InvalidJson));
        let nested = |d: usize| "[".repeat(d) + &"]".repeat(d);
        // MAX_DEPTH levels parse, although serde_json alone stops at 127.
        assert!(resolve_placeholders(&nested(MAX_DEPTH), &[]).is_ok());
        assert_eq!(
            resolve_placeholders(&nested(MAX_DEPTH + 1), &[]),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(
            resolve_placeholders(&"[".repeat(100_000), &[]),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn count_mode_checks_without_buffers() {
        assert_eq!(
            parse(r#"[{"_placeholder":true,"num":2}]"#, Attachments::Count(3)),
            Ok(Value::Array(vec![Value::Nil]))
        );
        assert_eq!(
            parse(r#"[{"_placeholder":true,"num":3}]"#, Attachments::Count(3)),
            Err(DecodeError::BadPlaceholder)
        );
    }
}
