//! The Engine.IO error table: every refused HTTP request answers with one of these.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::body::ResponseBody;

/// Why the engine refused an HTTP request, with its protocol code.
///
/// Each variant becomes its [`status`](Self::status) with `Content-Type: application/json`
/// and the body `{"code":N,"message":"..."}`. Codes 0 to 5 are the Engine.IO protocol's own
/// table. Codes 6 to 9 are Ferrio's, for the limits the protocol does not define; they follow
/// the table rather than reuse one of its codes, whose meaning a client may act on (code 3
/// would tell it that its request was malformed when the server is only busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// Code 0: the transport is missing, unknown or not enabled.
    TransportUnknown,
    /// Code 1: no session has this id (or it has closed).
    SessionIdUnknown,
    /// Code 2: a handshake (no sid) with a method other than GET.
    BadHandshakeMethod,
    /// Code 3: the request does not fit the session or the protocol.
    BadRequest,
    /// Code 4: the allow-request hook refused the request.
    Forbidden,
    /// Code 5: `EIO` is missing, not a number, or not 4.
    UnsupportedProtocolVersion,
    /// Code 6, status `503`: a handshake while
    /// [`max_sessions`](crate::EngineIoConfig::max_sessions) sessions are open.
    TooManySessions,
    /// Code 7, status `429` with `Retry-After: 1`: a handshake over
    /// [`max_handshakes_per_second`](crate::EngineIoConfig::max_handshakes_per_second).
    TooManyHandshakes,
    /// Code 8, status `431`: more headers than
    /// [`max_header_count`](crate::EngineIoConfig::max_header_count) or
    /// [`max_header_bytes`](crate::EngineIoConfig::max_header_bytes) allow. The connection
    /// is closed after the answer.
    HeadersTooLarge,
    /// Code 9, status `408`: a polling POST whose body did not arrive within
    /// [`post_body_timeout`](crate::EngineIoConfig::post_body_timeout). The connection is
    /// closed after the answer.
    RequestTimeout,
}

impl EngineError {
    /// The numeric code of the protocol's error table.
    pub const fn code(self) -> u8 {
        match self {
            Self::TransportUnknown => 0,
            Self::SessionIdUnknown => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
            Self::TooManySessions => 6,
            Self::TooManyHandshakes => 7,
            Self::HeadersTooLarge => 8,
            Self::RequestTimeout => 9,
        }
    }

    /// The message of the protocol's error table.
    pub const fn message(self) -> &'static str {
        match self {
            Self::TransportUnknown => "Transport unknown",
            Self::SessionIdUnknown => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
            Self::TooManySessions => "Too many sessions",
            Self::TooManyHandshakes => "Too many handshakes",
            Self::HeadersTooLarge => "Request header fields too large",
            Self::RequestTimeout => "Request timeout",
        }
    }

    /// The HTTP status: 400 for codes 0 to 3 and 5, 403 for `Forbidden`, and the status
    /// each limit names (503, 429, 431, 408).
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManySessions => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyHandshakes => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn into_response<B>(self) -> http::Response<ResponseBody<B>> {
        let body = format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self.code(),
            self.message()
        );
        let mut res = http::Response::new(ResponseBody::full(Bytes::from(body)));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            Self::TooManyHandshakes => {
                // The bucket holds a second's worth, so a token is back within a second.
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // What is left of the request (headers of no use, a body still arriving) is
            // not worth reading: the connection ends after the answer.
            Self::HeadersTooLarge | Self::RequestTimeout => {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        res
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message(), self.code())
    }
}

impl std::error::Error for EngineError {}
