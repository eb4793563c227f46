//! Namespaces: the sockets of one name, their connect handler and middlewares, and their
//! adapter.

use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use ferrio_engine::Sid;

use crate::adapter::{Adapter, AdapterContext};
use futures_util::FutureExt;

use crate::error::{ConnectRefusal, DisconnectReason};
use crate::handler::{BoxedMiddleware, Guarded, run};
use crate::io::{Server, Shared};
use crate::operators::{BroadcastOperator, operator_entry_points};
use crate::parser::Parser;
use crate::socket::{SocketInner, SocketRef};

pub(crate) struct Namespace {
    pub(crate) name: Arc<str>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) server: Weak<Server>,
    setup: RwLock<Guarded>,
    sockets: RwLock<HashMap<Sid, SocketRef>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// Ack ids, shared by the namespace's sockets so one broadcast can use one id for all.
    ack_ids: AtomicU64,
    /// Sockets whose connect middlewares are still running.
    connecting: AtomicUsize,
    /// Created for a dynamic namespace: removed again when its last socket leaves.
    dynamic: AtomicBool,
}

impl Namespace {
    pub(crate) fn new(
        name: &str,
        shared: Arc<Shared>,
        server: Weak<Server>,
        setup: Guarded,
        dynamic: bool,
    ) -> Arc<Self> {
        let name: Arc<str> = Arc::from(name);
        Arc::new_cyclic(|weak: &Weak<Namespace>| {
            let adapter = (shared.adapter)(AdapterContext::new(name.clone(), weak.clone()));
            Self {
                name,
                shared,
                server,
                setup: RwLock::new(setup),
                sockets: RwLock::default(),
                adapter,
                ack_ids: AtomicU64::new(0),
                connecting: AtomicUsize::new(0),
                dynamic: AtomicBool::new(dynamic),
            }
        })
    }

    pub(crate) fn parser(&self) -> Parser {
        self.shared.parser
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.shared.ack_timeout
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn make_static(&self) {
        self.dynamic.store(false, Ordering::Release);
    }

    /// Counts a socket that starts connecting ([`Server::resolve`]); [`Namespace::connect`]
    /// ends the count.
    pub(crate) fn begin_connect(&self) {
        self.connecting.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn set_setup(&self, setup: Guarded) {
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = setup;
    }

    fn sockets(&self) -> RwLockReadGuard<'_, HashMap<Sid, SocketRef>> {
        self.sockets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn sockets_mut(&self) -> RwLockWriteGuard<'_, HashMap<Sid, SocketRef>> {
        self.sockets.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get_socket(&self, sid: Sid) -> Option<SocketRef> {
        self.sockets().get(&sid).cloned()
    }

    pub(crate) fn with_sockets<R>(&self, f: impl FnOnce(&HashMap<Sid, SocketRef>) -> R) -> R {
        f(&self.sockets())
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets().len()
    }

    pub(crate) fn remove_socket(self: &Arc<Self>, sid: Sid) {
        let now_empty = {
            let mut sockets = self.sockets_mut();
            sockets.remove(&sid);
            sockets.is_empty()
        };
        self.adapter.del_all(sid);
        if now_empty {
            self.forget_if_unused();
        }
    }

    /// Drops a dynamic namespace without sockets from the server.
    pub(crate) fn forget_if_unused(self: &Arc<Self>) {
        if self.dynamic.load(Ordering::Acquire) && self.is_empty() {
            if let Some(server) = self.server.upgrade() {
                server.forget_dynamic(self);
            }
        }
    }

    /// No socket connected, and none connecting.
    pub(crate) fn is_empty(&self) -> bool {
        self.sockets().is_empty() && self.connecting.load(Ordering::Acquire) == 0
    }

    /// Runs the connect middlewares for a new socket (counted by [`Namespace::begin_connect`]),
    /// then admits it or refuses it. `admit` registers the socket with its client and queues
    /// the CONNECT reply (false if the connection is gone meanwhile); `refuse` reports the
    /// refusal to the client. A middleware that panics refuses the socket.
    ///
    /// Packets the client sends once admitted wait until the connect handler has run (it
    /// registers the event handlers), even when a middleware made the flow leave the
    /// connection's task.
    pub(crate) fn connect(
        self: &Arc<Self>,
        socket: Arc<SocketInner>,
        admit: impl FnOnce(&SocketRef) -> bool + Send + 'static,
        refuse: impl FnOnce(ConnectRefusal) + Send + 'static,
    ) {
        let setup = self.setup.read().unwrap_or_else(|e| e.into_inner()).clone();
        let ns = self.clone();
        let socket = SocketRef(socket);
        run(async move {
            for middleware in &setup.middlewares {
                if let Err(refusal) = guarded_middleware(middleware, &socket).await {
                    socket.0.refused();
                    ns.connecting.fetch_sub(1, Ordering::AcqRel);
                    ns.forget_if_unused();
                    refuse(refusal);
                    return;
                }
            }
            socket.0.mark_connected();
            let admitted = admit(&socket);
            if admitted {
                ns.sockets_mut().insert(socket.id(), socket.clone());
            }
            ns.connecting.fetch_sub(1, Ordering::AcqRel);
            if !admitted {
                socket.close_with(DisconnectReason::TransportClose);
                return;
            }
            let handler = setup.handler.clone();
            let connected = socket.clone();
            if panic::catch_unwind(AssertUnwindSafe(move || handler(connected))).is_err() {
                tracing::error!(ns = %ns.name, socket = %socket.id(), "the connect handler panicked");
                crate::client::close_connection(&socket.0.engine, DisconnectReason::TransportError);
            }
            socket.mark_ready();
        });
    }

    pub(crate) fn operator(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }
}

/// Runs one connect middleware; a panic (in it or in its future) refuses the socket.
async fn guarded_middleware(
    middleware: &BoxedMiddleware,
    socket: &SocketRef,
) -> Result<(), ConnectRefusal> {
    let failed = || ConnectRefusal::new("internal error");
    let Ok(verdict) = panic::catch_unwind(AssertUnwindSafe(|| middleware(socket))) else {
        tracing::error!(ns = socket.ns(), socket = %socket.id(), "a connect middleware panicked");
        return Err(failed());
    };
    match AssertUnwindSafe(verdict).catch_unwind().await {
        Ok(verdict) => verdict,
        Err(_) => {
            tracing::error!(ns = socket.ns(), socket = %socket.id(), "a connect middleware panicked");
            Err(failed())
        }
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A handle to one namespace: its sockets, rooms and broadcasts.
#[derive(Clone)]
pub struct NamespaceRef(pub(crate) Arc<Namespace>);

impl NamespaceRef {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The number of sockets connected on this server.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no socket is connected on this server.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The socket with id `sid`, if it is connected on this server.
    pub fn get_socket(&self, sid: Sid) -> Option<SocketRef> {
        self.0.get_socket(sid)
    }

    fn operator(&self) -> BroadcastOperator {
        self.0.operator()
    }

    /// Sends an event with the elements of `args` as arguments to the other servers of the
    /// cluster (through the adapter; nothing happens on a single server).
    pub fn server_side_emit<A: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<(), crate::adapter::AdapterError> {
        let args = crate::Payload::from_args(args)
            .map_err(|e| crate::adapter::AdapterError(e.to_string()))?;
        self.0.adapter.server_side_emit(event, &args)
    }

    operator_entry_points!();
}

impl fmt::Debug for NamespaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NamespaceRef").field(&self.0.name).finish()
    }
}
