//! [`Utf8Bytes`]: text that shares its buffer instead of copying it.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use tokio_tungstenite::tungstenite;

/// UTF-8 text in a reference-counted buffer: cloning never copies, and text received from a
/// client reaches the handler without being copied out of the frame or request body.
///
/// Its own type (rather than the WebSocket library's) so that the engine's public API does not
/// change when that library does.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(pub(crate) tungstenite::Utf8Bytes);

impl Utf8Bytes {
    /// Text from a `'static` string, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(tungstenite::Utf8Bytes::from_static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
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
        Self(text.into())
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks that the bytes are UTF-8; no copy.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        tungstenite::Utf8Bytes::try_from(bytes).map(Self)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0.into()
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
}
