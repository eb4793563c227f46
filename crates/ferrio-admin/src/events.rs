//! What the server tells the UI: the observer of the Socket.IO server (development-mode
//! events and the aggregated counts), and the statistics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrio::observe::Sent;
use ferrio::{DisconnectReason, Io, Observer, Payload, Room, Sid, SocketRef, Transport};
use serde_json::{Value, json};

use crate::Shared;
use crate::serialize::{EventArgs, date, socket_json};

/// The [`Observer`] of an [`AdminUi`](crate::AdminUi): give it to
/// [`IoBuilder::observe`](ferrio::IoBuilder::observe).
#[derive(Clone)]
pub struct AdminObserver(pub(crate) Arc<Shared>);

impl std::fmt::Debug for AdminObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AdminObserver")
            .field(&self.0.server_id)
            .finish()
    }
}

impl AdminObserver {
    fn is_admin(&self, nsp: &str) -> bool {
        nsp == self.0.settings.namespace
    }

    fn verbose(&self) -> bool {
        self.0.development()
    }
}

impl Observer for AdminObserver {
    fn socket_connected(&self, socket: &SocketRef) {
        self.0.events.push("rawConnection", None, 1);
        if self.verbose() {
            self.0.emit_admin(
                "socket_connected",
                &(socket_json(socket), date(SystemTime::now())),
            );
        }
    }

    fn socket_disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {
        self.0
            .events
            .push("rawDisconnection", Some(reason.as_str()), 1);
        if self.verbose() {
            let id = socket.id();
            self.0.emit_admin(
                "socket_disconnected",
                &(
                    socket.ns(),
                    id.as_str(),
                    reason.as_str(),
                    date(SystemTime::now()),
                ),
            );
        }
    }

    fn room_joined(&self, nsp: &str, room: &Room, sid: Sid) {
        if self.verbose() {
            let when = date(SystemTime::now());
            self.0
                .emit_admin("room_joined", &(nsp, room.as_ref(), sid.as_str(), when));
        }
    }

    fn room_left(&self, nsp: &str, room: &Room, sid: Sid) {
        if self.verbose() {
            let when = date(SystemTime::now());
            self.0
                .emit_admin("room_left", &(nsp, room.as_ref(), sid.as_str(), when));
        }
    }

    fn event_received(&self, socket: &SocketRef, event: &str, args: &Payload, bytes: usize) {
        self.0.events.push("packetsIn", None, 1);
        self.0.events.push("bytesIn", None, bytes as u64);
        if self.verbose() && !self.is_admin(socket.ns()) {
            let id = socket.id();
            let args = EventArgs {
                event,
                args: Some(args),
            };
            self.0.emit_admin(
                "event_received",
                &(socket.ns(), id.as_str(), args, date(SystemTime::now())),
            );
        }
    }

    fn event_sent(&self, socket: &SocketRef, sent: &Sent<'_>) {
        if self.is_admin(socket.ns()) {
            // What the UI itself gets is not reported to it (that would never end).
            return;
        }
        self.0.events.push("packetsOut", None, 1);
        self.0.events.push("bytesOut", None, sent.bytes() as u64);
        if self.verbose() {
            let id = socket.id();
            let payload = sent.args();
            let args = EventArgs {
                event: sent.event(),
                args: payload.as_ref(),
            };
            self.0.emit_admin(
                "event_sent",
                &(socket.ns(), id.as_str(), args, date(SystemTime::now())),
            );
        }
    }

    fn transport_upgraded(&self, socket: &SocketRef) {
        if self.verbose() {
            let id = socket.id();
            self.0.emit_admin(
                "socket_updated",
                &(json!({ "id": id.as_str(), "nsp": socket.ns(), "transport": "websocket" }),),
            );
        }
    }
}

/// Counts per second and type, handed to the UI (and cleared) with each statistics packet.
#[derive(Default)]
pub(crate) struct EventBuffer(Mutex<HashMap<EventKey, u64>>);

/// The second (in milliseconds since the epoch), the type and the sub-type of a count.
type EventKey = (u64, &'static str, Option<&'static str>);

impl EventBuffer {
    pub(crate) fn push(&self, kind: &'static str, sub: Option<&'static str>, count: u64) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *buffer.entry((second * 1000, kind, sub)).or_default() += count;
    }

    fn take(&self) -> Vec<Value> {
        let buffer = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        buffer
            .into_iter()
            .map(|((timestamp, kind, sub), count)| {
                let mut event = json!({ "timestamp": timestamp, "type": kind, "count": count });
                if let Some(sub) = sub {
                    event["subType"] = Value::from(sub);
                }
                event
            })
            .collect()
    }
}

/// The statistics of this server, as the UI's server list and dashboard read them.
pub(crate) fn server_stats(shared: &Shared, io: &Io) -> Value {
    let (mut clients, mut polling) = (0, 0);
    if let Some(engine) = io.engine() {
        for session in engine.sockets() {
            clients += 1;
            if session.transport() == Transport::Polling {
                polling += 1;
            }
        }
    }
    let mut names = io.namespaces();
    names.sort();
    let namespaces: Vec<Value> = names
        .iter()
        .filter_map(|name| io.of(name))
        .map(|ns| json!({ "name": ns.name(), "socketsCount": ns.len() }))
        .collect();
    json!({
        "serverId": shared.server_id,
        "hostname": shared.hostname,
        "pid": std::process::id(),
        "uptime": shared.started.elapsed().as_secs_f64(),
        "clientsCount": clients,
        "pollingClientsCount": polling,
        "aggregatedEvents": shared.events.take(),
        "namespaces": namespaces,
    })
}
