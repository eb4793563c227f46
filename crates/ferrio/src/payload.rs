//! [`Payload`]: the arguments of an event or an acknowledgement, as received.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use ferrio_engine::Utf8Bytes;
use ferrio_protocol::socketio::{self, ArgRanges};
use serde::de::DeserializeOwned;
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

/// The arguments of an event or an acknowledgement, kept as they arrived.
///
/// Nothing is parsed into a value tree until asked: [`Payload::get`] deserializes one
/// argument straight into your type, and a payload serializes back to the same arguments
/// (binary values included), so it can be forwarded, echoed or acknowledged as is.
///
/// ```
/// # fn demo(payload: ferrio::Payload) -> Result<(), ferrio::PayloadError> {
/// let name: String = payload.get(0)?;
/// let count: Option<u32> = payload.get(1)?; // absent arguments read as null
/// # let _ = (name, count); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Payload(Inner);

#[derive(Clone)]
enum Inner {
    /// JSON text, each argument a range of it; binary values are placeholders that index
    /// the attachments.
    Json {
        text: Utf8Bytes,
        args: ArgRanges,
        attachments: Vec<Bytes>,
        /// Every argument is compact JSON (checked by the decoder), so it is written out as
        /// it is.
        compact: bool,
    },
    /// Decoded values (the msgpack parser, or arguments built on the server).
    Values(Vec<rmpv::Value>),
}

/// An argument that could not be deserialized into the requested type.
#[derive(Debug)]
pub struct PayloadError(String);

impl PayloadError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid payload: {}", self.0)
    }
}

impl std::error::Error for PayloadError {}

impl Payload {
    pub(crate) fn json(
        text: Utf8Bytes,
        args: ArgRanges,
        attachments: Vec<Bytes>,
        compact: bool,
    ) -> Self {
        Self(Inner::Json {
            text,
            args,
            attachments,
            compact,
        })
    }

    pub(crate) fn values(values: Vec<rmpv::Value>) -> Self {
        Self(Inner::Values(values))
    }

    /// A payload of one empty object (the handshake auth of a client that sent none).
    pub(crate) fn empty_object() -> Self {
        Self::values(vec![rmpv::Value::Map(Vec::new())])
    }

    /// Arguments built on the server from any serializable sequence (a tuple, a `Vec`...).
    pub fn from_args<A: Serialize + ?Sized>(args: &A) -> Result<Self, PayloadError> {
        match rmpv::ext::to_value(args).map_err(PayloadError::new)? {
            rmpv::Value::Array(values) => Ok(Self::values(values)),
            rmpv::Value::Nil => Ok(Self::values(Vec::new())),
            _ => Err(PayloadError::new(
                "the arguments must serialize as a sequence",
            )),
        }
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        match &self.0 {
            Inner::Json { args, .. } => args.len(),
            Inner::Values(values) => values.len(),
        }
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deserializes the argument at `index`; an absent argument reads as `null`, so
    /// `Option<T>` accepts it.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, PayloadError> {
        match &self.0 {
            Inner::Json {
                text,
                args,
                attachments,
                ..
            } if attachments.is_empty() => {
                serde_json::from_str(json_arg(text, args, index)).map_err(PayloadError::new)
            }
            _ => rmpv::ext::from_value(self.value(index)?).map_err(PayloadError::new),
        }
    }

    /// Deserializes all the arguments as one sequence: a tuple `(A, B)`, a `Vec<T>`...
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        match &self.0 {
            Inner::Json {
                text,
                args,
                attachments,
                ..
            } if attachments.is_empty() => {
                let mut joined = String::with_capacity(text.len() + 2);
                joined.push('[');
                for (i, range) in args.iter().enumerate() {
                    if i > 0 {
                        joined.push(',');
                    }
                    joined.push_str(&text[range.clone()]);
                }
                joined.push(']');
                serde_json::from_str(&joined).map_err(PayloadError::new)
            }
            _ => {
                let values = (0..self.len())
                    .map(|i| self.value(i))
                    .collect::<Result<Vec<_>, _>>()?;
                rmpv::ext::from_value(rmpv::Value::Array(values)).map_err(PayloadError::new)
            }
        }
    }

    /// The argument at `index`, to be sent on as it is (see [`Arg`]).
    pub fn arg(&self, index: usize) -> Option<Arg<'_>> {
        (index < self.len()).then_some(Arg {
            payload: self,
            index,
        })
    }

    /// The argument at `index` as a dynamic value in which binary stays binary.
    fn value(&self, index: usize) -> Result<rmpv::Value, PayloadError> {
        match &self.0 {
            Inner::Json {
                text,
                args,
                attachments,
                ..
            } => {
                let raw = json_arg(text, args, index);
                if attachments.is_empty() {
                    serde_json::from_str(raw).map_err(PayloadError::new)
                } else {
                    socketio::resolve_placeholders(raw, attachments).map_err(PayloadError::new)
                }
            }
            Inner::Values(values) => Ok(values.get(index).cloned().unwrap_or(rmpv::Value::Nil)),
        }
    }
}

/// The JSON text of argument `index`; `null` when there is no such argument.
fn json_arg<'a>(text: &'a Utf8Bytes, args: &[Range<usize>], index: usize) -> &'a str {
    args.get(index).map_or("null", |range| &text[range.clone()])
}

/// One argument of a [`Payload`], serializable as it was received (binary values included).
#[derive(Clone, Copy)]
pub struct Arg<'a> {
    payload: &'a Payload,
    index: usize,
}

impl fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arg").field("index", &self.index).finish()
    }
}

impl Serialize for Arg<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.payload.0 {
            Inner::Json {
                text,
                args,
                attachments,
                compact,
            } if attachments.is_empty() && writes_json::<S>() => {
                // The decoder checked the text when it arrived: written out verbatim, once the
                // client's whitespace (rare) is gone, without being parsed again.
                let raw = json_arg(text, args, self.index);
                if *compact {
                    Verbatim(raw).serialize(serializer)
                } else {
                    Verbatim(&socketio::compact_json(raw)).serialize(serializer)
                }
            }
            Inner::Values(values) => match values.get(self.index) {
                Some(value) => value.serialize(serializer),
                None => serializer.serialize_unit(),
            },
            Inner::Json { .. } => self
                .payload
                .value(self.index)
                .map_err(S::Error::custom)?
                .serialize(serializer),
        }
    }
}

/// Whether `S` is serde_json's serializer, which writes a raw JSON value verbatim. Other
/// serializers (msgpack, a value tree) would see raw JSON as a one-field struct, so they get
/// the argument as a value instead. Only a fast path hangs on this: any serializer not
/// recognised takes the path that is correct for all.
fn writes_json<S: Serializer>() -> bool {
    std::any::type_name::<S>().starts_with("&mut serde_json::ser::Serializer<")
}

/// Valid JSON text that serde_json's serializer writes as it is: the form its own `RawValue`
/// serializes to (a one-field struct under the name serde_json reserves for raw values), so
/// the text is not parsed a second time on the way out. Only ever given to serde_json's
/// serializer ([`writes_json`]); `verbatim_is_written_as_is` below checks that serde_json
/// still writes it so.
struct Verbatim<'a>(&'a str);

/// The struct name and field serde_json's serializer recognises as raw JSON.
const RAW_JSON_TOKEN: &str = "$serde_json::private::RawValue";

impl Serialize for Verbatim<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut raw = serializer.serialize_struct(RAW_JSON_TOKEN, 1)?;
        raw.serialize_field(RAW_JSON_TOKEN, self.0)?;
        raw.end()
    }
}

impl Serialize for Payload {
    /// A sequence of the arguments, so `emit_args`/`ack_args` forward them one for one.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for index in 0..self.len() {
            seq.serialize_element(&Arg {
                payload: self,
                index,
            })?;
        }
        seq.end()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Json {
                text,
                args,
                attachments,
                ..
            } => {
                let args: Vec<&str> = args.iter().map(|r| &text[r.clone()]).collect();
                f.debug_struct("Payload")
                    .field("args", &args)
                    .field("attachments", &attachments.len())
                    .finish()
            }
            Inner::Values(values) => f.debug_struct("Payload").field("args", values).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as the decoder makes it: `compact` when no argument has whitespace.
    fn json(text: &'static str, args: &[Range<usize>]) -> Payload {
        let compact = args
            .iter()
            .all(|r| socketio::compact_json(&text[r.clone()]) == text[r.clone()]);
        Payload::json(
            Utf8Bytes::from_static(text),
            args.iter().cloned().collect(),
            Vec::new(),
            compact,
        )
    }

    #[test]
    fn verbatim_is_written_as_is() {
        // serde_json writes the text without looking at it: this is what would break if
        // serde_json stopped recognising its raw-value form.
        assert_eq!(
            serde_json::to_string(&Verbatim("{ oops")).unwrap(),
            "{ oops"
        );
        assert_eq!(
            serde_json::to_string(&(1, Verbatim(r#"{"a":[1]}"#))).unwrap(),
            r#"[1,{"a":[1]}]"#
        );
    }

    #[test]
    fn get_reads_one_argument_and_absent_is_null() {
        let p = json(r#"["e","a",2]"#, &[5..8, 9..10]);
        assert_eq!(p.len(), 2);
        assert_eq!(p.get::<String>(0).unwrap(), "a");
        assert_eq!(p.get::<u32>(1).unwrap(), 2);
        assert_eq!(p.get::<Option<u32>>(2).unwrap(), None);
        assert!(p.get::<u32>(0).is_err());
    }

    #[test]
    fn deserialize_reads_all_arguments() {
        let p = json(r#"["e","a",2]"#, &[5..8, 9..10]);
        assert_eq!(
            p.deserialize::<(String, u8)>().unwrap(),
            ("a".to_owned(), 2)
        );
        let v = Payload::from_args(&("a", 2)).unwrap();
        assert_eq!(
            v.deserialize::<(String, u8)>().unwrap(),
            ("a".to_owned(), 2)
        );
    }

    #[test]
    fn serializes_back_to_the_same_arguments() {
        let p = json(r#"["e",{"k":[1,2]},"x"]"#, &[5..16, 17..20]);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"[{"k":[1,2]},"x"]"#);
        assert_eq!(serde_json::to_string(&p.arg(1).unwrap()).unwrap(), r#""x""#);
        assert!(p.arg(2).is_none());
    }

    #[test]
    fn forwarded_json_is_compact_but_strings_keep_their_spaces() {
        let text = "[\"e\", { \"a b\" :\t[ 1 ,\n2 ] } ]";
        let p = json(text, std::slice::from_ref(&(6..text.len() - 2)));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"[{"a b":[1,2]}]"#);
    }

    #[test]
    fn json_arguments_serialize_as_values_for_other_formats() {
        let p = json(r#"["e",{"k":[1,"x"]},"s"]"#, &[5..18, 19..22]);
        let value = rmpv::ext::to_value(&p).unwrap();
        assert_eq!(
            value,
            rmpv::Value::Array(vec![
                rmpv::Value::Map(vec![(
                    "k".into(),
                    rmpv::Value::Array(vec![1.into(), "x".into()])
                )]),
                "s".into(),
            ])
        );
        // serde_json itself keeps the fast path, and the same result.
        assert!(writes_json::<&mut serde_json::Serializer<Vec<u8>>>());
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"[{"k":[1,"x"]},"s"]"#);
    }

    #[test]
    fn binary_arguments_resolve_their_placeholders() {
        let text = r#"["e",{"b":{"_placeholder":true,"num":0}}]"#;
        let p = Payload::json(
            Utf8Bytes::from_static(text),
            std::iter::once(5..text.len() - 1).collect(),
            vec![Bytes::from_static(b"\x01\x02")],
            true,
        );
        #[derive(serde::Deserialize)]
        struct B {
            b: Bytes,
        }
        assert_eq!(p.get::<B>(0).unwrap().b, Bytes::from_static(b"\x01\x02"));
    }
}
