//! One Engine.IO session: its state and outbound queue, its closing, the dispatch of handler
//! callbacks, and the cheap [`Socket`] handle the layer above uses to reach it.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::engine::Engine;
use crate::flow::{Progress, Slow};
use crate::handler::{CloseReason, EngineHandler, Message, Transport};
use crate::handshake::Handshake;
use crate::message::{Frame, PreparedMessage, SendError};
use crate::sid::Sid;

/// Progress of an upgrade from polling to WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// No WebSocket is attached.
    Idle,
    /// A WebSocket was accepted for this sid; its `2probe` has not arrived yet.
    Pending,
    /// `3probe` was sent; polls are answered with `noop` until the client's `upgrade`.
    Probing,
    /// The session runs on WebSocket.
    Done,
}

/// What the last poll of a closed polling session receives after the buffered packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastPacket {
    /// `1`: the server closed, or the transport broke.
    Close,
    /// `6`: the client closed; its pending poll just ends.
    Noop,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) transport: Transport,
    pub(crate) upgrade: Upgrade,
    pub(crate) queue: VecDeque<Frame>,
    pub(crate) closed: Option<LastPacket>,
    pub(crate) poll_pending: bool,
    pub(crate) post_pending: bool,
    /// When the pong for the last ping is due; `None` while no ping is unanswered.
    pub(crate) pong_deadline: Option<Instant>,
    /// Handler callbacks of this session running right now.
    dispatching: u32,
    /// A close that happened while a callback ran, reported when the last one returns.
    deferred_close: Option<CloseReason>,
    /// Bytes ever queued; less [`Session::written`], the bytes the client has not read.
    pushed: u64,
    /// On the watchdog's list (over budget, or at the limit).
    watched: bool,
    /// A send found the session at its hard limit: every later send is refused too, until
    /// the watchdog closes it.
    at_limit: bool,
    /// Closed as a slow client: its queue was dropped, and its writer stops where it is.
    pub(crate) abandoned: bool,
    /// The WebSocket writer is waiting for the client to take what it wrote.
    pub(crate) write_blocked: bool,
    /// The layer above asked for no more messages for now ([`Socket::pause_reading`]).
    pub(crate) reads_paused: bool,
}

pub(crate) struct Session {
    pub(crate) sid: Sid,
    pub(crate) handshake: Handshake,
    pub(crate) engine: Arc<Engine>,
    state: Mutex<State>,
    /// Wakes whoever writes to the client (a pending poll, an upgrade, a WebSocket task whose
    /// write is blocked) when the queue, the upgrade state or the closed flag changes; always
    /// notified through [`Session::notify_changed`].
    pub(crate) changed: Notify,
    /// The WebSocket connection task, woken with `changed`'s waiters: it waits on this
    /// rather than on `changed`, since registering here costs no lock (it registers once
    /// per frame). See [`Session::notify_changed`].
    writer: AtomicWaker,
    /// Set before `writer` is woken; the connection task clears it when it looks.
    writer_woken: AtomicBool,
    /// Wakes the heartbeat on a pong or a close.
    pub(crate) heartbeat: Notify,
    /// Bytes the transport has taken from the queue, ever (see [`State::pushed`]).
    written: AtomicU64,
    /// The WebSocket task is handling a frame it read: it looks at the queue again before
    /// it waits, so what is queued meanwhile needs no wake-up. Set and cleared by that task
    /// outside the state lock, read by `push` under it: a push that takes the lock after
    /// the task cleared the flag sees it cleared.
    pub(crate) reading: AtomicBool,
    /// State of the layer above, attached once (see [`Socket::attach`]).
    attached: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Session {
    pub(crate) fn new(
        engine: Arc<Engine>,
        handshake: Handshake,
        transport: Transport,
    ) -> Arc<Self> {
        let sid = match &engine.config.sid_prefix {
            Some(prefix) => Sid::random_with_prefix(prefix),
            None => Sid::random(),
        };
        Arc::new(Self {
            sid,
            handshake,
            engine,
            reading: AtomicBool::new(false),
            attached: OnceLock::new(),
            state: Mutex::new(State {
                transport,
                upgrade: Upgrade::Idle,
                queue: VecDeque::new(),
                closed: None,
                poll_pending: false,
                post_pending: false,
                pong_deadline: None,
                // `on_open` counts as running from the start: a close before or during it
                // is reported after it.
                dispatching: 1,
                deferred_close: None,
                pushed: 0,
                watched: false,
                at_limit: false,
                abandoned: false,
                write_blocked: false,
                reads_paused: false,
            }),
            changed: Notify::new(),
            writer: AtomicWaker::new(),
            writer_woken: AtomicBool::new(false),
            heartbeat: Notify::new(),
            written: AtomicU64::new(0),
        })
    }

    /// Wakes whoever writes to the client: the waiters on `changed` and the WebSocket
    /// connection task ([`Session::writer_changed`]).
    pub(crate) fn notify_changed(&self) {
        self.changed.notify_waiters();
        self.writer_woken.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// For the WebSocket connection task: forgets earlier wake-ups. Called before it looks at
    /// the state, so a change it does not see wakes [`writer_changed`](Self::writer_changed).
    pub(crate) fn writer_looks(&self) {
        self.writer_woken.store(false, Ordering::Relaxed);
    }

    /// For the WebSocket connection task: ready once [`notify_changed`](Self::notify_changed)
    /// ran since the task last called [`writer_looks`](Self::writer_looks).
    pub(crate) fn writer_changed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.writer.register(cx.waker());
            if self.writer_woken.swap(false, Ordering::AcqRel) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    /// Locks the state. A panic while the lock was held cannot leave the state inconsistent
    /// (every update is a single assignment), so a poisoned lock is simply taken over.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn socket(self: &Arc<Self>) -> Socket {
        Socket(self.clone())
    }

    /// Queues a frame. A `bounded` one (every message; not pings) counts against the
    /// outbound limits and is refused when the session is at its limit.
    pub(crate) fn push(
        self: &Arc<Self>,
        frame: Frame,
        bounded: bool,
    ) -> Result<(), SendError<Frame>> {
        let mut state = self.state();
        if state.closed.is_some() {
            return Err(SendError::Closed(frame));
        }
        let len = frame.len();
        let admitted = if bounded {
            self.admit(&mut state, len)
        } else {
            state.pushed += len;
            Admitted::Yes
        };
        if admitted.refused() {
            drop(state);
            self.tell_watchdog(admitted);
            return Err(SendError::Full(frame));
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back(frame);
        // Read under the lock (see `reading`).
        let writer_busy = self.reading.load(Ordering::Relaxed);
        drop(state);
        self.tell_watchdog(admitted);
        // Whoever drains the queue takes all of it when woken: one wake-up per batch, and
        // none while the WebSocket task handles a frame (an echo's answer, most often).
        if was_empty && !writer_busy {
            self.notify_changed();
        }
        Ok(())
    }

    /// Queues several frames back to back, with nothing from another sender between them;
    /// all of them or none.
    fn push_all(self: &Arc<Self>, frames: &[PreparedMessage]) -> Result<(), SendError<()>> {
        let mut state = self.state();
        if state.closed.is_some() {
            return Err(SendError::Closed(()));
        }
        let len = frames.iter().map(|m| m.0.len()).sum();
        let admitted = self.admit(&mut state, len);
        if admitted.refused() {
            drop(state);
            self.tell_watchdog(admitted);
            return Err(SendError::Full(()));
        }
        let was_empty = state.queue.is_empty();
        state.queue.extend(frames.iter().map(|m| m.0.clone()));
        let writer_busy = self.reading.load(Ordering::Relaxed);
        drop(state);
        self.tell_watchdog(admitted);
        if was_empty && !writer_busy {
            self.notify_changed();
        }
        Ok(())
    }

    /// Counts `len` more bytes against the outbound limits, unless they would pass the hard
    /// limit. Marks the session for the watchdog when it goes over its budget or hits the
    /// limit; the caller hands it over once the state is unlocked (the watchdog locks its
    /// list before a session's state, never after).
    fn admit(&self, state: &mut State, len: u64) -> Admitted {
        let limits = &self.engine.config.outbound;
        let unsent = (state.pushed + len).saturating_sub(self.written.load(Ordering::Relaxed));
        if state.at_limit {
            return Admitted::Refused;
        }
        if unsent > limits.limit() {
            state.at_limit = true;
            let listed = std::mem::replace(&mut state.watched, true);
            return Admitted::AtLimit { listed };
        }
        state.pushed += len;
        #[cfg(feature = "metrics")]
        self.engine.stats.queued(unsent);
        if unsent > limits.budget && !state.watched {
            state.watched = true;
            return Admitted::OverBudget;
        }
        Admitted::Yes
    }

    fn tell_watchdog(self: &Arc<Self>, admitted: Admitted) {
        let watchdog = &self.engine.watchdog;
        match admitted {
            Admitted::OverBudget | Admitted::AtLimit { listed: false } => {
                watchdog.watch(self.clone(), self.written.load(Ordering::Relaxed));
            }
            // Already listed: checked at once rather than at the next tick.
            Admitted::AtLimit { listed: true } => watchdog.wake(),
            Admitted::Yes | Admitted::Refused => {}
        }
    }

    /// Records bytes the transport took from the queue: written to the WebSocket, or
    /// collected by a poll.
    pub(crate) fn record_written(&self, bytes: u64) {
        self.written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes queued and not yet taken by the transport.
    pub(crate) fn unsent(&self, state: &State) -> u64 {
        state
            .pushed
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }

    /// For the watchdog: how the session stands, or `None` when it no longer needs watching
    /// (closed, or back under `budget`), in which case it is marked unwatched.
    pub(crate) fn outbound_progress(&self, budget: u64) -> Option<Progress> {
        let mut state = self.state();
        let over = state.at_limit || self.unsent(&state) > budget;
        if state.closed.is_some() || !over {
            state.watched = false;
            return None;
        }
        // Only time spent waiting for the client counts as a stall: not a writer busy
        // running a handler, nor a poll being answered.
        let waiting_for_client = match state.transport {
            Transport::WebSocket => state.write_blocked,
            Transport::Polling => !state.poll_pending,
        };
        Some(Progress {
            written: self.written.load(Ordering::Relaxed),
            at_limit: state.at_limit,
            waiting_for_client,
        })
    }

    /// Closes a slow client: drops what it has not read (its writer stops where it is) and
    /// closes the session with [`CloseReason::SlowClient`].
    pub(crate) fn close_slow(self: &Arc<Self>, why: Slow) {
        let unsent = {
            let mut state = self.state();
            if state.closed.is_some() {
                return;
            }
            let unsent = self.unsent(&state);
            state.queue = VecDeque::new();
            state.abandoned = true;
            unsent
        };
        let limits = &self.engine.config.outbound;
        #[cfg(feature = "metrics")]
        self.engine.stats.slow_client_closed();
        match why {
            Slow::Stalled => tracing::warn!(
                sid = %self.sid,
                unread_bytes = unsent,
                budget = limits.budget,
                stall_timeout = ?limits.stall_timeout,
                "closing a slow client: over its outbound budget and reading nothing"
            ),
            Slow::AtLimit => tracing::warn!(
                sid = %self.sid,
                unread_bytes = unsent,
                limit = limits.limit(),
                "closing a slow client: at its outbound limit"
            ),
        }
        self.close(CloseReason::SlowClient, LastPacket::Close);
    }

    /// Waits until `check` returns `Some`, re-checking after every state change.
    pub(crate) async fn wait_for<T>(&self, mut check: impl FnMut(&mut State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = check(&mut self.state()) {
                return value;
            }
            notified.await;
        }
    }

    /// Queues the `open` packet of a WebSocket session, ahead of everything else.
    pub(crate) fn push_open(&self, packet: String) {
        let frame = Frame::Text(Utf8Bytes::from(packet));
        let mut state = self.state();
        state.pushed += frame.len();
        state.queue.push_front(frame);
    }

    /// Closes the session once: marks it closed, wakes its writers and heartbeat, forgets it
    /// (unless a polling client must still collect its last packets), and tells the handler,
    /// at once or, if one of its callbacks for this session is running, when that returns.
    pub(crate) fn close(self: &Arc<Self>, reason: CloseReason, last: LastPacket) -> bool {
        let (linger, deferred) = {
            let mut state = self.state();
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(last);
            let deferred = state.dispatching > 0;
            if deferred {
                state.deferred_close = Some(reason);
            }
            // A polling session closed by the server, or by the client's `close` packet, with
            // no poll in flight is kept (for `ping_timeout` at most) until the next poll
            // collects the buffered packets and the last packet: a client's poll and its
            // `close` post may reach the server in either order.
            let linger = matches!(
                reason,
                CloseReason::ForcedClose | CloseReason::TransportClose
            ) && state.transport == Transport::Polling
                && !state.poll_pending;
            (linger, deferred)
        };
        // The session's slot frees now, even if it lingers for a last poll.
        self.engine.slots.give_back();
        if !linger {
            self.engine.remove(self.sid);
        }
        self.notify_changed();
        self.heartbeat.notify_one();
        tracing::debug!(sid = %self.sid, %reason, "engine.io session closed");
        if !deferred {
            self.notify_close(reason);
        }
        true
    }

    fn notify_close(self: &Arc<Self>, reason: CloseReason) {
        let handler = &self.engine.handler;
        let socket = self.socket();
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(&socket, reason))).is_err() {
            tracing::error!(sid = %self.sid, "the engine handler panicked in on_close");
        }
    }

    /// Runs a handler callback (`on_open`, `on_message`) for this session, unless it has
    /// closed. A close that happens meanwhile, from inside the callback or from another task,
    /// is reported only after the callback returns, so `on_close` is always the session's last
    /// callback and never runs inside another. A callback that panics closes the session
    /// ("transport error") instead of taking its connection task down.
    pub(crate) fn dispatch(self: &Arc<Self>, callback: impl FnOnce(&dyn EngineHandler, &Socket)) {
        {
            let mut state = self.state();
            if state.closed.is_some() {
                return;
            }
            state.dispatching += 1;
        }
        self.run_callback(callback);
    }

    /// Runs `on_open`; the dispatch count was set for it when the session was created.
    pub(crate) fn open(self: &Arc<Self>) {
        self.run_callback(|handler, socket| handler.on_open(socket));
    }

    fn run_callback(self: &Arc<Self>, callback: impl FnOnce(&dyn EngineHandler, &Socket)) {
        let socket = self.socket();
        let handler = &*self.engine.handler;
        if panic::catch_unwind(AssertUnwindSafe(|| callback(handler, &socket))).is_err() {
            tracing::error!(sid = %self.sid, "the engine handler panicked; closing the session");
            self.close(CloseReason::TransportError, LastPacket::Close);
        }
        let deferred = {
            let mut state = self.state();
            state.dispatching -= 1;
            if state.dispatching == 0 {
                state.deferred_close.take()
            } else {
                None
            }
        };
        if let Some(reason) = deferred {
            self.notify_close(reason);
        }
    }

    /// Closes the session if its pong is overdue, even if the heartbeat task has not woken
    /// yet; `true` if it is (now) closed for that reason.
    pub(crate) fn close_if_pong_overdue(self: &Arc<Self>) -> bool {
        let overdue = self
            .state()
            .pong_deadline
            .is_some_and(|deadline| Instant::now() >= deadline);
        overdue && self.close(CloseReason::PingTimeout, LastPacket::Close)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    pub(crate) fn on_pong(&self) {
        // A pong nobody waits for (none pending) wakes nothing.
        if self.state().pong_deadline.take().is_some() {
            self.heartbeat.notify_one();
        }
    }

    /// Delivers a message to the handler, unless the session has closed meanwhile.
    pub(crate) fn deliver(self: &Arc<Self>, message: Message) {
        self.dispatch(|handler, socket| handler.on_message(socket, message));
    }

    /// Waits while reads are paused ([`Socket::pause_reading`]); `false` once the session
    /// has closed. One lock, as a closed check, when reads are not paused.
    pub(crate) async fn until_readable(&self) -> bool {
        {
            let state = self.state();
            if state.closed.is_some() || !state.reads_paused {
                return state.closed.is_none();
            }
        }
        self.wait_for(|state| match state.closed {
            Some(_) => Some(false),
            None => (!state.reads_paused).then_some(true),
        })
        .await
    }
}

/// What [`Session::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admitted {
    Yes,
    /// Queued, and the session just went over its budget: the watchdog must learn of it.
    OverBudget,
    /// Refused: the session just reached its limit, and the watchdog must learn of it
    /// (`listed`: it is on the watch list already).
    AtLimit {
        listed: bool,
    },
    /// Refused: the session was already at its limit.
    Refused,
}

impl Admitted {
    fn refused(self) -> bool {
        matches!(self, Self::AtLimit { .. } | Self::Refused)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle to one Engine.IO session.
///
/// Sending never waits: messages go into the session's outbound queue and are written by
/// whichever transport the client currently uses. The queue is bounded in bytes (see
/// [`EngineIoConfig::outbound_budget`](crate::EngineIoConfig::outbound_budget)).
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<Session>);

impl Socket {
    /// The session id.
    pub fn id(&self) -> Sid {
        self.0.sid
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// The transport the session currently uses.
    pub fn transport(&self) -> Transport {
        self.0.state().transport
    }

    /// The Engine.IO protocol version of the session (always 4).
    pub fn protocol(&self) -> u8 {
        4
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Queues a message for the client.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        let message = message.into();
        // Cloning a message copies reference counts only; the original is handed back on error.
        let frame = PreparedMessage::from(message.clone()).0;
        self.0.push(frame, true).map_err(|e| match e {
            SendError::Full(_) => SendError::Full(message),
            SendError::Closed(_) => SendError::Closed(message),
        })
    }

    /// Queues a message encoded once for many sockets; only a reference count is copied.
    pub fn send_prepared(&self, message: &PreparedMessage) -> Result<(), SendError<()>> {
        self.0.push(message.0.clone(), true).map_err(|e| match e {
            SendError::Full(_) => SendError::Full(()),
            SendError::Closed(_) => SendError::Closed(()),
        })
    }

    /// Queues several messages as one unit: they reach the client back to back, in order,
    /// with no message from another sender between them, or (when the session is closed or
    /// lacks room for all of them) none is queued. A Socket.IO packet with binary attachments
    /// is such a unit.
    pub fn send_batch(&self, messages: &[PreparedMessage]) -> Result<(), SendError<()>> {
        self.0.push_all(messages)
    }

    /// The number of messages queued and not yet taken by the transport: a WebSocket writer
    /// drains the queue as fast as the client reads, a polling session only when the client
    /// polls. Zero means the transport is keeping up.
    pub fn buffered(&self) -> usize {
        self.0.state().queue.len()
    }

    /// The bytes of messages sent to this session that its transport has not taken yet (the
    /// figure the outbound budget and limit are checked against).
    pub fn buffered_bytes(&self) -> u64 {
        let state = self.0.state();
        self.0.unsent(&state)
    }

    /// Attaches the layer above's own state to this session, once: the Socket.IO layer keeps
    /// its per-connection state here, so each message reaches it without a map lookup.
    /// Hands the value back if something is already attached.
    ///
    /// The session owns the value until the session itself is dropped: a value that holds
    /// this [`Socket`] must let it go in [`EngineHandler::on_close`](crate::EngineHandler),
    /// or the two keep each other alive.
    pub fn attach<T: Any + Send + Sync>(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.0
            .attached
            .get_or_init(|| Box::new(value.take().expect("taken once, here")));
        value.map_or(Ok(()), Err)
    }

    /// The value attached with [`Socket::attach`], if there is one of type `T`.
    pub fn attached<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.attached.get()?.downcast_ref()
    }

    /// Stops taking messages from the client until [`resume_reading`](Self::resume_reading):
    /// backpressure for a layer above that cannot keep up. A WebSocket connection reads no
    /// further frame (once the TCP buffers fill, the client's sends wait); a polling
    /// `POST` delivers no further packet and is not answered (the client sends nothing else
    /// meanwhile). Messages already being delivered still arrive, and sending to the client
    /// and the heartbeat go on.
    ///
    /// A paused session reads no pong either: one paused from a ping until `ping_timeout`
    /// after it closes with "ping timeout". Calls do not nest: one `resume_reading` undoes
    /// any number of `pause_reading`.
    pub fn pause_reading(&self) {
        self.0.state().reads_paused = true;
    }

    /// Takes messages from the client again after [`pause_reading`](Self::pause_reading).
    pub fn resume_reading(&self) {
        let was_paused = std::mem::replace(&mut self.0.state().reads_paused, false);
        if was_paused {
            self.0.notify_changed();
        }
    }

    /// Closes the session from the server side ("forced close"). Messages already queued are
    /// still delivered first. Returns `false` if it was already closed.
    pub fn close(&self) -> bool {
        self.0.close(CloseReason::ForcedClose, LastPacket::Close)
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Socket").field(&self.0.sid).finish()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Socket {}
