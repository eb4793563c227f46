//! The cases of the suite. Each starts its own cluster, so they run in any order, in
//! parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use ferrio::{AckError, Payload, Sid};
use serde_json::{Value, json};

use crate::{Client, Cluster, Harness, QUIET, Received, WAIT, eventually};

/// Three clients, client `i` on server `i % n`.
async fn three(cluster: &dyn Cluster) -> (Harness, Vec<Client>) {
    let h = Harness::start(cluster, 3).await;
    let clients = h.clients(3).await;
    (h, clients)
}

async fn all_quiet(clients: &mut [Client]) {
    for client in clients {
        client.assert_quiet().await;
    }
}

fn sid(client: &Client) -> Sid {
    client.id.parse().expect("socket ids are Sids")
}

/// A broadcast from any server reaches every socket of the namespace, once.
pub async fn broadcast_reaches_every_socket_on_every_server(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    for from in 0..h.len() {
        h.io(from).emit("news", &json!({ "from": from })).unwrap();
        for client in &mut clients {
            assert_eq!(
                client.event().await,
                (None, json!(["news", { "from": from }]))
            );
        }
    }
    all_quiet(&mut clients).await;
}

/// Binary values, top-level and nested, arrive as binary attachments on every server.
pub async fn binary_arguments_cross_servers_intact(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    let data = Bytes::from_static(b"\x00\x01\xfe\xff");
    let nested = BTreeMap::from([("b", data.clone())]);
    h.io(h.len() - 1)
        .emit_args("file", &(1, &data, &nested))
        .unwrap();
    for client in &mut clients {
        let text = client.text().await;
        assert_eq!(
            text,
            r#"52-["file",1,{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]"#
        );
        for _ in 0..2 {
            assert_eq!(client.next().await, Received::Binary(data.clone()));
        }
    }
    all_quiet(&mut clients).await;
}

/// `to`, `except` and socket ids as rooms select the same sockets whichever server emits.
pub async fn rooms_and_exceptions_select_the_same_sockets_everywhere(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    h.socket(0, &clients[0]).join("r");
    h.socket(1, &clients[1]).join(["r", "muted"]);
    let last = h.len() - 1;

    h.io(last).to("r").emit("e", &1).unwrap();
    for client in &mut clients[..2] {
        assert_eq!(client.event().await.1, json!(["e", 1]));
    }
    all_quiet(&mut clients).await;

    h.io(0).to("r").except("muted").emit("e", &2).unwrap();
    assert_eq!(clients[0].event().await.1, json!(["e", 2]));
    all_quiet(&mut clients).await;

    h.io(0).to(clients[2].id.clone()).emit("e", &3).unwrap();
    assert_eq!(clients[2].event().await.1, json!(["e", 3]));
    all_quiet(&mut clients).await;

    // Several rooms naming one socket twice reach it once.
    let rooms = vec!["r".to_owned(), "muted".to_owned(), clients[2].id.clone()];
    h.io(last).to(rooms).emit("e", &4).unwrap();
    for client in &mut clients {
        assert_eq!(client.event().await.1, json!(["e", 4]));
    }
    all_quiet(&mut clients).await;

    h.io(0).except(clients[0].id.clone()).emit("e", &5).unwrap();
    for client in &mut clients[1..] {
        assert_eq!(client.event().await.1, json!(["e", 5]));
    }
    all_quiet(&mut clients).await;
}

/// `local()` reaches the emitting server's sockets only.
pub async fn local_broadcasts_stay_on_their_server(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    h.io(0).local().emit("here", &true).unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        if h.server_of(i) == 0 {
            assert_eq!(client.event().await.1, json!(["here", true]));
        }
    }
    all_quiet(&mut clients).await;
}

/// A volatile broadcast reaches clients that read what they are sent.
pub async fn volatile_broadcasts_reach_clients_that_keep_up(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    h.io(h.len() - 1).volatile().emit("tick", &7).unwrap();
    for client in &mut clients {
        assert_eq!(client.event().await.1, json!(["tick", 7]));
    }
    all_quiet(&mut clients).await;
}

/// A socket's `broadcast()` reaches everyone else, on every server.
pub async fn a_sockets_broadcast_leaves_it_out(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    h.socket(1, &clients[1])
        .broadcast()
        .emit("hi", "all")
        .unwrap();
    for i in [0, 2] {
        assert_eq!(clients[i].event().await.1, json!(["hi", "all"]));
    }
    all_quiet(&mut clients).await;
}

/// `fetch_sockets` finds every targeted socket with its rooms, handshake and data.
pub async fn fetch_sockets_describes_the_whole_cluster(cluster: &dyn Cluster) {
    let h = Harness::start(cluster, 3).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let auth = json!({ "data": { "name": format!("c{i}") } });
        clients.push(h.client(i, &auth).await);
    }
    h.socket(0, &clients[0]).join("r");
    for from in 0..h.len() {
        let mut found = h.io(from).fetch_sockets().await.unwrap();
        found.sort_by_key(|s| s.id);
        let mut expected: Vec<(Sid, usize)> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (sid(c), i))
            .collect();
        expected.sort();
        assert_eq!(found.len(), 3, "server {from} sees every socket");
        for (socket, (id, i)) in found.iter().zip(&expected) {
            assert_eq!(socket.id, *id);
            let rooms: BTreeSet<&str> = socket.rooms.iter().map(|r| r.as_ref()).collect();
            let mut want = BTreeSet::from([id.as_str()]);
            if *i == 0 {
                want.insert("r");
            }
            assert_eq!(rooms, want, "rooms of client {i} seen from server {from}");
            assert_eq!(socket.data, json!({ "name": format!("c{i}") }));
            let name: BTreeMap<String, String> = socket.data().unwrap();
            assert_eq!(name["name"], format!("c{i}"));
            let handshake = &socket.handshake;
            assert_eq!(handshake.query.get("x"), Some(&json!(i.to_string())));
            assert_eq!(handshake.query.get("EIO"), Some(&json!("4")));
            assert_eq!(handshake.query.get("who"), Some(&json!(format!("c {i}"))));
            assert!(
                handshake.url.starts_with("/socket.io/?EIO=4"),
                "{}",
                handshake.url
            );
            assert_eq!(
                handshake.auth,
                json!({ "data": { "name": format!("c{i}") } })
            );
            assert!(handshake.issued > 0 && handshake.time.ends_with("GMT"));
            assert!(handshake.headers.contains_key("host"));
        }
    }
    let members = h.io(h.len() - 1).to("r").fetch_sockets().await.unwrap();
    let ids: Vec<Sid> = members.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![sid(&clients[0])]);
}

/// A socket found on any server can be emitted to, moved between rooms and disconnected.
pub async fn remote_join_leave_emit_and_disconnect(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    let b = h.socket(1, &clients[1]);
    let found = h.io(0).to(b.id()).fetch_sockets().await.unwrap();
    assert_eq!(found.len(), 1);
    let remote = &found[0];

    remote.join("x").unwrap();
    eventually("the remote join reaches the socket's server", || {
        b.rooms().iter().any(|r| r == "x")
    })
    .await;
    h.io(h.len() - 1).to("x").emit("in-x", &1).unwrap();
    assert_eq!(clients[1].event().await.1, json!(["in-x", 1]));
    all_quiet(&mut clients).await;

    remote.emit("direct", "to b").unwrap();
    assert_eq!(clients[1].event().await.1, json!(["direct", "to b"]));

    h.io(0).to(b.id()).leave("x").unwrap();
    eventually("the remote leave reaches the socket's server", || {
        !b.rooms().iter().any(|r| r == "x")
    })
    .await;

    // Operators reach rooms across servers too.
    h.socket(2, &clients[2]).join("y");
    h.io(0).to("y").join("z").unwrap();
    let c = h.socket(2, &clients[2]);
    eventually("a room-wide join reaches the members' servers", || {
        c.rooms().iter().any(|r| r == "z")
    })
    .await;

    h.io(0).to("z").disconnect().unwrap();
    assert_eq!(clients[2].text().await, "1", "the client gets a DISCONNECT");
    eventually("the socket leaves its namespace", || !c.connected()).await;
    assert!(h.root(h.server_of(2)).get_socket(c.id()).is_none());
    all_quiet(&mut clients[..2]).await;
}

/// Closing a socket found on another server closes its whole connection.
pub async fn remote_close_ends_the_connection(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    let found = h
        .io(h.len() - 1)
        .to(clients[0].id.clone())
        .fetch_sockets()
        .await
        .unwrap();
    found[0].close().unwrap();
    assert_eq!(clients[0].next().await, Received::Closed);
    all_quiet(&mut clients[1..]).await;
}

/// The rooms of every server, each socket's own included.
pub async fn rooms_are_listed_from_every_server(cluster: &dyn Cluster) {
    let (h, clients) = three(cluster).await;
    h.socket(0, &clients[0]).join("r0");
    h.socket(2, &clients[2]).join(["r2", "shared"]);
    h.socket(1, &clients[1]).join("shared");
    let mut want: BTreeSet<String> = clients.iter().map(|c| c.id.clone()).collect();
    want.extend(["r0", "r2", "shared"].map(String::from));
    for from in 0..h.len() {
        let rooms: BTreeSet<String> = h
            .root(from)
            .rooms()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.into_owned())
            .collect();
        assert_eq!(rooms, want, "rooms seen from server {from}");
    }
}

/// Server-side events reach the handlers of the other servers (not the emitter's), with
/// and without answers.
pub async fn server_side_events_reach_the_other_servers(cluster: &dyn Cluster) {
    let h = Harness::start(cluster, 3).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..h.len() {
        let tx = tx.clone();
        h.io(i).on_server_event("hello", move |args: Payload, ack| {
            let arg: Value = args.get(0).unwrap_or_default();
            let _ = tx.send((i, arg));
            let _ = ack.send(&json!({ "from": i }));
        });
    }
    h.io(0).server_side_emit("hello", &("x", 1)).unwrap();
    let mut heard = BTreeSet::new();
    for _ in 1..h.len() {
        let (i, arg) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("every other server hears the event")
            .expect("senders are alive");
        assert_eq!(arg, json!("x"));
        heard.insert(i);
    }
    assert_eq!(heard, (1..h.len()).collect::<BTreeSet<_>>());
    let more = tokio::time::timeout(QUIET, rx.recv()).await;
    assert!(
        more.is_err(),
        "the emitting server does not hear its own event: {more:?}"
    );

    let emitter = h.len() - 1;
    let answers = h
        .io(emitter)
        .server_side_emit_with_ack("hello", &(2,))
        .await
        .unwrap();
    let from: BTreeSet<u64> = answers
        .iter()
        .map(|a| a.get::<Value>(0).unwrap()["from"].as_u64().unwrap())
        .collect();
    let others: BTreeSet<u64> = (0..h.len() as u64)
        .filter(|&i| i != emitter as u64)
        .collect();
    assert_eq!(from, others, "one answer per other server");
}

/// A broadcast with acks asks every socket of every server and gets every answer.
pub async fn broadcast_acks_count_every_servers_clients(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    let acks = h.io(0).timeout(WAIT).emit_with_ack("q", &1).unwrap();
    for client in &mut clients {
        let (id, event) = client.event().await;
        assert_eq!(event, json!(["q", 1]));
        let id = id.expect("the event asks for an ack");
        let answer = format!(r#"3{id}["{}"]"#, client.id);
        client.send(&answer).await;
    }
    let answers = tokio::time::timeout(WAIT * 2, acks)
        .await
        .expect("the answers come before the timeout");
    assert_eq!(answers.len(), 3);
    let mut got = BTreeSet::new();
    for (socket, result) in answers {
        let text: String = result.expect("every client answered").get(0).unwrap();
        if let Some(socket) = socket {
            assert_eq!(
                socket.as_str(),
                text,
                "an answer names the socket that gave it"
            );
        }
        got.insert(text);
    }
    let want: BTreeSet<String> = clients.iter().map(|c| c.id.clone()).collect();
    assert_eq!(got, want);
    all_quiet(&mut clients).await;
}

/// Recipients that do not answer a broadcast with acks in time are reported as timeouts,
/// wherever they are.
pub async fn silent_recipients_of_a_broadcast_with_acks_time_out(cluster: &dyn Cluster) {
    let (h, mut clients) = three(cluster).await;
    let acks = h
        .io(0)
        .timeout(Duration::from_millis(500))
        .emit_with_ack("q", &2)
        .unwrap();
    // Clients 0 and 1 answer; client 2 (on the last server) keeps silent.
    for client in &mut clients[..2] {
        let (id, _) = client.event().await;
        let id = id.expect("the event asks for an ack");
        client.send(&format!("3{id}[true]")).await;
    }
    assert!(clients[2].event().await.0.is_some());
    let answers = tokio::time::timeout(WAIT, acks)
        .await
        .expect("the timeout ends the wait");
    assert_eq!(answers.len(), 3, "{answers:?}");
    let timeouts = answers
        .iter()
        .filter(|(_, r)| matches!(r, Err(AckError::Timeout)))
        .count();
    assert_eq!(timeouts, 1, "{answers:?}");
}

/// Every server counts the whole cluster.
pub async fn server_count_counts_every_server(cluster: &dyn Cluster) {
    let h = Harness::start(cluster, 3).await;
    for i in 0..h.len() {
        assert_eq!(h.io(i).server_count().await.unwrap(), h.len());
    }
}
