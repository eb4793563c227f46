//! HTTP long-polling: a GET collects everything queued for the client, a POST delivers a
//! payload of packets from it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::utf8::Utf8Bytes;
use bytes::Bytes;
use ferrio_protocol::engine::{self as wire, Packet};
use http::{HeaderMap, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::body::ResponseBody;
use crate::engine::{BoxError, text_response};
use crate::error::EngineError;
use crate::handler::{CloseReason, Message, Transport};
use crate::message::Frame;
use crate::socket::{LastPacket, Session, State, Upgrade};

/// Serves a poll: answers at once with whatever is queued, or waits for something to send.
pub(crate) async fn poll<RB>(
    session: &Arc<Session>,
) -> Result<Response<ResponseBody<RB>>, EngineError> {
    {
        let mut state = session.state();
        if state.transport != Transport::Polling && state.closed.is_none() {
            // Polling requests for a session that runs on WebSocket are refused; the
            // session itself is fine.
            return Err(EngineError::BadRequest);
        }
        if state.poll_pending {
            drop(state);
            // Two polls at once: the first gets `close`, this one an error, the session ends.
            session.close(CloseReason::TransportError, LastPacket::Close);
            return Err(EngineError::BadRequest);
        }
        state.poll_pending = true;
    }

    let mut guard = PendingPoll {
        session,
        answered: false,
    };
    let (payload, last) = session
        .wait_for(|state| {
            let answer = payload_for(session, state)?;
            state.poll_pending = false;
            Some(answer)
        })
        .await;
    guard.answered = true;

    if last {
        // The last packets of a closed session are collected; nothing more will come.
        session.engine.remove(session.sid);
    }
    Ok(text_response(payload))
}

/// The answer to a pending poll in this state, and whether it is the session's last one;
/// `None` to keep waiting.
fn payload_for(session: &Session, state: &mut State) -> Option<(Bytes, bool)> {
    if state.closed.is_none() {
        if matches!(state.upgrade, Upgrade::Probing | Upgrade::Done) {
            // The client is moving to WebSocket: end this poll, keep the queue for it.
            return Some((Bytes::from_static(b"6"), false));
        }
        if state.queue.is_empty() {
            return None;
        }
    }
    let mut out = String::with_capacity(payload_len(state));
    let mut taken = 0;
    for frame in state.queue.drain(..) {
        taken += frame.len();
        if !out.is_empty() {
            out.push(wire::SEPARATOR as char);
        }
        match frame {
            Frame::Text(text) => out.push_str(text.as_str()),
            Frame::Binary(data) => wire::encode_binary_payload_packet(&mut out, &data),
        }
    }
    let last = match state.closed {
        Some(LastPacket::Close) => Some(Frame::close()),
        Some(LastPacket::Noop) => Some(Frame::noop()),
        None => None,
    };
    if let Some(Frame::Text(last)) = &last {
        if !out.is_empty() {
            out.push(wire::SEPARATOR as char);
        }
        out.push_str(last.as_str());
    }
    shrink_after_burst(&mut state.queue);
    session.record_written(taken);
    Some((Bytes::from(out), last.is_some()))
}

/// Gives back the memory of a queue that a burst grew, so an idle session stays small.
pub(crate) fn shrink_after_burst(queue: &mut VecDeque<Frame>) {
    const KEEP: usize = 16;
    if queue.is_empty() && queue.capacity() > 4 * KEEP {
        *queue = VecDeque::new();
    }
}

fn payload_len(state: &State) -> usize {
    state
        .queue
        .iter()
        .map(|frame| match frame {
            Frame::Text(text) => text.len() + 1,
            Frame::Binary(data) => wire::binary_payload_packet_len(data.len()) + 1,
        })
        .sum::<usize>()
        + 1
}

/// Closes the session when a pending poll is dropped before it was answered: the client went
/// away mid-poll.
struct PendingPoll<'a> {
    session: &'a Arc<Session>,
    answered: bool,
}

impl Drop for PendingPoll<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.session.state().poll_pending = false;
            self.session
                .close(CloseReason::TransportError, LastPacket::Close);
        }
    }
}

/// Clears the session's post-in-flight flag however the post ends.
struct PendingPost<'a>(&'a Session);

impl Drop for PendingPost<'_> {
    fn drop(&mut self) {
        self.0.state().post_pending = false;
    }
}

/// Serves a post: reads the payload (at most `max_payload` bytes, within
/// `post_body_timeout`), validates all of it, then delivers its packets in order.
pub(crate) async fn post<B, RB>(
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: B,
) -> Result<Response<ResponseBody<RB>>, EngineError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    {
        let mut state = session.state();
        if state.closed.is_some() {
            return Err(EngineError::SessionIdUnknown);
        }
        if state.transport != Transport::Polling {
            return Err(EngineError::BadRequest);
        }
        if state.post_pending {
            drop(state);
            session.close(CloseReason::TransportError, LastPacket::Close);
            return Err(EngineError::BadRequest);
        }
        state.post_pending = true;
    }
    let _pending = PendingPost(session);

    let max = session.engine.config.max_payload;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Ok(payload_too_large());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let read = Limited::new(body, limit).collect();
    // The timer is polled (and registered) only if the body is not already complete.
    let read = tokio::time::timeout(session.engine.config.post_body_timeout, read);
    let body = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<LengthLimitError>() => return Ok(payload_too_large()),
        Err(_elapsed) => {
            // A body trickling in (slow loris): nothing of it is delivered.
            tracing::debug!(sid = %session.sid, "polling post body timed out");
            session.close(CloseReason::TransportError, LastPacket::Close);
            return Err(EngineError::RequestTimeout);
        }
        Ok(Err(_)) => {
            // The client went away in the middle of its post.
            session.close(CloseReason::TransportError, LastPacket::Close);
            return Err(EngineError::BadRequest);
        }
    };

    // Engine.IO v4 sends binary as base64 text; a binary body is a v3 client or garbage.
    let binary_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    if binary_body {
        session.close(CloseReason::TransportError, LastPacket::Close);
        return Err(EngineError::BadRequest);
    }

    // All or nothing: the whole payload is validated before any packet is delivered. Two
    // passes instead of a list of packets keep the memory of a post at the size of its body.
    if let Some(Err(err)) = wire::decode_payload(&body).find(Result::is_err) {
        tracing::debug!(sid = %session.sid, %err, "invalid polling payload");
        session.close(CloseReason::ParseError, LastPacket::Close);
        return Err(EngineError::BadRequest);
    }
    // Checked as UTF-8 once, as a whole (every packet of a v4 payload is text, binary ones as
    // base64, so a valid payload is valid UTF-8): the packets are parts of it.
    let Ok(text) = Utf8Bytes::try_from(body.clone()) else {
        session.close(CloseReason::ParseError, LastPacket::Close);
        return Err(EngineError::BadRequest);
    };
    for packet in wire::decode_payload(&body).flatten() {
        // Paused reads hold the rest of the payload, and the answer, until resumed.
        if !session.until_readable().await {
            break;
        }
        if on_packet(session, packet, &text).is_err() {
            return Err(EngineError::BadRequest);
        }
    }
    Ok(text_response(Bytes::from_static(b"ok")))
}

fn payload_too_large<RB>() -> Response<ResponseBody<RB>> {
    let mut res = text_response(Bytes::from_static(b"payload too large"));
    *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    res
}

/// Acts on one packet received over polling; `body` is the text the packet borrows from, so
/// text messages reach the handler without a copy or a second UTF-8 check.
fn on_packet(
    session: &Arc<Session>,
    packet: Packet<'_>,
    body: &Utf8Bytes,
) -> Result<(), ProtocolError> {
    match packet {
        Packet::Message(text) => {
            // Where the packet lies in the body it was decoded from.
            let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
            if let Some(text) = body.slice(start..start.saturating_add(text.len())) {
                session.deliver(Message::Text(text));
            }
        }
        Packet::Binary(data) => session.deliver(Message::Binary(Bytes::from(data))),
        other => return on_control_packet(session, &other),
    }
    Ok(())
}

/// A packet the client may never send; the session has been closed with "parse error".
#[derive(Debug)]
pub(crate) struct ProtocolError;

/// Acts on a packet that is not a message, for either transport.
pub(crate) fn on_control_packet(
    session: &Arc<Session>,
    packet: &Packet<'_>,
) -> Result<(), ProtocolError> {
    match packet {
        Packet::Pong(_) => session.on_pong(),
        Packet::Close => {
            session.close(CloseReason::TransportClose, LastPacket::Noop);
        }
        // Only the server pings in v4, and only the server opens.
        Packet::Ping(_) | Packet::Open(_) => {
            session.close(CloseReason::ParseError, LastPacket::Close);
            return Err(ProtocolError);
        }
        Packet::Upgrade | Packet::Noop | Packet::Message(_) | Packet::Binary(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_grown_by_a_burst_gives_its_memory_back_once_empty() {
        let mut queue: VecDeque<Frame> = (0..1000).map(|_| Frame::ping()).collect();
        shrink_after_burst(&mut queue);
        assert_eq!(queue.len(), 1000, "a queue with packets is left alone");
        queue.clear();
        shrink_after_burst(&mut queue);
        assert_eq!(queue.capacity(), 0);

        let mut small: VecDeque<Frame> = (0..8).map(|_| Frame::ping()).collect();
        small.clear();
        let capacity = small.capacity();
        shrink_after_burst(&mut small);
        assert_eq!(small.capacity(), capacity, "small queues keep their room");
    }
}
