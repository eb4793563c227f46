//! One client connection: the Engine.IO handler of the Socket.IO layer, which decodes
//! packets and routes them to the namespaces the client joined.

use std::sync::{Arc, Mutex, MutexGuard};

use ferrio_engine::{CloseReason, EngineHandler, Message, Socket as EngineSocket};
use tokio::task::AbortHandle;

use crate::error::DisconnectReason;
use crate::io::Server;
use crate::parser::{Incoming, PendingBinary};
use crate::payload::Payload;
use crate::socket::{Inbound, SocketInner, SocketRef};

/// The Socket.IO state of one connection, attached to its Engine.IO session.
#[derive(Default)]
pub(crate) struct Client {
    state: Mutex<ClientState>,
}

#[derive(Default)]
struct ClientState {
    /// Joined namespaces (a client rarely joins more than a few, so a list beats a map).
    sockets: Vec<SocketRef>,
    /// Namespaces whose CONNECT is running its middlewares.
    connecting: Vec<String>,
    /// A binary packet waiting for its attachments.
    pending: Option<Box<PendingBinary>>,
    /// Why the server is closing the connection, when it knows better than the engine.
    close_reason: Option<DisconnectReason>,
    connect_timer: Option<AbortHandle>,
    closed: bool,
}

impl Client {
    fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn socket(&self, nsp: &str) -> Option<SocketRef> {
        self.state().sockets.iter().find(|s| s.ns() == nsp).cloned()
    }
}

/// Closes a connection for `reason` (reported to its sockets instead of "forced close").
pub(crate) fn close_connection(engine: &EngineSocket, reason: DisconnectReason) {
    if let Some(client) = engine.attached::<Client>() {
        client.state().close_reason.get_or_insert(reason);
    }
    engine.close();
}

/// Forgets a socket that left its namespace (by id: the client may already have joined the
/// namespace again with a new socket).
pub(crate) fn forget_socket(engine: &EngineSocket, sid: ferrio_engine::Sid) {
    if let Some(client) = engine.attached::<Client>() {
        client.state().sockets.retain(|s| s.id() != sid);
    }
}

/// The engine handler of a Socket.IO server.
pub(crate) struct SocketIoHandler {
    pub(crate) server: Arc<Server>,
}

impl SocketIoHandler {
    fn parse_error(&self, engine: &EngineSocket, error: &dyn std::fmt::Display) {
        tracing::debug!(sid = %engine.id(), %error, "invalid packet; closing the connection");
        close_connection(engine, DisconnectReason::ParseError);
    }

    fn handle(&self, engine: &EngineSocket, client: &Client, packet: Incoming) {
        match packet {
            Incoming::Connect { nsp, auth } => self.connect(engine, client, nsp.into_owned(), auth),
            Incoming::Disconnect { nsp } => match client.socket(&nsp) {
                Some(socket) => socket.receive(Inbound::Disconnect),
                None => self.parse_error(engine, &"DISCONNECT for a namespace not joined"),
            },
            Incoming::Event {
                nsp,
                id,
                event,
                args,
            } => match client.socket(&nsp) {
                Some(socket) => socket.receive(Inbound::Event { event, args, id }),
                None => self.parse_error(engine, &"EVENT for a namespace not joined"),
            },
            Incoming::Ack { nsp, id, args } => match client.socket(&nsp) {
                Some(socket) => socket.receive(Inbound::Ack { id, args }),
                None => self.parse_error(engine, &"ACK for a namespace not joined"),
            },
        }
    }

    fn connect(&self, engine: &EngineSocket, client: &Client, nsp: String, auth: Option<Payload>) {
        {
            let mut state = client.state();
            if state.closed {
                return;
            }
            let joined = state.sockets.iter().any(|s| s.ns() == nsp);
            if joined || state.connecting.contains(&nsp) {
                drop(state);
                return self.parse_error(engine, &"second CONNECT for a namespace");
            }
            state.connecting.push(nsp.clone());
        }
        let parser = self.server.shared.parser;
        let Some(ns) = self.server.resolve(&nsp) else {
            client.state().connecting.retain(|n| *n != nsp);
            if let Ok(packet) = parser.connect_error(&nsp, "Invalid namespace", None) {
                let _ = packet.send(engine);
            }
            return;
        };
        let auth = auth.unwrap_or_else(Payload::empty_object);
        let socket = SocketInner::new(ns.clone(), engine.clone(), auth);
        let (admit_engine, refuse_engine) = (engine.clone(), engine.clone());
        let (admit_nsp, refuse_nsp) = (nsp.clone(), nsp);
        ns.connect(
            socket,
            move |socket| {
                let Some(client) = admit_engine.attached::<Client>() else {
                    return false;
                };
                {
                    let mut state = client.state();
                    state.connecting.retain(|n| *n != admit_nsp);
                    // Usually the only connect of the connection: give its room back.
                    state.connecting.shrink_to_fit();
                    if state.closed {
                        return false;
                    }
                    state.sockets.push(socket.clone());
                    if let Some(timer) = state.connect_timer.take() {
                        timer.abort();
                    }
                }
                let reply = parser.connect(&admit_nsp, socket.id().as_str(), None);
                reply.send(&admit_engine).is_ok()
            },
            move |refusal| {
                if let Some(client) = refuse_engine.attached::<Client>() {
                    client.state().connecting.retain(|n| *n != refuse_nsp);
                }
                match parser.connect_error(&refuse_nsp, &refusal.message, refusal.data.as_deref()) {
                    Ok(packet) => {
                        let _ = packet.send(&refuse_engine);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot encode a connect refusal"),
                }
            },
        );
    }
}

impl EngineHandler for SocketIoHandler {
    fn on_open(&self, engine: &EngineSocket) {
        let client = Client::default();
        if self
            .server
            .closing
            .load(std::sync::atomic::Ordering::Acquire)
        {
            client.state().close_reason = Some(DisconnectReason::ServerShuttingDown);
            let _ = engine.attach(client);
            engine.close();
            return;
        }
        let timeout = self.server.shared.connect_timeout;
        let timed = engine.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let idle = timed
                .attached::<Client>()
                .is_some_and(|client| client.state().sockets.is_empty());
            if idle {
                tracing::debug!(sid = %timed.id(), "no namespace joined in time; closing");
                timed.close();
            }
        });
        client.state().connect_timer = Some(timer.abort_handle());
        if engine.attach(client).is_err() {
            tracing::error!(sid = %engine.id(), "engine session already has state attached");
            timer.abort();
        }
    }

    fn on_message(&self, engine: &EngineSocket, message: Message) {
        let Some(client) = engine.attached::<Client>() else {
            return;
        };
        let decoded = {
            let mut state = client.state();
            if state.closed {
                return;
            }
            self.server
                .shared
                .parser
                .decode(message, &mut state.pending)
        };
        match decoded {
            Ok(Some(packet)) => self.handle(engine, client, packet),
            Ok(None) => {}
            Err(e) => self.parse_error(engine, &e),
        }
    }

    fn on_close(&self, engine: &EngineSocket, reason: CloseReason) {
        let Some(client) = engine.attached::<Client>() else {
            return;
        };
        let (sockets, reason) = {
            let mut state = client.state();
            state.closed = true;
            state.pending = None;
            if let Some(timer) = state.connect_timer.take() {
                timer.abort();
            }
            let reason = state
                .close_reason
                .take()
                .unwrap_or_else(|| DisconnectReason::from_engine(reason));
            (std::mem::take(&mut state.sockets), reason)
        };
        for socket in sockets {
            socket.close_with(reason);
        }
    }
}
