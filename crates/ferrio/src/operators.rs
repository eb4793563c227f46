//! [`BroadcastOperator`]: who an emit goes to, chained from a socket, a namespace or the
//! server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use ferrio_engine::Sid;
use serde::de::DeserializeOwned;

use crate::ack::BroadcastAckFuture;
use crate::adapter::{
    AdapterError, BroadcastOptions, BroadcastPacket, HandshakeData, IntoRooms, RemoteSocketData,
    Room,
};
use crate::error::EmitError;
use crate::namespace::Namespace;
use crate::socket::SocketRef;

/// Selects sockets of one namespace by room, then emits to them or acts on them.
///
/// ```
/// # fn demo(io: ferrio::Io) -> Result<(), ferrio::EmitError> {
/// io.to("room-1").to("room-2").except("muted").emit("news", "hello")?;
/// io.within("room-1").local().volatile().emit("tick", &42)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "an operator does nothing until it emits or acts"]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>) -> Self {
        Self {
            ns,
            opts: BroadcastOptions::default(),
        }
    }

    /// Targets the sockets in `rooms` too (the union of every room named).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        for room in rooms.into_rooms() {
            if !self.opts.rooms.contains(&room) {
                self.opts.rooms.push(room);
            }
        }
        self
    }

    /// The same as [`to`](Self::to) (`in` in the JavaScript API).
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Leaves out the sockets in `rooms`.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Reaches this server's sockets only (with a distributed adapter).
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Drops the packet for clients whose transport is behind (packets still queued for
    /// them, a polling client between two polls) instead of queueing it: for data that is
    /// stale by the time it would arrive (positions, typing indicators).
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// How long [`emit_with_ack`](Self::emit_with_ack) waits for the answers (default: the
    /// server's `ack_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.flags.timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Emits `event` with one argument to every targeted socket; encoded once for all.
    /// (`&()` is one `null` argument; [`emit_args`](Self::emit_args) with `&()` sends none.)
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_args(event, &(data,))
    }

    /// Emits `event` with the elements of `args` as arguments.
    pub fn emit_args<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<(), EmitError> {
        let packet =
            BroadcastPacket::encode(self.ns.parser(), self.ns.name.clone(), event, None, args)?;
        self.ns
            .adapter
            .broadcast(packet, self.opts.clone())
            .map_err(EmitError::Adapter)
    }

    /// Emits `event` with one argument and collects every recipient's acknowledgement.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<BroadcastAckFuture, EmitError> {
        self.emit_args_with_ack(event, &(data,))
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack), with the elements of `args` as arguments.
    pub fn emit_args_with_ack<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> Result<BroadcastAckFuture, EmitError> {
        let ns = &self.ns;
        let id = ns.next_ack_id();
        let packet = BroadcastPacket::asking(ns.parser(), ns.name.clone(), event, id, args)?;
        let timeout = self
            .opts
            .flags
            .timeout
            .map_or(ns.ack_timeout(), Duration::from_millis);
        ns.adapter
            .broadcast_with_ack(packet, self.opts.clone(), timeout)
            .map_err(EmitError::Adapter)
    }

    /// The targeted sockets connected to this server.
    pub fn sockets(&self) -> Vec<SocketRef> {
        let ids = self.ns.adapter.local_sockets(&self.opts);
        ids.into_iter()
            .filter_map(|sid| self.ns.get_socket(sid))
            .collect()
    }

    /// The targeted sockets on every server, described, and able to be emitted to, moved
    /// between rooms and disconnected wherever they are.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let found = self.ns.adapter.fetch_sockets(self.opts.clone()).await?;
        Ok(found
            .into_iter()
            .map(|data| RemoteSocket::new(self.ns.clone(), data))
            .collect())
    }

    /// Makes every targeted socket join `rooms`.
    pub fn join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .add_sockets(self.opts.clone(), rooms.into_rooms())
    }

    /// Makes every targeted socket leave `rooms`.
    pub fn leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .del_sockets(self.opts.clone(), rooms.into_rooms())
    }

    /// Disconnects every targeted socket from the namespace (their connections stay).
    pub fn disconnect(&self) -> Result<(), AdapterError> {
        self.ns.adapter.disconnect_sockets(self.opts.clone(), false)
    }

    /// Closes the whole connection of every targeted socket.
    pub fn close(&self) -> Result<(), AdapterError> {
        self.ns.adapter.disconnect_sockets(self.opts.clone(), true)
    }
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("ns", &self.ns.name)
            .field("opts", &self.opts)
            .finish()
    }
}

/// A socket [`fetch_sockets`](BroadcastOperator::fetch_sockets) found, on this server or
/// another: what its server said of it, and the operations that reach it wherever it is.
#[derive(Clone)]
pub struct RemoteSocket {
    /// The socket's id.
    pub id: Sid,
    /// Its rooms, its own included.
    pub rooms: Vec<Room>,
    /// The request that opened its connection, and its CONNECT's auth.
    pub handshake: HandshakeData,
    /// The data it shares ([`SocketRef::set_data`]); `null` when none.
    pub data: serde_json::Value,
    ns: Arc<Namespace>,
}

impl RemoteSocket {
    fn new(ns: Arc<Namespace>, data: RemoteSocketData) -> Self {
        Self {
            id: data.id,
            rooms: data.rooms,
            handshake: data.handshake,
            data: data.data,
            ns,
        }
    }

    /// The shared data, deserialized.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).within(self.id)
    }

    /// Emits `event` with one argument to this socket, on whatever server it is.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.operator().emit(event, data)
    }

    /// Emits `event` with the elements of `args` as arguments to this socket.
    pub fn emit_args<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<(), EmitError> {
        self.operator().emit_args(event, args)
    }

    /// Makes the socket join `rooms`.
    pub fn join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.operator().join(rooms)
    }

    /// Makes the socket leave `rooms`.
    pub fn leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.operator().leave(rooms)
    }

    /// Disconnects the socket from its namespace (its connection stays).
    pub fn disconnect(&self) -> Result<(), AdapterError> {
        self.operator().disconnect()
    }

    /// Closes the socket's whole connection.
    pub fn close(&self) -> Result<(), AdapterError> {
        self.operator().close()
    }
}

impl fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.id)
            .field("rooms", &self.rooms)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// The operator entry points of [`Io`](crate::Io) and [`NamespaceRef`](crate::NamespaceRef),
/// each starting a [`BroadcastOperator`] on their namespace.
macro_rules! operator_entry_points {
    () => {
        /// Targets the sockets in `rooms`.
        pub fn to(&self, rooms: impl $crate::IntoRooms) -> $crate::BroadcastOperator {
            self.operator().to(rooms)
        }

        /// The same as [`to`](Self::to).
        pub fn within(&self, rooms: impl $crate::IntoRooms) -> $crate::BroadcastOperator {
            self.operator().within(rooms)
        }

        /// Targets every socket except those in `rooms`.
        pub fn except(&self, rooms: impl $crate::IntoRooms) -> $crate::BroadcastOperator {
            self.operator().except(rooms)
        }

        /// Targets this server's sockets only.
        pub fn local(&self) -> $crate::BroadcastOperator {
            self.operator().local()
        }

        /// Drops packets for clients that cannot take them now.
        pub fn volatile(&self) -> $crate::BroadcastOperator {
            self.operator().volatile()
        }

        /// Sets the timeout of a broadcast with acks.
        pub fn timeout(&self, timeout: std::time::Duration) -> $crate::BroadcastOperator {
            self.operator().timeout(timeout)
        }

        /// Emits `event` with one argument to every socket.
        pub fn emit<T: serde::Serialize + ?Sized>(
            &self,
            event: &str,
            data: &T,
        ) -> Result<(), $crate::EmitError> {
            self.operator().emit(event, data)
        }

        /// Emits `event` with the elements of `args` as arguments to every socket.
        pub fn emit_args<A: serde::Serialize + ?Sized>(
            &self,
            event: &str,
            args: &A,
        ) -> Result<(), $crate::EmitError> {
            self.operator().emit_args(event, args)
        }

        /// Emits to every socket and collects their acknowledgements.
        pub fn emit_with_ack<T: serde::Serialize + ?Sized>(
            &self,
            event: &str,
            data: &T,
        ) -> Result<$crate::BroadcastAckFuture, $crate::EmitError> {
            self.operator().emit_with_ack(event, data)
        }

        /// Every socket connected to this server.
        pub fn sockets(&self) -> Vec<$crate::SocketRef> {
            self.operator().sockets()
        }

        /// Every socket, on every server.
        pub async fn fetch_sockets(
            &self,
        ) -> Result<Vec<$crate::RemoteSocket>, $crate::adapter::AdapterError> {
            self.operator().fetch_sockets().await
        }

        /// Disconnects every socket from the namespace.
        pub fn disconnect_sockets(&self) -> Result<(), $crate::adapter::AdapterError> {
            self.operator().disconnect()
        }
    };
}

pub(crate) use operator_entry_points;
