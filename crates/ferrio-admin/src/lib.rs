//! The server side of the `@socket.io/admin-ui` 0.5 protocol for a Ferrio server: the
//! Admin UI logs in to an admin namespace, sees every namespace, socket and room of the
//! cluster, the servers' statistics and (in development mode) every event, and can emit,
//! make sockets join or leave rooms, and disconnect them.
//!
//! ```no_run
//! use ferrio::Io;
//! use ferrio_admin::{AdminUi, Mode};
//!
//! # async fn demo() {
//! let admin = AdminUi::builder()
//!     .basic_auth("admin", "$2b$10$...a bcrypt hash...")
//!     .mode(Mode::Development)
//!     .build();
//! let (layer, io) = Io::builder().observe(admin.observer()).build_layer();
//! admin.serve(&io); // the `/admin` namespace, and the stats every 2 s
//! # let _ = layer;
//! # }
//! ```
//!
//! Everything the UI sees is emitted to the admin namespace through its adapter, so with a
//! distributed adapter (Redis) a UI connected to any server hears from all of them.

mod events;
mod serialize;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrio::{ConnectHandler, ConnectRefusal, Data, Io, NamespaceRef, SocketRef};
use serde_json::{Value, json};

pub use events::AdminObserver;
use events::EventBuffer;

/// What the server reports to the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Statistics and aggregated counts only.
    #[default]
    Production,
    /// Also every socket, every room change and every event, as they happen.
    Development,
}

/// Settings of the admin namespace ([`AdminUi::builder`]).
#[derive(Clone)]
pub struct AdminUiBuilder {
    namespace: String,
    auth: Option<(String, String)>,
    readonly: bool,
    mode: Mode,
    server_id: Option<String>,
    stats_interval: Duration,
}

impl AdminUiBuilder {
    /// The admin namespace. Default: `/admin`.
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespace = name.into();
        self
    }

    /// Requires `username` and the password whose bcrypt hash is `password_hash` (as the
    /// npm package `bcryptjs` or the `bcrypt` crate make it). Default: no authentication
    /// (anyone who reaches the namespace administers the server).
    pub fn basic_auth(
        mut self,
        username: impl Into<String>,
        password_hash: impl Into<String>,
    ) -> Self {
        self.auth = Some((username.into(), password_hash.into()));
        self
    }

    /// Read-only: the UI may look, but not emit, join, leave or disconnect. Default: off.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// What is reported. Default: [`Mode::Production`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// This server's name in the UI's server list. Default: `<hostname>#<pid>`, with the
    /// host name from the `HOSTNAME` variable (`ferrio` when unset).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// How often the server's statistics are sent. Default: 2 s (what the UI expects).
    pub fn stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The admin UI server, not serving yet ([`AdminUi::serve`]).
    pub fn build(self) -> AdminUi {
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ferrio".to_owned());
        let server_id = self
            .server_id
            .clone()
            .unwrap_or_else(|| format!("{hostname}#{}", std::process::id()));
        AdminUi(Arc::new(Shared {
            settings: self,
            hostname,
            server_id,
            started: Instant::now(),
            sessions: Mutex::default(),
            admin: OnceLock::new(),
            events: EventBuffer::default(),
        }))
    }
}

impl fmt::Debug for AdminUiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUiBuilder")
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.as_ref().map(|(user, _)| user))
            .field("readonly", &self.readonly)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

struct Shared {
    settings: AdminUiBuilder,
    hostname: String,
    server_id: String,
    started: Instant,
    /// Session ids handed out on this server after a successful login.
    sessions: Mutex<HashSet<String>>,
    /// The admin namespace, once served.
    admin: OnceLock<NamespaceRef>,
    events: EventBuffer,
}

impl Shared {
    fn development(&self) -> bool {
        self.settings.mode == Mode::Development
    }

    /// The features the UI may use.
    fn features(&self) -> Vec<&'static str> {
        let mut features = Vec::new();
        if !self.settings.readonly {
            features.extend([
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]);
        }
        features.push("AGGREGATED_EVENTS");
        if self.development() {
            features.push("ALL_EVENTS");
        }
        features
    }

    /// Emits to every UI of the cluster (through the admin namespace's adapter).
    fn emit_admin<A: serde::Serialize + ?Sized>(&self, event: &str, args: &A) {
        if let Some(admin) = self.admin.get() {
            if let Err(e) = admin.emit_args(event, args) {
                tracing::debug!(event, error = %e, "admin event not sent");
            }
        }
    }
}

/// The admin UI server of one Socket.IO server: register its [`observer`](Self::observer)
/// with the server's builder, then [`serve`](Self::serve) it.
#[derive(Clone)]
pub struct AdminUi(Arc<Shared>);

impl AdminUi {
    /// The settings, with their defaults.
    pub fn builder() -> AdminUiBuilder {
        AdminUiBuilder {
            namespace: "/admin".to_owned(),
            auth: None,
            readonly: false,
            mode: Mode::Production,
            server_id: None,
            stats_interval: Duration::from_secs(2),
        }
    }

    /// The observer to give [`IoBuilder::observe`](ferrio::IoBuilder::observe): it reports
    /// sockets, rooms and events to the UI, and counts what the statistics aggregate.
    pub fn observer(&self) -> AdminObserver {
        AdminObserver(self.0.clone())
    }

    /// This server's id in the UI's server list.
    pub fn server_id(&self) -> &str {
        &self.0.server_id
    }

    /// Serves the admin namespace on `io`, and starts sending the server's statistics (on
    /// the current tokio runtime) until the server is dropped. Call it once.
    pub fn serve(&self, io: &Io) -> NamespaceRef {
        let shared = self.0.clone();
        let on_connect = {
            let shared = shared.clone();
            let io = io.clone();
            move |socket: SocketRef| on_admin_connect(&shared, &io, socket)
        };
        let login = {
            let shared = shared.clone();
            move |socket: SocketRef, Data(auth): Data<Value>| {
                let shared = shared.clone();
                async move { authenticate(&shared, &socket, auth).await }
            }
        };
        let ns = io.ns(&shared.settings.namespace, on_connect.with(login));
        let _ = shared.admin.set(ns.clone());
        let weak = io.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(shared.settings.stats_interval);
            loop {
                tick.tick().await;
                let Some(io) = weak.upgrade() else { return };
                shared.emit_admin("server_stats", &(events::server_stats(&shared, &io),));
            }
        });
        ns
    }
}

impl fmt::Debug for AdminUi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUi")
            .field("server_id", &self.0.server_id)
            .field("settings", &self.0.settings)
            .finish()
    }
}

/// The session id a successful login hands out, kept on the socket until it is admitted.
#[derive(Clone)]
struct NewSession(String);

/// Checks a login: a session id handed out earlier, or the username and password.
async fn authenticate(
    shared: &Shared,
    socket: &SocketRef,
    auth: Value,
) -> Result<(), ConnectRefusal> {
    let Some((username, hash)) = shared.settings.auth.clone() else {
        return Ok(());
    };
    let refused = || ConnectRefusal::new("invalid credentials");
    if let Some(session) = auth.get("sessionId").and_then(Value::as_str) {
        let known = shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(session);
        if known {
            return Ok(());
        }
    }
    let given_user = auth.get("username").and_then(Value::as_str);
    let Some(password) = auth.get("password").and_then(Value::as_str) else {
        return Err(refused());
    };
    if given_user != Some(username.as_str()) {
        return Err(refused());
    }
    // bcrypt is slow on purpose: off the connection's task.
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(false);
    if !matches {
        tracing::info!(ns = socket.ns(), "admin login refused");
        return Err(refused());
    }
    let session = random_id();
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(session.clone());
    socket.insert(NewSession(session));
    Ok(())
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 8] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn on_admin_connect(shared: &Arc<Shared>, io: &Io, socket: SocketRef) {
    if let Some(NewSession(session)) = socket.remove::<NewSession>() {
        let _ = socket.emit("session", &session);
    }
    let features = shared.features();
    if !shared.settings.readonly {
        register_operations(io, &socket);
    }
    let _ = socket.emit("config", &json!({ "supportedFeatures": features }));
    if shared.development() {
        let io = io.clone();
        tokio::spawn(async move {
            let sockets = serialize::all_sockets(&io).await;
            let _ = socket.emit("all_sockets", &sockets);
        });
    }
}

/// The target of an operation: a room, a socket id (a room too), or every socket.
fn target(ns: &NamespaceRef, filter: Option<String>) -> ferrio::BroadcastOperator {
    match filter.filter(|f| !f.is_empty()) {
        Some(filter) => ns.within(filter),
        None => ns.within(Vec::<String>::new()),
    }
}

/// `emit`, `join`, `leave` and `_disconnect` from the UI.
fn register_operations(io: &Io, socket: &SocketRef) {
    let io_emit = io.clone();
    socket.on("emit", move |args: ferrio::Payload| {
        let (Ok(nsp), Ok(event)) = (args.get::<String>(0), args.get::<String>(2)) else {
            return;
        };
        let Some(ns) = io_emit.of(&nsp) else { return };
        let filter = args.get::<Option<String>>(1).ok().flatten();
        let rest: Vec<_> = (3..args.len()).filter_map(|i| args.arg(i)).collect();
        if let Err(e) = target(&ns, filter).emit_args(&event, &rest) {
            tracing::debug!(nsp, event, error = %e, "admin emit failed");
        }
    });
    for (name, join) in [("join", true), ("leave", false)] {
        let io = io.clone();
        socket.on(name, move |args: ferrio::Payload| {
            let (Ok(nsp), Ok(room)) = (args.get::<String>(0), args.get::<String>(1)) else {
                return;
            };
            let Some(ns) = io.of(&nsp) else { return };
            let filter = args.get::<Option<String>>(2).ok().flatten();
            let operator = target(&ns, filter);
            let result = if join {
                operator.join(room)
            } else {
                operator.leave(room)
            };
            if let Err(e) = result {
                tracing::debug!(nsp, error = %e, "admin room operation failed");
            }
        });
    }
    let io = io.clone();
    socket.on("_disconnect", move |args: ferrio::Payload| {
        let Ok(nsp) = args.get::<String>(0) else {
            return;
        };
        let Some(ns) = io.of(&nsp) else { return };
        let close = args.get::<bool>(1).unwrap_or(false);
        let filter = args.get::<Option<String>>(2).ok().flatten();
        let operator = target(&ns, filter);
        let result = if close {
            operator.close()
        } else {
            operator.disconnect()
        };
        if let Err(e) = result {
            tracing::debug!(nsp, error = %e, "admin disconnect failed");
        }
    });
}
