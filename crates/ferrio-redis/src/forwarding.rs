//! Serving a session on whichever server a request lands on: [`Forwarding`] and its tower
//! [`ForwardLayer`].
//!
//! Each server starts its Engine.IO session ids with a tag of its own
//! ([`Forwarding::sid_prefix`], given to
//! [`EngineIoConfig::sid_prefix`](ferrio::EngineIoConfig::sid_prefix)) and announces in
//! Redis the address its peers reach it at. A request for a session of another server (a
//! long-polling GET or POST, or a WebSocket upgrade) is passed, as it is, to that server,
//! and its answer passed back: the client sees one ordinary session whatever server it hits.
//! A WebSocket upgrade is tunnelled byte for byte to the owner once both sides switched
//! protocols.
//!
//! When the owner cannot be found or reached, the client gets what a single server answers
//! for a session it does not know, `400 {"code":1,"message":"Session ID unknown"}`, and
//! reconnects with a new session.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrio::{Sid, SidPrefix};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, Service};

use crate::connection::{Driver, random_id};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// Marks a request one server passed to another, so it is never passed on again (a stale
/// directory entry cannot make requests loop).
const FORWARDED: &str = "x-ferrio-forwarded";
/// How long an announcement lives in Redis without being renewed.
const ANNOUNCE_TTL: Duration = Duration::from_secs(10);
/// How often a server renews its announcement.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);
/// How long a server remembers where a peer is, or that it is unknown.
const KNOWN_FOR: Duration = Duration::from_secs(5);
const UNKNOWN_FOR: Duration = Duration::from_secs(1);
/// The length of a server's tag: 6 characters of 62, about 57 billion tags.
const TAG_LEN: usize = 6;

/// A server's place in a cluster served without sticky sessions: its tag (the start of its
/// session ids), the address it announces, and the directory of its peers.
///
/// ```no_run
/// use ferrio::Io;
/// use ferrio_redis::RedisAdapter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisAdapter::open("redis://127.0.0.1:6379")?;
/// // The address the other servers reach this one at.
/// let forwarding = redis.forwarding("10.0.0.5:3000");
/// let (layer, io) = Io::builder()
///     .engine(|engine| engine.sid_prefix(forwarding.sid_prefix()))
///     .adapter(redis.factory())
///     .build_layer();
/// io.ready().await?;
/// forwarding.announce().await?;
/// let app = axum::Router::<()>::new()
///     .layer(layer)
///     // Outermost: it sees the requests of other servers' sessions first.
///     .layer(forwarding.layer("/socket.io/"));
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Forwarding {
    inner: Arc<Inner>,
}

struct Inner {
    driver: Arc<Driver>,
    prefix: SidPrefix,
    advertise: String,
    peers: Mutex<HashMap<String, (Option<String>, Instant)>>,
    client: Client<HttpConnector, BoxBody>,
    announcing: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Forwarding {
    pub(crate) fn new(driver: Arc<Driver>, advertise: String) -> Self {
        let tag = random_id(TAG_LEN);
        let prefix =
            SidPrefix::new(&tag).expect("6 random letters and digits make a valid sid prefix");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            inner: Arc::new(Inner {
                driver,
                prefix,
                advertise,
                peers: Mutex::default(),
                client,
                announcing: Mutex::default(),
            }),
        }
    }

    /// The start of this server's session ids, for
    /// [`EngineIoConfig::sid_prefix`](ferrio::EngineIoConfig::sid_prefix).
    pub fn sid_prefix(&self) -> SidPrefix {
        self.inner.prefix.clone()
    }

    /// The address this server announces.
    pub fn advertised_address(&self) -> &str {
        &self.inner.advertise
    }

    /// The layer that passes requests for other servers' sessions to them; `path` is the
    /// Socket.IO path (`/socket.io/` by default).
    pub fn layer(&self, path: &str) -> ForwardLayer {
        ForwardLayer {
            forwarding: self.clone(),
            path: Arc::from(path.trim_end_matches('/')),
        }
    }

    /// Announces this server's address in Redis, and keeps announcing it every 2 s (it
    /// expires 10 s after the last renewal, when the server is gone). Fails when Redis
    /// cannot be reached now; the renewals go on regardless.
    pub async fn announce(&self) -> Result<(), ferrio::adapter::AdapterError> {
        let result = self.inner.announce_once().await;
        let mut announcing = self
            .inner
            .announcing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if announcing.is_none() {
            let weak = Arc::downgrade(&self.inner);
            let task = tokio::spawn(renew(weak));
            *announcing = Some(task.abort_handle());
        }
        result
    }
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("sid_prefix", &self.inner.prefix)
            .field("advertise", &self.inner.advertise)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .announcing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

async fn renew(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(ANNOUNCE_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.announce_once().await {
            tracing::warn!(error = %e, "cannot renew this server's address in Redis");
        }
    }
}

impl Inner {
    fn key(&self, tag: &str) -> String {
        format!("{}-node#{tag}", self.driver.config.prefix)
    }

    async fn announce_once(&self) -> Result<(), ferrio::adapter::AdapterError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(self.prefix.as_str()))
            .arg(&self.advertise)
            .arg("PX")
            .arg(ANNOUNCE_TTL.as_millis() as u64);
        self.driver.query::<()>(&set).await.map_err(|e| {
            ferrio::adapter::AdapterError::new(
                ferrio::adapter::AdapterErrorKind::Unavailable,
                "cannot announce this server's address in Redis",
            )
            .with_source(e)
        })
    }

    /// Where the server tagged `tag` is, from the cache or Redis.
    async fn locate(&self, tag: &str) -> Option<String> {
        if let Some((address, at)) = self.peers().get(tag) {
            let fresh = if address.is_some() {
                KNOWN_FOR
            } else {
                UNKNOWN_FOR
            };
            if at.elapsed() < fresh {
                return address.clone();
            }
        }
        let mut get = redis::cmd("GET");
        get.arg(self.key(tag));
        let found = match self.driver.query::<Option<String>>(&get).await {
            Ok(found) => found,
            // Redis is down: what was known last is still the best guess.
            Err(_) => return self.peers().get(tag).and_then(|(a, _)| a.clone()),
        };
        let mut peers = self.peers();
        if peers.len() > 10_000 {
            peers.clear();
        }
        peers.insert(tag.to_owned(), (found.clone(), Instant::now()));
        found
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tower layer of [`Forwarding::layer`].
#[derive(Clone, Debug)]
pub struct ForwardLayer {
    forwarding: Forwarding,
    path: Arc<str>,
}

impl<S> Layer<S> for ForwardLayer {
    type Service = ForwardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardService {
            inner,
            forwarding: self.forwarding.clone(),
            path: self.path.clone(),
        }
    }
}

/// The service of [`ForwardLayer`]: passes requests for other servers' sessions to them,
/// everything else to the service it wraps.
#[derive(Clone, Debug)]
pub struct ForwardService<S> {
    inner: S,
    forwarding: Forwarding,
    path: Arc<str>,
}

impl<S> ForwardService<S> {
    /// The owner's tag when `req` is for a session of another server.
    fn foreign_session<B>(&self, req: &Request<B>) -> Option<String> {
        let path = req.uri().path().trim_end_matches('/');
        if path != &*self.path || req.headers().contains_key(FORWARDED) {
            return None;
        }
        let sid = req
            .uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("sid="))?;
        let sid = Sid::parse(sid)?;
        if sid.has_prefix(&self.forwarding.inner.prefix) {
            return None;
        }
        Some(sid.as_str()[..TAG_LEN].to_owned())
    }
}

type ForwardResponse<B> = Response<Either<B, BoxBody>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ForwardService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = ForwardResponse<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(tag) = self.foreign_session(&req) else {
            let future = self.inner.call(req);
            return Box::pin(async move {
                let Ok(res) = future.await;
                Ok(res.map(Either::Left))
            });
        };
        let inner = self.forwarding.inner.clone();
        Box::pin(async move {
            let Some(owner) = inner.locate(&tag).await else {
                tracing::debug!(tag, "a request for the session of an unknown server");
                return Ok(session_unknown());
            };
            let res = if is_upgrade(&req) {
                tunnel(owner, req).await
            } else {
                forward(&inner.client, owner, req).await
            };
            Ok(res.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "the server owning a session cannot be reached");
                session_unknown()
            }))
        })
    }
}

/// What a single server answers for a session it does not know (Engine.IO error 1).
fn session_unknown<B>() -> Response<Either<B, BoxBody>> {
    let body = Full::new(Bytes::from_static(
        br#"{"code":1,"message":"Session ID unknown"}"#,
    ))
    .map_err(|never| match never {})
    .boxed_unsync();
    let mut res = Response::new(Either::Right(body));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request, sent to `owner` with its method, path, query, headers and body.
fn to_owner<B>(owner: &str, req: Request<B>) -> Result<Request<B>, BoxError> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    parts.uri = format!("http://{owner}{path_and_query}").parse()?;
    parts
        .headers
        .insert(FORWARDED, HeaderValue::from_static("1"));
    Ok(Request::from_parts(parts, body))
}

/// Passes a long-polling request to its session's owner.
async fn forward<B, ResBody>(
    client: &Client<HttpConnector, BoxBody>,
    owner: String,
    req: Request<B>,
) -> Result<Response<Either<ResBody, BoxBody>>, BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let req = to_owner(&owner, req)?.map(|body| body.map_err(Into::into).boxed_unsync());
    let res = client.request(req).await?;
    Ok(res.map(|body| Either::Right(body.map_err(Into::into).boxed_unsync())))
}

/// Passes a WebSocket upgrade to its session's owner and, once both switched protocols,
/// copies bytes both ways until either side closes.
async fn tunnel<B, ResBody>(
    owner: String,
    mut req: Request<B>,
) -> Result<Response<Either<ResBody, BoxBody>>, BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let client_upgrade = hyper::upgrade::on(&mut req);
    let stream = tokio::net::TcpStream::connect(owner.as_str()).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, BoxBody>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let req = to_owner(&owner, req)?.map(|body| body.map_err(Into::into).boxed_unsync());
    let mut res = sender.send_request(req).await?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(res.map(|body| Either::Right(body.map_err(Into::into).boxed_unsync())));
    }
    let owner_upgrade = hyper::upgrade::on(&mut res);
    tokio::spawn(async move {
        let (Ok(client), Ok(owner)) = (client_upgrade.await, owner_upgrade.await) else {
            return;
        };
        let (mut client, mut owner) = (TokioIo::new(client), TokioIo::new(owner));
        let _ = tokio::io::copy_bidirectional(&mut client, &mut owner).await;
    });
    let (parts, _) = res.into_parts();
    let empty = Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync();
    Ok(Response::from_parts(parts, Either::Right(empty)))
}
