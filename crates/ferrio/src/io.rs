//! [`Io`]: the handle to a Socket.IO server, and [`IoBuilder`], its settings.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use ferrio_engine::{Cors, EngineIo, EngineIoConfig, EngineIoLayer, NotFound, WeakEngineIo};
use tower::Layer;

use crate::adapter::{Adapter, AdapterContext, LocalAdapter};
use crate::client::{SocketIoHandler, close_connection};
use crate::error::DisconnectReason;
use crate::handler::{Guarded, IntoNamespaceHandler};
use crate::layer::{SocketIoLayer, SocketIoService};
use crate::namespace::{Namespace, NamespaceRef};
use crate::operators::{BroadcastOperator, operator_entry_points};
use crate::parser::Parser;

type AdapterFactory = Arc<dyn Fn(AdapterContext) -> Arc<dyn Adapter> + Send + Sync>;

/// Settings every namespace reads.
pub(crate) struct Shared {
    pub(crate) parser: Parser,
    pub(crate) ack_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) state: http::Extensions,
    pub(crate) adapter: AdapterFactory,
}

enum Matcher {
    Pattern(regex_lite::Regex),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Matcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Pattern(regex) => regex.is_match(name),
            Self::Predicate(predicate) => predicate(name),
        }
    }
}

struct Dynamic {
    matcher: Matcher,
    setup: Guarded,
}

pub(crate) struct Server {
    pub(crate) shared: Arc<Shared>,
    namespaces: RwLock<HashMap<Arc<str>, Arc<Namespace>>>,
    dynamic: RwLock<Vec<Dynamic>>,
    /// Weak: the engine owns this server (through its handler), not the other way round.
    engine: OnceLock<WeakEngineIo>,
    /// Set by [`Io::close`]: connections that open afterwards are closed at once.
    pub(crate) closing: AtomicBool,
}

impl Server {
    /// The namespace a client asks for: a static one, or a dynamic one created on first use.
    /// The namespace comes back with one connect counted (under the map's lock, so a
    /// dynamic namespace cannot be dropped between here and the socket joining it); the
    /// caller hands it to [`Namespace::connect`], which ends the count.
    pub(crate) fn resolve(self: &Arc<Self>, name: &str) -> Option<Arc<Namespace>> {
        if let Some(ns) = self.namespaces().get(name) {
            ns.begin_connect();
            return Some(ns.clone());
        }
        let setup = {
            let dynamic = self.dynamic.read().unwrap_or_else(|e| e.into_inner());
            dynamic
                .iter()
                .find(|d| d.matcher.matches(name))
                .map(|d| d.setup.clone())?
        };
        // Built before taking the lock: the adapter factory is the application's code.
        let created = Namespace::new(name, self.shared.clone(), Arc::downgrade(self), setup, true);
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let ns = namespaces.entry(Arc::from(name)).or_insert(created);
        ns.begin_connect();
        Some(ns.clone())
    }

    fn namespaces(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Namespace>>> {
        self.namespaces.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops a dynamic namespace nobody uses any more, so clients cannot grow the map.
    pub(crate) fn forget_dynamic(&self, ns: &Arc<Namespace>) {
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let same = namespaces
            .get(&ns.name)
            .is_some_and(|current| Arc::ptr_eq(current, ns));
        if same && ns.is_empty() {
            namespaces.remove(&ns.name);
        }
    }

    fn root(self: &Arc<Self>) -> Arc<Namespace> {
        self.namespaces()
            .get("/")
            .cloned()
            .expect("the `/` namespace is created with the server and never removed")
    }
}

/// The handle to a Socket.IO server: register namespaces, broadcast, shut down.
///
/// Cheap to clone; every clone is the same server. The methods that broadcast (`to`,
/// `emit`...) act on the `/` namespace; [`of`](Self::of) reaches the others. In an axum
/// handler, take it as an extractor (`io: Io`) or from the router's state.
#[derive(Clone)]
pub struct Io(pub(crate) Arc<Server>);

impl Io {
    /// Settings for a new server.
    pub fn builder() -> IoBuilder {
        IoBuilder::default()
    }

    /// A server with the default settings, as a layer for an axum `Router`.
    pub fn new_layer() -> (SocketIoLayer, Io) {
        Self::builder().build_layer()
    }

    /// Serves the namespace `name` (static), calling `handler` for each socket that joins.
    /// `/` exists from the start and admits everyone until given a handler.
    pub fn ns<H, M>(&self, name: impl AsRef<str>, handler: H) -> NamespaceRef
    where
        H: IntoNamespaceHandler<M>,
    {
        let name = normalize(name.as_ref());
        let setup = handler.into_guarded();
        let existing = self.0.namespaces().get(name.as_str()).cloned();
        if let Some(ns) = existing {
            ns.set_setup(setup);
            // A name a dynamic pattern created is the application's own from now on.
            ns.make_static();
            return NamespaceRef(ns);
        }
        // Built before taking the lock: the adapter factory is the application's code.
        let created = Namespace::new(
            &name,
            self.0.shared.clone(),
            Arc::downgrade(&self.0),
            setup.clone(),
            false,
        );
        let mut namespaces = self.0.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let ns = namespaces
            .entry(Arc::from(name.as_str()))
            .and_modify(|ns| {
                ns.set_setup(setup);
                ns.make_static();
            })
            .or_insert(created);
        NamespaceRef(ns.clone())
    }

    /// Serves every namespace whose name matches the regular expression `pattern` (for
    /// example `^/tenant-[a-z0-9]+$`): each is created when a client first asks for it and
    /// dropped when its last socket leaves. Static namespaces take precedence.
    pub fn dyn_ns<H, M>(&self, pattern: &str, handler: H) -> Result<(), regex_lite::Error>
    where
        H: IntoNamespaceHandler<M>,
    {
        let matcher = Matcher::Pattern(regex_lite::Regex::new(pattern)?);
        self.add_dynamic(matcher, handler.into_guarded());
        Ok(())
    }

    /// Like [`dyn_ns`](Self::dyn_ns), with a predicate on the name.
    pub fn dyn_ns_fn<P, H, M>(&self, predicate: P, handler: H)
    where
        P: Fn(&str) -> bool + Send + Sync + 'static,
        H: IntoNamespaceHandler<M>,
    {
        self.add_dynamic(
            Matcher::Predicate(Arc::new(predicate)),
            handler.into_guarded(),
        );
    }

    fn add_dynamic(&self, matcher: Matcher, setup: Guarded) {
        self.0
            .dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Dynamic { matcher, setup });
    }

    /// The namespace `name`, if it exists now.
    pub fn of(&self, name: impl AsRef<str>) -> Option<NamespaceRef> {
        let name = normalize(name.as_ref());
        self.0
            .namespaces()
            .get(name.as_str())
            .cloned()
            .map(NamespaceRef)
    }

    /// The names of the namespaces that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        self.0.namespaces().keys().map(|n| n.to_string()).collect()
    }

    fn operator(&self) -> BroadcastOperator {
        self.0.root().operator()
    }

    operator_entry_points!();

    /// The Engine.IO layer underneath (connections, transports), while it runs.
    pub fn engine(&self) -> Option<EngineIo> {
        self.0.engine.get()?.upgrade()
    }

    /// Shuts down: every connection closes, each socket leaving with "server shutting down"
    /// and its pending acks failing; connections that open afterwards are closed at once.
    /// Call it from your HTTP server's graceful shutdown.
    pub async fn close(&self) {
        self.0.closing.store(true, Ordering::Release);
        let Some(engine) = self.engine() else {
            return;
        };
        for connection in engine.sockets() {
            close_connection(&connection, DisconnectReason::ServerShuttingDown);
        }
    }

    /// A value of the state given to [`IoBuilder::with_state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.shared.state.get::<T>().cloned()
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("namespaces", &self.namespaces())
            .finish_non_exhaustive()
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// The settings of a Socket.IO server. Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use ferrio::Io;
///
/// let (layer, io) = Io::builder()
///     .ping_interval(Duration::from_secs(10))
///     .ack_timeout(Duration::from_secs(2))
///     .build_layer();
/// # let _ = (layer, io);
/// ```
pub struct IoBuilder {
    engine: EngineIoConfig,
    parser: Parser,
    ack_timeout: Duration,
    connect_timeout: Duration,
    state: http::Extensions,
    adapter: AdapterFactory,
}

impl Default for IoBuilder {
    fn default() -> Self {
        Self {
            engine: EngineIoConfig::default().path("/socket.io"),
            parser: Parser::default(),
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(45),
            state: http::Extensions::new(),
            adapter: Arc::new(|ctx| Arc::new(LocalAdapter::new(ctx))),
        }
    }
}

impl IoBuilder {
    /// The path the server answers on, with or without a trailing slash.
    /// Default: `/socket.io/`.
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        self.engine = self.engine.path(path);
        self
    }

    /// Time between the server's pings. Default: 25 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.engine = self.engine.ping_interval(interval);
        self
    }

    /// How long a client has to answer a ping. Default: 20 s.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.ping_timeout(timeout);
        self
    }

    /// The largest HTTP body or WebSocket message accepted, in bytes. Default: 1 000 000.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.engine = self.engine.max_payload(bytes);
        self
    }

    /// Which cross-origin requests browsers may make. Default: none.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.engine = self.engine.cors(cors);
        self
    }

    /// Any other Engine.IO setting (transports, upgrade timeout, an allow-request hook...).
    pub fn engine(mut self, configure: impl FnOnce(EngineIoConfig) -> EngineIoConfig) -> Self {
        self.engine = configure(self.engine);
        self
    }

    /// The parser. Default: [`Parser::Json`].
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// How long an emit with an ack waits for the client when no timeout is given.
    /// Default: 5 s.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long a new connection may take to join a namespace before it is closed.
    /// Default: 45 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Application state, reachable from every handler with the [`State`](crate::State)
    /// extractor. Call it once per type. Default: none.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// The adapter each namespace gets. Default: [`LocalAdapter`] (in memory).
    pub fn adapter<F, A>(mut self, factory: F) -> Self
    where
        F: Fn(AdapterContext) -> A + Send + Sync + 'static,
        A: Adapter,
    {
        self.adapter = Arc::new(move |ctx| Arc::new(factory(ctx)));
        self
    }

    fn build(self) -> (EngineIoLayer, Io) {
        let shared = Arc::new(Shared {
            parser: self.parser,
            ack_timeout: self.ack_timeout,
            connect_timeout: self.connect_timeout,
            state: self.state,
            adapter: self.adapter,
        });
        let server = Arc::new_cyclic(|weak| {
            let root = Namespace::new("/", shared.clone(), weak.clone(), admit_all(), false);
            Server {
                shared,
                namespaces: RwLock::new(HashMap::from([(root.name.clone(), root)])),
                dynamic: RwLock::default(),
                engine: OnceLock::new(),
                closing: AtomicBool::new(false),
            }
        });
        let layer = EngineIoLayer::new(
            self.engine,
            SocketIoHandler {
                server: server.clone(),
            },
        );
        let _ = server.engine.set(layer.engine().downgrade());
        (layer, Io(server))
    }

    /// The server as a layer for an axum `Router` (or any tower service).
    pub fn build_layer(self) -> (SocketIoLayer, Io) {
        let (engine, io) = self.build();
        (SocketIoLayer::new(engine, io.clone()), io)
    }

    /// The server alone, answering `404` outside its path: for `Router::route_service`,
    /// or `Router::nest_service` with [`path`](Self::path) set to `/`.
    pub fn build_service(self) -> (SocketIoService<NotFound>, Io) {
        let (layer, io) = self.build_layer();
        (layer.layer(NotFound), io)
    }
}

fn admit_all() -> Guarded {
    fn nothing() {}
    IntoNamespaceHandler::into_guarded(nothing)
}

impl fmt::Debug for IoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoBuilder")
            .field("engine", &self.engine)
            .field("parser", &self.parser)
            .field("ack_timeout", &self.ack_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}
