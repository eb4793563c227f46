//! Bounded parsing of msgpack and JSON, and the small accessors the message decoders share.

use ferrio::adapter::Room;
use rmpv::Value;

use super::{DecodeError, Limits};

/// A message decoded without knowing its type yet.
pub(super) enum Dynamic {
    Json(serde_json::Value),
    Msgpack(Value),
}

/// JSON when the first byte is `{`, msgpack otherwise: the Node adapter's own rule.
pub(super) fn decode_dynamic(bytes: &[u8], limits: &Limits) -> Result<Dynamic, DecodeError> {
    if bytes.first() == Some(&b'{') {
        read_json(bytes, limits).map(Dynamic::Json)
    } else {
        read_msgpack(bytes, limits).map(Dynamic::Msgpack)
    }
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if bytes.len() > limits.message_size() {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max: limits.message_size(),
        });
    }
    Ok(())
}

/// One msgpack value filling all of `bytes`, nested at most `limits.depth()` levels.
pub(super) fn read_msgpack(bytes: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    check_size(bytes, limits)?;
    let mut rest = bytes;
    // rmpv spends two levels on an array or map and up to three on a string, bin or ext:
    // a coarse guard that keeps its recursion bounded. The exact count follows.
    let rmpv_depth = limits.depth().saturating_mul(2).saturating_add(3);
    let value =
        rmpv::decode::read_value_with_max_depth(&mut rest, rmpv_depth).map_err(
            |err| match err {
                rmpv::decode::Error::DepthLimitExceeded => DecodeError::TooDeep {
                    max: limits.depth(),
                },
                err => DecodeError::Msgpack(err),
            },
        )?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    if container_depth(&value) > limits.depth() {
        return Err(DecodeError::TooDeep {
            max: limits.depth(),
        });
    }
    Ok(value)
}

/// How deeply arrays and maps nest in `value`; recursion is bounded by the decoder's guard.
fn container_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(container_depth).max().unwrap_or(0),
        Value::Map(entries) => {
            let deepest = entries
                .iter()
                .map(|(k, v)| container_depth(k).max(container_depth(v)));
            1 + deepest.max().unwrap_or(0)
        }
        _ => 0,
    }
}

/// A JSON document, refused before parsing when nested deeper than `limits.depth()`.
pub(super) fn read_json(bytes: &[u8], limits: &Limits) -> Result<serde_json::Value, DecodeError> {
    check_size(bytes, limits)?;
    check_json_depth(bytes, limits.depth())?;
    serde_json::from_slice(bytes).map_err(DecodeError::Json)
}

/// Counts bracket nesting outside strings; cheaper than parsing and needs no recursion.
fn check_json_depth(bytes: &[u8], max: usize) -> Result<(), DecodeError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(DecodeError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The value of `key` in a msgpack map with string keys (the last one wins, as in
/// JavaScript); `None` when absent or when `map` is not a map.
pub(super) fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .rev()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

pub(super) fn get_str(map: &Value, key: &'static str) -> Result<String, DecodeError> {
    get(map, key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(DecodeError::Shape(key))
}

/// A room name; JavaScript lets applications use numbers, which the Node adapter stringifies.
pub(super) fn room(value: &Value) -> Option<Room> {
    match value {
        Value::String(s) => s.as_str().map(|s| Room::Owned(s.to_owned())),
        Value::Integer(n) => Some(Room::Owned(n.to_string())),
        Value::F64(f) if f.is_finite() => Some(Room::Owned(f.to_string())),
        Value::F32(f) if f.is_finite() => Some(Room::Owned(f.to_string())),
        _ => None,
    }
}

/// A list of rooms; absent or `nil` is empty.
pub(super) fn rooms(value: Option<&Value>, what: &'static str) -> Result<Vec<Room>, DecodeError> {
    match value {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| room(item).ok_or(DecodeError::Shape(what)))
            .collect(),
        Some(_) => Err(DecodeError::Shape(what)),
    }
}

/// JSON to msgpack, as `notepack.io` would encode the parsed object. Recursion is bounded by
/// the depth check every JSON input passes first.
pub(super) fn json_to_msgpack(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(json_to_msgpack).collect())
        }
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// msgpack to JSON, for the JSON-shaped messages that arrived as msgpack. Binary becomes an
/// array of numbers; map keys that are not strings are refused.
pub(super) fn msgpack_to_json(value: &Value) -> Result<serde_json::Value, DecodeError> {
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into(),
            (None, Some(i)) => i.into(),
            (None, None) => return Err(DecodeError::Shape("integer out of range")),
        },
        Value::F32(f) => float(f64::from(*f))?,
        Value::F64(f) => float(*f)?,
        Value::String(s) => match s.as_str() {
            Some(s) => s.into(),
            None => return Err(DecodeError::Shape("string is not UTF-8")),
        },
        Value::Binary(bytes) => bytes.iter().map(|&b| serde_json::Value::from(b)).collect(),
        Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(msgpack_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                let key = k
                    .as_str()
                    .ok_or(DecodeError::Shape("map key is not a string"))?;
                map.insert(key.to_owned(), msgpack_to_json(v)?);
            }
            serde_json::Value::Object(map)
        }
        Value::Ext(..) => return Err(DecodeError::Shape("msgpack extension in a JSON message")),
    })
}

fn float(f: f64) -> Result<serde_json::Value, DecodeError> {
    serde_json::Number::from_f64(f)
        .map(serde_json::Value::Number)
        .ok_or(DecodeError::Shape("number is not finite"))
}

/// Encodes `value` as msgpack; writing to a `Vec` cannot fail.
pub(super) fn encode_msgpack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec<u8> never returns an I/O error.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_ignores_brackets_in_strings() {
        assert!(check_json_depth(br#"{"a":"[[[[[[\"[["}"#, 1).is_ok());
        assert!(matches!(
            check_json_depth(b"[[[]]]", 2),
            Err(DecodeError::TooDeep { max: 2 })
        ));
    }

    #[test]
    fn msgpack_depth_is_counted_in_containers() {
        // [[["x"]]]: three arrays.
        let bytes = [0x91, 0x91, 0x91, 0xa1, b'x'];
        let r = read_msgpack(&bytes, &Limits::default().max_depth(3));
        assert!(r.is_ok(), "{r:?}");
        assert!(matches!(
            read_msgpack(&bytes, &Limits::default().max_depth(2)),
            Err(DecodeError::TooDeep { .. })
        ));
        // [[[[]]]]: four arrays, nothing inside.
        let empty = [0x91, 0x91, 0x91, 0x90];
        assert!(read_msgpack(&empty, &Limits::default().max_depth(3)).is_err());
        assert!(read_msgpack(&empty, &Limits::default().max_depth(4)).is_ok());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(matches!(
            read_msgpack(&[0xc0, 0xc0], &Limits::default()),
            Err(DecodeError::TrailingBytes(1))
        ));
    }
}
