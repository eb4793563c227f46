//! The adapter seam: who is in which room, and how broadcasts and bulk operations reach the
//! sockets of every server.
//!
//! Each namespace has one [`Adapter`]. The default, [`LocalAdapter`], keeps rooms in memory
//! and reaches the sockets of this server. A distributed adapter (Redis...) wraps a
//! `LocalAdapter` for the local part and forwards the same operations to the other servers,
//! which apply them to their own sockets.
//!
//! Everything an adapter needs is public, so one can live in its own crate:
//! - what it exchanges: [`BroadcastPacket`] (an event encoded once, its wire form, and how
//!   to rebuild it from bytes or from its event and arguments), [`BroadcastOptions`] (with
//!   serde), [`RemoteSocketData`], acks from other servers ([`remote_acks`]);
//! - the one handle through which it reaches this server's sockets: [`AdapterContext`], over
//!   the [`LocalSockets`] interface (deliver, collect acks, describe, disconnect, hand over
//!   server-side events). It never touches namespaces or sockets themselves.
//!
//! This module imports nothing of the crate but its leaf modules (errors, payloads, the
//! parser, ack futures): the sockets and namespaces depend on it, never the reverse.
//!
//! # Lifecycle
//! [`IoBuilder::adapter`](crate::IoBuilder::adapter) takes a factory that builds the adapter
//! of each namespace from its [`AdapterContext`] (cheap and synchronous: no I/O there). The
//! server then runs [`Adapter::init`] inside the runtime (sockets wait for it before they are
//! admitted; [`Io::ready`](crate::Io::ready) reports how it went), and [`Adapter::close`] when
//! the server closes or a dynamic namespace is dropped.
//!
//! # A wrapping adapter
//! An adapter that counts broadcasts and leaves the rest to the in-memory adapter:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//!
//! use ferrio::adapter::{
//!     Adapter, AdapterContext, AdapterError, BoxFuture, BroadcastAckFuture, BroadcastOptions,
//!     BroadcastPacket, LocalAdapter, RemoteSocketData, Room,
//! };
//! use ferrio::{Io, Payload, Sid};
//!
//! struct Counting {
//!     local: LocalAdapter,
//!     broadcasts: AtomicUsize,
//! }
//!
//! impl Adapter for Counting {
//!     fn add_all(&self, sid: Sid, rooms: &[Room]) { self.local.add_all(sid, rooms) }
//!     fn del(&self, sid: Sid, room: &str) { self.local.del(sid, room) }
//!     fn del_all(&self, sid: Sid) { self.local.del_all(sid) }
//!     fn socket_rooms(&self, sid: Sid) -> Vec<Room> { self.local.socket_rooms(sid) }
//!     fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
//!         self.local.local_sockets(opts)
//!     }
//!     fn broadcast(&self, packet: BroadcastPacket, opts: BroadcastOptions) -> Result<(), AdapterError> {
//!         self.broadcasts.fetch_add(1, Ordering::Relaxed);
//!         self.local.broadcast(packet, opts)
//!     }
//!     fn broadcast_with_ack(
//!         &self,
//!         packet: BroadcastPacket,
//!         opts: BroadcastOptions,
//!         timeout: Duration,
//!     ) -> Result<BroadcastAckFuture, AdapterError> {
//!         self.local.broadcast_with_ack(packet, opts, timeout)
//!     }
//!     fn fetch_sockets(&self, opts: BroadcastOptions)
//!         -> BoxFuture<'static, Result<Vec<RemoteSocketData>, AdapterError>> {
//!         self.local.fetch_sockets(opts)
//!     }
//!     fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
//!         self.local.add_sockets(opts, rooms)
//!     }
//!     fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
//!         self.local.del_sockets(opts, rooms)
//!     }
//!     fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
//!         self.local.disconnect_sockets(opts, close)
//!     }
//!     fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> { self.local.rooms() }
//!     fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> { self.local.server_count() }
//!     fn server_side_emit(&self, event: &str, args: Payload) -> Result<(), AdapterError> {
//!         self.local.server_side_emit(event, args)
//!     }
//!     fn server_side_emit_with_ack(&self, event: &str, args: Payload, timeout: Duration)
//!         -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
//!         self.local.server_side_emit_with_ack(event, args, timeout)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (_layer, io) = Io::builder()
//!     .adapter(|ctx: AdapterContext| Counting {
//!         local: LocalAdapter::new(ctx),
//!         broadcasts: AtomicUsize::new(0),
//!     })
//!     .build_layer();
//! io.ready().await.unwrap();
//! io.emit("tick", &1).unwrap();
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ferrio_engine::Sid;

mod context;
mod local;
mod options;
mod packet;
mod remote;
mod room;
mod session;

pub use crate::ack::{AckResponse, BroadcastAckFuture, RemoteAckSender, RemoteAcks, remote_acks};
pub use crate::error::{AdapterError, AdapterErrorKind};
pub use context::{AdapterContext, LocalSockets, Recipients};
pub use ferrio_engine::Message;
pub use local::LocalAdapter;
pub use options::{BroadcastFlags, BroadcastOptions};
pub use packet::{BroadcastPacket, InvalidPacket};
pub use remote::{HandshakeData, RemoteSocketData, ServerAck};
pub use room::{IntoRoom, IntoRooms, Room};
pub(crate) use session::is_recoverable;
pub use session::{Recovery, Session};

use crate::payload::Payload;

/// A boxed future, as the adapter's asynchronous operations return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The rooms of one namespace and the operations that span its sockets on every server.
///
/// Membership calls are synchronous and local: every server keeps its own sockets' rooms.
/// The rest reach the whole cluster unless the options say `local`; a server that receives
/// an operation from another applies it to its own sockets through its [`AdapterContext`].
pub trait Adapter: Send + Sync + 'static {
    /// Connects to whatever the adapter needs (a broker...). Called once, inside the runtime,
    /// before the namespace admits its first socket. The default has nothing to do.
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Lets go of what [`init`](Self::init) took: called when the server closes or the
    /// namespace is dropped. The default has nothing to do.
    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Connection state recovery: keeps the session of a socket lost for a recoverable
    /// reason, so its client can take it back. Called only when recovery is on, before the
    /// socket leaves its rooms. The default keeps nothing.
    fn persist_session(&self, session: Session) {
        let _ = session;
    }

    /// Takes back the session `pid` for a client that presents it, with `offset` the last
    /// offset it saw (none when it saw no event): `Ok(Some)` with
    /// [`Session::resume_from`] set when every packet it missed is still available, `Ok(None)`
    /// otherwise (the client then gets a fresh socket). A session is taken back once. The
    /// default has none.
    fn restore_session(
        &self,
        pid: &str,
        offset: Option<&str>,
    ) -> BoxFuture<'static, Result<Option<Session>, AdapterError>> {
        let _ = (pid, offset);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Brings a restored session back: puts the socket back in its rooms, then calls
    /// `resume` with the packets it missed, in order, so that it queues them and admits the
    /// socket before any later broadcast can reach it (none is lost between the two).
    /// Resolves to what `resume` returned, or to false without calling it when the missed
    /// packets are no longer all there. Asynchronous, so an adapter may read them from its
    /// broker first. The default cannot resume.
    fn resume_session<'a>(
        &'a self,
        session: &'a Session,
        resume: &'a mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> BoxFuture<'a, bool> {
        let _ = (session, resume);
        Box::pin(std::future::ready(false))
    }

    /// How many servers serve this namespace, this one included.
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// Adds a local socket to rooms.
    fn add_all(&self, sid: Sid, rooms: &[Room]);
    /// Removes a local socket from a room.
    fn del(&self, sid: Sid, room: &str);
    /// Removes a local socket from every room.
    fn del_all(&self, sid: Sid);
    /// The rooms of a local socket, its own room included.
    fn socket_rooms(&self, sid: Sid) -> Vec<Room>;
    /// The ids of the local sockets `opts` targets.
    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid>;

    /// Sends the packet to every socket `opts` targets.
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> Result<(), AdapterError>;

    /// Sends the packet to every targeted socket, each asked to acknowledge it within
    /// `timeout`, and collects the answers of every server.
    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> Result<BroadcastAckFuture, AdapterError>;

    /// Describes the sockets `opts` targets, on every server.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocketData>, AdapterError>>;

    /// Makes the targeted sockets join `rooms`, on every server.
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;
    /// Makes the targeted sockets leave `rooms`, on every server.
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;
    /// Disconnects the targeted sockets from the namespace (`close`: their whole
    /// connections), on every server.
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError>;

    /// Every room with at least one socket, on every server.
    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>>;

    /// Sends an event to the other servers of the cluster (their handlers registered with
    /// [`NamespaceRef::on_server_event`](crate::NamespaceRef::on_server_event)).
    fn server_side_emit(&self, event: &str, args: Payload) -> Result<(), AdapterError>;

    /// Like [`server_side_emit`](Self::server_side_emit), and collects one answer per other
    /// server within `timeout`.
    fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Payload,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>>;
}
