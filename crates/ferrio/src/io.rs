//! [`Io`]: the handle to a Socket.IO server.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferrio_engine::EngineIo;
use serde::Serialize;

use crate::adapter::{AdapterError, ServerAck};
use crate::builder::IoBuilder;
use crate::client::close_connection;
use crate::error::{DisconnectReason, InvalidPattern};
use crate::handler::{Guarded, IntoNamespaceHandler};
use crate::layer::SocketIoLayer;
use crate::namespace::NamespaceRef;
use crate::operators::{BroadcastOperator, operator_entry_points};
use crate::payload::Payload;
use crate::registry::Matcher;
use crate::server::Server;

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
        let ns = self
            .0
            .registry
            .insert_static(&name, handler.into_guarded(), |setup| {
                self.0.new_namespace(&name, setup, false)
            });
        NamespaceRef(ns)
    }

    /// Serves every namespace whose name matches the regular expression `pattern` (for
    /// example `^/tenant-[a-z0-9]+$`): each is created when a client first asks for it and
    /// dropped when its last socket leaves. Static namespaces take precedence.
    pub fn dyn_ns<H, M>(&self, pattern: &str, handler: H) -> Result<(), InvalidPattern>
    where
        H: IntoNamespaceHandler<M>,
    {
        let regex = regex_lite::Regex::new(pattern).map_err(|e| InvalidPattern::new(pattern, e))?;
        self.add_dynamic(Matcher::Pattern(regex), handler.into_guarded());
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
        self.0.registry.add_dynamic(matcher, setup);
    }

    /// The namespace `name`, if it exists now.
    pub fn of(&self, name: impl AsRef<str>) -> Option<NamespaceRef> {
        self.0
            .registry
            .get(&normalize(name.as_ref()))
            .map(NamespaceRef)
    }

    /// The names of the namespaces that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        self.0.registry.names()
    }

    fn root(&self) -> NamespaceRef {
        NamespaceRef(self.0.root())
    }

    /// Waits until the adapter of every namespace that exists now has started, and reports
    /// the first that failed. With a distributed adapter, call it before serving.
    pub async fn ready(&self) -> Result<(), AdapterError> {
        for ns in self.0.registry.all() {
            ns.ready().await?;
        }
        Ok(())
    }

    /// How many servers serve `/`, this one included.
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.root().server_count().await
    }

    /// Handles a server-side event other servers emit on `/`
    /// ([`NamespaceRef::on_server_event`]).
    pub fn on_server_event<F>(&self, event: impl Into<String>, handler: F)
    where
        F: Fn(Payload, ServerAck) + Send + Sync + 'static,
    {
        self.root().on_server_event(event, handler);
    }

    /// Sends an event to the other servers of the cluster on `/`
    /// ([`NamespaceRef::server_side_emit`]).
    pub fn server_side_emit<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<(), AdapterError> {
        self.root().server_side_emit(event, args)
    }

    /// Like [`server_side_emit`](Self::server_side_emit), and collects one answer per other
    /// server ([`NamespaceRef::server_side_emit_with_ack`]).
    pub async fn server_side_emit_with_ack<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<Vec<Payload>, AdapterError> {
        self.root().server_side_emit_with_ack(event, args).await
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
    /// Then every namespace's adapter closes. Call it from your HTTP server's graceful
    /// shutdown.
    pub async fn close(&self) {
        self.0.closing.store(true, Ordering::Release);
        if let Some(engine) = self.engine() {
            for connection in engine.sockets() {
                close_connection(&connection, DisconnectReason::ServerShuttingDown);
            }
        }
        for ns in self.0.registry.all() {
            if let Err(e) = ns.adapter.close().await {
                tracing::warn!(ns = %ns.name, error = %e, "the adapter failed to close");
            }
        }
    }

    /// A handle that does not keep the server alive ([`WeakIo::upgrade`]), for tasks that
    /// should end with it.
    pub fn downgrade(&self) -> WeakIo {
        WeakIo(Arc::downgrade(&self.0))
    }

    /// A value of the state given to [`IoBuilder::with_state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.shared.state.get::<T>().cloned()
    }
}

/// A weak handle to a Socket.IO server ([`Io::downgrade`]).
#[derive(Clone, Debug)]
pub struct WeakIo(std::sync::Weak<Server>);

impl WeakIo {
    /// The server, while something else keeps it alive.
    pub fn upgrade(&self) -> Option<Io> {
        self.0.upgrade().map(Io)
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
