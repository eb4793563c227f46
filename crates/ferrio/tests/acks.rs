//! Acknowledgements the server waits for: `emit_with_ack` on a socket and on a broadcast,
//! their timeouts, and their failure when the socket goes away.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, WAIT, hand_sockets, join_root, joined_to, nsp_prefix, recv, socket_server};
use ferrio::{AckError, AckSender, EmitError, Io, Payload, Sid, SocketRef};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A long default so that only the behaviour under test can end an ack.
const LONG: Duration = Duration::from_secs(30);

/// The next packet, which must be an event with an ack id (`2[<nsp>,]<id>[...]`): returns the
/// id and the event array.
async fn event_with_ack(client: &mut Client, nsp: &str) -> (u64, Value) {
    let text = client.text().await;
    let rest = text
        .strip_prefix(&format!("2{}", nsp_prefix(nsp)))
        .unwrap_or_else(|| panic!("not an event on {nsp}: {text}"));
    let digits = rest
        .find('[')
        .unwrap_or_else(|| panic!("no arguments: {text}"));
    let id = rest[..digits]
        .parse()
        .unwrap_or_else(|_| panic!("no ack id: {text}"));
    (id, serde_json::from_str(&rest[digits..]).unwrap())
}

/// Awaits an ack future, at most [`WAIT`].
async fn settle<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("the ack neither resolved nor failed")
}

#[tokio::test]
async fn emit_with_ack_resolves_with_the_clients_answer() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let ack = socket.emit_with_ack("question", "x");
    let (id, event) = event_with_ack(&mut client, "/").await;
    assert_eq!(event, json!(["question", "x"]));
    client.send(&format!(r#"3{id}["answer",2]"#)).await;
    let payload = settle(ack).await.unwrap();
    assert_eq!(payload.len(), 2);
    assert_eq!(payload.get::<String>(0).unwrap(), "answer");
    assert_eq!(payload.get::<u32>(1).unwrap(), 2);
}

#[tokio::test]
async fn emit_args_with_ack_sends_several_arguments_and_takes_a_binary_answer() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let ack = socket.emit_args_with_ack("q", &(1, "two"));
    let (id, event) = event_with_ack(&mut client, "/").await;
    assert_eq!(event, json!(["q", 1, "two"]));
    client
        .send(&format!(
            r#"61-{id}["file",{{"_placeholder":true,"num":0}}]"#
        ))
        .await;
    client.send_binary(&[1, 2, 3]).await;
    let payload = settle(ack).await.unwrap();
    assert_eq!(payload.get::<String>(0).unwrap(), "file");
    assert_eq!(
        payload.get::<Bytes>(1).unwrap(),
        Bytes::from_static(&[1, 2, 3])
    );
}

#[tokio::test]
async fn emit_with_ack_works_in_other_namespaces() {
    let (tx, mut others) = mpsc::unbounded_channel();
    let (addr, _io, _sockets) = socket_server(Io::builder(), |io| hand_sockets(io, "/x", tx)).await;
    let mut client = joined_to(addr, &["/x"]).await;
    let socket = recv(&mut others).await;
    let ack = socket.emit_with_ack("q", &());
    let (id, event) = event_with_ack(&mut client, "/x").await;
    assert_eq!(event, json!(["q", null]));
    client.send(&format!(r#"3/x,{id}["ok"]"#)).await;
    assert_eq!(settle(ack).await.unwrap().get::<String>(0).unwrap(), "ok");
}

#[tokio::test]
async fn each_emit_gets_its_own_ack_id_and_answers_reach_their_own_emit() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let acks: Vec<_> = (0..3).map(|n| socket.emit_with_ack("q", &n)).collect();
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, event) = event_with_ack(&mut client, "/").await;
        assert_eq!(event, json!(["q", n]));
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "ack ids repeat: {ids:?}");
    // Answer in reverse order; each emit gets the answer carrying its id.
    for (n, id) in ids.iter().enumerate().rev() {
        client.send(&format!("3{id}[{}]", n * 10)).await;
    }
    for (n, ack) in acks.into_iter().enumerate() {
        assert_eq!(settle(ack).await.unwrap().get::<usize>(0).unwrap(), n * 10);
    }
}

#[tokio::test]
async fn an_answer_for_an_unknown_ack_id_is_ignored() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    client.send(r#"3999["nobody asked"]"#).await;
    client.assert_quiet().await;
    let ack = socket.emit_with_ack("q", &1);
    let (id, _) = event_with_ack(&mut client, "/").await;
    client.send(&format!(r#"3{id}["fine"]"#)).await;
    assert_eq!(settle(ack).await.unwrap().get::<String>(0).unwrap(), "fine");
}

#[tokio::test]
async fn timeout_on_the_future_fails_with_timeout() {
    let (addr, _io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let start = Instant::now();
    let ack = socket
        .emit_with_ack("q", &1)
        .timeout(Duration::from_millis(150));
    let (id, _) = event_with_ack(&mut client, "/").await;
    let result = settle(ack).await;
    assert!(matches!(result, Err(AckError::Timeout)), "{result:?}");
    assert!(start.elapsed() >= Duration::from_millis(150));

    // A late answer is dropped, and the socket keeps working.
    client.send(&format!(r#"3{id}["late"]"#)).await;
    let ack = socket.emit_with_ack("again", &2);
    let (id, _) = event_with_ack(&mut client, "/").await;
    client.send(&format!(r#"3{id}["on time"]"#)).await;
    assert_eq!(
        settle(ack).await.unwrap().get::<String>(0).unwrap(),
        "on time"
    );
}

#[tokio::test]
async fn the_servers_ack_timeout_is_the_default() {
    let builder = Io::builder().ack_timeout(Duration::from_millis(150));
    let (addr, _io, mut sockets) = socket_server(builder, |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let start = Instant::now();
    let ack = socket.emit_with_ack("q", &1);
    event_with_ack(&mut client, "/").await;
    let result = settle(ack).await;
    assert!(matches!(result, Err(AckError::Timeout)), "{result:?}");
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

/// Emits with an ack and a long timeout, lets `leave` make the socket go, and asserts that
/// the ack fails with `Disconnected` well before the timeout.
async fn assert_ack_fails_when(leave: impl AsyncFnOnce(&mut Client, &SocketRef)) {
    let (addr, _io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    let ack = socket.emit_with_ack("q", &1);
    let other = socket.emit_with_ack("q", &2).timeout(LONG);
    event_with_ack(&mut client, "/").await;
    event_with_ack(&mut client, "/").await;
    let start = Instant::now();
    leave(&mut client, &socket).await;
    let result = settle(ack).await;
    assert!(matches!(result, Err(AckError::Disconnected)), "{result:?}");
    let result = settle(other).await;
    assert!(matches!(result, Err(AckError::Disconnected)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn pending_acks_fail_at_once_when_the_client_leaves_the_namespace() {
    assert_ack_fails_when(async |client: &mut Client, _: &SocketRef| client.send("1").await).await;
}

#[tokio::test]
async fn pending_acks_fail_at_once_when_the_client_closes_the_connection() {
    assert_ack_fails_when(async |client: &mut Client, _: &SocketRef| client.close().await).await;
}

#[tokio::test]
async fn pending_acks_fail_at_once_when_the_server_disconnects_the_socket() {
    assert_ack_fails_when(async |_: &mut Client, socket: &SocketRef| socket.disconnect()).await;
}

#[tokio::test]
async fn pending_acks_fail_at_once_when_the_server_closes_the_connection() {
    assert_ack_fails_when(async |_: &mut Client, socket: &SocketRef| socket.close()).await;
}

#[tokio::test]
async fn emit_with_ack_on_a_disconnected_socket_fails_at_once() {
    let (addr, _io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (_client, socket) = join_root(addr, &mut sockets).await;
    socket.disconnect();
    let result = settle(socket.emit_with_ack("q", &1)).await;
    assert!(
        matches!(result, Err(AckError::Emit(EmitError::Closed))),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_event_handler_can_await_the_clients_ack() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = join_root(addr, &mut sockets).await;
    socket.on("start", async |socket: SocketRef, ack: AckSender| {
        let answer = socket.emit_with_ack("confirm", "sure?").await;
        let answer: String = answer.map_or_else(|e| e.to_string(), |p| p.get(0).unwrap());
        ack.send(&answer)
    });
    client.send(r#"21["start"]"#).await;
    // The handler waits on the connection's own ack: reading must go on meanwhile.
    let (id, event) = event_with_ack(&mut client, "/").await;
    assert_eq!(event, json!(["confirm", "sure?"]));
    client.send(&format!(r#"3{id}["yes"]"#)).await;
    assert_eq!(client.text().await, r#"31["yes"]"#);
}

/// Answers of a broadcast with acks, by socket (local answers always name their socket).
fn by_socket(
    results: Vec<(Option<Sid>, Result<Payload, AckError>)>,
) -> HashMap<Sid, Result<Value, String>> {
    results
        .into_iter()
        .map(|(sid, result)| {
            let result = match result {
                Ok(payload) => Ok(payload.get::<Value>(0).unwrap()),
                Err(AckError::Timeout) => Err("timeout".to_owned()),
                Err(AckError::Disconnected) => Err("disconnected".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            (sid.expect("a local answer names its socket"), result)
        })
        .collect()
}

#[tokio::test]
async fn a_broadcast_with_acks_collects_every_answer_and_times_out_the_silent_one() {
    let (addr, io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let (mut b, sb) = join_root(addr, &mut sockets).await;
    let (mut c, sc) = join_root(addr, &mut sockets).await;
    let start = Instant::now();
    let acks = io
        .timeout(Duration::from_millis(300))
        .emit_with_ack("vote", &"yes?")
        .unwrap();
    for (client, answer) in [(&mut a, "a"), (&mut b, "b")] {
        let (id, event) = event_with_ack(client, "/").await;
        assert_eq!(event, json!(["vote", "yes?"]));
        client.send(&format!(r#"3{id}["{answer}"]"#)).await;
    }
    let (_, event) = event_with_ack(&mut c, "/").await; // received, never answered
    assert_eq!(event, json!(["vote", "yes?"]));
    let results = by_socket(settle(acks).await);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        results,
        HashMap::from([
            (sa.id(), Ok(json!("a"))),
            (sb.id(), Ok(json!("b"))),
            (sc.id(), Err("timeout".to_owned())),
        ])
    );
}

#[tokio::test]
async fn a_broadcast_with_acks_uses_the_servers_ack_timeout_by_default() {
    let builder = Io::builder().ack_timeout(Duration::from_millis(200));
    let (addr, io, mut sockets) = socket_server(builder, |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let start = Instant::now();
    let acks = io.emit_with_ack("q", &1).unwrap();
    event_with_ack(&mut a, "/").await;
    let results = by_socket(settle(acks).await);
    assert_eq!(
        results,
        HashMap::from([(sa.id(), Err("timeout".to_owned()))])
    );
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn a_broadcast_with_acks_to_a_room_asks_its_members_only() {
    let (addr, io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let (mut b, _) = join_root(addr, &mut sockets).await;
    sa.join("r");
    let acks = io.to("r").emit_with_ack("q", &1).unwrap();
    let (id, _) = event_with_ack(&mut a, "/").await;
    a.send(&format!("3{id}[true]")).await;
    let results = by_socket(settle(acks).await);
    assert_eq!(results, HashMap::from([(sa.id(), Ok(json!(true)))]));
    b.assert_quiet().await;

    // A socket's own broadcast with acks leaves the socket out.
    let acks = sa.broadcast().emit_with_ack("q", &2).unwrap();
    let (id, _) = event_with_ack(&mut b, "/").await;
    b.send(&format!("3{id}[false]")).await;
    assert_eq!(settle(acks).await.len(), 1);
    a.assert_quiet().await;
}

#[tokio::test]
async fn a_broadcast_with_acks_reports_a_recipient_that_disconnects() {
    let (addr, io, mut sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let (mut b, sb) = join_root(addr, &mut sockets).await;
    let start = Instant::now();
    let acks = io.emit_with_ack("q", &1).unwrap();
    let (id, _) = event_with_ack(&mut a, "/").await;
    a.send(&format!(r#"3{id}["here"]"#)).await;
    event_with_ack(&mut b, "/").await;
    b.close().await;
    let results = by_socket(settle(acks).await);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        results,
        HashMap::from([
            (sa.id(), Ok(json!("here"))),
            (sb.id(), Err("disconnected".to_owned())),
        ])
    );
}

#[tokio::test]
async fn a_broadcast_with_acks_to_nobody_resolves_at_once_and_empty() {
    let (_addr, io, _sockets) = socket_server(Io::builder().ack_timeout(LONG), |_| {}).await;
    let acks = io.to("empty").emit_with_ack("q", &1).unwrap();
    assert!(settle(acks).await.is_empty());
}
