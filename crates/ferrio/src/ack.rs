//! Acknowledgements: the client answering an event of the server ([`AckFuture`],
//! [`BroadcastAckFuture`]), and the server answering an event of the client ([`AckSender`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use ferrio_engine::Sid;
use futures_util::future::JoinAll;
use pin_project_lite::pin_project;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::error::{AckError, EmitError};
use crate::payload::Payload;
use crate::socket::{SocketInner, SocketRef};

pub(crate) type AckResult = Result<Payload, AckError>;

/// Removes a pending ack from its socket when the waiting future goes away first (timeout
/// or dropped), so an unanswered ack never outlives its waiter.
struct PendingAck {
    socket: Weak<SocketInner>,
    id: u64,
}

impl Drop for PendingAck {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.upgrade() {
            socket.forget_ack(self.id);
        }
    }
}

pin_project! {
    /// The client's answer to an event sent with an ack, or why it did not come.
    ///
    /// Resolves to the arguments the client passed to its callback. It fails with
    /// [`AckError::Timeout`] after the timeout (the server's `ack_timeout` unless
    /// [`timeout`](Self::timeout) sets another), and at once with [`AckError::Disconnected`]
    /// if the socket goes first.
    pub struct AckFuture {
        state: State,
        deadline: Instant,
        // Made on the first poll, so an ack can be asked for outside the runtime.
        #[pin]
        sleep: Option<Sleep>,
        guard: Option<PendingAck>,
    }
}

enum State {
    Waiting(oneshot::Receiver<AckResult>),
    Failed(Option<AckError>),
}

impl AckFuture {
    pub(crate) fn waiting(
        rx: oneshot::Receiver<AckResult>,
        socket: &Arc<SocketInner>,
        id: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            state: State::Waiting(rx),
            deadline: Instant::now() + timeout,
            sleep: None,
            guard: Some(PendingAck {
                socket: Arc::downgrade(socket),
                id,
            }),
        }
    }

    pub(crate) fn failed(error: EmitError) -> Self {
        Self {
            state: State::Failed(Some(AckError::Emit(error))),
            deadline: Instant::now(),
            sleep: None,
            guard: None,
        }
    }

    /// Waits at most `timeout`, counted from now, instead of the default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now() + timeout;
        self.sleep = None;
        self
    }
}

impl Future for AckFuture {
    type Output = AckResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckResult> {
        let this = self.project();
        let rx = match this.state {
            State::Failed(error) => {
                return Poll::Ready(Err(error.take().unwrap_or(AckError::Disconnected)));
            }
            State::Waiting(rx) => rx,
        };
        if let Poll::Ready(result) = Pin::new(rx).poll(cx) {
            *this.guard = None;
            return Poll::Ready(result.unwrap_or(Err(AckError::Disconnected)));
        }
        let mut sleep = this.sleep;
        if sleep.is_none() {
            sleep.set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        let expired = sleep
            .as_pin_mut()
            .is_some_and(|sleep| sleep.poll(cx).is_ready());
        if expired {
            *this.guard = None;
            return Poll::Ready(Err(AckError::Timeout));
        }
        Poll::Pending
    }
}

impl fmt::Debug for AckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// The answers of every recipient of a broadcast sent with an ack: one entry per socket,
    /// with its arguments or why it did not answer in time.
    pub struct BroadcastAckFuture {
        #[pin]
        inner: JoinAll<Tagged>,
    }
}

impl BroadcastAckFuture {
    pub(crate) fn new(futures: Vec<(Sid, AckFuture)>) -> Self {
        Self {
            inner: futures_util::future::join_all(
                futures
                    .into_iter()
                    .map(|(sid, future)| Tagged { sid, future }),
            ),
        }
    }
}

impl Future for BroadcastAckFuture {
    type Output = Vec<(Sid, AckResult)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl fmt::Debug for BroadcastAckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastAckFuture").finish_non_exhaustive()
    }
}

pin_project! {
    #[doc(hidden)]
    pub struct Tagged {
        sid: Sid,
        #[pin]
        future: AckFuture,
    }
}

impl Future for Tagged {
    type Output = (Sid, AckResult);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.future.poll(cx).map(|result| (*this.sid, result))
    }
}

/// Answers the client's event: the extractor for events the client sent with an ack.
///
/// Sending consumes the sender, so an event is acknowledged at most once. When the client
/// asked for no ack, sending does nothing.
pub struct AckSender {
    socket: SocketRef,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: Option<u64>) -> Self {
        Self { socket, id }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_args(&(data,))
    }

    /// Acknowledges with the elements of `args` (a tuple, a `Vec`, a [`Payload`]...) as
    /// arguments.
    pub fn send_args<A: Serialize + ?Sized>(self, args: &A) -> Result<(), EmitError> {
        match self.id {
            Some(id) => self.socket.send_ack(id, args),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("socket", &self.socket.id())
            .field("id", &self.id)
            .finish()
    }
}
