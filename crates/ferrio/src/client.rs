//! One client connection: the Engine.IO handler of the Socket.IO layer, which decodes
//! packets and routes them to the namespaces the client joined.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use ferrio_engine::{CloseReason, EngineHandler, Message, Sid, Socket as EngineSocket};
use tokio::task::AbortHandle;

use crate::connect::connect;
use crate::error::DisconnectReason;
use crate::parser::{Incoming, PendingBinary};
use crate::server::Server;
use crate::socket::{Inbound, SocketRef};

/// The Socket.IO state of one connection, attached to its Engine.IO session.
pub(crate) struct Client {
    state: Mutex<ClientState>,
    /// The `connection` span (field `sid`), entered while the connection's packets are
    /// handled. A debug span: disabled, and free, unless debug logs are on.
    span: tracing::Span,
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
    /// Handlers of this connection running on their own task ([`Running`]).
    running: u32,
}

/// Why a connection may not connect to a namespace now.
pub(crate) enum Refused {
    /// The connection is closing.
    Closed,
    /// It joined the namespace already, or is joining it.
    Duplicate,
    /// It joined (or is joining) as many namespaces as it may.
    TooMany,
}

impl Client {
    fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn socket(&self, nsp: &str) -> Option<SocketRef> {
        self.state().sockets.iter().find(|s| s.ns() == nsp).cloned()
    }

    /// Notes a CONNECT for `nsp`, unless the connection is closing, asked already, or is in
    /// (or joining) `max_namespaces` namespaces already.
    pub(crate) fn begin_connect(&self, nsp: &str, max_namespaces: usize) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        let joined = state.sockets.iter().any(|s| s.ns() == nsp);
        if joined || state.connecting.iter().any(|n| n == nsp) {
            return Err(Refused::Duplicate);
        }
        if state.sockets.len() + state.connecting.len() >= max_namespaces {
            return Err(Refused::TooMany);
        }
        state.connecting.push(nsp.to_owned());
        Ok(())
    }

    /// A CONNECT for `nsp` that was refused.
    pub(crate) fn end_connect(&self, nsp: &str) {
        self.state().connecting.retain(|n| n != nsp);
    }

    /// Registers an admitted socket; false if the connection closed meanwhile.
    pub(crate) fn admit(&self, nsp: &str, socket: &SocketRef) -> bool {
        let mut state = self.state();
        state.connecting.retain(|n| n != nsp);
        // Usually the only connect of the connection: give its room back.
        state.connecting.shrink_to_fit();
        if state.closed {
            return false;
        }
        state.sockets.push(socket.clone());
        if let Some(timer) = state.connect_timer.take() {
            timer.abort();
        }
        true
    }
}

/// A handler of a connection that had to wait and runs on its own task: it counts against
/// the connection's `max_concurrent_handlers` until dropped. The connection stops reading
/// while `max` of them run (the engine's read backpressure), and reads again as soon as one
/// ends.
pub(crate) struct Running {
    engine: EngineSocket,
    max: u32,
}

impl Running {
    pub(crate) fn start(engine: &EngineSocket, max: u32) -> Self {
        if let Some(client) = engine.attached::<Client>() {
            // Counted and paused under the client's lock, so pauses and resumes reach the
            // engine in the order of the count they follow.
            let mut state = client.state();
            state.running = state.running.saturating_add(1);
            if state.running == max {
                engine.pause_reading();
            }
        }
        Self {
            engine: engine.clone(),
            max,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(client) = self.engine.attached::<Client>() {
            let mut state = client.state();
            if state.running == self.max {
                self.engine.resume_reading();
            }
            state.running = state.running.saturating_sub(1);
        }
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
pub(crate) fn forget_socket(engine: &EngineSocket, sid: Sid) {
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

    fn handle(&self, engine: &EngineSocket, client: &Client, packet: Incoming, bytes: usize) {
        let (nsp, inbound) = match packet {
            Incoming::Connect { nsp, auth } => {
                return connect(&self.server, engine, client, nsp.into_owned(), auth);
            }
            Incoming::Disconnect { nsp } => (nsp, Inbound::Disconnect),
            Incoming::Event {
                nsp,
                id,
                event,
                args,
            } => (nsp, Inbound::Event { event, args, id }),
            Incoming::Ack { nsp, id, args } => (nsp, Inbound::Ack { id, args }),
        };
        match client.socket(&nsp) {
            Some(socket) => {
                if let Inbound::Event { event, id, .. } = &inbound {
                    tracing::debug!(ns = %nsp, socket = %socket.id(), event = event.as_str(), ack = id.is_some(), "event received");
                }
                let observers = &self.server.shared.observers;
                if let (false, Inbound::Event { event, args, .. }) =
                    (observers.is_empty(), &inbound)
                {
                    observers.each(|o| o.event_received(&socket, event, args, bytes));
                }
                socket.receive(inbound)
            }
            None => self.parse_error(engine, &"a packet for a namespace not joined"),
        }
    }
}

impl EngineHandler for SocketIoHandler {
    fn on_open(&self, engine: &EngineSocket) {
        let client = Client {
            state: Mutex::default(),
            span: tracing::debug_span!("connection", sid = %engine.id()),
        };
        if self.server.closing.load(Ordering::Acquire) {
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
        let _span = client.span.enter();
        // As an Engine.IO packet, like the frames the server queues: the `4` counts.
        let bytes = match &message {
            Message::Text(text) => text.len() + 1,
            Message::Binary(data) => data.len(),
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
            Ok(Some(packet)) => self.handle(engine, client, packet, bytes),
            Ok(None) => {}
            Err(e) => self.parse_error(engine, &e),
        }
    }

    fn on_upgrade(&self, engine: &EngineSocket) {
        tracing::debug!(sid = %engine.id(), "connection upgraded to websocket");
        let observers = &self.server.shared.observers;
        if observers.is_empty() {
            return;
        }
        let Some(client) = engine.attached::<Client>() else {
            return;
        };
        let sockets = client.state().sockets.clone();
        for socket in &sockets {
            observers.each(|o| o.transport_upgraded(socket));
        }
    }

    fn on_close(&self, engine: &EngineSocket, reason: CloseReason) {
        let Some(client) = engine.attached::<Client>() else {
            return;
        };
        let _span = client.span.enter();
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
