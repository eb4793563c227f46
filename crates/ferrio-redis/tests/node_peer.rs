//! A ferrio server on Redis, and a raw Redis client playing a Node.js server of the same
//! cluster: every request type (0-7) and broadcast flag in both directions, in the wire
//! format of `@socket.io/redis-adapter` 8.3 (the golden fixtures under `tests/fixtures`
//! show that this crate's encoder writes what the Node packages write).

mod support;

use std::time::Duration;

use ferrio::adapter::{BroadcastOptions, RemoteSocketData, Room};
use ferrio_adapter_conformance::{Harness, Received, eventually};
use ferrio_redis::wire::{
    BroadcastMessage, Channels, Limits, Request, RequestType, Response, WirePacket,
};
use ferrio_redis::{RedisAdapterConfig, ResponseChannel};
use rmpv::Value as Mp;
use serde_json::json;
use support::{Nodes, Peer, redis_url, unique_prefix};

const NODE_UID: &str = "nodepeer";

struct Setup {
    nodes: Nodes,
    harness: Harness,
    channels: Channels,
}

async fn setup(config: RedisAdapterConfig) -> Setup {
    let prefix = unique_prefix("peer");
    let nodes = Nodes::new(redis_url(), config.prefix(&prefix));
    let harness = Harness::start(&nodes, 1).await;
    Setup {
        nodes,
        harness,
        channels: Channels::new(&prefix, "/"),
    }
}

fn limits() -> Limits {
    Limits::default()
}

fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms.iter().map(|r| Room::from(r.to_string())).collect(),
        except: except.iter().map(|r| Room::from(r.to_string())).collect(),
        ..Default::default()
    }
}

fn broadcast(uid: &str, nsp: &str, event: &str, args: Vec<Mp>, opts: BroadcastOptions) -> Vec<u8> {
    BroadcastMessage {
        uid: uid.to_owned(),
        packet: WirePacket::event(nsp, event, args),
        opts,
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_from_a_node_server_reach_the_right_local_sockets() {
    let s = setup(RedisAdapterConfig::default()).await;
    let mut peer = Peer::connect(&redis_url(), &[], &[]).await;
    let mut a = s.harness.client(0, &json!({})).await;
    let mut b = s.harness.client(1, &json!({})).await;
    s.harness.socket(0, &a).join("r");

    // To everyone, with a binary value nested in an object: a placeholder and an attachment.
    let nested = Mp::Map(vec![(Mp::from("bin"), Mp::Binary(vec![1, 2, 3]))]);
    let message = broadcast(
        NODE_UID,
        "/",
        "news",
        vec![nested, Mp::from(7)],
        opts(&[], &[]),
    );
    peer.publish(s.channels.broadcast(), &message).await;
    for client in [&mut a, &mut b] {
        let text = client.text().await;
        assert_eq!(
            text,
            r#"51-["news",{"bin":{"_placeholder":true,"num":0}},7]"#
        );
        assert_eq!(client.next().await, Received::Binary(vec![1, 2, 3].into()));
    }

    // To one room, on the room's channel: its member only.
    let message = broadcast(NODE_UID, "/", "room", vec![], opts(&["r"], &[]));
    peer.publish(&s.channels.room("r"), &message).await;
    assert_eq!(a.event().await.1, json!(["room"]));
    b.assert_quiet().await;

    // Everyone except a room.
    let message = broadcast(NODE_UID, "/", "except", vec![], opts(&[], &["r"]));
    peer.publish(s.channels.broadcast(), &message).await;
    assert_eq!(b.event().await.1, json!(["except"]));
    a.assert_quiet().await;

    // Its own messages, and another namespace's, are ignored.
    let own = s.nodes.adapter(0).uid().to_owned();
    let message = broadcast(&own, "/", "own", vec![], opts(&[], &[]));
    peer.publish(s.channels.broadcast(), &message).await;
    let message = broadcast(NODE_UID, "/other", "other", vec![], opts(&[], &[]));
    peer.publish(s.channels.broadcast(), &message).await;
    // The emitter's uid is an ordinary one.
    let message = broadcast("emitter", "/", "emitted", vec![], opts(&[], &[]));
    peer.publish(s.channels.broadcast(), &message).await;
    assert_eq!(a.event().await.1, json!(["emitted"]));
    assert_eq!(b.event().await.1, json!(["emitted"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_every_type_are_answered_as_a_node_server_expects() {
    let s = setup(RedisAdapterConfig::default()).await;
    let response = s.channels.response().to_owned();
    let mut peer = Peer::connect(&redis_url(), std::slice::from_ref(&response), &[]).await;
    let mut a = s.harness.client(0, &json!({"data": {"n": 1}})).await;
    let mut b = s.harness.client(1, &json!({})).await;
    s.harness.socket(0, &a).join("r");
    let request = s.channels.request().to_owned();
    let pending = |kind| move |_: &str| Some(kind);

    // 0: socket ids in rooms.
    let ask = Request::Sockets {
        uid: NODE_UID.into(),
        request_id: "q0".into(),
        rooms: vec!["r".into()],
    };
    peer.publish(&request, &ask.encode()).await;
    let answer = Response::decode(
        &peer.next_on(&response).await,
        &limits(),
        pending(RequestType::Sockets),
    )
    .expect("a type 0 answer");
    assert_eq!(
        answer,
        Response::Sockets {
            request_id: "q0".into(),
            sockets: vec![a.id.clone()]
        }
    );

    // 1: every room.
    let ask = Request::AllRooms {
        uid: NODE_UID.into(),
        request_id: "q1".into(),
    };
    peer.publish(&request, &ask.encode()).await;
    let answer = Response::decode(
        &peer.next_on(&response).await,
        &limits(),
        pending(RequestType::AllRooms),
    );
    let Ok(Response::AllRooms { request_id, rooms }) = answer else {
        panic!("not a type 1 answer: {answer:?}");
    };
    assert_eq!(request_id, "q1");
    for room in ["r", a.id.as_str(), b.id.as_str()] {
        assert!(
            rooms.iter().any(|r| r.as_ref() == room),
            "{room} in {rooms:?}"
        );
    }

    // 5: the sockets, described.
    let ask = Request::RemoteFetch {
        uid: NODE_UID.into(),
        request_id: "q5".into(),
        opts: opts(&["r"], &[]),
    };
    peer.publish(&request, &ask.encode()).await;
    let answer = Response::decode(
        &peer.next_on(&response).await,
        &limits(),
        pending(RequestType::RemoteFetch),
    );
    let Ok(Response::RemoteFetch { sockets, .. }) = answer else {
        panic!("not a type 5 answer: {answer:?}");
    };
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].id.as_str(), a.id);
    assert_eq!(sockets[0].data, json!({"n": 1}));
    assert_eq!(sockets[0].handshake.query["x"], "0");
    assert!(sockets[0].rooms.iter().any(|r| r.as_ref() == "r"));

    // 2 and 3, as the emitter sends them (no uid): join, then leave.
    let join = Request::RemoteJoin {
        uid: None,
        opts: opts(&[b.id.as_str()], &[]),
        rooms: vec!["s".into()],
    };
    peer.publish(&request, &join.encode()).await;
    let socket_b = s.harness.socket(1, &b);
    eventually("b joins s", || {
        socket_b.rooms().iter().any(|r| r.as_ref() == "s")
    })
    .await;
    let leave = Request::RemoteLeave {
        uid: Some(NODE_UID.into()),
        opts: opts(&["s"], &[]),
        rooms: vec!["s".into()],
    };
    peer.publish(&request, &leave.encode()).await;
    eventually("b leaves s", || {
        !socket_b.rooms().iter().any(|r| r.as_ref() == "s")
    })
    .await;

    // 6 with an ack: the handler's answer goes to the shared response channel.
    s.harness.io(0).on_server_event(
        "ping",
        |args: ferrio::Payload, ack: ferrio::adapter::ServerAck| {
            let n: i64 = args.get(0).unwrap_or_default();
            let _ = ack.send(&json!({ "pong": n }));
        },
    );
    let ask = Request::ServerSideEmit {
        uid: Some(NODE_UID.into()),
        request_id: Some("q6".into()),
        data: vec![json!("ping"), json!(41)],
    };
    peer.publish(&request, &ask.encode()).await;
    let answer = Response::decode(&peer.next_on(&response).await, &limits(), |_| None);
    assert_eq!(
        answer.expect("a type 6 answer"),
        Response::ServerSideEmit {
            request_id: "q6".into(),
            data: json!({"pong": 41})
        }
    );

    // 6 without an ack, from the emitter.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    s.harness
        .io(0)
        .on_server_event("note", move |args: ferrio::Payload, _ack| {
            let _ = tx.send(args.get::<String>(0).unwrap_or_default());
        });
    let note = Request::ServerSideEmit {
        uid: Some("emitter".into()),
        request_id: None,
        data: vec![json!("note"), json!("hi")],
    };
    peer.publish(&request, &note.encode()).await;
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got.expect("the handler runs").as_deref(), Some("hi"));

    // 7: a broadcast with acks: the count (type 8, JSON), then one ack each (type 9, msgpack).
    let mut wire_opts = opts(&[], &[]);
    wire_opts.flags.timeout = Some(2_000);
    let ask = Request::Broadcast {
        uid: NODE_UID.into(),
        request_id: "q7".into(),
        packet: WirePacket::event("/", "question", vec![Mp::from("?")]),
        opts: wire_opts,
    };
    peer.publish(&request, &ask.encode()).await;
    let count = Response::decode(&peer.next_on(&response).await, &limits(), |_| None);
    assert_eq!(
        count.expect("a type 8 answer"),
        Response::BroadcastClientCount {
            request_id: "q7".into(),
            client_count: 2
        }
    );
    for (client, answer) in [(&mut a, "yes"), (&mut b, "no")] {
        let (id, event) = client.event().await;
        assert_eq!(event, json!(["question", "?"]));
        let id = id.expect("asked with an ack id");
        client.send(&format!("3{id}[\"{answer}\"]")).await;
    }
    let mut answers = Vec::new();
    for _ in 0..2 {
        let bytes = peer.next_on(&response).await;
        assert_ne!(bytes.first(), Some(&b'{'), "type 9 is msgpack");
        match Response::decode(&bytes, &limits(), |_| None) {
            Ok(Response::BroadcastAck { request_id, packet }) => {
                assert_eq!(request_id, "q7");
                answers.push(packet.as_str().unwrap_or_default().to_owned());
            }
            other => panic!("not a type 9 answer: {other:?}"),
        }
    }
    answers.sort();
    assert_eq!(answers, ["no", "yes"]);

    // 4: disconnect (the namespace only: the connection stays).
    let bye = Request::RemoteDisconnect {
        uid: None,
        opts: opts(&["r"], &[]),
        close: false,
    };
    peer.publish(&request, &bye.encode()).await;
    assert_eq!(a.text().await, "1");
    b.assert_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_ferrio_publishes_is_what_a_node_server_reads() {
    let s = setup(RedisAdapterConfig::default()).await;
    let request = s.channels.request().to_owned();
    let response = s.channels.response().to_owned();
    // Subscribed to the request channel, the peer counts as a server.
    let mut peer = Peer::connect(
        &redis_url(),
        std::slice::from_ref(&request),
        &[s.channels.broadcast_pattern()],
    )
    .await;
    let io = s.harness.io(0).clone();
    let uid = s.nodes.adapter(0).uid().to_owned();
    let mut a = s.harness.client(0, &json!({})).await;
    s.harness.socket(0, &a).join("r");
    assert_eq!(io.server_count().await.expect("counted"), 2);

    // Every broadcast flag, each on its channel.
    io.emit("all", &1).expect("emitted");
    let bytes = peer.next_on(s.channels.broadcast()).await;
    let message = BroadcastMessage::decode(&bytes, &limits()).expect("a broadcast");
    assert_eq!(message.uid, uid);
    assert_eq!(message.packet.nsp, "/");
    assert_eq!(message.packet.data, vec![Mp::from("all"), Mp::from(1)]);

    io.to("r")
        .emit("one-room", &[0u8, 255].as_slice())
        .expect("emitted");
    let bytes = peer.next_on(&s.channels.room("r")).await;
    let message = BroadcastMessage::decode(&bytes, &limits()).expect("a broadcast");
    assert_eq!(message.opts.rooms, vec![Room::from("r")]);

    io.to("r")
        .to("s")
        .except("t")
        .volatile()
        .emit("flags", &())
        .expect("emitted");
    let bytes = peer.next_on(s.channels.broadcast()).await;
    let message = BroadcastMessage::decode(&bytes, &limits()).expect("a broadcast");
    assert_eq!(message.opts.rooms.len(), 2);
    assert_eq!(message.opts.except, vec![Room::from("t")]);
    assert!(message.opts.flags.volatile);

    // Binary anywhere: inline bin, no placeholder.
    io.emit("bin", &json!({"deep": [1]})).expect("emitted");
    let _ = peer.next_on(s.channels.broadcast()).await;
    io.emit_args("bin", &(serde_bytes_like(&[9, 9]),))
        .expect("emitted");
    let bytes = peer.next_on(s.channels.broadcast()).await;
    let message = BroadcastMessage::decode(&bytes, &limits()).expect("a broadcast");
    assert_eq!(message.packet.data[1], Mp::Binary(vec![9, 9]));

    // Local broadcasts are never published.
    io.local().emit("local", &()).expect("emitted");
    // (the client got every broadcast so far; only the acks below are read from it)
    while a.next_within(Duration::from_millis(300)).await.is_some() {}
    let published = peer.drain(Duration::from_millis(300)).await;
    assert!(
        published.iter().all(|(channel, _)| channel == &request),
        "nothing published for a local broadcast: {published:?}"
    );

    // 5: fetching sockets asks the peer, which answers as a Node server.
    let fetch = tokio::spawn({
        let io = io.clone();
        async move { io.fetch_sockets().await }
    });
    let Ok(Request::RemoteFetch {
        uid: asker,
        request_id,
        ..
    }) = Request::decode(&peer.next_on(&request).await, &limits())
    else {
        panic!("not a type 5 request");
    };
    assert_eq!(asker, uid);
    let remote: RemoteSocketData = serde_json::from_value(json!({
        "id": "aaaaaaaaaaaaaaaaaaaa",
        "handshake": {"headers": {}, "time": "now", "address": "::1", "xdomain": false,
            "secure": false, "issued": 1, "url": "/", "query": {"EIO": "4"}, "auth": {}},
        "rooms": ["aaaaaaaaaaaaaaaaaaaa", "r"],
        "data": {"from": "node"}
    }))
    .expect("a Node socket description");
    let answer = Response::RemoteFetch {
        request_id,
        sockets: vec![remote],
    };
    peer.publish(&response, &answer.encode()).await;
    let sockets = fetch.await.expect("joined").expect("every server answered");
    let mut ids: Vec<String> = sockets.iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    let mut expected = vec![a.id.clone(), "aaaaaaaaaaaaaaaaaaaa".to_owned()];
    expected.sort();
    assert_eq!(ids, expected);

    // 1: listing rooms.
    let rooms = tokio::spawn({
        let io = io.clone();
        async move { io.of("/").expect("root").rooms().await }
    });
    let Ok(Request::AllRooms { request_id, .. }) =
        Request::decode(&peer.next_on(&request).await, &limits())
    else {
        panic!("not a type 1 request");
    };
    let answer = Response::AllRooms {
        request_id,
        rooms: vec!["node-room".into()],
    };
    peer.publish(&response, &answer.encode()).await;
    let rooms = rooms.await.expect("joined").expect("every server answered");
    assert!(rooms.iter().any(|r| r.as_ref() == "node-room"));
    assert!(rooms.iter().any(|r| r.as_ref() == "r"));

    // 6: a server-side event with an ack.
    let emitted = tokio::spawn({
        let io = io.clone();
        async move { io.server_side_emit_with_ack("hello", &(1, "two")).await }
    });
    let Ok(Request::ServerSideEmit {
        request_id: Some(request_id),
        data,
        ..
    }) = Request::decode(&peer.next_on(&request).await, &limits())
    else {
        panic!("not a type 6 request with an ack");
    };
    assert_eq!(data, vec![json!("hello"), json!(1), json!("two")]);
    let answer = Response::ServerSideEmit {
        request_id,
        data: json!("ok"),
    };
    peer.publish(&response, &answer.encode()).await;
    let answers = emitted
        .await
        .expect("joined")
        .expect("every server answered");
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].get::<String>(0).expect("a string"), "ok");

    // 7: a broadcast with acks: the local client's answer and the peer's one.
    let acks = io
        .timeout(Duration::from_secs(3))
        .emit_with_ack("poll", &"?")
        .expect("emitted");
    let acks = tokio::spawn(acks);
    let (id, _) = a.event().await;
    a.send(&format!("3{}[\"local\"]", id.expect("an ack id")))
        .await;
    let Ok(Request::Broadcast {
        request_id, opts, ..
    }) = Request::decode(&peer.next_on(&request).await, &limits())
    else {
        panic!("not a type 7 request");
    };
    assert_eq!(opts.flags.timeout, Some(3_000));
    let count = Response::BroadcastClientCount {
        request_id: request_id.clone(),
        client_count: 1,
    };
    peer.publish(&response, &count.encode()).await;
    let ack = Response::BroadcastAck {
        request_id,
        packet: Mp::from("remote"),
    };
    peer.publish(&response, &ack.encode()).await;
    let answers = acks.await.expect("joined");
    let mut texts: Vec<String> = answers
        .into_iter()
        .map(|(_, answer)| {
            answer
                .expect("answered")
                .get::<String>(0)
                .expect("a string")
        })
        .collect();
    texts.sort();
    assert_eq!(texts, ["local", "remote"]);

    // 2, 3 and 4 carry this server's uid.
    io.to("r").join("t").expect("joined");
    io.to("r").leave("t").expect("left");
    io.to("nobody").disconnect().expect("disconnected");
    for expected in [
        RequestType::RemoteJoin,
        RequestType::RemoteLeave,
        RequestType::RemoteDisconnect,
    ] {
        let request = Request::decode(&peer.next_on(&request).await, &limits()).expect("a request");
        assert_eq!(request.request_type(), expected);
        let (Request::RemoteJoin { uid: Some(u), .. }
        | Request::RemoteLeave { uid: Some(u), .. }
        | Request::RemoteDisconnect { uid: Some(u), .. }) = request
        else {
            panic!("no uid in {request:?}");
        };
        assert_eq!(u, uid);
    }
}

/// Serializes as bytes (a binary argument) without a helper crate.
fn serde_bytes_like(bytes: &[u8]) -> BytesArg<'_> {
    BytesArg(bytes)
}

struct BytesArg<'a>(&'a [u8]);

impl serde::Serialize for BytesArg<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_go_to_the_askers_channel_when_configured() {
    let s = setup(RedisAdapterConfig::default().response_channel(ResponseChannel::Specific)).await;
    let own = s.channels.response_to(NODE_UID);
    let shared = s.channels.response().to_owned();
    let mut peer = Peer::connect(&redis_url(), &[own.clone(), shared], &[]).await;
    let a = s.harness.client(0, &json!({})).await;
    let ask = Request::Sockets {
        uid: NODE_UID.into(),
        request_id: "q".into(),
        rooms: vec![],
    };
    peer.publish(s.channels.request(), &ask.encode()).await;
    let (channel, bytes) = peer.next().await;
    assert_eq!(channel, own);
    let answer = Response::decode(&bytes, &limits(), |_| Some(RequestType::Sockets));
    assert_eq!(
        answer.expect("a type 0 answer"),
        Response::Sockets {
            request_id: "q".into(),
            sockets: vec![a.id.clone()]
        }
    );
}
