//! Packets from the client for one socket: held until the connect handler has run, then
//! delivered in order to the socket's listeners.

use std::sync::atomic::Ordering;

use super::SocketRef;
use crate::error::DisconnectReason;
use ferrio_engine::Utf8Bytes;

use crate::extract::EventParts;
use crate::payload::Payload;
use crate::rate_limit::RateLimitPolicy;

/// A packet from the client for one socket.
#[derive(Debug)]
pub(crate) enum Inbound {
    Event {
        event: Utf8Bytes,
        args: Payload,
        id: Option<u64>,
    },
    Ack {
        id: u64,
        args: Payload,
    },
    Disconnect,
}

impl SocketRef {
    /// Takes one packet from the client: at once, or after the connect handler has run.
    /// Events over the rate limit go no further.
    pub(crate) fn receive(&self, packet: Inbound) {
        if matches!(packet, Inbound::Event { .. }) && !self.within_rate_limit() {
            return;
        }
        if !self.0.ready.load(Ordering::Acquire) {
            let mut backlog = self.0.backlog.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waiting) = backlog.as_mut() {
                waiting.push(packet);
                return;
            }
        }
        self.dispatch(packet);
    }

    /// The connect handler has run: delivers what waited, then lets packets through.
    pub(crate) fn mark_ready(&self) {
        // The connect handler registered what the socket handles: keep no room for more.
        self.0.listeners().events.shrink_to_fit();
        loop {
            let batch = {
                let mut backlog = self.0.backlog.lock().unwrap_or_else(|e| e.into_inner());
                match backlog.as_mut() {
                    Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
                    _ => {
                        *backlog = None;
                        self.0.ready.store(true, Ordering::Release);
                        return;
                    }
                }
            };
            for packet in batch {
                self.dispatch(packet);
            }
        }
    }

    /// Counts one event against the server's rate limit; `false` if it is over, after
    /// applying the limit's policy.
    fn within_rate_limit(&self) -> bool {
        let Some(limiter) = &self.0.ns.shared.event_rate_limit else {
            return true;
        };
        if limiter.admit(&self.0.events) {
            return true;
        }
        let policy = limiter.limit.over_limit();
        if let Some(dropped) = limiter.note_drop() {
            tracing::warn!(
                ns = self.ns(),
                socket = %self.id(),
                ?policy,
                dropped,
                "events over the rate limit dropped (server-wide count; logged at most every 10 s)"
            );
        }
        if policy == RateLimitPolicy::Disconnect {
            self.disconnect_with(DisconnectReason::RateLimited);
        }
        false
    }

    fn dispatch(&self, packet: Inbound) {
        match packet {
            Inbound::Event { event, args, id } => self.on_event(event, args, id),
            Inbound::Ack { id, args } => self.0.acks.answer(id, args),
            Inbound::Disconnect => self.close_with(DisconnectReason::ClientNamespaceDisconnect),
        }
    }

    /// Delivers one event from the client: middlewares, catch-all listeners, then the handler.
    fn on_event(&self, event: Utf8Bytes, args: Payload, id: Option<u64>) {
        let (middlewares, any, handler) = {
            let listeners = self.0.listeners();
            let rare = listeners.rare.as_ref();
            (
                rare.map(|rare| rare.middlewares.clone())
                    .unwrap_or_default(),
                rare.map(|rare| rare.any_incoming.clone())
                    .unwrap_or_default(),
                listeners
                    .find(&event)
                    .ok()
                    .map(|i| listeners.events[i].1.clone()),
            )
        };
        for middleware in &middlewares {
            if let Err(message) = middleware(self, &event, &args) {
                tracing::debug!(ns = self.ns(), socket = %self.id(), event = event.as_str(), %message, "event refused");
                if let Some(id) = id {
                    let _ = self.send_ack(id, &(serde_json::json!({ "error": message }),));
                }
                return;
            }
        }
        for listener in &any {
            listener(self, &event, &args);
        }
        match handler {
            Some(handler) => handler(EventParts::new(self.clone(), event, args, id)),
            None => {
                tracing::trace!(ns = self.ns(), socket = %self.id(), event = event.as_str(), "no handler")
            }
        }
    }
}
