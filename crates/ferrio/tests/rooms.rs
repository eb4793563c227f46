//! Rooms and broadcasts: joining and leaving, who each operator reaches, namespaces, and the
//! bulk operations on the sockets an operator selects.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{Client, hand_sockets, join_root, joined_to, recv, socket_server};
use ferrio::{DisconnectReason, Io, SocketRef};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The room names, sorted.
fn names(rooms: Vec<ferrio::Room>) -> BTreeSet<String> {
    rooms.into_iter().map(|r| r.into_owned()).collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

/// The next packet of the client, which must be the event `event` on `/`; returns its
/// arguments.
async fn event(client: &mut Client, event: &str) -> Vec<Value> {
    let text = client.text().await;
    let body = text
        .strip_prefix('2')
        .unwrap_or_else(|| panic!("not an event: {text}"));
    let mut packet: Vec<Value> = serde_json::from_str(body).unwrap();
    assert_eq!(packet.remove(0), json!(event), "{text}");
    packet
}

/// Three clients on `/`, with their sockets.
async fn three(
    addr: std::net::SocketAddr,
    sockets: &mut mpsc::UnboundedReceiver<SocketRef>,
) -> [(Client, SocketRef); 3] {
    [
        join_root(addr, sockets).await,
        join_root(addr, sockets).await,
        join_root(addr, sockets).await,
    ]
}

#[tokio::test]
async fn join_leave_and_rooms_always_include_the_own_id() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (_client, socket) = join_root(addr, &mut sockets).await;
    let own = socket.id().to_string();
    assert_eq!(names(socket.rooms()), set([&own]));

    socket.join("a");
    socket.join(String::from("b"));
    socket.join(vec!["c", "d"]);
    socket.join(["e"]);
    socket.join("a"); // twice is once
    assert_eq!(names(socket.rooms()), set([&own, "a", "b", "c", "d", "e"]));
    assert_eq!(socket.rooms().len(), 6, "no duplicates");

    socket.leave("a");
    socket.leave(vec!["b", "c"]);
    socket.leave("never-joined");
    assert_eq!(names(socket.rooms()), set([&own, "d", "e"]));

    socket.leave_all();
    assert_eq!(names(socket.rooms()), set([&own]));
    // Its own room cannot be left.
    socket.leave(socket.id());
    assert_eq!(names(socket.rooms()), set([&own]));
}

#[tokio::test]
async fn io_to_reaches_the_members_of_a_room_only() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, _), (mut c, sc)] = three(addr, &mut sockets).await;
    sa.join("r");
    sc.join("r");
    io.to("r").emit("news", "hello").unwrap();
    assert_eq!(event(&mut a, "news").await, [json!("hello")]);
    assert_eq!(event(&mut c, "news").await, [json!("hello")]);
    b.assert_quiet().await;

    io.within("r").emit_args("pair", &(1, 2)).unwrap();
    assert_eq!(event(&mut a, "pair").await, [json!(1), json!(2)]);
    assert_eq!(event(&mut c, "pair").await, [json!(1), json!(2)]);
    b.assert_quiet().await;

    // After leaving, a socket no longer gets the room's broadcasts.
    sa.leave("r");
    io.to("r").emit("news", "again").unwrap();
    assert_eq!(event(&mut c, "news").await, [json!("again")]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn io_to_an_empty_or_unknown_room_reaches_nobody() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, _), (mut b, _), _third] = three(addr, &mut sockets).await;
    io.to("nobody-here").emit("x", &1).unwrap();
    a.assert_quiet().await;
    b.assert_quiet().await;
}

#[tokio::test]
async fn io_to_a_socket_id_reaches_that_socket() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, _), (mut b, sb), _third] = three(addr, &mut sockets).await;
    io.to(sb.id()).emit("private", "psst").unwrap();
    assert_eq!(event(&mut b, "private").await, [json!("psst")]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn io_except_leaves_out_the_members_of_a_room() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, sc)] = three(addr, &mut sockets).await;
    sa.join("muted");
    sb.join("r");
    sc.join("r");
    io.except("muted").emit("x", &1).unwrap();
    assert_eq!(event(&mut b, "x").await, [json!(1)]);
    assert_eq!(event(&mut c, "x").await, [json!(1)]);
    a.assert_quiet().await;

    // A room minus another room, and minus a single socket by its id.
    sc.join("muted");
    io.to("r").except("muted").emit("y", &2).unwrap();
    assert_eq!(event(&mut b, "y").await, [json!(2)]);
    io.to("r").except(sb.id()).emit("z", &3).unwrap();
    assert_eq!(event(&mut c, "z").await, [json!(3)]);
    a.assert_quiet().await;
    b.assert_quiet().await;
    c.assert_quiet().await;
}

#[tokio::test]
async fn several_rooms_reach_their_union_once_each() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, _)] = three(addr, &mut sockets).await;
    sa.join(["x", "y"]);
    sb.join("y");
    io.to("x").to("y").emit("chained", &1).unwrap();
    io.to(["x", "y"]).emit("array", &2).unwrap();
    io.to(vec!["y", "x", "y"])
        .within("x")
        .emit("vec", &3)
        .unwrap();
    for event_name in ["chained", "array", "vec"] {
        event(&mut a, event_name).await;
        event(&mut b, event_name).await;
    }
    // Nothing was delivered twice, and the outsider got nothing.
    a.assert_quiet().await;
    b.assert_quiet().await;
    c.assert_quiet().await;
}

#[tokio::test]
async fn socket_to_and_within_exclude_the_sender_and_io_within_includes_it() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, _)] = three(addr, &mut sockets).await;
    sa.join("r");
    sb.join("r");
    sa.to("r").emit("to", &1).unwrap();
    assert_eq!(event(&mut b, "to").await, [json!(1)]);
    a.assert_quiet().await;
    c.assert_quiet().await;

    // `socket.in(room)` of the JavaScript API: the same as `to`.
    sa.within("r").emit("within", &2).unwrap();
    assert_eq!(event(&mut b, "within").await, [json!(2)]);
    a.assert_quiet().await;
    c.assert_quiet().await;

    // From the namespace, the sender is one member like the others.
    io.within("r").emit("io-within", &4).unwrap();
    assert_eq!(event(&mut a, "io-within").await, [json!(4)]);
    assert_eq!(event(&mut b, "io-within").await, [json!(4)]);
    c.assert_quiet().await;

    // `to` excludes the sender even when chained with more rooms.
    sa.to("r").to(sa.id()).emit("self", &3).unwrap();
    assert_eq!(event(&mut b, "self").await, [json!(3)]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn socket_broadcast_reaches_everyone_but_the_sender() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, _), (mut c, _)] = three(addr, &mut sockets).await;
    sa.broadcast().emit("all-but-me", "hi").unwrap();
    assert_eq!(event(&mut b, "all-but-me").await, [json!("hi")]);
    assert_eq!(event(&mut c, "all-but-me").await, [json!("hi")]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn socket_except_leaves_out_the_sender_and_the_room() {
    let (addr, _io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, _)] = three(addr, &mut sockets).await;
    sb.join("muted");
    sa.except("muted").emit("x", &1).unwrap();
    assert_eq!(event(&mut c, "x").await, [json!(1)]);
    a.assert_quiet().await;
    b.assert_quiet().await;
}

#[tokio::test]
async fn io_emit_reaches_every_socket_of_the_root_namespace_only() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |io| {
        io.ns("/other", |_: SocketRef| {});
    })
    .await;
    let (mut a, _) = join_root(addr, &mut sockets).await;
    // `b` is on `/` and `/other` over one connection; `c` only on `/other`.
    let (mut b, _) = join_root(addr, &mut sockets).await;
    b.join("/other", None).await;
    let mut c = joined_to(addr, &["/other"]).await;

    io.emit("everyone", &1).unwrap();
    assert_eq!(event(&mut a, "everyone").await, [json!(1)]);
    assert_eq!(event(&mut b, "everyone").await, [json!(1)]);
    b.assert_quiet().await; // once, on `/` only
    c.assert_quiet().await;

    io.of("/other").unwrap().emit("others", &2).unwrap();
    assert_eq!(b.text().await, r#"2/other,["others",2]"#);
    assert_eq!(c.text().await, r#"2/other,["others",2]"#);
    a.assert_quiet().await;
}

#[tokio::test]
async fn rooms_are_per_namespace() {
    let (tx, mut others) = mpsc::unbounded_channel();
    let (addr, io, mut sockets) =
        socket_server(Io::builder(), |io| hand_sockets(io, "/other", tx)).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    a.join("/other", None).await;
    let other = recv(&mut others).await;
    assert_ne!(other.id(), sa.id(), "one socket per namespace");
    other.join("r");
    io.to("r").emit("root", &1).unwrap();
    a.assert_quiet().await;
    assert!(!names(sa.rooms()).contains("r"));
    io.of("/other").unwrap().to("r").emit("other", &2).unwrap();
    assert_eq!(a.text().await, r#"2/other,["other",2]"#);
}

#[tokio::test]
async fn io_of_finds_namespaces_by_name() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |io| {
        io.ns("x", |_: SocketRef| {}); // the leading slash is optional
    })
    .await;
    assert_eq!(io.of("/x").unwrap().name(), "/x");
    assert_eq!(io.of("x").unwrap().name(), "/x");
    assert_eq!(io.of("/").unwrap().name(), "/");
    assert!(io.of("/nope").is_none());
    let mut names = io.namespaces();
    names.sort();
    assert_eq!(names, ["/", "/x"]);

    let ns = io.of("/").unwrap();
    assert!(ns.is_empty());
    let (_a, sa) = join_root(addr, &mut sockets).await;
    let (_b, _) = join_root(addr, &mut sockets).await;
    assert_eq!(ns.len(), 2);
    assert!(!ns.is_empty());
    assert_eq!(ns.get_socket(sa.id()), Some(sa.clone()));
    assert!(io.of("/x").unwrap().get_socket(sa.id()).is_none());
}

#[tokio::test]
async fn namespace_ref_operators_target_that_namespace() {
    let (tx, mut others) = mpsc::unbounded_channel();
    let (addr, io, mut sockets) =
        socket_server(Io::builder(), |io| hand_sockets(io, "/x", tx)).await;
    let (mut a, _) = join_root(addr, &mut sockets).await;
    a.join("/x", None).await;
    let xa = recv(&mut others).await;
    let mut b = joined_to(addr, &["/x"]).await;
    let xb = recv(&mut others).await;
    xa.join("r");

    let x = io.of("/x").unwrap();
    x.to("r").emit("to", &1).unwrap();
    assert_eq!(a.text().await, r#"2/x,["to",1]"#);
    x.except("r").emit("except", &2).unwrap();
    assert_eq!(b.text().await, r#"2/x,["except",2]"#);
    x.emit_args("all", &("a", "b")).unwrap();
    assert_eq!(a.text().await, r#"2/x,["all","a","b"]"#);
    assert_eq!(b.text().await, r#"2/x,["all","a","b"]"#);

    let ids: BTreeSet<_> = x.sockets().iter().map(SocketRef::id).collect();
    assert_eq!(ids, BTreeSet::from([xa.id(), xb.id()]));
    let in_room = x.within("r").fetch_sockets().await.unwrap();
    assert_eq!(in_room.len(), 1);
    assert_eq!(in_room[0].id, xa.id());
    a.assert_quiet().await;
    b.assert_quiet().await;
}

#[tokio::test]
async fn sockets_lists_the_targeted_sockets() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(_a, sa), (_b, sb), (_c, sc)] = three(addr, &mut sockets).await;
    sb.join("r");
    sc.join("r");
    let ids = |list: Vec<SocketRef>| list.iter().map(SocketRef::id).collect::<BTreeSet<_>>();
    assert_eq!(
        ids(io.sockets()),
        BTreeSet::from([sa.id(), sb.id(), sc.id()])
    );
    assert_eq!(
        ids(io.to("r").sockets()),
        BTreeSet::from([sb.id(), sc.id()])
    );
    assert_eq!(ids(io.except("r").sockets()), BTreeSet::from([sa.id()]));
    assert_eq!(
        ids(sb.broadcast().sockets()),
        BTreeSet::from([sa.id(), sc.id()])
    );
    assert_eq!(ids(sb.within("r").sockets()), BTreeSet::from([sc.id()]));
    assert!(io.to("empty").sockets().is_empty());
    // The listed handles are the live sockets.
    assert!(io.to("r").sockets().contains(&sb));
}

#[tokio::test]
async fn fetch_sockets_reports_ids_and_rooms() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(_a, sa), (_b, sb), _third] = three(addr, &mut sockets).await;
    sa.join(["r", "s"]);
    sb.join("s");
    let mut found = io.to("s").fetch_sockets().await.unwrap();
    found.sort_by_key(|s| s.id.to_string());
    let mut expected = vec![
        (sa.id(), set([sa.id().as_str(), "r", "s"])),
        (sb.id(), set([sb.id().as_str(), "s"])),
    ];
    expected.sort_by_key(|(id, _)| id.to_string());
    let found: Vec<_> = found.into_iter().map(|s| (s.id, names(s.rooms))).collect();
    assert_eq!(found, expected);
    assert_eq!(io.fetch_sockets().await.unwrap().len(), 3);
}

#[tokio::test]
async fn broadcast_operator_join_and_leave_move_the_targeted_sockets() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, sc)] = three(addr, &mut sockets).await;
    sa.join("r");
    sb.join("r");
    io.to("r").join(["s", "t"]).unwrap();
    assert!(names(sa.rooms()).is_superset(&set(["r", "s", "t"])));
    assert!(names(sb.rooms()).is_superset(&set(["r", "s", "t"])));
    assert_eq!(names(sc.rooms()), set([sc.id().as_str()]));

    io.to("s").emit("in-s", &1).unwrap();
    event(&mut a, "in-s").await;
    event(&mut b, "in-s").await;
    c.assert_quiet().await;

    io.to(sa.id()).leave("s").unwrap();
    io.to("s").emit("in-s", &2).unwrap();
    event(&mut b, "in-s").await;
    a.assert_quiet().await;

    // Every socket of the namespace.
    io.except("r").join("lobby").unwrap();
    assert!(names(sc.rooms()).contains("lobby"));
    assert!(!names(sa.rooms()).contains("lobby"));
}

#[tokio::test]
async fn broadcast_operator_disconnect_removes_the_sockets_but_keeps_their_connections() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, _)] = three(addr, &mut sockets).await;
    for socket in [&sa, &sb] {
        let tx = tx.clone();
        socket.on_disconnect(move |socket: SocketRef, reason: DisconnectReason| {
            let _ = tx.send((socket.id(), reason));
        });
        socket.join("r");
    }
    io.to("r").disconnect().unwrap();
    assert_eq!(a.text().await, "1");
    assert_eq!(b.text().await, "1");
    let mut got = BTreeSet::new();
    for _ in 0..2 {
        let (id, reason) = recv(&mut reasons).await;
        assert_eq!(reason, DisconnectReason::ServerNamespaceDisconnect);
        got.insert(id);
    }
    assert_eq!(got, BTreeSet::from([sa.id(), sb.id()]));
    c.assert_quiet().await;
    assert_eq!(io.sockets().len(), 1);
    // The connections stay: `a` joins again.
    a.join("/", None).await;
}

#[tokio::test]
async fn broadcast_operator_close_closes_the_whole_connections() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, _), _third] = three(addr, &mut sockets).await;
    sa.on_disconnect(move |reason: DisconnectReason| {
        let _ = tx.send(reason);
    });
    sa.join("r");
    io.to("r").close().unwrap();
    a.assert_closed().await;
    assert_eq!(
        recv(&mut reasons).await,
        DisconnectReason::ForcedServerClose
    );
    b.assert_quiet().await;
    assert_eq!(io.sockets().len(), 2);
}

#[tokio::test]
async fn disconnect_sockets_disconnects_every_socket_of_the_namespace() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |io| {
        io.ns("/other", |_: SocketRef| {});
    })
    .await;
    let [(mut a, _), (mut b, _), _third] = three(addr, &mut sockets).await;
    let mut other = joined_to(addr, &["/other"]).await;
    io.disconnect_sockets().unwrap();
    assert_eq!(a.text().await, "1");
    assert_eq!(b.text().await, "1");
    other.assert_quiet().await;
    assert!(io.sockets().is_empty());
    assert_eq!(io.of("/other").unwrap().len(), 1);
}

#[tokio::test]
async fn volatile_and_local_broadcasts_are_delivered_by_the_in_memory_adapter() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), _third] = three(addr, &mut sockets).await;
    sa.join("r");
    sb.join("r");
    // Clients that keep up get volatile packets (each one is read before the next is sent).
    io.to("r").volatile().emit("volatile", &1).unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(event(client, "volatile").await, [json!(1)]);
    }
    io.to("r").local().emit("local", &2).unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(event(client, "local").await, [json!(2)]);
    }
    io.local().volatile().to("r").emit("both", &3).unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(event(client, "both").await, [json!(3)]);
    }
    // A socket's own `volatile` emits to itself; its `local` broadcasts to the others.
    sa.volatile().emit("mine", &4).unwrap();
    assert_eq!(event(&mut a, "mine").await, [json!(4)]);
    b.assert_quiet().await;
    sa.local().emit("local-others", &5).unwrap();
    assert_eq!(event(&mut b, "local-others").await, [json!(5)]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn a_binary_broadcast_reaches_several_sockets_intact() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), (mut c, _)] = three(addr, &mut sockets).await;
    sa.join("r");
    sb.join("r");
    let first = Bytes::from((0..=255).collect::<Vec<u8>>());
    let second = Bytes::from_static(b"\x00\xff\x00");
    io.to("r")
        .emit_args(
            "files",
            &("two", first.clone(), json!({ "n": 1 }), second.clone()),
        )
        .unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.text().await,
            r#"52-["files","two",{"_placeholder":true,"num":0},{"n":1},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(client.binary().await, first);
        assert_eq!(client.binary().await, second);
    }
    c.assert_quiet().await;
}

#[tokio::test]
async fn a_socket_that_left_the_namespace_is_in_no_room() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let [(mut a, sa), (mut b, sb), _third] = three(addr, &mut sockets).await;
    sa.join("r");
    sb.join("r");
    a.send("1").await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while io.to("r").sockets().len() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "still in the room");
        tokio::task::yield_now().await;
    }
    // Joining after leaving the namespace does nothing.
    sa.join("s");
    assert!(io.to("s").sockets().is_empty());
    io.to("r").emit("r", &1).unwrap();
    assert_eq!(event(&mut b, "r").await, [json!(1)]);
    a.assert_quiet().await;
}

#[tokio::test]
async fn volatile_drops_the_packet_for_a_client_that_is_behind() {
    let (tx, mut sockets) = mpsc::unbounded_channel();
    let (addr, io) = common::server(Io::builder(), |io| hand_sockets(io, "/", tx)).await;
    // A polling client is behind whenever something waits for its next poll.
    let client = common::polling::PollingClient::connect(addr).await;
    client.join("/").await;
    let socket = recv(&mut sockets).await;

    io.volatile().emit("tick", &1).unwrap(); // nothing queued: delivered
    io.emit("news", &2).unwrap(); // queued behind it
    io.volatile().emit("tick", &3).unwrap(); // the client is behind: dropped
    socket.volatile().emit("tick", &4).unwrap(); // the same from the socket
    let polled = client.poll_frames().await;
    assert_eq!(
        polled.frames,
        [
            common::Frame::Text(r#"2["tick",1]"#.into()),
            common::Frame::Text(r#"2["news",2]"#.into()),
        ]
    );
    // Caught up again: volatile packets flow.
    io.volatile().emit("tick", &5).unwrap();
    assert_eq!(client.text().await, r#"2["tick",5]"#);
}

#[tokio::test]
async fn rooms_can_be_named_by_borrowed_strings() {
    let (addr, io, mut sockets) = socket_server(Io::builder(), |_| {}).await;
    let (mut a, sa) = join_root(addr, &mut sockets).await;
    let room = String::from("borrowed");
    let name: &str = &room;
    sa.join(name);
    io.to(name).emit("hi", &1).unwrap();
    assert_eq!(event(&mut a, "hi").await, [json!(1)]);
    assert_eq!(names(sa.rooms()), set([sa.id().as_str(), "borrowed"]));
}
