//! Connection state recovery: [`Recovery`] (the settings), [`Session`] (what a socket lost
//! for a recoverable reason leaves behind), and the in-memory store of sessions and stored
//! packets that [`LocalAdapter`](super::LocalAdapter) keeps.
//!
//! With recovery on, every event packet sent without an ack and not volatile gets an offset
//! as its last argument, and is kept for
//! [`max_disconnection_duration`](Recovery::max_disconnection_duration). A socket that loses
//! its connection (a transport error or close, a ping timeout, the server closing it) leaves
//! its session: id, private id (`pid`), rooms and shared data. A client that comes back
//! within the duration with `{pid, offset}` in its CONNECT gets its old id, rooms and data,
//! and every event it missed, before the CONNECT reply.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ferrio_engine::Sid;

use super::{BroadcastOptions, BroadcastPacket, Room};

/// Connection state recovery settings, for
/// [`IoBuilder::connection_state_recovery`](crate::IoBuilder::connection_state_recovery).
///
/// ```
/// use std::time::Duration;
/// use ferrio::adapter::Recovery;
///
/// let recovery = Recovery::default()
///     .max_disconnection_duration(Duration::from_secs(60))
///     .skip_middlewares(false)
///     .max_stored_packets(50_000);
/// assert_eq!(recovery.disconnection_duration(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    max_disconnection_duration: Duration,
    skip_middlewares: bool,
    max_stored_packets: usize,
    max_sessions: usize,
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_stored_packets: 10_000,
            max_sessions: 100_000,
        }
    }
}

impl Recovery {
    /// How long a session and the packets it may miss are kept. Default 120 s (as the
    /// reference server).
    pub fn max_disconnection_duration(mut self, duration: Duration) -> Self {
        self.max_disconnection_duration = duration;
        self
    }

    /// Whether a recovered socket skips the namespace's connect middlewares. Default true.
    pub fn skip_middlewares(mut self, skip: bool) -> Self {
        self.skip_middlewares = skip;
        self
    }

    /// The most packets kept per namespace for clients to catch up. Default 10 000: the
    /// oldest go first, and a client whose missed packets are no longer all there gets a
    /// fresh session rather than a partial recovery.
    pub fn max_stored_packets(mut self, packets: usize) -> Self {
        self.max_stored_packets = packets.max(1);
        self
    }

    /// The most sessions kept per namespace. Default 100 000: past it, the oldest go first.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions.max(1);
        self
    }

    /// See [`max_disconnection_duration`](Self::max_disconnection_duration).
    pub fn disconnection_duration(&self) -> Duration {
        self.max_disconnection_duration
    }

    /// See [`skip_middlewares`](Self::skip_middlewares).
    pub fn skips_middlewares(&self) -> bool {
        self.skip_middlewares
    }

    /// See [`max_stored_packets`](Self::max_stored_packets).
    pub fn stored_packets(&self) -> usize {
        self.max_stored_packets
    }

    /// See [`max_sessions`](Self::max_sessions).
    pub fn sessions(&self) -> usize {
        self.max_sessions
    }
}

/// What a socket lost for a recoverable reason leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The socket's id, which the recovered socket takes again.
    pub sid: Sid,
    /// Its private id, which the client presents to recover.
    pub pid: String,
    /// Its rooms, its own included.
    pub rooms: Vec<Room>,
    /// Its shared data ([`SocketRef::set_data`](crate::SocketRef::set_data)).
    pub data: serde_json::Value,
    /// Where the missed packets start, in the adapter's own terms: set by
    /// [`Adapter::restore_session`](super::Adapter::restore_session), read by
    /// [`Adapter::resume_session`](super::Adapter::resume_session).
    pub resume_from: Option<String>,
}

/// Whether a socket that left for `reason` keeps its session: it lost its connection, or
/// the server closed it; not when it left the namespace, broke the protocol, could not keep
/// up or was rate limited.
pub(crate) fn is_recoverable(reason: crate::error::DisconnectReason) -> bool {
    use crate::error::DisconnectReason as R;
    matches!(
        reason,
        R::TransportError
            | R::TransportClose
            | R::ForcedClose
            | R::PingTimeout
            | R::ServerShuttingDown
            | R::ForcedServerClose
    )
}

/// A packet kept for clients that may have missed it.
struct Stored {
    number: u64,
    at: Instant,
    rooms: Vec<Room>,
    except: Vec<Room>,
    packet: BroadcastPacket,
}

impl Stored {
    /// Whether a socket in `rooms` was a recipient (as the reference server decides it).
    fn reaches(&self, rooms: &[Room]) -> bool {
        let included = self.rooms.is_empty() || rooms.iter().any(|r| self.rooms.contains(r));
        included && !rooms.iter().any(|r| self.except.contains(r))
    }
}

struct Kept {
    session: Session,
    /// The first packet number it may have missed when its client has no offset.
    since: u64,
    at: Instant,
}

/// The sessions and stored packets of one namespace, in memory.
pub(super) struct SessionStore {
    config: Recovery,
    next: u64,
    packets: VecDeque<Stored>,
    /// Packets up to this number were dropped for the cap (not for their age): a client that
    /// needs one of them cannot be recovered completely.
    evicted_up_to: Option<u64>,
    sessions: HashMap<String, Kept>,
    /// Sessions in the order they were kept (pid, when), for expiry and the cap; entries of
    /// sessions taken back meanwhile are skipped.
    order: VecDeque<(String, Instant)>,
    /// The packet number each connected socket started at.
    joined: HashMap<Sid, u64>,
    last_sweep: Instant,
}

impl SessionStore {
    pub(super) fn new(config: Recovery) -> Self {
        Self {
            config,
            next: 1,
            packets: VecDeque::new(),
            evicted_up_to: None,
            sessions: HashMap::new(),
            order: VecDeque::new(),
            joined: HashMap::new(),
            last_sweep: Instant::now(),
        }
    }

    /// Whether a packet sent with `opts` is kept: no ack asked, not volatile.
    pub(super) fn keeps(packet: &BroadcastPacket, opts: &BroadcastOptions) -> bool {
        packet.ack_id().is_none() && !opts.flags.volatile
    }

    /// Keeps a packet: returns it with its offset as last argument, or the packet as it is
    /// if it cannot be encoded again (then it is not kept).
    pub(super) fn store(
        &mut self,
        packet: BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> BroadcastPacket {
        self.sweep();
        let number = self.next;
        let packet = match packet.with_offset(&number.to_string()) {
            Ok(with_offset) => with_offset,
            Err(e) => {
                tracing::warn!(error = %e, "a packet could not get its offset; it is not kept");
                return packet;
            }
        };
        self.next += 1;
        self.packets.push_back(Stored {
            number,
            at: Instant::now(),
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            packet: packet.clone(),
        });
        while self.packets.len() > self.config.max_stored_packets {
            if let Some(dropped) = self.packets.pop_front() {
                self.evicted_up_to = Some(dropped.number);
            }
        }
        packet
    }

    /// Records where a connected socket starts (first call wins).
    pub(super) fn joined(&mut self, sid: Sid) {
        let next = self.next;
        self.joined.entry(sid).or_insert(next);
    }

    pub(super) fn left(&mut self, sid: Sid) {
        self.joined.remove(&sid);
    }

    /// Keeps the session of a socket that was lost.
    pub(super) fn persist(&mut self, session: Session) {
        self.sweep();
        let since = self.joined.get(&session.sid).copied().unwrap_or(self.next);
        let now = Instant::now();
        self.order.push_back((session.pid.clone(), now));
        self.sessions.insert(
            session.pid.clone(),
            Kept {
                session,
                since,
                at: now,
            },
        );
        // Entries of sessions taken back are skipped lazily; compact when they pile up.
        if self.order.len() > 2 * self.config.max_sessions + 16 {
            let sessions = &self.sessions;
            self.order
                .retain(|(pid, at)| sessions.get(pid).is_some_and(|kept| kept.at == *at));
        }
        while self.sessions.len() > self.config.max_sessions {
            let Some((pid, at)) = self.order.pop_front() else {
                break;
            };
            if self.sessions.get(&pid).is_some_and(|kept| kept.at == at) {
                self.sessions.remove(&pid);
            }
        }
    }

    /// Takes back the session `pid` when its missed packets are all still here. The session
    /// is gone either way (one use).
    pub(super) fn restore(&mut self, pid: &str, offset: Option<&str>) -> Option<Session> {
        self.sweep();
        let kept = self.sessions.remove(pid)?;
        if kept.at.elapsed() > self.config.max_disconnection_duration {
            return None;
        }
        let from = match offset {
            None => kept.since,
            Some(offset) => {
                let seen: u64 = offset.parse().ok()?;
                if seen >= self.next {
                    return None; // not an offset of this store
                }
                seen + 1
            }
        };
        if self.evicted_up_to.is_some_and(|evicted| from <= evicted) {
            return None;
        }
        let mut session = kept.session;
        session.resume_from = Some(from.to_string());
        Some(session)
    }

    /// The packets a session missed, in order, and marks its socket as starting now.
    pub(super) fn missed(&mut self, session: &Session) -> Option<Vec<BroadcastPacket>> {
        let from: u64 = session.resume_from.as_deref()?.parse().ok()?;
        if self.evicted_up_to.is_some_and(|evicted| from <= evicted) {
            return None;
        }
        let start = self.packets.partition_point(|p| p.number < from);
        let missed = self
            .packets
            .range(start..)
            .filter(|p| p.reaches(&session.rooms))
            .map(|p| p.packet.clone())
            .collect();
        self.joined.insert(session.sid, self.next);
        Some(missed)
    }

    /// Drops expired sessions and packets, at most once a second.
    fn sweep(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let max = self.config.max_disconnection_duration;
        while self
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max)
        {
            self.packets.pop_front();
        }
        while let Some((pid, at)) = self.order.front() {
            if now.duration_since(*at) <= max {
                break;
            }
            if self.sessions.get(pid).is_some_and(|kept| kept.at == *at) {
                self.sessions.remove(pid);
            }
            self.order.pop_front();
        }
    }

    /// How many sessions and packets are kept (for tests and metrics).
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.sessions.len(), self.packets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;

    fn packet(n: u32) -> BroadcastPacket {
        BroadcastPacket::new(Parser::Json, "/", "e", &(n,)).unwrap()
    }

    fn session(n: usize) -> Session {
        Session {
            sid: Sid::random(),
            pid: format!("pid-{n}"),
            rooms: Vec::new(),
            data: serde_json::Value::Null,
            resume_from: None,
        }
    }

    #[test]
    fn the_store_stays_within_its_caps() {
        let config = Recovery::default().max_stored_packets(50).max_sessions(10);
        let mut store = SessionStore::new(config);
        for n in 0..30 {
            store.persist(session(n));
        }
        for n in 0..500 {
            store.store(packet(n), &BroadcastOptions::default());
        }
        assert_eq!(store.sizes(), (10, 50));
        // The oldest sessions went first.
        assert!(store.restore("pid-0", None).is_none());
        assert!(store.order.len() <= 2 * 10 + 16);
    }

    #[test]
    fn expired_sessions_and_packets_are_swept() {
        let config = Recovery::default().max_disconnection_duration(Duration::from_millis(1));
        let mut store = SessionStore::new(config);
        for n in 0..100 {
            store.persist(session(n));
            store.store(packet(n as u32), &BroadcastOptions::default());
        }
        std::thread::sleep(Duration::from_millis(5));
        store.last_sweep = Instant::now() - Duration::from_secs(2);
        store.store(packet(0), &BroadcastOptions::default());
        assert_eq!(store.sizes(), (0, 1));
        assert!(store.order.is_empty());
    }

    #[test]
    fn packets_reach_the_rooms_of_their_options() {
        let stored = |rooms: &[&str], except: &[&str]| Stored {
            number: 1,
            at: Instant::now(),
            rooms: rooms.iter().map(|r| Room::from(r.to_string())).collect(),
            except: except.iter().map(|r| Room::from(r.to_string())).collect(),
            packet: packet(1),
        };
        let mine = [Room::from("a"), Room::from("me")];
        assert!(stored(&[], &[]).reaches(&mine));
        assert!(stored(&["a", "b"], &[]).reaches(&mine));
        assert!(!stored(&["b"], &[]).reaches(&mine));
        assert!(!stored(&[], &["me"]).reaches(&mine));
    }
}
