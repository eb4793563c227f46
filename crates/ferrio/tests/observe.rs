//! Observers: broadcasts reach an observer socket by socket, or whole when it asks for that.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Client, server};
use ferrio::observe::Sent;
use ferrio::{Io, Observer, SocketRef};

#[derive(Default)]
struct Seen {
    /// (event, bytes) of each `event_sent`.
    each: Mutex<Vec<(String, usize)>>,
    /// (namespace, event, bytes, sockets) of each `broadcast_sent`.
    whole: Mutex<Vec<(String, String, usize, usize)>>,
}

struct Watch {
    seen: Arc<Seen>,
    whole: bool,
}

impl Observer for Watch {
    fn event_sent(&self, _socket: &SocketRef, sent: &Sent<'_>) {
        let mut each = self.seen.each.lock().unwrap();
        each.push((sent.event().to_owned(), sent.bytes()));
    }

    fn broadcast_sent(&self, nsp: &str, sent: &Sent<'_>, sockets: usize) {
        let mut whole = self.seen.whole.lock().unwrap();
        whole.push((
            nsp.to_owned(),
            sent.event().to_owned(),
            sent.bytes(),
            sockets,
        ));
    }

    fn takes_whole_broadcasts(&self) -> bool {
        self.whole
    }
}

#[tokio::test]
async fn broadcasts_reach_observers_socket_by_socket_or_whole() {
    let (per_socket, whole) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let calls = Arc::new(AtomicUsize::new(0));
    let builder = Io::builder()
        .observe(Watch {
            seen: per_socket.clone(),
            whole: false,
        })
        .observe(Watch {
            seen: whole.clone(),
            whole: true,
        });
    let counted = calls.clone();
    let (addr, _io) = server(builder, move |io| {
        io.ns("/", move |socket: SocketRef| {
            let counted = counted.clone();
            socket.on("shout", move |io: Io| {
                counted.fetch_add(1, Ordering::Relaxed);
                let _ = io.emit("heard", &"all");
            });
        });
    })
    .await;

    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(addr).await;
        client.join("/", None).await;
        clients.push(client);
    }
    clients[0].send(r#"2["shout"]"#).await;
    for client in &mut clients {
        assert_eq!(client.text().await, r#"2["heard","all"]"#);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // `42["heard","all"]`: 17 bytes, to each of the 3 sockets.
    let each = per_socket.each.lock().unwrap().clone();
    assert_eq!(each, vec![("heard".to_owned(), 17); 3]);
    assert!(per_socket.whole.lock().unwrap().is_empty());

    let taken_whole = whole.whole.lock().unwrap().clone();
    assert_eq!(
        taken_whole,
        vec![("/".to_owned(), "heard".to_owned(), 17, 3)]
    );
    assert!(
        whole.each.lock().unwrap().is_empty(),
        "an observer that takes broadcasts whole is not told socket by socket"
    );
}
