//! [`LocalAdapter`], the in-memory adapter: the default, and the local half of any
//! distributed adapter.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ferrio_engine::Sid;

use super::session::SessionStore;
use super::{
    Adapter, AdapterContext, AdapterError, BoxFuture, BroadcastAckFuture, BroadcastOptions,
    BroadcastPacket, IntoRoom, Recipients, RemoteSocketData, Room, Session,
};
use crate::payload::Payload;

/// The in-memory adapter: rooms in this process, operations on this server's sockets.
///
/// A socket's own room is not stored: a room name that is the id of a connected socket
/// names that socket. This keeps an idle socket's cost at zero room entries.
pub struct LocalAdapter {
    ctx: AdapterContext,
    index: RwLock<RoomIndex>,
    /// With connection state recovery on: the sessions of lost sockets and the packets
    /// they may have missed. Locked before the index when both are.
    sessions: Option<Mutex<SessionStore>>,
}

/// Who is in which room, both ways.
#[derive(Default)]
struct RoomIndex {
    rooms: HashMap<Room, HashSet<Sid>>,
    sockets: HashMap<Sid, HashSet<Room>>,
}

impl RoomIndex {
    /// Adds `sid` to `room`; true if it was not in it.
    fn add(&mut self, sid: Sid, room: &Room) -> bool {
        if room.as_ref() == sid.as_str() {
            return false; // its own room is implicit
        }
        self.rooms.entry(room.clone()).or_default().insert(sid);
        self.sockets.entry(sid).or_default().insert(room.clone())
    }

    /// Removes `sid` from `room`; true if it was in it.
    fn remove(&mut self, sid: Sid, room: &str) -> bool {
        if let Some(set) = self.rooms.get_mut(room) {
            set.remove(&sid);
            if set.is_empty() {
                self.rooms.remove(room);
            }
        }
        let mut was_in = false;
        if let Some(set) = self.sockets.get_mut(&sid) {
            was_in = set.remove(room);
            if set.is_empty() {
                self.sockets.remove(&sid);
            }
        }
        was_in
    }

    /// Removes `sid` from every room; the rooms it was in.
    fn remove_all(&mut self, sid: Sid) -> Vec<Room> {
        let Some(rooms) = self.sockets.remove(&sid) else {
            return Vec::new();
        };
        let mut left = Vec::with_capacity(rooms.len());
        for room in rooms {
            if let Some(set) = self.rooms.get_mut(&room) {
                set.remove(&sid);
                if set.is_empty() {
                    self.rooms.remove(&room);
                }
            }
            left.push(room);
        }
        left
    }

    /// Whether the socket is in one of `rooms` (its id names its own room).
    fn in_any(&self, sid: Sid, rooms: &[Room]) -> bool {
        rooms.iter().any(|room| {
            room.as_ref() == sid.as_str() || self.rooms.get(room).is_some_and(|s| s.contains(&sid))
        })
    }

    /// The sockets in any of `opts.rooms` and none of `opts.except`, each once. A room that
    /// is a socket id names that socket (whether it is connected here is for the caller).
    fn members(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        // One room cannot name a socket twice (its own room is never in the index), so the
        // set that removes duplicates is only needed for several rooms.
        let several = opts.rooms.len() > 1;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for room in &opts.rooms {
            let own = Sid::parse(room);
            let members = self
                .rooms
                .get(room)
                .into_iter()
                .flatten()
                .chain(own.as_ref());
            for &sid in members {
                if !self.in_any(sid, &opts.except) && (!several || seen.insert(sid)) {
                    out.push(sid);
                }
            }
        }
        out
    }
}

impl LocalAdapter {
    /// An adapter for the namespace of `ctx`.
    pub fn new(ctx: AdapterContext) -> Self {
        let sessions = ctx
            .recovery()
            .map(|recovery| Mutex::new(SessionStore::new(recovery.clone())));
        Self {
            ctx,
            index: RwLock::default(),
            sessions,
        }
    }

    fn sessions(&self) -> Option<MutexGuard<'_, SessionStore>> {
        let store = self.sessions.as_ref()?;
        Some(store.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// [`Adapter::resume_session`], done at once under the store's lock.
    fn resume_now(
        &self,
        session: &Session,
        resume: &mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> bool {
        let Some(mut store) = self.sessions() else {
            return false;
        };
        let Some(missed) = store.missed(session) else {
            return false;
        };
        {
            let mut index = self.index_mut();
            for room in &session.rooms {
                index.add(session.sid, room);
            }
        }
        let resumed = resume(missed);
        if !resumed {
            store.left(session.sid);
            self.index_mut().remove_all(session.sid);
        }
        resumed
    }

    /// How many sessions and stored packets recovery keeps (zeros when it is off).
    pub fn recovery_sizes(&self) -> (usize, usize) {
        self.sessions().map_or((0, 0), |store| store.sizes())
    }

    /// The context it was built with.
    pub fn context(&self) -> &AdapterContext {
        &self.ctx
    }

    fn index(&self) -> RwLockReadGuard<'_, RoomIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, RoomIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the local sockets `opts` targets. The index is read-locked while `f`
    /// runs only when every socket is targeted (the filter reads it), so `f` must not change
    /// rooms; operations that do collect the ids first ([`local_sockets`](Adapter::local_sockets)).
    pub fn with_recipients<R>(
        &self,
        opts: &BroadcastOptions,
        f: impl FnOnce(Recipients<'_>) -> R,
    ) -> R {
        let index = self.index();
        if opts.rooms.is_empty() {
            if opts.except.is_empty() {
                drop(index);
                return f(Recipients::All(&|_| true));
            }
            let keep = |sid: Sid| !index.in_any(sid, &opts.except);
            return f(Recipients::All(&keep));
        }
        let sids = index.members(opts);
        drop(index);
        f(Recipients::Only(&sids))
    }

    /// The local targeted sockets, described with their rooms.
    pub fn fetch_local(&self, opts: &BroadcastOptions) -> Vec<RemoteSocketData> {
        let sids = self.local_sockets(opts);
        let mut sockets = self.ctx.describe(Recipients::Only(&sids));
        for socket in &mut sockets {
            socket.rooms = self.socket_rooms(socket.id);
        }
        sockets
    }

    /// The rooms of this server's sockets, their own included.
    pub fn local_rooms(&self) -> Vec<Room> {
        let mut rooms: Vec<Room> = self.index().rooms.keys().cloned().collect();
        rooms.extend(self.ctx.socket_ids().into_iter().map(IntoRoom::into_room));
        rooms
    }
}

impl fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAdapter")
            .field("namespace", &self.ctx.namespace())
            .finish_non_exhaustive()
    }
}

impl Adapter for LocalAdapter {
    /// One server: this one.
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(1)))
    }

    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        if let Some(mut store) = self.sessions() {
            store.joined(sid);
        }
        let mut index = self.index_mut();
        if !self.ctx.room_events() {
            for room in rooms {
                index.add(sid, room);
            }
            return;
        }
        let joined: Vec<Room> = rooms
            .iter()
            .filter(|room| index.add(sid, room))
            .cloned()
            .collect();
        drop(index);
        self.ctx.rooms_changed(sid, &joined, true);
    }

    fn del(&self, sid: Sid, room: &str) {
        let was_in = self.index_mut().remove(sid, room);
        if was_in && self.ctx.room_events() {
            self.ctx
                .rooms_changed(sid, &[Room::from(room.to_owned())], false);
        }
    }

    fn del_all(&self, sid: Sid) {
        if let Some(mut store) = self.sessions() {
            store.left(sid);
        }
        let left = self.index_mut().remove_all(sid);
        self.ctx.rooms_changed(sid, &left, false);
    }

    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        let mut rooms = vec![sid.into_room()];
        if let Some(set) = self.index().sockets.get(&sid) {
            rooms.extend(set.iter().cloned());
        }
        rooms
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let index = self.index();
        if opts.rooms.is_empty() {
            let mut sids = self.ctx.socket_ids();
            sids.retain(|&sid| !index.in_any(sid, &opts.except));
            return sids;
        }
        let mut sids = index.members(opts);
        drop(index);
        let connected: HashSet<Sid> = self.ctx.socket_ids().into_iter().collect();
        sids.retain(|sid| connected.contains(sid));
        sids
    }

    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> Result<(), AdapterError> {
        if let Some(mut store) = self.sessions() {
            if SessionStore::keeps(&packet, &opts) {
                // Kept and sent under the store's lock, so a socket being resumed gets it
                // either among its missed packets or live, never neither.
                let packet = store.store(packet, &opts);
                self.with_recipients(&opts, |to| {
                    self.ctx.send(to, &packet, false);
                });
                return Ok(());
            }
        }
        self.with_recipients(&opts, |to| {
            self.ctx.send(to, &packet, opts.flags.volatile);
        });
        Ok(())
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> Result<BroadcastAckFuture, AdapterError> {
        let acks = self.with_recipients(&opts, |to| self.ctx.send_with_ack(to, &packet, timeout));
        Ok(BroadcastAckFuture::new(acks))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<RemoteSocketData>, AdapterError>> {
        Box::pin(std::future::ready(Ok(self.fetch_local(&opts))))
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for sid in self.local_sockets(&opts) {
            self.add_all(sid, &rooms);
        }
        Ok(())
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for sid in self.local_sockets(&opts) {
            for room in &rooms {
                self.del(sid, room);
            }
        }
        Ok(())
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        // Leaving changes the rooms: the ids are collected before anyone leaves.
        let sids = self.local_sockets(&opts);
        self.ctx.disconnect(Recipients::Only(&sids), close);
        Ok(())
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<Room>, AdapterError>> {
        Box::pin(std::future::ready(Ok(self.local_rooms())))
    }

    fn persist_session(&self, session: Session) {
        if let Some(mut store) = self.sessions() {
            store.persist(session);
        }
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: Option<&str>,
    ) -> BoxFuture<'static, Result<Option<Session>, AdapterError>> {
        let session = self
            .sessions()
            .and_then(|mut store| store.restore(pid, offset));
        Box::pin(std::future::ready(Ok(session)))
    }

    fn resume_session<'a>(
        &'a self,
        session: &'a Session,
        resume: &'a mut (dyn FnMut(Vec<BroadcastPacket>) -> bool + Send),
    ) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(self.resume_now(session, resume)))
    }

    /// There is no other server to tell.
    fn server_side_emit(&self, _event: &str, _args: Payload) -> Result<(), AdapterError> {
        Ok(())
    }

    /// There is no other server to answer: no answers.
    fn server_side_emit_with_ack(
        &self,
        _event: &str,
        _args: Payload,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ack::AckFuture;
    use crate::adapter::{LocalSockets, ServerAck};
    use crate::parser::Parser;

    /// Local sockets that record what reaches them.
    #[derive(Default)]
    struct Fake {
        ids: Vec<Sid>,
        sent: Mutex<Vec<Sid>>,
        disconnected: Mutex<Vec<Sid>>,
    }

    impl Fake {
        fn reached(&self, to: Recipients<'_>) -> Vec<Sid> {
            match to {
                Recipients::All(keep) => self.ids.iter().copied().filter(|&s| keep(s)).collect(),
                Recipients::Only(sids) => sids
                    .iter()
                    .copied()
                    .filter(|s| self.ids.contains(s))
                    .collect(),
            }
        }
    }

    impl LocalSockets for Fake {
        fn parser(&self) -> Parser {
            Parser::Json
        }
        fn ack_timeout(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn socket_ids(&self) -> Vec<Sid> {
            self.ids.clone()
        }
        fn send(&self, to: Recipients<'_>, _: &BroadcastPacket, _: bool) -> usize {
            let reached = self.reached(to);
            self.sent.lock().unwrap().extend(&reached);
            reached.len()
        }
        fn send_with_ack(
            &self,
            to: Recipients<'_>,
            _: &BroadcastPacket,
            _: Duration,
        ) -> Vec<(Sid, AckFuture)> {
            let reached = self.reached(to);
            reached
                .into_iter()
                .map(|s| (s, AckFuture::failed(crate::error::EmitError::Closed)))
                .collect()
        }
        fn describe(&self, to: Recipients<'_>) -> Vec<RemoteSocketData> {
            self.reached(to)
                .into_iter()
                .map(|id| RemoteSocketData {
                    id,
                    handshake: Default::default(),
                    rooms: Vec::new(),
                    data: serde_json::Value::Null,
                })
                .collect()
        }
        fn disconnect(&self, to: Recipients<'_>, _: bool) {
            let reached = self.reached(to);
            self.disconnected.lock().unwrap().extend(reached);
        }
        fn server_event(&self, _: &str, _: Payload, _: ServerAck) {}
    }

    fn setup(n: usize) -> (Arc<Fake>, LocalAdapter, Vec<Sid>) {
        let ids: Vec<Sid> = (0..n).map(|_| Sid::random()).collect();
        let fake = Arc::new(Fake {
            ids: ids.clone(),
            ..Fake::default()
        });
        let weak = Arc::downgrade(&fake) as std::sync::Weak<dyn LocalSockets>;
        let adapter = LocalAdapter::new(AdapterContext::new("/", weak));
        (fake, adapter, ids)
    }

    fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| r.to_string().into()).collect(),
            except: except.iter().map(|r| r.to_string().into()).collect(),
            ..Default::default()
        }
    }

    fn sorted(mut sids: Vec<Sid>) -> Vec<Sid> {
        sids.sort();
        sids
    }

    #[test]
    fn the_index_tracks_joins_and_leaves_both_ways() {
        let (_fake, adapter, ids) = setup(2);
        let (a, b) = (ids[0], ids[1]);
        adapter.add_all(a, &["r".into(), "s".into(), a.into_room()]);
        adapter.add_all(b, &["r".into()]);
        assert_eq!(
            adapter.index().rooms.len(),
            2,
            "a socket's own room is not stored"
        );
        assert_eq!(
            sorted(adapter.local_sockets(&opts(&["r"], &[]))),
            sorted(vec![a, b])
        );
        adapter.del(a, "r");
        assert_eq!(adapter.local_sockets(&opts(&["r"], &[])), vec![b]);
        adapter.del(b, "r");
        assert!(
            !adapter.index().rooms.contains_key("r"),
            "an empty room is dropped"
        );
        adapter.del_all(a);
        assert!(adapter.index().rooms.is_empty());
        assert!(adapter.index().sockets.is_empty());
        assert_eq!(adapter.socket_rooms(a), vec![a.into_room()]);
    }

    #[test]
    fn targets_union_rooms_once_and_apply_except() {
        let (fake, adapter, ids) = setup(4);
        let [a, b, c, d] = [ids[0], ids[1], ids[2], ids[3]];
        adapter.add_all(a, &["r".into(), "s".into()]);
        adapter.add_all(b, &["s".into()]);
        adapter.add_all(c, &["muted".into()]);
        // Two rooms naming `a` twice reach it once; a socket id is a room.
        let both = sorted(adapter.local_sockets(&opts(&["r", "s", d.as_str()], &[])));
        assert_eq!(both, sorted(vec![a, b, d]));
        // Except by room and by id, with and without rooms.
        assert_eq!(adapter.local_sockets(&opts(&["s"], &[a.as_str()])), vec![b]);
        let all_but = sorted(adapter.local_sockets(&opts(&[], &["muted", d.as_str()])));
        assert_eq!(all_but, sorted(vec![a, b]));
        // A broadcast reaches the same sockets.
        let packet = BroadcastPacket::new(Parser::Json, "/", "e", &()).unwrap();
        adapter.broadcast(packet, opts(&[], &["muted"])).unwrap();
        assert_eq!(
            sorted(fake.sent.lock().unwrap().clone()),
            sorted(vec![a, b, d])
        );
        // Unknown ids name nobody.
        let stranger = Sid::random();
        assert!(
            adapter
                .local_sockets(&opts(&[stranger.as_str()], &[]))
                .is_empty()
        );
    }

    #[test]
    fn bulk_operations_move_and_disconnect_the_targets() {
        let (fake, adapter, ids) = setup(3);
        adapter.add_all(ids[0], &["r".into()]);
        adapter
            .add_sockets(opts(&["r"], &[]), vec!["x".into()])
            .unwrap();
        assert_eq!(adapter.local_sockets(&opts(&["x"], &[])), vec![ids[0]]);
        adapter
            .del_sockets(opts(&[], &[]), vec!["x".into()])
            .unwrap();
        assert!(adapter.local_sockets(&opts(&["x"], &[])).is_empty());
        adapter
            .disconnect_sockets(opts(&["r"], &[]), false)
            .unwrap();
        assert_eq!(*fake.disconnected.lock().unwrap(), vec![ids[0]]);
        let mut rooms = adapter.local_rooms();
        rooms.sort();
        assert_eq!(
            rooms.len(),
            4,
            "r and the three sockets' own rooms: {rooms:?}"
        );
    }
}
