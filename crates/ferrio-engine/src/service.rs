//! The tower triple: [`EngineIoLayer`] wraps an inner service in an [`EngineIoService`], whose
//! calls return a [`ResponseFuture`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::body::ResponseBody;
use crate::config::EngineIoConfig;
use crate::engine::{BoxError, Engine};
use crate::handler::EngineHandler;
use crate::sid::Sid;
use crate::socket::Socket;

/// A handle to a running engine: its sessions, from anywhere in the application.
#[derive(Clone)]
pub struct EngineIo(Arc<Engine>);

impl EngineIo {
    /// The open session with this id.
    pub fn get(&self, sid: Sid) -> Option<Socket> {
        self.0
            .get(sid)
            .filter(|s| !s.is_closed())
            .map(|s| s.socket())
    }

    /// Every open session.
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.sockets()
    }

    /// The engine's monitoring counters since it started (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn stats(&self) -> crate::EngineStatsSnapshot {
        self.0.stats.snapshot()
    }

    /// The number of open sessions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every open session from the server side ("forced close"), for a graceful
    /// shutdown: each client gets what was queued for it, then the close.
    pub fn close_all(&self) {
        for socket in self.sockets() {
            socket.close();
        }
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineIoConfig {
        &self.0.config
    }

    /// A handle that does not keep the engine alive: for state the engine's own handler
    /// owns, which would otherwise keep the engine (and itself) alive forever.
    pub fn downgrade(&self) -> WeakEngineIo {
        WeakEngineIo(Arc::downgrade(&self.0))
    }
}

/// A weak handle to an engine ([`EngineIo::downgrade`]).
#[derive(Clone)]
pub struct WeakEngineIo(Weak<Engine>);

impl WeakEngineIo {
    /// The engine, if something still keeps it alive (a layer, a service, a handle).
    pub fn upgrade(&self) -> Option<EngineIo> {
        self.0.upgrade().map(EngineIo)
    }
}

impl fmt::Debug for WeakEngineIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakEngineIo")
    }
}

impl fmt::Debug for EngineIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A [`Layer`] that serves Engine.IO under its path and passes every other request to the
/// service it wraps.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use ferrio_engine::{EngineHandler, EngineIoConfig, EngineIoLayer, Message, Socket};
///
/// struct Echo;
/// impl EngineHandler for Echo {
///     fn on_message(&self, socket: &Socket, message: Message) {
///         let _ = socket.send(message);
///     }
/// }
///
/// # async fn run() {
/// let app: Router = Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .layer(EngineIoLayer::new(EngineIoConfig::default(), Echo));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
/// axum::serve(listener, app).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct EngineIoLayer {
    engine: Arc<Engine>,
}

impl EngineIoLayer {
    /// A layer running `handler` with `config`. Every service the layer builds (axum builds one
    /// per route) shares the same engine and sessions.
    pub fn new(config: EngineIoConfig, handler: impl EngineHandler) -> Self {
        Self::from_arc(config, Arc::new(handler))
    }

    /// Like [`new`](Self::new), for a handler that is already shared.
    pub fn from_arc(config: EngineIoConfig, handler: Arc<dyn EngineHandler>) -> Self {
        Self {
            engine: Engine::new(config, handler),
        }
    }

    /// A handle to the engine's sessions.
    pub fn engine(&self) -> EngineIo {
        EngineIo(self.engine.clone())
    }

    /// The engine alone, answering `404` outside its path.
    pub fn into_service(self) -> EngineIoService<NotFound> {
        self.layer(NotFound)
    }
}

impl<S> Layer<S> for EngineIoLayer {
    type Service = EngineIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineIoService {
            engine: self.engine.clone(),
            inner,
        }
    }
}

impl fmt::Debug for EngineIoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineIoLayer")
            .field("engine", &self.engine)
            .finish()
    }
}

/// Serves Engine.IO requests and forwards the rest to `S`; built by [`EngineIoLayer`].
#[derive(Clone)]
pub struct EngineIoService<S> {
    engine: Arc<Engine>,
    inner: S,
}

impl<S> EngineIoService<S> {
    /// A handle to the engine's sessions.
    pub fn engine(&self) -> EngineIo {
        EngineIo(self.engine.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for EngineIoService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineIoService")
            .field("engine", &self.engine)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for EngineIoService<S>
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

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.engine.matches_path(req.uri().path()) {
            ResponseFuture {
                kind: Kind::Engine {
                    future: Box::pin(self.engine.clone().handle(req)),
                },
            }
        } else {
            ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            }
        }
    }
}

type EngineFuture<B> = Pin<Box<dyn Future<Output = Response<ResponseBody<B>>> + Send>>;

pin_project! {
    /// The response future of [`EngineIoService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Engine { future: EngineFuture<B> },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Inner { .. } => "ResponseFuture::Inner",
            Kind::Engine { .. } => "ResponseFuture::Engine",
        })
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future
                .poll(cx)
                .map(|res| res.map(|res| res.map(ResponseBody::inner))),
            KindProj::Engine { future } => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// The inner service of a standalone engine: `404` for every request outside its path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<http_body_util::Empty<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut res = Response::new(http_body_util::Empty::new());
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}
