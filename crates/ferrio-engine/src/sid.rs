//! Session ids: 15 bytes from a CSPRNG, written as 20 characters of URL-safe base64.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// An Engine.IO session id.
///
/// Always 20 characters of the URL-safe base64 alphabet, so it is stored inline and copied
/// freely; a string of any other shape can never name a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; Sid::LEN]);

impl Sid {
    /// The length of every session id, in characters.
    pub const LEN: usize = 20;

    /// A new random id from the thread-local CSPRNG.
    pub fn random() -> Self {
        let mut raw = [0u8; 15];
        rand::rng().fill_bytes(&mut raw);
        let mut out = [0u8; Self::LEN];
        // 15 bytes encode to exactly 20 characters without padding.
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("15 bytes always encode to 20 base64 characters");
        debug_assert_eq!(written, Self::LEN);
        Self(out)
    }

    /// Parses an id received from a peer; `None` unless it has the exact shape of a [`Sid`].
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; Self::LEN] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            .then_some(Self(bytes))
    }

    /// A new id that starts with `prefix`, the rest random: at least 12 random characters
    /// (72 bits) stay, as [`SidPrefix`] is at most 8 characters long.
    pub fn random_with_prefix(prefix: &SidPrefix) -> Self {
        let mut sid = Self::random();
        let len = prefix.0.len();
        sid.0[..len].copy_from_slice(prefix.0.as_bytes());
        sid
    }

    /// Whether the id starts with `prefix`.
    pub fn has_prefix(&self, prefix: &SidPrefix) -> bool {
        self.0.starts_with(prefix.0.as_bytes())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII from the URL-safe alphabet is ever stored.
        std::str::from_utf8(&self.0).expect("a Sid holds only ASCII")
    }
}

/// The first characters of every session id of one engine ([`EngineIoConfig::sid_prefix`]):
/// 1 to 8 characters of the URL-safe base64 alphabet.
///
/// [`EngineIoConfig::sid_prefix`]: crate::EngineIoConfig::sid_prefix
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SidPrefix(String);

impl SidPrefix {
    /// The longest prefix.
    pub const MAX_LEN: usize = 8;

    /// `prefix`, when it is 1 to 8 URL-safe characters (`A-Z a-z 0-9 - _`).
    pub fn new(prefix: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_LEN).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(prefix.to_owned()))
    }

    /// The prefix as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl std::str::FromStr for Sid {
    type Err = InvalidSid;

    /// The same as [`Sid::parse`], for `"...".parse::<Sid>()`.
    fn from_str(s: &str) -> Result<Self, InvalidSid> {
        Self::parse(s).ok_or(InvalidSid)
    }
}

/// A string that does not have the shape of a [`Sid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSid;

impl fmt::Display for InvalidSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a session or socket id (20 URL-safe base64 characters)")
    }
}

impl std::error::Error for InvalidSid {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_twenty_url_safe_characters_and_differ() {
        let a = Sid::random();
        let b = Sid::random();
        assert_eq!(a.as_str().len(), 20);
        assert_ne!(a, b);
        assert_eq!(Sid::parse(a.as_str()), Some(a));
    }

    #[test]
    fn parse_rejects_other_shapes() {
        assert_eq!(Sid::parse("__proto__"), None);
        assert_eq!(Sid::parse(&"a".repeat(2048)), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa="), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaé"), None);
        assert!(Sid::parse("aaaaaaaaaa-_AAAAA999").is_some());
        assert_eq!("__proto__".parse::<Sid>(), Err(InvalidSid));
        assert_eq!(
            "aaaaaaaaaa-_AAAAA999".parse::<Sid>().ok(),
            Sid::parse("aaaaaaaaaa-_AAAAA999")
        );
    }
}
