//! The Engine.IO error table: every refused HTTP request answers with one of these.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::body::ResponseBody;

/// Why the engine refused an HTTP request, with its protocol code.
///
/// Each variant becomes `400` (`403` for [`Forbidden`](Self::Forbidden)) with
/// `Content-Type: application/json` and the body `{"code":N,"message":"..."}`.
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
        }
    }

    /// The HTTP status: 403 for `Forbidden`, 400 otherwise.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
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
        res
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message(), self.code())
    }
}

impl std::error::Error for EngineError {}
