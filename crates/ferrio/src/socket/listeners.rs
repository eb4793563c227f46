//! What the application registers on a socket: event handlers, disconnect hooks, catch-all
//! listeners and per-packet middlewares.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::SocketRef;
use crate::handler::{
    BoxedDisconnect, BoxedEvent, DisconnectHandler, EventHandler, boxed_disconnect, boxed_event,
};
use crate::payload::Payload;

pub(super) type AnyHandler = Arc<dyn Fn(&SocketRef, &str, &Payload) + Send + Sync>;
pub(super) type PacketMiddleware =
    Arc<dyn Fn(&SocketRef, &str, &Payload) -> Result<(), String> + Send + Sync>;

/// Everything a socket's owner registered on it.
#[derive(Default)]
pub(super) struct Listeners {
    /// Sorted by the length of the name, then by the name ([`Listeners::find`]). A socket has
    /// a handful of handlers, registered once and looked up per event: a sorted list holds
    /// them in a third of a hash map's memory.
    pub(super) events: Vec<(Cow<'static, str>, BoxedEvent)>,
    pub(super) disconnect: Option<BoxedDisconnect>,
    /// What few sockets use, out of line: every socket carries only its pointer.
    pub(super) rare: Option<Box<RareListeners>>,
}

#[derive(Default)]
pub(super) struct RareListeners {
    pub(super) disconnecting: Option<BoxedDisconnect>,
    pub(super) any_incoming: Vec<AnyHandler>,
    pub(super) any_outgoing: Vec<AnyHandler>,
    pub(super) middlewares: Vec<PacketMiddleware>,
}

impl Listeners {
    fn rare(&mut self) -> &mut RareListeners {
        self.rare.get_or_insert_default()
    }

    /// Where the handler of `event` is, or would be inserted. Names are ordered by length
    /// first: most steps of the search then compare two lengths, and only names as long as
    /// `event` are compared byte by byte.
    pub(super) fn find(&self, event: &str) -> Result<usize, usize> {
        self.events.binary_search_by(|(name, _)| {
            name.len()
                .cmp(&event.len())
                .then_with(|| name.as_bytes().cmp(event.as_bytes()))
        })
    }
}

impl SocketRef {
    /// Registers something on the socket, unless it has left: what a socket that left
    /// holds is never cleared again, and could keep it alive.
    fn register(&self, f: impl FnOnce(&mut Listeners)) {
        let mut listeners = self.0.listeners();
        if !self.0.is_gone() {
            f(&mut listeners);
        }
    }

    /// Handles the event `event` with `handler`, replacing a previous handler of that event.
    pub fn on<H, M>(&self, event: impl Into<Cow<'static, str>>, handler: H)
    where
        H: EventHandler<M>,
        M: 'static,
    {
        let (event, handler) = (event.into(), boxed_event(handler));
        self.register(|l| match l.find(&event) {
            Ok(i) => l.events[i].1 = handler,
            Err(i) => l.events.insert(i, (event, handler)),
        });
    }

    /// Removes the handler of `event`.
    pub fn off(&self, event: &str) {
        let mut listeners = self.0.listeners();
        if let Ok(i) = listeners.find(event) {
            listeners.events.remove(i);
        }
    }

    /// Calls `handler` when the socket has left its namespace, with the reason.
    pub fn on_disconnect<H: DisconnectHandler<M>, M: 'static>(&self, handler: H) {
        let handler = boxed_disconnect(handler);
        self.register(|l| l.disconnect = Some(handler));
    }

    /// Calls `handler` when the socket is about to leave its namespace, while its rooms are
    /// still visible.
    pub fn on_disconnecting<H: DisconnectHandler<M>, M: 'static>(&self, handler: H) {
        let handler = boxed_disconnect(handler);
        self.register(|l| l.rare().disconnecting = Some(handler));
    }

    /// Calls `listener` with every event the client sends, before its own handler.
    pub fn on_any<F>(&self, listener: F)
    where
        F: Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static,
    {
        self.register(|l| l.rare().any_incoming.push(Arc::new(listener)));
    }

    /// Calls `listener` with every event this socket emits to its client (not broadcasts).
    pub fn on_any_outgoing<F>(&self, listener: F)
    where
        F: Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static,
    {
        self.register(|l| l.rare().any_outgoing.push(Arc::new(listener)));
    }

    /// Runs `middleware` on every event the client sends, before any listener. An error
    /// drops the event; if the client asked for an ack, it gets `{"error": <message>}`.
    pub fn use_middleware<F, E>(&self, middleware: F)
    where
        F: Fn(&SocketRef, &str, &Payload) -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        let middleware: PacketMiddleware = Arc::new(move |s: &SocketRef, e: &str, p: &Payload| {
            middleware(s, e, p).map_err(|e| e.to_string())
        });
        self.register(|l| l.rare().middlewares.push(middleware));
    }

    /// Tells the outgoing listeners about an event this socket emits.
    pub(super) fn notify_outgoing<A: Serialize + ?Sized>(&self, event: &str, args: &A) {
        let listeners = match &self.0.listeners().rare {
            Some(rare) if !rare.any_outgoing.is_empty() => rare.any_outgoing.clone(),
            _ => return,
        };
        if let Ok(payload) = Payload::from_args(args) {
            for listener in listeners {
                listener(self, event, &payload);
            }
        }
    }
}
