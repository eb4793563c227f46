//! [`Server`]: what every handle of one Socket.IO server shares: its settings, its
//! namespaces and the engine underneath.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrio_engine::WeakEngineIo;

use crate::adapter::{Adapter, AdapterContext, Recovery};
use crate::handler::Guarded;
use crate::namespace::Namespace;
use crate::observe::Observers;
use crate::parser::Parser;
use crate::rate_limit::EventLimiter;
use crate::registry::Registry;

/// Builds the adapter of each namespace.
pub(crate) type AdapterFactory = Arc<dyn Fn(AdapterContext) -> Arc<dyn Adapter> + Send + Sync>;

/// Settings every namespace reads.
pub(crate) struct Shared {
    pub(crate) parser: Parser,
    pub(crate) ack_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// Spawned handlers per connection before it stops reading.
    pub(crate) max_handlers: u32,
    /// Namespaces one connection may be in (or joining) at once.
    pub(crate) max_namespaces: usize,
    pub(crate) event_rate_limit: Option<EventLimiter>,
    /// Connection state recovery, when on.
    pub(crate) recovery: Option<Recovery>,
    pub(crate) state: http::Extensions,
    pub(crate) adapter: AdapterFactory,
    /// Who watches the server ([`IoBuilder::observe`](crate::IoBuilder::observe)).
    pub(crate) observers: Observers,
}

pub(crate) struct Server {
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: Registry,
    /// Weak: the engine owns this server (through its handler), not the other way round.
    pub(crate) engine: OnceLock<WeakEngineIo>,
    /// Set by [`Io::close`](crate::Io::close): connections that open afterwards are closed
    /// at once.
    pub(crate) closing: AtomicBool,
}

impl Server {
    /// A namespace of this server (not registered yet).
    pub(crate) fn new_namespace(
        self: &Arc<Self>,
        name: &str,
        setup: Guarded,
        dynamic: bool,
    ) -> Arc<Namespace> {
        Namespace::new(
            name,
            self.shared.clone(),
            Arc::downgrade(self),
            setup,
            dynamic,
        )
    }

    /// The namespace a client asks for, with one connect counted
    /// ([`Registry::resolve`]).
    pub(crate) fn resolve(self: &Arc<Self>, name: &str) -> Option<Arc<Namespace>> {
        self.registry
            .resolve(name, |setup| self.new_namespace(name, setup, true))
    }

    /// `/`, which exists from the start and is never removed.
    pub(crate) fn root(&self) -> Arc<Namespace> {
        self.registry
            .get("/")
            .expect("the `/` namespace is created with the server and never removed")
    }
}
