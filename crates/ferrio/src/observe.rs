//! Observers: what happens on a server, told to whoever watches it (metrics, the Admin UI,
//! an audit log). Registered with [`IoBuilder::observe`](crate::IoBuilder::observe); a
//! server without any pays one branch on an empty list where each event happens.

use std::fmt;
use std::sync::Arc;

use ferrio_engine::Sid;

use crate::adapter::{AdapterError, Room};
use crate::error::DisconnectReason;
use crate::payload::Payload;
use crate::socket::SocketRef;

/// Callbacks on what happens on a server. Every method does nothing unless overridden.
///
/// They run on the task where the event happens (often the connection's reading task, or
/// the one emitting a broadcast, sometimes under the lock of a namespace's socket map), so
/// they must return quickly and must not block. Emitting from a callback is allowed, but not
/// to the namespace the callback is about (a broadcast there may run under that namespace's
/// lock).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ferrio::{Io, Observer, SocketRef};
///
/// #[derive(Default)]
/// struct Connects(AtomicU64);
///
/// impl Observer for Connects {
///     fn socket_connected(&self, _socket: &SocketRef) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let (layer, io) = Io::builder().observe(Connects::default()).build_layer();
/// # let _ = (layer, io);
/// ```
#[allow(unused_variables)]
pub trait Observer: Send + Sync + 'static {
    /// A socket was admitted to its namespace (fresh or recovered), before its connect
    /// handler runs.
    fn socket_connected(&self, socket: &SocketRef) {}

    /// A socket left its namespace, for `reason`; it has left its rooms already.
    fn socket_disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {}

    /// A CONNECT to namespace `nsp` was refused with `message` (a middleware, an unknown
    /// namespace, the namespace limit).
    fn connect_refused(&self, nsp: &str, message: &str) {}

    /// The socket `sid` of namespace `nsp` on this server joined `room` (its own room
    /// excepted).
    fn room_joined(&self, nsp: &str, room: &Room, sid: Sid) {}

    /// The socket `sid` of namespace `nsp` on this server left `room`, by itself or because
    /// it disconnected.
    fn room_left(&self, nsp: &str, room: &Room, sid: Sid) {}

    /// The client of `socket` sent an event (counted before rate limits and middlewares);
    /// `bytes` is the size of the Engine.IO message that completed the packet.
    fn event_received(&self, socket: &SocketRef, event: &str, args: &Payload, bytes: usize) {}

    /// An event was queued for `socket`'s client, by the socket or by a broadcast (unless
    /// this observer [takes broadcasts whole](Self::takes_whole_broadcasts)).
    fn event_sent(&self, socket: &SocketRef, sent: &Sent<'_>) {}

    /// A broadcast of namespace `nsp` was queued for `sockets` sockets of this server. Called
    /// instead of one [`event_sent`](Self::event_sent) per socket when
    /// [`takes_whole_broadcasts`](Self::takes_whole_broadcasts) says so: an observer that only
    /// counts pays once per broadcast rather than once per recipient.
    fn broadcast_sent(&self, nsp: &str, sent: &Sent<'_>, sockets: usize) {}

    /// Whether broadcasts reach this observer whole ([`broadcast_sent`](Self::broadcast_sent))
    /// rather than socket by socket ([`event_sent`](Self::event_sent)). Asked once, when the
    /// server is built.
    fn takes_whole_broadcasts(&self) -> bool {
        false
    }

    /// The connection of `socket` moved from long-polling to WebSocket (called for each
    /// socket of the connection).
    fn transport_upgraded(&self, socket: &SocketRef) {}

    /// A volatile packet for `socket` was dropped because its client lagged behind.
    fn packet_dropped(&self, socket: &SocketRef) {}

    /// An adapter operation of namespace `nsp` failed.
    fn adapter_error(&self, nsp: &str, error: &AdapterError) {}
}

/// An event on its way to a client ([`Observer::event_sent`]).
pub struct Sent<'a> {
    pub(crate) event: &'a str,
    pub(crate) bytes: usize,
    pub(crate) args: &'a dyn Fn() -> Option<Payload>,
}

impl Sent<'_> {
    /// The event's name.
    pub fn event(&self) -> &str {
        self.event
    }

    /// Its size on the wire, binary attachments included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Its arguments, decoded on request (this costs a copy; `None` if they cannot be read).
    pub fn args(&self) -> Option<Payload> {
        (self.args)()
    }
}

impl fmt::Debug for Sent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sent")
            .field("event", &self.event)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// The observers of one server.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    all: Arc<[Arc<dyn Observer>]>,
    /// Those told about broadcasts socket by socket.
    per_socket: Arc<[Arc<dyn Observer>]>,
    /// Those told about broadcasts whole.
    whole: Arc<[Arc<dyn Observer>]>,
}

impl Observers {
    pub(crate) fn new(list: Vec<Arc<dyn Observer>>) -> Self {
        let (whole, per_socket): (Vec<_>, Vec<_>) = list
            .iter()
            .cloned()
            .partition(|o| o.takes_whole_broadcasts());
        Self {
            all: list.into(),
            per_socket: per_socket.into(),
            whole: whole.into(),
        }
    }

    /// Calls `event_sent` on the observers that take broadcasts socket by socket.
    #[inline]
    pub(crate) fn broadcast_to_socket(&self, socket: &SocketRef, sent: &Sent<'_>) {
        for observer in self.per_socket.iter() {
            observer.event_sent(socket, sent);
        }
    }

    /// Calls `broadcast_sent` on the observers that take broadcasts whole.
    #[inline]
    pub(crate) fn broadcast_whole(&self, nsp: &str, sent: &Sent<'_>, sockets: usize) {
        if sockets == 0 {
            return;
        }
        for observer in self.whole.iter() {
            observer.broadcast_sent(nsp, sent, sockets);
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Calls `f` on each observer.
    #[inline]
    pub(crate) fn each(&self, f: impl Fn(&dyn Observer)) {
        for observer in self.all.iter() {
            f(observer.as_ref());
        }
    }
}
