//! The connect flow, in one place: a client's CONNECT for a namespace, from the packet to an
//! admitted socket whose connect handler has run (or to the client's refusal).

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use ferrio_engine::{Socket as EngineSocket, Utf8Bytes};
use futures_util::FutureExt;

use crate::adapter::{BroadcastPacket, IntoRoom};
use crate::client::{self, Client};
use crate::error::{ConnectRefusal, DisconnectReason};
use crate::handler::{BoxedMiddleware, run};
use crate::namespace::Namespace;
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
            return refuse(server, engine, &nsp, &ConnectRefusal::new(message));
        }
    }
    let Some(ns) = server.resolve(&nsp) else {
        client.end_connect(&nsp);
        return refuse(
            server,
            engine,
            &nsp,
            &ConnectRefusal::new("Invalid namespace"),
        );
    };
    let auth = auth.unwrap_or_else(Payload::empty_object);
    let claim = server
        .shared
        .recovery
        .as_ref()
        .and_then(|_| Claim::from_auth(&auth));
    let socket = SocketRef(SocketInner::new(ns.clone(), engine.clone(), auth.clone()));
    let origin = socket.clone();
    let engine = engine.clone();
    let server = server.clone();
    let skip_middlewares = server
        .shared
        .recovery
        .as_ref()
        .is_some_and(|recovery| recovery.skips_middlewares());
    // Counted like a handler while it waits (for the adapter or a middleware).
    run(&origin, Utf8Bytes::from_static("connect"), async move {
        let _ = ns.ready().await;
        if let Some(claim) = claim {
            let recovered = recover(&ns, &engine, parser, &nsp, auth, claim, skip_middlewares);
            match recovered.await {
                Recovered::Yes(socket) => return run_connect_handler(&ns, &socket),
                Recovered::Refused(refusal) => {
                    ns.end_connect(None);
                    if let Some(client) = engine.attached::<Client>() {
                        client.end_connect(&nsp);
                    }
                    return refuse(&server, &engine, &nsp, &refusal);
                }
                Recovered::Gone => {
                    ns.end_connect(None);
                    return;
                }
                // A fresh socket, as if the client had presented nothing.
                Recovered::No => {}
            }
        }
        for middleware in &ns.setup().middlewares {
            if let Err(refusal) = guarded_middleware(middleware, &socket).await {
                socket.0.refused();
                ns.end_connect(None);
                if let Some(client) = engine.attached::<Client>() {
                    client.end_connect(&nsp);
                }
                return refuse(&server, &engine, &nsp, &refusal);
            }
        }
        socket.0.mark_connected();
        if socket.0.pid.is_some() {
            // Recovery: the packets this socket may miss from now on are counted from here.
            ns.adapter.add_all(socket.id(), &[socket.id().into_room()]);
        }
        let admitted = admit(&engine, parser, &nsp, &socket, &[]);
        ns.end_connect(admitted.then_some(&socket));
        if !admitted {
            return socket.close_with(DisconnectReason::TransportClose);
        }
        run_connect_handler(&ns, &socket);
    });
}

/// Runs the namespace's connect handler on an admitted socket, then delivers what the
/// client sent meanwhile.
fn run_connect_handler(ns: &Arc<Namespace>, socket: &SocketRef) {
    tracing::info!(
        sid = %socket.connection_id(),
        ns = %ns.name,
        socket = %socket.id(),
        transport = socket.transport().as_str(),
        "socket connected"
    );
    let observers = &ns.shared.observers;
    if !observers.is_empty() {
        observers.each(|o| o.socket_connected(socket));
    }
    let handler = ns.setup().handler;
    let connected = socket.clone();
    if panic::catch_unwind(AssertUnwindSafe(move || handler(connected))).is_err() {
        tracing::error!(ns = %ns.name, socket = %socket.id(), "the connect handler panicked");
        client::close_connection(&socket.0.engine, DisconnectReason::TransportError);
    }
    socket.mark_ready();
}

/// Registers the socket with its client and queues `missed` (a recovered socket's missed
/// packets), then the CONNECT reply; false if the connection is gone meanwhile.
fn admit(
    engine: &EngineSocket,
    parser: Parser,
    nsp: &str,
    socket: &SocketRef,
    missed: &[BroadcastPacket],
) -> bool {
    let Some(client) = engine.attached::<Client>() else {
        return false;
    };
    if !client.admit(nsp, socket) {
        return false;
    }
    for packet in missed {
        if socket.send_encoded(&packet.encoded).is_err() {
            return false;
        }
    }
    let reply = parser.connect(nsp, socket.id().as_str(), socket.0.pid.as_deref());
    reply.send(engine).is_ok()
}

/// What a client presents to recover: `{pid, offset}` among its CONNECT's auth fields.
struct Claim {
    pid: String,
    offset: Option<String>,
}

impl Claim {
    /// The claim in `auth`, when it has a string `pid` (`offset` is absent when the client
    /// has seen no event yet).
    fn from_auth(auth: &Payload) -> Option<Self> {
        let auth: serde_json::Value = auth.get(0).ok()?;
        let pid = auth.get("pid")?.as_str()?.to_owned();
        let offset = auth
            .get("offset")
            .and_then(|o| o.as_str())
            .map(str::to_owned);
        Some(Self { pid, offset })
    }
}

enum Recovered {
    /// The socket is back, admitted, with its missed packets queued.
    Yes(SocketRef),
    /// No session to take back: a fresh socket instead.
    No,
    /// A connect middleware refused the recovered socket.
    Refused(ConnectRefusal),
    /// The connection closed meanwhile.
    Gone,
}

/// Takes back the session a client claims: its socket comes back with its id, rooms and
/// data, gets the packets it missed, then its CONNECT reply, atomically with respect to
/// the namespace's broadcasts (see [`Adapter::resume_session`](crate::adapter::Adapter::resume_session)).
async fn recover(
    ns: &Arc<Namespace>,
    engine: &EngineSocket,
    parser: Parser,
    nsp: &str,
    auth: Payload,
    claim: Claim,
    skip_middlewares: bool,
) -> Recovered {
    let session = match ns
        .adapter
        .restore_session(&claim.pid, claim.offset.as_deref())
        .await
    {
        Ok(Some(session)) => session,
        Ok(None) => return Recovered::No,
        Err(e) => {
            tracing::warn!(ns = %ns.name, error = %e, "cannot restore a session; a fresh socket instead");
            return Recovered::No;
        }
    };
    let socket = SocketRef(SocketInner::recovered(
        ns.clone(),
        engine.clone(),
        auth,
        &session,
    ));
    if !skip_middlewares {
        for middleware in &ns.setup().middlewares {
            if let Err(refusal) = guarded_middleware(middleware, &socket).await {
                socket.0.refused();
                return Recovered::Refused(refusal);
            }
        }
    }
    socket.0.mark_connected();
    let mut resume = |missed: Vec<BroadcastPacket>| {
        let admitted = admit(engine, parser, nsp, &socket, &missed);
        if admitted {
            ns.end_connect(Some(&socket));
        }
        admitted
    };
    let resumed = ns.adapter.resume_session(&session, &mut resume).await;
    if resumed {
        tracing::debug!(ns = %ns.name, socket = %socket.id(), "socket recovered");
        return Recovered::Yes(socket);
    }
    socket.0.refused();
    if engine.attached::<Client>().is_none() {
        return Recovered::Gone;
    }
    // The missed packets are no longer all there: the client starts afresh.
    Recovered::No
}

/// Tells the client its CONNECT was refused.
fn refuse(server: &Server, engine: &EngineSocket, nsp: &str, refusal: &ConnectRefusal) {
    let observers = &server.shared.observers;
    if !observers.is_empty() {
        observers.each(|o| o.connect_refused(nsp, &refusal.message));
    }
    tracing::debug!(sid = %engine.id(), nsp, message = %refusal.message, "connect refused");
    let parser = server.shared.parser;
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
