//! WebSocket: the handshake through hyper's upgrade, new WebSocket sessions, the probe that
//! upgrades a polling session, and the one task that reads and writes each connection.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use ferrio_protocol::engine::{self as wire, Packet};
use futures_util::{SinkExt, StreamExt, ready};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};

use crate::body::ResponseBody;
use crate::coalesce::{MAX_HEADER, WriteCoalescer};
use crate::engine::{Engine, SessionSlot};
use crate::error::EngineError;
use crate::handler::{CloseReason, Message, Transport};
use crate::handshake::handshake_info;
use crate::heartbeat::later;
use crate::message::Frame;
use crate::polling::{on_control_packet, shrink_after_burst};
use crate::readahead::ReadAhead;
use crate::socket::{LastPacket, Session, Upgrade};

type Ws = WebSocketStream<WriteCoalescer<ReadAhead<TokioIo<hyper::upgrade::Upgraded>>>>;

/// How long the server waits for its close frame to be written before dropping the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`), valid or not.
pub(crate) fn asks_for_websocket(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
}

/// Whether the request is a valid WebSocket handshake (RFC 6455 over HTTP/1.1).
pub(crate) fn is_upgrade_request(parts: &http::request::Parts) -> bool {
    parts.method == Method::GET
        && header_has_token(&parts.headers, header::CONNECTION, "upgrade")
        && asks_for_websocket(&parts.headers)
        && parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13")
        && parts.headers.contains_key(header::SEC_WEBSOCKET_KEY)
}

/// Takes the upgrade from the request and builds the `101` answer.
fn accept<RB>(
    parts: &mut http::request::Parts,
) -> Result<(hyper::upgrade::OnUpgrade, Response<ResponseBody<RB>>), EngineError> {
    if !is_upgrade_request(parts) {
        return Err(EngineError::BadRequest);
    }
    let key = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(EngineError::BadRequest)?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    // Absent when the connection cannot be upgraded (HTTP/2, or a server without upgrades).
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or(EngineError::BadRequest)?;
    let mut res = Response::new(ResponseBody::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|_| EngineError::BadRequest)?,
    );
    Ok((on_upgrade, res))
}

fn ws_config(engine: &Engine) -> WebSocketConfig {
    let max = usize::try_from(engine.config.max_payload).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

async fn open(engine: &Engine, on_upgrade: hyper::upgrade::OnUpgrade) -> Option<Ws> {
    match on_upgrade.await {
        Ok(upgraded) => Some(
            WebSocketStream::from_raw_socket(
                WriteCoalescer::new(ReadAhead::new(TokioIo::new(upgraded))),
                Role::Server,
                Some(ws_config(engine)),
            )
            .await,
        ),
        Err(err) => {
            tracing::debug!(%err, "websocket upgrade failed");
            None
        }
    }
}

/// A handshake on WebSocket: a new session whose first frame is the `open` packet, in the
/// slot the handshake took (given back if the upgrade fails).
pub(crate) fn handshake<RB>(
    engine: &Arc<Engine>,
    parts: &mut http::request::Parts,
    slot: SessionSlot,
) -> Result<Response<ResponseBody<RB>>, EngineError> {
    let (on_upgrade, res) = accept(parts)?;
    // Boxed: what the task captures stays in its future for as long as the connection lives.
    let handshake = Box::new((handshake_info(parts), slot));
    let engine = engine.clone();
    tokio::spawn(async move {
        let Some(ws) = open(&engine, on_upgrade).await else {
            return;
        };
        let (handshake, slot) = unbox(handshake);
        let session = engine.open_session(handshake, Transport::WebSocket, slot);
        run(&session, ws, Heartbeat::Here).await;
    });
    Ok(res)
}

/// Moves a value out of its box and frees the box now: moving out of a box that an async
/// block captured would free it only when the block ends.
#[expect(clippy::boxed_local, reason = "taking the box is the point")]
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// A WebSocket for an existing polling session: the start of an upgrade.
pub(crate) fn upgrade<RB>(
    engine: &Arc<Engine>,
    session: &Arc<Session>,
    parts: &mut http::request::Parts,
) -> Result<Response<ResponseBody<RB>>, EngineError> {
    if !engine.config.allow_upgrades {
        return Err(EngineError::BadRequest);
    }
    let mut state = session.state();
    if state.closed.is_some() {
        // Kept only for a last poll: as unknown as a session that never was.
        return Err(EngineError::SessionIdUnknown);
    }
    let (on_upgrade, res) = accept(parts)?;
    // One WebSocket per session: a second one, or one for a session already on
    // WebSocket, is opened and closed at once (as the reference server does, so clients
    // see a close rather than a failed handshake), and the session goes on.
    if state.transport != Transport::Polling || state.upgrade != Upgrade::Idle {
        drop(state);
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Some(mut ws) = open(&engine, on_upgrade).await {
                close_ws(&mut ws, None).await;
            }
        });
        return Ok(res);
    }
    state.upgrade = Upgrade::Pending;
    drop(state);
    let session = session.clone();
    let engine = engine.clone();
    tokio::spawn(async move {
        match open(&engine, on_upgrade).await {
            Some(ws) => probe(&session, ws).await,
            None => {
                session.state().upgrade = Upgrade::Idle;
            }
        }
    });
    Ok(res)
}

/// What the probing WebSocket received next.
enum ProbeStep {
    Text(Utf8Bytes),
    /// A message over `max_payload`: the WebSocket closes with 1009 as on any transport.
    TooLarge,
    Other,
    TimedOut,
    SessionClosed,
}

async fn next_probe_step(session: &Session, ws: &mut Ws, deadline: Instant) -> ProbeStep {
    loop {
        let notified = session.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if session.is_closed() {
            return ProbeStep::SessionClosed;
        }
        tokio::select! {
            msg = ws.next() => return match msg {
                Some(Ok(tungstenite::Message::Text(text))) => ProbeStep::Text(text),
                // Control frames are answered by tungstenite itself.
                Some(Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_))) => continue,
                Some(Err(tungstenite::Error::Capacity(_))) => ProbeStep::TooLarge,
                _ => ProbeStep::Other,
            },
            _ = tokio::time::sleep_until(deadline) => return ProbeStep::TimedOut,
            _ = &mut notified => continue,
        }
    }
}

/// Runs the probe: `2probe` is answered with `3probe`, pending polls end with `noop`, and the
/// client's `upgrade` moves the session to this WebSocket. Anything else, or no `upgrade`
/// within `upgrade_timeout`, closes this WebSocket and leaves the session on polling.
///
/// Not an `async fn`, for the reason given at [`run`].
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold the WebSocket twice"
)]
fn probe(session: &Arc<Session>, mut ws: Ws) -> impl Future<Output = ()> {
    async move {
        let deadline = later(Instant::now(), session.engine.config.upgrade_timeout);

        let mut step = next_probe_step(session, &mut ws, deadline).await;
        if matches!(&step, ProbeStep::Text(text) if text.as_str() == "2probe")
            && write(&mut ws, tungstenite::Message::text("3probe")).await
        {
            session.state().upgrade = Upgrade::Probing;
            session.notify_changed();
            step = next_probe_step(session, &mut ws, deadline).await;
            if matches!(&step, ProbeStep::Text(text) if text.as_str() == "5")
                && switch_to_websocket(session)
            {
                tracing::debug!(sid = %session.sid, "engine.io session upgraded");
                #[cfg(feature = "metrics")]
                session.engine.stats.upgraded();
                session.dispatch(|handler, socket| handler.on_upgrade(socket));
                return run(session, ws, Heartbeat::Elsewhere).await;
            }
        }
        // The upgrade failed: the session stays on polling.
        session.state().upgrade = Upgrade::Idle;
        session.notify_changed();
        let frame = matches!(step, ProbeStep::TooLarge).then(|| CloseFrame {
            code: CloseCode::Size,
            reason: Utf8Bytes::default(),
        });
        close_ws(&mut ws, frame).await;
    }
}

/// Completes an upgrade; `false` if the session closed meanwhile.
fn switch_to_websocket(session: &Session) -> bool {
    let mut state = session.state();
    if state.closed.is_some() {
        return false;
    }
    state.upgrade = Upgrade::Done;
    state.transport = Transport::WebSocket;
    drop(state);
    session.notify_changed();
    true
}

/// Writes one frame within a bounded time; `false` if the client cannot take it.
async fn write(ws: &mut Ws, message: tungstenite::Message) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ws.send(message)).await,
        Ok(Ok(()))
    )
}

/// Writes a batch of frames and flushes once. The caller bounds the time it may take
/// ([`write_limit`]) once the first attempt finds the client not reading: most batches are
/// written at once, and then no timer is created for them.
///
/// The frames go straight into the write coalescer under the WebSocket, not through
/// tungstenite's sink (which would copy each into a buffer of its own first). Only data
/// frames take this way, whole and in order, and only while the connection is open: control
/// frames (tungstenite's pongs, the close) still go through tungstenite, which writes each
/// whole, so frames never interleave.
fn write_batch<'a>(
    session: &'a Session,
    ws: &'a mut Ws,
    batch: &'a mut VecDeque<Frame>,
) -> impl Future<Output = std::io::Result<()>> + 'a {
    use tokio::io::AsyncWrite;
    ws.get_mut()
        .expect(batch.iter().map(|f| f.wire_len() + MAX_HEADER).sum());
    std::future::poll_fn(move |cx| {
        let io = ws.get_mut();
        loop {
            let Some(frame) = batch.front() else {
                return Pin::new(&mut *io).poll_flush(cx);
            };
            ready!(io.poll_reserve(cx, frame.wire_len()))?;
            if let Some(frame) = batch.pop_front() {
                // Taken by the socket: progress for the outbound budget.
                session.record_written(frame.len());
                match &frame {
                    Frame::Text(text) => io.push_frame(true, text.as_bytes()),
                    Frame::Binary(data) => io.push_frame(false, data),
                }
            }
        }
    })
}

/// How long a batch may wait for its client: a client that does not read for the whole
/// heartbeat period is considered gone.
fn write_limit(session: &Session) -> Duration {
    let config = &session.engine.config;
    config.ping_interval.saturating_add(config.ping_timeout)
}

/// Who runs the heartbeat of a session on WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heartbeat {
    /// Its connection task: a session that opened on WebSocket needs no second task.
    Here,
    /// The heartbeat task it started with on polling, before the upgrade.
    Elsewhere,
}

/// Sends a close frame (within [`CLOSE_TIMEOUT`]) and makes sure it leaves the coalescer.
///
/// Boxed: this future (328 bytes) was the largest state of the connection task, which keeps
/// room for its largest state for as long as the connection lives; it runs once per
/// connection, so one allocation at the close makes every idle connection smaller.
fn close_ws(ws: &mut Ws, frame: Option<CloseFrame>) -> Pin<Box<impl Future<Output = ()> + '_>> {
    Box::pin(async move {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = ws.close(frame).await;
            flush_gathered(ws).await;
        })
        .await;
    })
}

/// Writes out what the coalescer gathered. tungstenite stops short of flushing the stream
/// once the connection is closing (it reports `ConnectionClosed`), so the final close frame
/// would otherwise stay in the coalescer.
async fn flush_gathered(ws: &mut Ws) {
    use tokio::io::AsyncWriteExt;
    let _ = ws.get_mut().flush().await;
}

/// The connection task of a session on WebSocket: writes what is queued, reads and acts on
/// what arrives, runs the heartbeat (unless it runs `Elsewhere`), and ends with the session.
///
/// Not an `async fn`: those keep each argument twice in their state (as passed, and as the
/// local it is moved into), and the WebSocket is 368 bytes of every idle connection.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold the WebSocket twice"
)]
fn run(session: &Arc<Session>, mut ws: Ws, heartbeat: Heartbeat) -> impl Future<Output = ()> {
    async move {
        let mut batch = VecDeque::new();
        let mut beat = match heartbeat {
            Heartbeat::Here => Beat::Ping,
            Heartbeat::Elsewhere => Beat::Off,
        };
        let timer = tokio::time::sleep_until(session.next_ping());
        tokio::pin!(timer);
        loop {
            // What the handler of a frame queues (inline, on this task) wakes nobody
            // (`Session::reading`): the queue is checked at the top of the next turn anyway.
            let received = {
                session.writer_looks();

                let (closed, pong_awaited, paused) = {
                    let mut state = session.state();
                    std::mem::swap(&mut state.queue, &mut batch);
                    (
                        state.closed.is_some(),
                        state.pong_deadline.is_some(),
                        state.reads_paused,
                    )
                };
                if beat == Beat::Pong && !pong_awaited {
                    beat = Beat::Ping;
                    timer.as_mut().reset(session.next_ping());
                }
                if !batch.is_empty() {
                    // The heartbeat goes on while a slow client takes its time, and a close
                    // as a slow client stops the write where it is.
                    let written = {
                        let write = write_batch(session, &mut ws, &mut batch);
                        tokio::pin!(write);
                        // Most batches are written at once, without registering for wake-ups.
                        match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await
                        {
                            Poll::Ready(written) => written.is_ok(),
                            Poll::Pending => {
                                let write =
                                    tokio::time::timeout(write_limit(session), write.as_mut());
                                tokio::pin!(write);
                                let written = loop {
                                    let woken = session.changed.notified();
                                    tokio::pin!(woken);
                                    woken.as_mut().enable();
                                    {
                                        let mut state = session.state();
                                        if state.abandoned {
                                            break false;
                                        }
                                        // Waiting for the client to read: what the stall
                                        // timeout measures.
                                        state.write_blocked = true;
                                    }
                                    tokio::select! {
                                        biased;
                                        written = &mut write => break matches!(written, Ok(Ok(()))),
                                        () = &mut timer, if beat != Beat::Off => beat = beat.on_timer(session, timer.as_mut()),
                                        () = woken => {}
                                    }
                                };
                                session.state().write_blocked = false;
                                written
                            }
                        }
                    };
                    if !written {
                        session.close(CloseReason::TransportError, LastPacket::Close);
                        break;
                    }
                    shrink_after_burst(&mut batch);
                    // Hand the emptied buffer back to the queue unless something was queued
                    // meanwhile: an idle session then keeps one buffer, not two.
                    let mut state = session.state();
                    if state.queue.capacity() == 0 {
                        std::mem::swap(&mut state.queue, &mut batch);
                    }
                }
                if closed {
                    close_ws(&mut ws, None).await;
                    break;
                }

                // While reads are paused, frames wait in the TCP buffers (and the client's
                // sends, once those are full): the resume that ends the pause wakes this task.
                tokio::select! {
                    msg = ws.next(), if !paused => Some(msg),
                    () = session.writer_changed() => None,
                    () = &mut timer, if beat != Beat::Off => {
                        beat = beat.on_timer(session, timer.as_mut());
                        None
                    }
                }
            };
            let Some(msg) = received else { continue };
            // What the frame's handlers queue is written at the top of the next turn.
            session.reading.store(true, Ordering::Relaxed);
            let handled = on_ws_message(session, msg);
            session.reading.store(false, Ordering::Relaxed);
            if let Err((reason, code)) = handled {
                match code {
                    Some(code) => {
                        let frame = CloseFrame {
                            code,
                            reason: Utf8Bytes::default(),
                        };
                        close_ws(&mut ws, Some(frame)).await;
                    }
                    // Sends the answer tungstenite queued to the client's close frame.
                    None => {
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                            let _ = ws.flush().await;
                            flush_gathered(&mut ws).await;
                        })
                        .await;
                    }
                }
                session.close(reason, LastPacket::Close);
                break;
            }
        }
    }
}

/// What the heartbeat timer of a connection task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beat {
    /// The next ping; the timer runs `ping_interval` from the handshake or the last pong.
    Ping,
    /// The pong; the timer runs until its deadline.
    Pong,
    /// Nothing: the heartbeat runs elsewhere, or the session has closed.
    Off,
}

impl Beat {
    /// The timer fired: sends the ping that is due, or closes the session whose pong is late.
    fn on_timer(self, session: &Arc<Session>, timer: Pin<&mut Sleep>) -> Self {
        match self {
            Self::Ping => match session.ping(timer.deadline()) {
                Some(deadline) => {
                    timer.reset(deadline);
                    Self::Pong
                }
                None => Self::Off,
            },
            // The pong may have come while the timer fired.
            Self::Pong if session.state().pong_deadline.is_none() => {
                timer.reset(session.next_ping());
                Self::Ping
            }
            Self::Pong => {
                session.close(CloseReason::PingTimeout, LastPacket::Close);
                Self::Off
            }
            Self::Off => Self::Off,
        }
    }
}

/// Acts on what the WebSocket produced; `Err` ends the session with a reason and, when the
/// server must say why, a close code.
fn on_ws_message(
    session: &Arc<Session>,
    msg: Option<Result<tungstenite::Message, tungstenite::Error>>,
) -> Result<(), (CloseReason, Option<CloseCode>)> {
    match msg {
        Some(Ok(tungstenite::Message::Text(text))) => {
            match wire::decode_packet(text.as_str()) {
                Ok(Packet::Message(_)) => {
                    // Drop the type digit without copying the text or checking it again.
                    let text = crate::Utf8Bytes::whole(text);
                    if let Some(text) = text.slice(1..text.len()) {
                        session.deliver(Message::Text(text));
                    }
                }
                Ok(packet) => {
                    if on_control_packet(session, &packet).is_err() {
                        return Err((CloseReason::ParseError, Some(CloseCode::Protocol)));
                    }
                }
                Err(err) => {
                    tracing::debug!(sid = %session.sid, %err, "invalid websocket packet");
                    return Err((CloseReason::ParseError, Some(CloseCode::Protocol)));
                }
            }
            Ok(())
        }
        Some(Ok(tungstenite::Message::Binary(data))) => {
            session.deliver(Message::Binary(data));
            Ok(())
        }
        Some(Ok(tungstenite::Message::Close(_))) | None => Err((CloseReason::TransportClose, None)),
        Some(Ok(_)) => Ok(()),
        Some(Err(tungstenite::Error::Capacity(err))) => {
            tracing::debug!(sid = %session.sid, %err, "websocket message over maxPayload");
            Err((CloseReason::TransportError, Some(CloseCode::Size)))
        }
        Some(Err(_)) => Err((CloseReason::TransportError, None)),
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn returned_size<R>(_: impl Fn(&'static Arc<Session>, Ws, Heartbeat) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every idle WebSocket holds its connection task: this future plus about 150 bytes of
    /// tokio's task cell, rounded up to 128 bytes, in one allocation. At 888 bytes (992 before
    /// the per-frame `Notify` registration went) the cell fits jemalloc's 1 280-byte size
    /// class; at 1 184 (before `close_ws` was boxed) it took a 1 536-byte one. A failure here
    /// is not a bug, but idle memory grew: see docs/engine.md, "Cost per session".
    #[test]
    fn the_connection_task_stays_small() {
        let run = returned_size(run);
        assert!(run <= 1056, "the connection future is {run} bytes");
        assert_eq!(size_of::<Ws>(), 368);
    }
}
