//! What the request that opened a session carried, copied out of it.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Uri};

/// What the request that opened a session carried.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub(crate) headers: HeaderMap,
    pub(crate) uri: Uri,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) issued: SystemTime,
}

impl Handshake {
    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The request URI (path and query).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }
    /// The peer's address, when the server recorded it (axum's `ConnectInfo<SocketAddr>`).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
    /// When the handshake was received.
    pub fn issued_at(&self) -> SystemTime {
        self.issued
    }
}

/// The handshake of a new session, from its request.
pub(crate) fn handshake_info(parts: &http::request::Parts) -> Handshake {
    let remote_addr = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
        .or_else(|| parts.extensions.get::<SocketAddr>().copied());
    // hyper parses headers and URI without copying them, as slices of its connection's read
    // buffer (8 KiB or more). Cloning them would keep that whole buffer alive for as long as
    // the session lives; copying the few bytes they hold keeps a session small.
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
            Some((name.clone(), value))
        })
        .collect();
    let uri = parts
        .uri
        .to_string()
        .parse()
        .unwrap_or_else(|_| parts.uri.clone());
    Handshake {
        headers,
        uri,
        remote_addr,
        issued: SystemTime::now(),
    }
}
