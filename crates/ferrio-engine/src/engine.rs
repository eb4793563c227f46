//! The engine shared by every clone of the service: configuration, handler and session table,
//! and the routing of one request to the handshake, a poll, a post or a WebSocket.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;

use crate::body::ResponseBody;
use crate::config::EngineIoConfig;
use crate::cors::Cors;
use crate::error::EngineError;
use crate::flow::Watchdog;
use crate::handler::{EngineHandler, Transport};
use crate::handshake::{Handshake, handshake_info};
use crate::limits::{self, HandshakeRate, SessionSlots};
use crate::sid::Sid;
use crate::socket::{Session, Socket};
use crate::{polling, websocket};

/// Boxed error of a request body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) struct Engine {
    pub(crate) config: EngineIoConfig,
    pub(crate) handler: Arc<dyn EngineHandler>,
    sessions: RwLock<HashMap<Sid, Arc<Session>>>,
    /// Closes the sessions whose clients stopped reading.
    pub(crate) watchdog: Arc<Watchdog>,
    /// Counted against `max_sessions`.
    pub(crate) slots: SessionSlots,
    /// Present when `max_handshakes_per_second` is set.
    handshake_rate: Option<HandshakeRate>,
    /// Counters for monitoring (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(crate) stats: crate::stats::EngineStats,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.watchdog.stop();
    }
}

/// The query parameters the engine reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// The first occurrence of each parameter wins. Values are compared as sent: every valid
    /// value is plain ASCII that needs no percent-decoding.
    fn parse(query: &'a str) -> Self {
        let mut out = Self::default();
        // Split on bytes: `&` and `=` are ASCII, so every piece is on char boundaries.
        let split = |text: &'a str, at: u8| match text.bytes().position(|b| b == at) {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let mut rest = Some(query);
        while let Some(text) = rest {
            let (pair, tail) = split(text, b'&');
            rest = tail;
            let (key, value) = split(pair, b'=');
            let value = value.unwrap_or("");
            let slot = match key {
                "EIO" => &mut out.eio,
                "transport" => &mut out.transport,
                "sid" => &mut out.sid,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        out
    }
}

impl Engine {
    pub(crate) fn new(config: EngineIoConfig, handler: Arc<dyn EngineHandler>) -> Arc<Self> {
        let handshake_rate = config.max_handshakes_per_second.map(HandshakeRate::new);
        Arc::new(Self {
            config,
            handler,
            sessions: RwLock::new(HashMap::new()),
            watchdog: Arc::default(),
            slots: SessionSlots::default(),
            #[cfg(feature = "metrics")]
            stats: crate::stats::EngineStats::default(),
            handshake_rate,
        })
    }

    pub(crate) fn matches_path(&self, path: &str) -> bool {
        path.strip_prefix(self.config.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest == "/")
    }

    fn sessions_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Sid, Arc<Session>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Sid, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, sid: Sid) -> Option<Arc<Session>> {
        self.sessions_read().get(&sid).cloned()
    }

    pub(crate) fn contains(&self, sid: Sid) -> bool {
        self.sessions_read().contains_key(&sid)
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.sessions_write().remove(&sid);
    }

    /// Open sessions (closed ones kept for a last poll are left out).
    pub(crate) fn sockets(&self) -> Vec<Socket> {
        self.sessions_read()
            .values()
            .filter(|s| !s.is_closed())
            .map(Session::socket)
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions_read()
            .values()
            .filter(|s| !s.is_closed())
            .count()
    }

    /// Checks a handshake against `max_sessions` and `max_handshakes_per_second`, and takes
    /// the slot its session will hold.
    fn admit_handshake(self: &Arc<Self>) -> Result<SessionSlot, EngineError> {
        self.slots.try_take(self.config.max_sessions)?;
        let slot = SessionSlot(Some(self.clone()));
        if let Some(rate) = &self.handshake_rate {
            rate.try_acquire(tokio::time::Instant::now())?;
        }
        Ok(slot)
    }

    /// Creates and registers a session in the slot its handshake took, starts the heartbeat
    /// task of a polling session (a WebSocket session's connection task runs its heartbeat),
    /// then announces it to the handler. A WebSocket session's `open` packet is queued before
    /// anything the handler sends; a close that happens before or during `on_open` is
    /// reported after it.
    pub(crate) fn open_session(
        self: &Arc<Self>,
        handshake: Handshake,
        transport: Transport,
        slot: SessionSlot,
    ) -> Arc<Session> {
        // From now on the session holds the slot; its close gives it back.
        slot.keep();
        self.watchdog.start(self.config.outbound);
        let session = Session::new(self.clone(), handshake, transport);
        if transport == Transport::WebSocket {
            let open = self.open_packet(session.sid, transport);
            session.push_open(open);
        }
        self.sessions_write().insert(session.sid, session.clone());
        if transport == Transport::Polling {
            tokio::spawn(session.clone().run_heartbeat());
        }
        tracing::debug!(sid = %session.sid, %transport, "engine.io session opened");
        session.open();
        session
    }

    /// The `open` packet of a new session.
    pub(crate) fn open_packet(&self, sid: Sid, transport: Transport) -> String {
        let upgrades: &[&str] = if transport == Transport::Polling
            && self.config.allow_upgrades
            && self.config.websocket
        {
            &["websocket"]
        } else {
            &[]
        };
        ferrio_protocol::engine::OpenData {
            sid: sid.as_str(),
            upgrades,
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.max_payload,
        }
        .encode_packet()
    }

    /// Serves one request under the engine's path.
    pub(crate) async fn handle<B, RB>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Response<ResponseBody<RB>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let websocket_attempt = websocket::asks_for_websocket(&parts.headers);
        let checked = limits::check_headers(&self.config, &parts.headers).and_then(|()| {
            self.config
                .cors
                .check(&parts.headers)
                .map_err(|()| EngineError::BadRequest)
        });
        let (origin, mut res) = match checked {
            Err(err) => (None, err.into_response()),
            Ok(origin)
                if self.config.cors.is_enabled()
                    && Cors::is_preflight(&parts.method, &parts.headers) =>
            {
                let mut res = Response::new(ResponseBody::empty());
                *res.status_mut() = StatusCode::NO_CONTENT;
                Cors::apply_preflight(&parts.headers, res.headers_mut());
                (origin, res)
            }
            Ok(origin) => match self.route(parts, body).await {
                Ok(res) => (origin, res),
                Err(err) => (origin, err.into_response()),
            },
        };
        Cors::apply(origin, res.headers_mut());
        if websocket_attempt && res.status() != StatusCode::SWITCHING_PROTOCOLS {
            // A refused WebSocket handshake ends its connection.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    async fn route<B, RB>(
        self: Arc<Self>,
        mut parts: http::request::Parts,
        body: B,
    ) -> Result<Response<ResponseBody<RB>>, EngineError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let query = Query::parse(parts.uri.query().unwrap_or(""));
        let transport = query
            .transport
            .and_then(Transport::parse)
            .filter(|t| self.config.transport_enabled(*t))
            .ok_or(EngineError::TransportUnknown)?;
        if query.eio != Some("4") {
            return Err(EngineError::UnsupportedProtocolVersion);
        }

        if let Some(sid) = query.sid {
            let session = Sid::parse(sid)
                .and_then(|sid| self.get(sid))
                .ok_or(EngineError::SessionIdUnknown)?;
            if session.close_if_pong_overdue() {
                return Err(EngineError::SessionIdUnknown);
            }
            return match (transport, &parts.method) {
                (Transport::Polling, &Method::GET) => polling::poll(&session).await,
                (Transport::Polling, &Method::POST) => {
                    polling::post(&session, &parts.headers, body).await
                }
                (Transport::Polling, _) => Err(EngineError::BadRequest),
                (Transport::WebSocket, _) => {
                    self.allow_request(&parts)?;
                    websocket::upgrade(&self, &session, &mut parts)
                }
            };
        }

        if parts.method != Method::GET {
            return Err(EngineError::BadHandshakeMethod);
        }
        if transport == Transport::WebSocket && !websocket::is_upgrade_request(&parts) {
            return Err(EngineError::BadRequest);
        }
        // The limits before the hook: a flood of handshakes costs no call to it.
        let slot = self.admit_handshake()?;
        self.allow_request(&parts)?;
        match transport {
            Transport::Polling => {
                let session = self.open_session(handshake_info(&parts), Transport::Polling, slot);
                let packet = self.open_packet(session.sid, Transport::Polling);
                Ok(text_response(Bytes::from(packet)))
            }
            Transport::WebSocket => websocket::handshake(&self, &mut parts, slot),
        }
    }

    /// Runs the `allow_request` hook, if there is one.
    fn allow_request(&self, parts: &http::request::Parts) -> Result<(), EngineError> {
        match &self.config.allow_request {
            Some(allow) if !allow(parts) => Err(EngineError::Forbidden),
            _ => Ok(()),
        }
    }
}

/// The slot a handshake took for its session (see `max_sessions`): given back when dropped,
/// unless the session opened with it, whatever ends the handshake (a refusal, a failed
/// WebSocket upgrade, a panicking hook).
pub(crate) struct SessionSlot(Option<Arc<Engine>>);

impl SessionSlot {
    /// Hands the slot to the session being opened, which gives it back when it closes.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Some(engine) = self.0.take() {
            engine.slots.give_back();
        }
    }
}

impl fmt::Debug for SessionSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSlot")
    }
}

/// `200` with a text/plain body, as every successful polling response.
pub(crate) fn text_response<RB>(body: Bytes) -> Response<ResponseBody<RB>> {
    let mut res = Response::new(ResponseBody::full(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    res
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("sessions", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_the_first_of_each_parameter() {
        let q = Query::parse("EIO=4&transport=polling&t=abc&sid=x&sid=y&EIO=3");
        assert_eq!(
            q,
            Query {
                eio: Some("4"),
                transport: Some("polling"),
                sid: Some("x")
            }
        );
        assert_eq!(Query::parse(""), Query::default());
        assert_eq!(Query::parse("EIO").eio, Some(""));
    }
}
