//! Connection state recovery, on the wire: the CONNECT reply carries a pid, kept events carry
//! an offset as last argument, and a client that comes back with `{pid, offset}` gets the
//! events it missed, then `40{"sid","pid"}` with its old id; everything else gets a fresh
//! socket.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, Frame, eventually, server};
use ferrio::adapter::Recovery;
use ferrio::{Io, IoBuilder, SocketRef};
use serde_json::{Value, json};

/// What the server knows of each socket that connected: (id, recovered).
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

async fn recovering_server(recovery: Recovery) -> (std::net::SocketAddr, Io, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let (addr, io) = server(
        IoBuilder::default().connection_state_recovery(recovery),
        move |io| {
            io.ns("/", move |socket: SocketRef| {
                record
                    .lock()
                    .unwrap()
                    .push((socket.id().to_string(), socket.recovered()));
                let _ = socket.set_data(&json!({"user": "ada"}));
                socket.on(
                    "join",
                    |socket: SocketRef, ferrio::Data(room): ferrio::Data<String>| {
                        socket.join(room);
                    },
                );
            });
        },
    )
    .await;
    (addr, io, seen)
}

/// The CONNECT reply's `sid` and `pid`.
fn connect_reply(text: &str) -> (String, String) {
    let body = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not a CONNECT reply: {text}"));
    let json: Value = serde_json::from_str(body).unwrap();
    (
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"]
            .as_str()
            .unwrap_or_else(|| panic!("no pid in {text}"))
            .to_owned(),
    )
}

/// An event's JSON array.
fn event(text: &str) -> Value {
    let body = text
        .strip_prefix('2')
        .unwrap_or_else(|| panic!("not an EVENT: {text}"));
    serde_json::from_str(body).unwrap()
}

/// The offset an event carries (its last argument).
fn offset(event: &Value) -> String {
    event
        .as_array()
        .and_then(|a| a.last())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no offset in {event}"))
        .to_owned()
}

#[tokio::test]
async fn a_lost_client_gets_its_missed_events_then_its_old_id() {
    let (addr, io, seen) = recovering_server(Recovery::default()).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);
    client.send(r#"2["join","news"]"#).await;
    eventually("joined", || !io.within("news").sockets().is_empty()).await;

    io.emit("before", &1).unwrap();
    let first = event(&client.text().await);
    assert_eq!(first[0], "before");
    assert_eq!(first[1], 1);
    let seen_offset = offset(&first);

    // The connection drops (no close frame): the session is kept.
    client.drop_connection();
    eventually("the socket is gone", || io.sockets().is_empty()).await;
    io.emit("all", &2).unwrap();
    io.to("news").emit("room", &3).unwrap();
    io.to(sid.as_str()).emit("own", &4).unwrap();
    io.to("elsewhere").emit("not-mine", &5).unwrap();
    io.except("news").emit("excepted", &6).unwrap();
    io.volatile().emit("volatile", &7).unwrap();

    let mut client = Client::connect(addr).await;
    client
        .send(&format!(
            r#"0{{"pid":"{pid}","offset":"{seen_offset}","token":"t"}}"#
        ))
        .await;
    let mut missed = Vec::new();
    let reply = loop {
        let text = client.text().await;
        if text.starts_with('0') {
            break text;
        }
        missed.push(event(&text));
    };
    let names: Vec<&str> = missed.iter().map(|e| e[0].as_str().unwrap()).collect();
    assert_eq!(names, ["all", "room", "own"]);
    let mut offsets: Vec<String> = missed.iter().map(offset).collect();
    assert!(offsets.iter().all(|o| o != &seen_offset));
    let sorted = {
        let mut sorted = offsets.clone();
        sorted.sort_by_key(|o| o.parse::<u64>().unwrap());
        sorted
    };
    assert_eq!(offsets, sorted, "missed events come in order");
    offsets.dedup();
    assert_eq!(offsets.len(), 3, "each offset once");
    // Exactly `40{"sid":<old>,"pid":<old>}`.
    assert_eq!(reply, format!(r#"0{{"sid":"{sid}","pid":"{pid}"}}"#));

    // The connect handler saw a recovered socket with its old id, rooms and data.
    eventually("the handler ran", || seen.lock().unwrap().len() == 2).await;
    assert_eq!(seen.lock().unwrap()[1], (sid.clone(), true));
    let socket = io.sockets().pop().unwrap();
    assert!(socket.rooms().iter().any(|r| r.as_ref() == "news"));
    assert_eq!(
        socket.data::<Value>().unwrap().unwrap(),
        json!({"user": "ada"})
    );

    // Live events go on after the CONNECT reply, with offsets.
    io.to("news").emit("after", &8).unwrap();
    let after = event(&client.text().await);
    assert_eq!(after[0], "after");
    assert!(offset(&after).parse::<u64>().unwrap() > offsets[2].parse::<u64>().unwrap());
}

#[tokio::test]
async fn a_client_that_saw_no_event_still_recovers() {
    let (addr, io, _) = recovering_server(Recovery::default()).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);
    client.drop_connection();
    eventually("the socket is gone", || io.sockets().is_empty()).await;
    io.emit("while-away", &1).unwrap();

    let mut client = Client::connect(addr).await;
    client.send(&format!(r#"0{{"pid":"{pid}"}}"#)).await;
    assert_eq!(event(&client.text().await)[0], "while-away");
    assert_eq!(
        client.text().await,
        format!(r#"0{{"sid":"{sid}","pid":"{pid}"}}"#)
    );
}

#[tokio::test]
async fn recovery_works_again_and_again() {
    let (addr, io, _) = recovering_server(Recovery::default()).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);
    let mut last = None::<String>;
    for round in 0..3 {
        client.drop_connection();
        eventually("the socket is gone", || io.sockets().is_empty()).await;
        io.emit("round", &round).unwrap();
        client = Client::connect(addr).await;
        let claim = match &last {
            Some(offset) => format!(r#"0{{"pid":"{pid}","offset":"{offset}"}}"#),
            None => format!(r#"0{{"pid":"{pid}"}}"#),
        };
        client.send(&claim).await;
        let missed = event(&client.text().await);
        assert_eq!(missed[0], "round");
        assert_eq!(missed[1], round);
        last = Some(offset(&missed));
        assert_eq!(
            client.text().await,
            format!(r#"0{{"sid":"{sid}","pid":"{pid}"}}"#)
        );
    }
}

#[tokio::test]
async fn fresh_sockets_for_a_voluntary_leave_an_unknown_pid_or_a_used_session() {
    let (addr, io, seen) = recovering_server(Recovery::default()).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);

    // Leaving the namespace on purpose: nothing is kept.
    client.send("1").await;
    eventually("the socket is gone", || io.sockets().is_empty()).await;
    client.send(&format!(r#"0{{"pid":"{pid}"}}"#)).await;
    let (second, second_pid) = connect_reply(&client.text().await);
    assert_ne!(second, sid);
    assert_ne!(second_pid, pid);

    // An unknown pid, and a pid that is not a string.
    let mut other = Client::connect(addr).await;
    other.send(r#"0{"pid":"unknown-pid","offset":"1"}"#).await;
    let (third, _) = connect_reply(&other.text().await);
    assert!(third != sid && third != second);
    let mut odd = Client::connect(addr).await;
    odd.send(r#"0{"pid":42,"offset":[]}"#).await;
    connect_reply(&odd.text().await);

    // A session is taken back once.
    client.drop_connection();
    eventually("the socket is gone", || io.sockets().len() == 2).await;
    let mut back = Client::connect(addr).await;
    back.send(&format!(r#"0{{"pid":"{second_pid}"}}"#)).await;
    assert_eq!(connect_reply(&back.text().await).0, second);
    let mut again = Client::connect(addr).await;
    again.send(&format!(r#"0{{"pid":"{second_pid}"}}"#)).await;
    assert_ne!(connect_reply(&again.text().await).0, second);

    let recovered: Vec<bool> = seen.lock().unwrap().iter().map(|(_, r)| *r).collect();
    assert_eq!(recovered, [false, false, false, false, true, false]);
}

#[tokio::test]
async fn sessions_expire_after_the_disconnection_duration() {
    let recovery = Recovery::default().max_disconnection_duration(Duration::from_millis(200));
    let (addr, io, _) = recovering_server(recovery).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);
    client.drop_connection();
    eventually("the socket is gone", || io.sockets().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = Client::connect(addr).await;
    client.send(&format!(r#"0{{"pid":"{pid}"}}"#)).await;
    assert_ne!(connect_reply(&client.text().await).0, sid);
}

#[tokio::test]
async fn a_client_whose_missed_events_were_dropped_starts_afresh() {
    let (addr, io, _) = recovering_server(Recovery::default().max_stored_packets(5)).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    let (sid, pid) = connect_reply(&client.text().await);
    client.drop_connection();
    eventually("the socket is gone", || io.sockets().is_empty()).await;
    for i in 0..10 {
        io.emit("flood", &i).unwrap();
    }
    let mut client = Client::connect(addr).await;
    client.send(&format!(r#"0{{"pid":"{pid}"}}"#)).await;
    let text = client.text().await;
    assert!(text.starts_with('0'), "no partial recovery: {text}");
    assert_ne!(connect_reply(&text).0, sid);
}

#[tokio::test]
async fn acks_and_volatile_packets_are_not_kept_and_carry_no_offset() {
    let (addr, io, _) = recovering_server(Recovery::default()).await;
    let mut client = Client::connect(addr).await;
    client.send("0").await;
    connect_reply(&client.text().await);
    let socket = io.sockets().pop().unwrap();
    let ack = socket.emit_with_ack("question", &"?");
    assert_eq!(client.text().await, r#"20["question","?"]"#);
    client.send(r#"30["yes"]"#).await;
    assert_eq!(ack.await.unwrap().get::<String>(0).unwrap(), "yes");
    socket.volatile().emit("volatile", &1).unwrap();
    assert_eq!(client.text().await, r#"2["volatile",1]"#);
    socket.emit("kept", &2).unwrap();
    let kept = event(&client.text().await);
    assert_eq!(kept[1], 2);
    offset(&kept);
    let binary = socket.emit("bin", &ferrio::Bytes::from_static(b"\x01"));
    binary.unwrap();
    let Some(Frame::Text(text)) = client.next().await else {
        panic!("a binary event's text part");
    };
    assert!(
        text.starts_with(r#"51-["bin",{"_placeholder":true,"num":0},""#),
        "{text}"
    );
    assert_eq!(client.binary().await.as_ref(), b"\x01");
}

#[tokio::test]
async fn without_recovery_nothing_changes() {
    let (addr, io) = server(IoBuilder::default(), |io| {
        io.ns("/", |_: SocketRef| {});
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.send(r#"0{"pid":"x","offset":"1"}"#).await;
    let reply = client.text().await;
    assert!(!reply.contains("pid"), "{reply}");
    io.emit("plain", &1).unwrap();
    assert_eq!(client.text().await, r#"2["plain",1]"#);
}
