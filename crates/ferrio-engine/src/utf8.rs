//! [`Utf8Bytes`]: text that shares its buffer instead of copying it.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};

use bytes::Bytes;
use tokio_tungstenite::tungstenite;

/// UTF-8 text in a reference-counted buffer: cloning never copies, and text received from a
/// client reaches the handler without being copied out of the frame or request body.
///
/// A part of it ([`slice`](Self::slice)) shares the same buffer and is not checked again: a
/// frame's text is checked for UTF-8 once, when it arrives, however many pieces of it (the
/// packet without its type digit, an event name) are passed on.
///
/// Its own type (rather than the WebSocket library's) so that the engine's public API does not
/// change when that library does.
#[derive(Clone, Default)]
pub struct Utf8Bytes {
    /// The whole checked buffer.
    buf: tungstenite::Utf8Bytes,
    /// The part of `buf` this text is: both ends on char boundaries.
    start: usize,
    end: usize,
}

impl Utf8Bytes {
    /// Text from a `'static` string, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self {
            buf: tungstenite::Utf8Bytes::from_static(text),
            start: 0,
            end: text.len(),
        }
    }

    /// All of a checked buffer.
    pub(crate) fn whole(buf: tungstenite::Utf8Bytes) -> Self {
        let end = buf.len();
        Self { buf, start: 0, end }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // In bounds and on char boundaries by construction, so this never falls back.
        self.buf
            .as_str()
            .get(self.start..self.end)
            .unwrap_or_default()
    }

    /// The part of the text in `range` (byte offsets into [`as_str`](Self::as_str)), sharing
    /// the buffer; `None` when the range is out of bounds or splits a character.
    pub fn slice(&self, range: Range<usize>) -> Option<Self> {
        let text = self.as_str();
        text.get(range.clone())?;
        Some(Self {
            buf: self.buf.clone(),
            start: self.start + range.start,
            end: self.start + range.end,
        })
    }
}

impl PartialEq for Utf8Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Utf8Bytes {}

impl PartialOrd for Utf8Bytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf8Bytes {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self::whole(text.into())
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self::whole(text.into())
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks that the bytes are UTF-8; no copy.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        tungstenite::Utf8Bytes::try_from(bytes).map(Self::whole)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        Bytes::from(text.buf).slice(text.start..text.end)
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_the_text() {
        let text = Utf8Bytes::from("héllo");
        assert_eq!(text, "héllo");
        assert_eq!(text.len(), 6);
        assert_eq!(
            Bytes::from(text.clone()),
            Bytes::from_static("héllo".as_bytes())
        );
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static(b"ok")).unwrap(),
            "ok"
        );
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
        assert_eq!(format!("{text} {text:?}"), "héllo \"héllo\"");
    }

    #[test]
    fn slices_share_the_buffer_and_respect_char_boundaries() {
        let text = Utf8Bytes::from("4héllo");
        let tail = text.slice(1..7).unwrap();
        assert_eq!(tail, "héllo");
        assert_eq!(tail.slice(1..3).unwrap(), "é");
        assert!(tail.slice(1..2).is_none(), "splits é");
        assert!(tail.slice(0..7).is_none(), "out of bounds");
        assert_eq!(
            Bytes::from(tail.clone()),
            Bytes::from_static("héllo".as_bytes())
        );
        // Equal, ordered and hashed as text, whatever buffer it sits in.
        assert_eq!(tail, Utf8Bytes::from("héllo"));
        assert!(tail.slice(0..1).unwrap() < Utf8Bytes::from_static("i"));
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(
            state.hash_one(&tail),
            state.hash_one(Utf8Bytes::from("héllo"))
        );
    }
}
