//! Namespaces: the sockets of one name, their connect handler and middlewares, and their
//! adapter.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use ferrio_engine::Sid;

use crate::adapter::{Adapter, AdapterContext};
use crate::handler::{Guarded, run};
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
    pub(crate) dynamic: bool,
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
                dynamic,
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
        if self.dynamic && self.is_empty() {
            if let Some(server) = self.server.upgrade() {
                server.forget_dynamic(self);
            }
        }
    }

    /// No socket connected, and none connecting.
    pub(crate) fn is_empty(&self) -> bool {
        self.sockets().is_empty() && self.connecting.load(Ordering::Acquire) == 0
    }

    /// Runs the connect middlewares for a new socket, then admits it or refuses it.
    /// `admit` registers the socket with its client (false if the connection is gone
    /// meanwhile); `refuse` reports the refusal to the client.
    pub(crate) fn connect(
        self: &Arc<Self>,
        socket: Arc<SocketInner>,
        admit: impl FnOnce(&SocketRef) -> bool + Send + 'static,
        refuse: impl FnOnce(crate::ConnectRefusal) + Send + 'static,
    ) {
        let setup = self.setup.read().unwrap_or_else(|e| e.into_inner()).clone();
        let ns = self.clone();
        let socket = SocketRef(socket);
        self.connecting.fetch_add(1, Ordering::AcqRel);
        run(async move {
            for middleware in &setup.middlewares {
                if let Err(refusal) = middleware(&socket).await {
                    socket.0.refused();
                    ns.connecting.fetch_sub(1, Ordering::AcqRel);
                    refuse(refusal);
                    return;
                }
            }
            socket.0.mark_connected();
            ns.sockets_mut().insert(socket.id(), socket.clone());
            ns.connecting.fetch_sub(1, Ordering::AcqRel);
            if !admit(&socket) {
                socket.close_with(crate::DisconnectReason::TransportClose);
                return;
            }
            (setup.handler)(socket);
        });
    }

    pub(crate) fn operator(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
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
