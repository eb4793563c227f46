//! The [`Io`] extractor for axum handlers.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::io::Io;

/// The request did not pass through a [`SocketIoLayer`](crate::SocketIoLayer): a
/// programming error, answered with `500`.
#[derive(Debug, Clone, Copy)]
pub struct MissingIo;

impl std::fmt::Display for MissingIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Socket.IO layer is missing: add `SocketIoLayer` to the router")
    }
}

impl std::error::Error for MissingIo {}

impl IntoResponse for MissingIo {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Io {
    type Rejection = MissingIo;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MissingIo> {
        parts.extensions.get::<Io>().cloned().ok_or(MissingIo)
    }
}
