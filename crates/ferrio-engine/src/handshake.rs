//! What the request that opened a session carried, copied out of it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// What the request that opened a session carried.
///
/// The URI and headers are kept as the few bytes they hold, in one buffer, and become a
/// [`Uri`] and a [`HeaderMap`] on first access: most sessions never look at them, and a
/// header map costs several times the bytes of its headers (about 0.6 KB per idle session).
#[derive(Clone)]
pub struct Handshake {
    /// The URI, then one `name:value\n` line per header (values never hold a `\n`).
    raw: Bytes,
    uri_len: usize,
    parsed: OnceLock<Box<(Uri, HeaderMap)>>,
    remote_addr: Option<SocketAddr>,
    issued: SystemTime,
}

impl Handshake {
    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parsed().1
    }
    /// The request URI (path and query).
    pub fn uri(&self) -> &Uri {
        &self.parsed().0
    }
    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri().query()
    }
    /// The peer's address, when the server recorded it: axum's `ConnectInfo<SocketAddr>`
    /// (feature `axum`), or else a `SocketAddr` in the request's extensions.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
    /// When the handshake was received.
    pub fn issued_at(&self) -> SystemTime {
        self.issued
    }

    fn parsed(&self) -> &(Uri, HeaderMap) {
        self.parsed.get_or_init(|| {
            // Both were valid when copied, so parsing them again succeeds; the fallbacks
            // only keep a bug from becoming a panic.
            let uri = Uri::from_maybe_shared(self.raw.slice(..self.uri_len)).unwrap_or_default();
            let lines = self.raw.slice(self.uri_len..);
            let mut headers =
                HeaderMap::with_capacity(lines.iter().filter(|&&b| b == b'\n').count());
            let mut rest = &lines[..];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                let line = &rest[..end];
                let start = lines.len() - rest.len();
                rest = &rest[end + 1..];
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    continue;
                };
                let value = lines.slice(start + colon + 1..start + end);
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_maybe_shared(value),
                ) {
                    headers.append(name, value);
                }
            }
            Box::new((uri, headers))
        })
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("headers", self.headers())
            .field("uri", self.uri())
            .field("remote_addr", &self.remote_addr)
            .field("issued", &self.issued)
            .finish()
    }
}

/// The peer's address that axum records with `into_make_service_with_connect_info`.
#[cfg(feature = "axum")]
fn connect_info(parts: &http::request::Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

#[cfg(not(feature = "axum"))]
fn connect_info(_: &http::request::Parts) -> Option<SocketAddr> {
    None
}

/// The handshake of a new session, from its request.
pub(crate) fn handshake_info(parts: &http::request::Parts) -> Handshake {
    let remote_addr = connect_info(parts).or_else(|| parts.extensions.get::<SocketAddr>().copied());
    // hyper parses headers and URI without copying them, as slices of its connection's read
    // buffer (8 KiB or more). Cloning them would keep that whole buffer alive for as long as
    // the session lives; copying the few bytes they hold keeps a session small.
    let uri = parts.uri.to_string();
    let len = uri.len()
        + parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum::<usize>();
    let mut raw = Vec::with_capacity(len);
    raw.extend_from_slice(uri.as_bytes());
    for (name, value) in &parts.headers {
        raw.extend_from_slice(name.as_str().as_bytes());
        raw.push(b':');
        raw.extend_from_slice(value.as_bytes());
        raw.push(b'\n');
    }
    Handshake {
        raw: Bytes::from(raw),
        uri_len: uri.len(),
        parsed: OnceLock::new(),
        remote_addr,
        issued: SystemTime::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_headers_come_back_as_they_were_sent() {
        let (parts, ()) = http::Request::get("/engine.io/?EIO=4&transport=websocket&x=a:b")
            .header("host", "example.com")
            .header("x-many", "one")
            .header("x-many", "two: with colon")
            .header("x-empty", "")
            .header(
                "x-obs",
                HeaderValue::from_bytes(b"caf\xc3\xa9\tx").expect("valid value"),
            )
            .body(())
            .expect("valid request")
            .into_parts();
        let handshake = handshake_info(&parts);
        assert_eq!(handshake.uri(), &parts.uri);
        assert_eq!(handshake.query(), Some("EIO=4&transport=websocket&x=a:b"));
        assert_eq!(handshake.headers(), &parts.headers);
        let many: Vec<_> = handshake.headers().get_all("x-many").iter().collect();
        assert_eq!(many, ["one", "two: with colon"]);
        assert_eq!(handshake.clone().headers(), &parts.headers);
    }

    #[test]
    fn a_request_without_headers_has_an_empty_map() {
        let (parts, ()) = http::Request::get("http://example.com/p?q")
            .body(())
            .expect("valid request")
            .into_parts();
        let handshake = handshake_info(&parts);
        assert!(handshake.headers().is_empty());
        assert_eq!(handshake.uri(), &parts.uri);
    }
}
