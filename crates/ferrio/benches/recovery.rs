//! What connection state recovery costs a broadcast: the in-memory adapter sending one event
//! to 100 sockets, with recovery off and on (on: the event is encoded again with its offset
//! and kept). The sockets are fakes that count what they are handed, so the numbers are the
//! adapter's own work, not the transport's.
//!
//! ```text
//! cargo bench -p ferrio --bench recovery
//! cargo bench -p ferrio --bench recovery -- --quick
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrio::adapter::{
    Adapter, AdapterContext, BroadcastOptions, BroadcastPacket, LocalAdapter, LocalSockets,
    Recipients, Recovery, RemoteSocketData, ServerAck,
};
use ferrio::{AckFuture, Parser, Payload, Sid};

/// 100 sockets that count the packets they are handed.
struct Counting {
    ids: Vec<Sid>,
    sent: AtomicUsize,
}

impl LocalSockets for Counting {
    fn parser(&self) -> Parser {
        Parser::Json
    }
    fn ack_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn socket_ids(&self) -> Vec<Sid> {
        self.ids.clone()
    }
    fn send(&self, to: Recipients<'_>, packet: &BroadcastPacket, _volatile: bool) -> usize {
        black_box(packet);
        let n = match to {
            Recipients::All(keep) => self.ids.iter().filter(|&&sid| keep(sid)).count(),
            Recipients::Only(sids) => sids.len(),
        };
        self.sent.fetch_add(n, Ordering::Relaxed);
        n
    }
    fn send_with_ack(
        &self,
        _: Recipients<'_>,
        _: &BroadcastPacket,
        _: Duration,
    ) -> Vec<(Sid, AckFuture)> {
        Vec::new()
    }
    fn describe(&self, _: Recipients<'_>) -> Vec<RemoteSocketData> {
        Vec::new()
    }
    fn disconnect(&self, _: Recipients<'_>, _: bool) {}
    fn server_event(&self, _: &str, _: Payload, _: ServerAck) {}
}

fn adapter(recovery: Option<Recovery>) -> (LocalAdapter, Arc<Counting>) {
    let sockets = Arc::new(Counting {
        ids: (0..100).map(|_| Sid::random()).collect(),
        sent: AtomicUsize::new(0),
    });
    let weak = Arc::downgrade(&sockets) as Weak<dyn LocalSockets>;
    let ctx = AdapterContext::new("/", weak).with_recovery(recovery);
    (LocalAdapter::new(ctx), sockets)
}

fn broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast_100");
    for (name, recovery) in [
        ("recovery_off", None),
        ("recovery_on", Some(Recovery::default())),
    ] {
        let (adapter, sockets) = adapter(recovery);
        group.bench_function(name, |b| {
            b.iter(|| {
                let packet = BroadcastPacket::new(Parser::Json, "/", "chat", &("hello", 42))
                    .expect("encodes");
                adapter
                    .broadcast(packet, BroadcastOptions::default())
                    .expect("delivered");
            });
        });
        assert!(
            sockets.sent.load(Ordering::Relaxed) > 0,
            "the fakes were reached"
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = broadcast
}
criterion_main!(benches);
