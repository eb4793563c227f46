//! Leaving a namespace: once, whatever the reason, with the `disconnecting` and `disconnect`
//! hooks around the cleanup.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use super::{Listeners, SocketInner, SocketRef};
use crate::adapter::{Session, is_recoverable};
use crate::client;
use crate::error::DisconnectReason;

impl SocketInner {
    /// A refused socket: forget the rooms its middlewares may have joined and whatever they
    /// registered on it (a handler holding its socket would keep it alive).
    pub(crate) fn refused(&self) {
        self.gone.store(true, Ordering::Release);
        self.ns.adapter.del_all(self.id);
        *self.listeners() = Listeners::default();
    }
}

impl SocketRef {
    /// Removes the socket from its namespace: the client gets a DISCONNECT, the connection
    /// (and the client's other namespaces) stay.
    pub fn disconnect(&self) {
        self.disconnect_with(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// [`disconnect`](Self::disconnect), with the reason the hooks get.
    pub(crate) fn disconnect_with(&self, reason: DisconnectReason) {
        if self.connected() {
            // Forgotten by the client first, so a CONNECT it sends as soon as it reads the
            // DISCONNECT is a new connect, not a duplicate.
            client::forget_socket(&self.0.engine, self.id());
            let packet = self.0.ns.parser().disconnect(self.ns());
            let _ = packet.send(&self.0.engine);
            self.close_with(reason);
        }
    }

    /// Closes the whole connection: this socket and the client's sockets in other
    /// namespaces leave with "forced server close".
    pub fn close(&self) {
        client::close_connection(&self.0.engine, DisconnectReason::ForcedServerClose);
    }

    /// Takes the socket out of its namespace, once: the `disconnecting` hook, then rooms, acks
    /// and registrations go, then the `disconnect` hook.
    pub(crate) fn close_with(&self, reason: DisconnectReason) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let disconnecting = self
            .0
            .listeners()
            .rare
            .as_mut()
            .and_then(|rare| rare.disconnecting.take());
        if let Some(hook) = disconnecting {
            self.call_hook("disconnecting", || hook(self.clone(), reason));
        }
        self.0.gone.store(true, Ordering::Release);
        self.0.acks.fail_all();
        client::forget_socket(&self.0.engine, self.id());
        if let Some(pid) = self.0.pid.as_ref().filter(|_| is_recoverable(reason)) {
            // Kept before the socket leaves its rooms, so they are part of the session.
            let adapter = &self.0.ns.adapter;
            adapter.persist_session(Session {
                sid: self.id(),
                pid: pid.clone(),
                rooms: adapter.socket_rooms(self.id()),
                data: self.data_value(),
                resume_from: None,
            });
        }
        self.0.ns.remove_socket(self.id());
        let disconnect = {
            let mut listeners = self.0.listeners();
            let hook = listeners.disconnect.take();
            *listeners = Listeners::default();
            hook
        };
        tracing::info!(
            sid = %self.connection_id(),
            ns = self.ns(),
            socket = %self.id(),
            %reason,
            "socket disconnected"
        );
        let observers = &self.0.ns.shared.observers;
        if !observers.is_empty() {
            observers.each(|o| o.socket_disconnected(self, reason));
        }
        if let Some(hook) = disconnect {
            self.call_hook("disconnect", || hook(self.clone(), reason));
        }
    }

    /// Runs a user hook of the disconnect path: a panic is logged and the cleanup goes on.
    fn call_hook(&self, name: &str, hook: impl FnOnce()) {
        if panic::catch_unwind(AssertUnwindSafe(hook)).is_err() {
            tracing::error!(ns = self.ns(), socket = %self.id(), hook = name, "a hook panicked");
        }
    }
}
