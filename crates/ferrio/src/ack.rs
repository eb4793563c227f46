//! Acknowledgements the server waits for: one client's ([`AckFuture`]) and every recipient's
//! of a broadcast ([`BroadcastAckFuture`]), including those that other servers collect
//! ([`RemoteAcks`]).
//!
//! A leaf module: the pending acks of a socket are reached through the [`ForgetAck`] trait,
//! so this module knows nothing of sockets and the adapter seam can use it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ferrio_engine::Sid;
use futures_util::future::JoinAll;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::error::{AckError, EmitError};
use crate::payload::Payload;

/// The client's answer to one event, or why it did not come.
pub type AckResult = Result<Payload, AckError>;

/// The acks a socket waits for, by ack id.
#[derive(Default)]
pub(crate) struct AckTable(Mutex<HashMap<u64, oneshot::Sender<AckResult>>>);

impl AckTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<AckResult>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a waiter for ack `id`.
    pub(crate) fn insert(&self, id: u64) -> oneshot::Receiver<AckResult> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        rx
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands the client's answer to its waiter, if one still waits.
    pub(crate) fn answer(&self, id: u64, args: Payload) {
        if let Some(waiter) = self.lock().remove(&id) {
            let _ = waiter.send(Ok(args));
        }
    }

    /// Fails every pending ack at once (dropping a sender fails its waiter).
    pub(crate) fn fail_all(&self) {
        drop(std::mem::take(&mut *self.lock()));
    }
}

/// What holds pending acks: an [`AckFuture`] that goes away first (timeout, dropped) removes
/// its entry, so an unanswered ack never outlives its waiter.
pub(crate) trait ForgetAck: Send + Sync {
    fn forget_ack(&self, id: u64);
}

struct PendingAck {
    owner: Weak<dyn ForgetAck>,
    id: u64,
}

impl Drop for PendingAck {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.forget_ack(self.id);
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
        owner: Weak<dyn ForgetAck>,
        id: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            state: State::Waiting(rx),
            deadline: Instant::now() + timeout,
            sleep: None,
            guard: Some(PendingAck { owner, id }),
        }
    }

    /// A future that fails at once with `error`.
    pub fn failed(error: EmitError) -> Self {
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

/// One recipient's answer to a broadcast sent with an ack: the socket, when the server it
/// is on reports it (a Node.js server does not), and its answer.
pub type AckResponse = (Option<Sid>, AckResult);

pin_project! {
    /// The answers of every recipient of a broadcast sent with an ack, on every server: one
    /// entry per socket, with its arguments or why it did not answer in time.
    ///
    /// An adapter builds it from the acks of its local sockets
    /// ([`AdapterContext::send_with_ack`](crate::adapter::AdapterContext::send_with_ack))
    /// and, in a cluster, the [`RemoteAcks`] the other servers answer into.
    pub struct BroadcastAckFuture {
        #[pin]
        local: JoinAll<Tagged>,
        local_done: Option<Vec<AckResponse>>,
        remote: Option<RemoteAcks>,
    }
}

impl BroadcastAckFuture {
    /// The answers of these local sockets.
    pub fn new(local: Vec<(Sid, AckFuture)>) -> Self {
        Self {
            local: futures_util::future::join_all(
                local
                    .into_iter()
                    .map(|(sid, future)| Tagged { sid, future }),
            ),
            local_done: None,
            remote: None,
        }
    }

    /// Also waits for the answers other servers collect.
    pub fn with_remote(mut self, remote: RemoteAcks) -> Self {
        self.remote = Some(remote);
        self
    }
}

impl Future for BroadcastAckFuture {
    type Output = Vec<AckResponse>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.local_done.is_none() {
            if let Poll::Ready(local) = this.local.poll(cx) {
                *this.local_done = Some(local);
            }
        }
        let remote = match this.remote {
            Some(remote) => match Pin::new(remote).poll(cx) {
                Poll::Ready(remote) => Some(remote),
                Poll::Pending => return Poll::Pending,
            },
            None => None,
        };
        let Some(mut all) = this.local_done.take() else {
            // Remote answers are kept until the local ones are in.
            if let Some(remote) = remote {
                *this.remote = Some(RemoteAcks::finished(remote));
            }
            return Poll::Pending;
        };
        *this.remote = None;
        all.extend(remote.unwrap_or_default());
        Poll::Ready(all)
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
    type Output = AckResponse;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.future.poll(cx).map(|result| (Some(*this.sid), result))
    }
}

/// The most answers one broadcast accepts from other servers before every server has said
/// how many to expect: a broker cannot make the server hold more.
const MAX_UNCOUNTED_ACKS: usize = 1 << 16;

/// The answers other servers collect for a broadcast with acks; [`RemoteAckSender`] is the
/// adapter's side. Complete when every server has reported how many of its sockets were
/// asked and all of them have answered; at the timeout, each missing answer is an
/// [`AckError::Timeout`]. Made with [`remote_acks`].
pub struct RemoteAcks {
    state: Arc<Mutex<Collect>>,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The adapter's side of [`RemoteAcks`]: cheap to clone, one clone per task that receives
/// answers. When every clone is gone, the missing answers fail at once.
pub struct RemoteAckSender {
    state: Arc<Mutex<Collect>>,
}

#[derive(Default)]
struct Collect {
    /// How many servers will report, once known.
    servers: Option<usize>,
    reported: usize,
    expected: usize,
    answers: Vec<AckResponse>,
    senders: usize,
    waker: Option<Waker>,
    done: Option<Vec<AckResponse>>,
}

impl Collect {
    fn complete(&self) -> bool {
        self.servers.is_some_and(|servers| self.reported >= servers)
            && self.answers.len() >= self.expected
    }

    /// The answers, each missing one failed with `error`.
    fn finish(&mut self, error: fn() -> AckError) -> Vec<AckResponse> {
        let mut answers = std::mem::take(&mut self.answers);
        let missing = self.expected.saturating_sub(answers.len());
        answers.extend((0..missing).map(|_| (None, Err(error()))));
        answers
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// A collector of answers from other servers for one broadcast, waiting at most `timeout`.
pub fn remote_acks(timeout: Duration) -> (RemoteAckSender, RemoteAcks) {
    let state = Arc::new(Mutex::new(Collect {
        senders: 1,
        ..Collect::default()
    }));
    let sender = RemoteAckSender {
        state: state.clone(),
    };
    let acks = RemoteAcks {
        state,
        deadline: Instant::now() + timeout,
        sleep: None,
    };
    (sender, acks)
}

fn lock(state: &Mutex<Collect>) -> MutexGuard<'_, Collect> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl RemoteAckSender {
    /// How many servers will report their count (usually the cluster's size minus this
    /// one). Until this is set, the collector waits for the timeout.
    pub fn servers(&self, servers: usize) {
        let mut state = lock(&self.state);
        state.servers = Some(servers);
        if state.complete() {
            state.wake();
        }
    }

    /// One server reports that it asked `clients` of its sockets.
    pub fn expect(&self, clients: usize) {
        let mut state = lock(&self.state);
        state.reported += 1;
        state.expected = state.expected.saturating_add(clients);
        if state.complete() {
            state.wake();
        }
    }

    /// One socket's answer (`socket` when the server named it). Answers beyond the count
    /// the servers reported are dropped.
    pub fn ack(&self, socket: Option<Sid>, args: Payload) {
        let mut state = lock(&self.state);
        let all_counted = state.servers.is_some_and(|s| state.reported >= s);
        let room = if all_counted {
            state.answers.len() < state.expected
        } else {
            state.answers.len() < MAX_UNCOUNTED_ACKS
        };
        if room && state.done.is_none() {
            state.answers.push((socket, Ok(args)));
            if state.complete() {
                state.wake();
            }
        }
    }
}

impl Clone for RemoteAckSender {
    fn clone(&self) -> Self {
        lock(&self.state).senders += 1;
        Self {
            state: self.state.clone(),
        }
    }
}

impl Drop for RemoteAckSender {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.senders -= 1;
        if state.senders == 0 {
            state.wake();
        }
    }
}

impl RemoteAcks {
    fn finished(answers: Vec<AckResponse>) -> Self {
        let acks = Self {
            state: Arc::default(),
            deadline: Instant::now(),
            sleep: None,
        };
        lock(&acks.state).done = Some(answers);
        acks
    }
}

impl Future for RemoteAcks {
    type Output = Vec<AckResponse>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let deadline = self.deadline;
        let expired = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx)
            .is_ready();
        let mut state = lock(&self.state);
        if let Some(done) = state.done.take() {
            return Poll::Ready(done);
        }
        if state.complete() {
            return Poll::Ready(state.finish(|| AckError::Timeout));
        }
        if expired {
            return Poll::Ready(state.finish(|| AckError::Timeout));
        }
        if state.senders == 0 {
            return Poll::Ready(state.finish(|| AckError::Disconnected));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl fmt::Debug for RemoteAcks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAcks").finish_non_exhaustive()
    }
}

impl fmt::Debug for RemoteAckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAckSender").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: i64) -> Payload {
        Payload::from_args(&(n,)).expect("a tuple is a sequence")
    }

    #[tokio::test]
    async fn remote_acks_complete_when_every_server_reported_and_answered() {
        let (tx, acks) = remote_acks(Duration::from_secs(60));
        tx.servers(2);
        tx.expect(1);
        tx.ack(None, args(1));
        tx.expect(1);
        tx.ack(None, args(2));
        tx.ack(None, args(3)); // beyond the count: dropped
        let answers = acks.await;
        assert_eq!(answers.len(), 2);
        assert!(answers.iter().all(|(_, r)| r.is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn missing_remote_answers_time_out() {
        let (tx, acks) = remote_acks(Duration::from_secs(1));
        tx.servers(1);
        tx.expect(2);
        tx.ack(None, args(1));
        let answers = acks.await;
        assert_eq!(answers.len(), 2);
        assert!(matches!(answers[1], (None, Err(AckError::Timeout))));
        drop(tx);
    }

    #[tokio::test]
    async fn dropped_senders_fail_what_is_missing_at_once() {
        let (tx, acks) = remote_acks(Duration::from_secs(60));
        tx.expect(1);
        drop(tx);
        let answers = acks.await;
        assert!(matches!(answers[..], [(None, Err(AckError::Disconnected))]));
    }

    #[tokio::test]
    async fn a_broadcast_waits_for_local_and_remote_answers() {
        let (tx, remote) = remote_acks(Duration::from_secs(60));
        let future = BroadcastAckFuture::new(Vec::new()).with_remote(remote);
        tx.servers(1);
        tx.expect(1);
        tx.ack(None, args(7));
        let answers = future.await;
        assert_eq!(answers.len(), 1);
    }
}
