//! The connect flow, in one place: a client's CONNECT for a namespace, from the packet to an
//! admitted socket whose connect handler has run (or to the client's refusal).

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use ferrio_engine::Socket as EngineSocket;
use futures_util::FutureExt;

use crate::client::{self, Client};
use crate::error::{ConnectRefusal, DisconnectReason};
use crate::handler::{BoxedMiddleware, run};
use crate::parser::Parser;
use crate::payload::Payload;
use crate::server::Server;
use crate::socket::{SocketInner, SocketRef};

/// Handles a CONNECT for namespace `nsp` with the handshake `auth`.
///
/// 1. The connection may ask once per namespace (a second CONNECT is a protocol error), and
///    may be in at most `max_namespaces_per_connection` (beyond, the client gets a refusal
///    saying so and the connection stays).
/// 2. The namespace is found, or created if a dynamic pattern matches; otherwise the client
///    gets `Invalid namespace` and the connection stays.
/// 3. The namespace's adapter has started (a failure is logged; local delivery works).
/// 4. The connect middlewares run in order; the first refusal answers the client.
/// 5. The client registers the socket and gets its CONNECT reply; the namespace admits it.
/// 6. The connect handler runs (it registers the event handlers), then the packets that
///    arrived meanwhile are delivered in order.
///
/// Steps 3 to 6 run on the connection's task until something must wait.
pub(crate) fn connect(
    server: &Arc<Server>,
    engine: &EngineSocket,
    client: &Client,
    nsp: String,
    auth: Option<Payload>,
) {
    let parser = server.shared.parser;
    let max_namespaces = server.shared.max_namespaces;
    match client.begin_connect(&nsp, max_namespaces) {
        Ok(()) => {}
        Err(client::Refused::Closed) => return,
        Err(client::Refused::Duplicate) => {
            tracing::debug!(sid = %engine.id(), nsp, "second CONNECT for a namespace; closing");
            return client::close_connection(engine, DisconnectReason::ParseError);
        }
        Err(client::Refused::TooMany) => {
            tracing::debug!(sid = %engine.id(), nsp, max_namespaces, "namespace limit reached");
            let message =
                format!("Too many namespaces: a connection may join at most {max_namespaces}");
            return refuse(engine, parser, &nsp, &ConnectRefusal::new(message));
        }
    }
    let Some(ns) = server.resolve(&nsp) else {
        client.end_connect(&nsp);
        return refuse(
            engine,
            parser,
            &nsp,
            &ConnectRefusal::new("Invalid namespace"),
        );
    };
    let auth = auth.unwrap_or_else(Payload::empty_object);
    let socket = SocketRef(SocketInner::new(ns.clone(), engine.clone(), auth));
    let origin = socket.clone();
    let engine = engine.clone();
    // Counted like a handler while it waits (for the adapter or a middleware).
    run(&origin, Cow::Borrowed("connect"), async move {
        let _ = ns.ready().await;
        for middleware in &ns.setup().middlewares {
            if let Err(refusal) = guarded_middleware(middleware, &socket).await {
                socket.0.refused();
                ns.end_connect(None);
                if let Some(client) = engine.attached::<Client>() {
                    client.end_connect(&nsp);
                }
                return refuse(&engine, parser, &nsp, &refusal);
            }
        }
        socket.0.mark_connected();
        let admitted = admit(&engine, parser, &nsp, &socket);
        ns.end_connect(admitted.then_some(&socket));
        if !admitted {
            return socket.close_with(DisconnectReason::TransportClose);
        }
        let handler = ns.setup().handler;
        let connected = socket.clone();
        if panic::catch_unwind(AssertUnwindSafe(move || handler(connected))).is_err() {
            tracing::error!(ns = %ns.name, socket = %socket.id(), "the connect handler panicked");
            client::close_connection(&socket.0.engine, DisconnectReason::TransportError);
        }
        socket.mark_ready();
    });
}

/// Registers the socket with its client and queues the CONNECT reply; false if the
/// connection is gone meanwhile.
fn admit(engine: &EngineSocket, parser: Parser, nsp: &str, socket: &SocketRef) -> bool {
    let Some(client) = engine.attached::<Client>() else {
        return false;
    };
    if !client.admit(nsp, socket) {
        return false;
    }
    let reply = parser.connect(nsp, socket.id().as_str(), None);
    reply.send(engine).is_ok()
}

/// Tells the client its CONNECT was refused.
fn refuse(engine: &EngineSocket, parser: Parser, nsp: &str, refusal: &ConnectRefusal) {
    match parser.connect_error(nsp, &refusal.message, refusal.data.as_deref()) {
        Ok(packet) => {
            let _ = packet.send(engine);
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode a connect refusal"),
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
