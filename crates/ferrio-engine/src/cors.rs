//! Cross-origin rules for the engine's own responses.
//!
//! Browsers send `Origin` with every cross-origin poll and WebSocket handshake. The engine
//! answers those itself (it does not rely on an outer CORS layer) because a refused origin is
//! part of the protocol's error table: `400` with code 3.

use std::fmt;

use http::{HeaderMap, HeaderValue, Method, header};

/// Which origins may reach the engine from a browser.
///
/// The default, [`Cors::disabled`], adds no CORS headers and checks no origin: browsers then let
/// only same-origin pages read polling responses, but they do not restrict WebSocket by
/// origin at all, so any page can open a WebSocket session carrying the user's cookies. An
/// application that authenticates by cookie should use [`Cors::allow_origins`], which also
/// refuses WebSocket handshakes from other origins.
#[derive(Clone, Default)]
pub struct Cors {
    policy: Policy,
}

#[derive(Clone, Default)]
enum Policy {
    #[default]
    Disabled,
    AnyOrigin,
    Origins(Vec<HeaderValue>),
}

impl Cors {
    /// No CORS headers, no origin check (the default).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Every origin is allowed, with credentials. Use it only when any page on the web may
    /// connect (public test servers, local development).
    pub fn any_origin() -> Self {
        Self {
            policy: Policy::AnyOrigin,
        }
    }

    /// Only these origins (exact `scheme://host[:port]` strings) are allowed; a request from any
    /// other origin is refused with `400` code 3 (a WebSocket handshake included). Strings that
    /// are not valid header values are ignored.
    pub fn allow_origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = origins
            .into_iter()
            .filter_map(|o| HeaderValue::from_str(o.as_ref()).ok())
            .collect();
        Self {
            policy: Policy::Origins(list),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        !matches!(self.policy, Policy::Disabled)
    }

    /// Checks the request's `Origin`. `Err` means refuse with code 3; `Ok(Some(origin))` is the
    /// origin to echo in the response headers.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<Option<HeaderValue>, ()> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(None);
        };
        // A header value the HTTP parser let through may still hold bytes no origin can have.
        if origin.to_str().is_err() {
            return Err(());
        }
        match &self.policy {
            Policy::Disabled => Ok(None),
            Policy::AnyOrigin => Ok(Some(origin.clone())),
            Policy::Origins(list) if list.contains(origin) => Ok(Some(origin.clone())),
            Policy::Origins(_) => Err(()),
        }
    }

    /// Adds the CORS headers of an allowed request to a response.
    pub(crate) fn apply(origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// Adds the extra headers of a preflight answer.
    pub(crate) fn apply_preflight(request: &HeaderMap, headers: &mut HeaderMap) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }

    pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }
}

impl fmt::Debug for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Policy::Disabled => f.write_str("Cors::Disabled"),
            Policy::AnyOrigin => f.write_str("Cors::AnyOrigin"),
            Policy::Origins(list) => f.debug_tuple("Cors::Origins").field(list).finish(),
        }
    }
}
