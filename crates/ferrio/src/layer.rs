//! The tower triple: [`SocketIoLayer`] -> [`SocketIoService`] -> [`ResponseFuture`].

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferrio_engine::{EngineIoLayer, EngineIoService, ResponseBody, ResponseFuture};
use http::{Request, Response};
use http_body::Body;
use tower::{BoxError, Layer, Service};

use crate::io::Io;

/// Serves Socket.IO on its path and passes every other request to the wrapped service,
/// with the [`Io`] handle in the request's extensions (which the [`Io`] extractor reads).
///
/// ```
/// use axum::{Router, routing::get};
/// use ferrio::Io;
///
/// let (layer, io) = Io::new_layer();
/// io.ns("/", |socket: ferrio::SocketRef| {
///     socket.on("ping", |ack: ferrio::AckSender| ack.send("pong"));
/// });
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(layer);
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct SocketIoLayer {
    engine: EngineIoLayer,
    io: Io,
}

impl SocketIoLayer {
    pub(crate) fn new(engine: EngineIoLayer, io: Io) -> Self {
        Self { engine, io }
    }

    /// The server's handle.
    pub fn io(&self) -> &Io {
        &self.io
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService {
            inner: self.engine.layer(inner),
            io: self.io.clone(),
        }
    }
}

impl fmt::Debug for SocketIoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoLayer")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The service built by [`SocketIoLayer`].
#[derive(Clone)]
pub struct SocketIoService<S> {
    inner: EngineIoService<S>,
    io: Io,
}

impl<S> SocketIoService<S> {
    /// The server's handle.
    pub fn io(&self) -> &Io {
        &self.io
    }
}

impl<S: fmt::Debug> fmt::Debug for SocketIoService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SocketIoService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        req.extensions_mut().insert(self.io.clone());
        self.inner.call(req)
    }
}
