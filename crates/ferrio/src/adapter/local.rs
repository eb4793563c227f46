//! [`LocalAdapter`], the in-memory adapter: the default, and the local half of any
//! distributed adapter.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::RwLock;
use std::time::Duration;

use ferrio_engine::Sid;

use super::{
    Adapter, AdapterContext, AdapterError, BoxFuture, BroadcastOptions, BroadcastPacket, IntoRoom,
    RemoteSocket, Room,
};
use crate::ack::BroadcastAckFuture;
use crate::error::EmitError;
use crate::socket::SocketRef;

/// The in-memory adapter: rooms in this process, broadcasts to this server's sockets.
///
/// A socket's own room is not stored: a room name that is the id of a connected socket
/// names that socket. This keeps an idle socket's cost at zero room entries.
pub struct LocalAdapter {
    ctx: AdapterContext,
    index: RwLock<RoomIndex>,
}

#[derive(Default)]
struct RoomIndex {
    rooms: HashMap<Room, HashSet<Sid>>,
    sockets: HashMap<Sid, HashSet<Room>>,
}

impl LocalAdapter {
    /// An adapter for the namespace of `ctx`.
    pub fn new(ctx: AdapterContext) -> Self {
        Self {
            ctx,
            index: RwLock::default(),
        }
    }

    /// The context it was built with.
    pub fn context(&self) -> &AdapterContext {
        &self.ctx
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, RoomIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, RoomIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn sockets_of(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        let Some(ns) = self.ctx.ns.upgrade() else {
            return Vec::new();
        };
        let index = self.index();
        let excluded = |sid: &Sid| {
            opts.except.iter().any(|room| {
                room.as_ref() == sid.as_str()
                    || index.rooms.get(room).is_some_and(|set| set.contains(sid))
            })
        };
        ns.with_sockets(|sockets| {
            if opts.rooms.is_empty() {
                return sockets
                    .iter()
                    .filter(|(sid, _)| !excluded(sid))
                    .map(|(_, socket)| socket.clone())
                    .collect();
            }
            // One room cannot name a socket twice (its own room is never in the index), so
            // the set that removes duplicates is only needed for several rooms.
            let several = opts.rooms.len() > 1;
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for room in &opts.rooms {
                let own = Sid::parse(room).filter(|sid| sockets.contains_key(sid));
                let members = index
                    .rooms
                    .get(room)
                    .into_iter()
                    .flatten()
                    .chain(own.as_ref());
                for sid in members {
                    if !excluded(sid) && (!several || seen.insert(*sid)) {
                        if let Some(socket) = sockets.get(sid) {
                            out.push(socket.clone());
                        }
                    }
                }
            }
            out
        })
    }

    /// Delivers a packet to the local sockets `opts` targets.
    pub fn broadcast_local(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        for socket in self.sockets_of(opts) {
            if opts.volatile && socket.0.engine.buffered() > 0 {
                continue;
            }
            if let Err(e) = socket.send_encoded(&packet.encoded) {
                if !opts.volatile {
                    tracing::warn!(socket = %socket.id(), error = %e, "broadcast not delivered");
                }
            }
        }
    }

    /// Sends to the local targeted sockets and collects their acks.
    pub fn broadcast_with_ack_local(
        &self,
        encode: &dyn Fn(u64) -> Result<BroadcastPacket, EmitError>,
        opts: &BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<BroadcastAckFuture, EmitError> {
        let id = self.ctx.next_ack_id();
        let packet = encode(id)?;
        let timeout = timeout.unwrap_or_else(|| self.ctx.ack_timeout());
        let mut futures = Vec::new();
        for socket in self.sockets_of(opts) {
            let Some(ack) = socket.0.expect_ack(id, timeout) else {
                continue;
            };
            if let Err(e) = socket.send_encoded(&packet.encoded) {
                tracing::warn!(socket = %socket.id(), error = %e, "broadcast not delivered");
            }
            futures.push((socket.id(), ack));
        }
        Ok(BroadcastAckFuture::new(futures))
    }

    /// The local targeted sockets.
    pub fn local_socket_refs(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        self.sockets_of(opts)
    }
}

impl fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAdapter")
            .field("namespace", &self.ctx.name)
            .finish_non_exhaustive()
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        let mut index = self.index_mut();
        for room in rooms {
            if room.as_ref() == sid.as_str() {
                continue; // its own room is implicit
            }
            index.rooms.entry(room.clone()).or_default().insert(sid);
            index.sockets.entry(sid).or_default().insert(room.clone());
        }
    }

    fn del(&self, sid: Sid, room: &str) {
        let mut index = self.index_mut();
        if let Some(set) = index.rooms.get_mut(room) {
            set.remove(&sid);
            if set.is_empty() {
                index.rooms.remove(room);
            }
        }
        if let Some(set) = index.sockets.get_mut(&sid) {
            set.remove(room);
            if set.is_empty() {
                index.sockets.remove(&sid);
            }
        }
    }

    fn del_all(&self, sid: Sid) {
        let mut index = self.index_mut();
        let Some(rooms) = index.sockets.remove(&sid) else {
            return;
        };
        for room in rooms {
            if let Some(set) = index.rooms.get_mut(&room) {
                set.remove(&sid);
                if set.is_empty() {
                    index.rooms.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        let mut rooms = vec![sid.into_room()];
        if let Some(set) = self.index().sockets.get(&sid) {
            rooms.extend(set.iter().cloned());
        }
        rooms
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        self.sockets_of(opts).iter().map(SocketRef::id).collect()
    }

    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> Result<(), AdapterError> {
        self.broadcast_local(&packet, &opts);
        Ok(())
    }

    fn broadcast_with_ack(
        &self,
        encode: &dyn Fn(u64) -> Result<BroadcastPacket, EmitError>,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<BroadcastAckFuture, EmitError> {
        self.broadcast_with_ack_local(encode, &opts, timeout)
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocket>, AdapterError>> {
        let sockets = self
            .sockets_of(&opts)
            .into_iter()
            .map(|socket| RemoteSocket {
                id: socket.id(),
                rooms: self.socket_rooms(socket.id()),
            })
            .collect();
        Box::pin(std::future::ready(Ok(sockets)))
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for socket in self.sockets_of(&opts) {
            self.add_all(socket.id(), &rooms);
        }
        Ok(())
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for socket in self.sockets_of(&opts) {
            for room in &rooms {
                self.del(socket.id(), room);
            }
        }
        Ok(())
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        for socket in self.sockets_of(&opts) {
            if close {
                socket.close();
            } else {
                socket.disconnect();
            }
        }
        Ok(())
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> {
        let mut rooms: Vec<Room> = self.index().rooms.keys().cloned().collect();
        rooms.extend(self.ctx.socket_ids().into_iter().map(IntoRoom::into_room));
        Box::pin(std::future::ready(Ok(rooms)))
    }
}
