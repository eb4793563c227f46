//! Golden fixtures: bytes the real `@socket.io/redis-adapter` 8.3 published (see
//! `fixtures/README.md`). Every fixture decodes, lands on the channel our [`Channels`] names,
//! and encodes back to the very same bytes (the same JSON value where application objects
//! are inside: their key order is not kept).

use std::collections::HashMap;
use std::path::Path;

use ferrio::adapter::{BroadcastFlags, Room};
use ferrio_redis::wire::{
    BroadcastMessage, Channels, Limits, ReceivedOn, Request, RequestType, Response,
};
use rmpv::Value;

struct Fixture {
    name: String,
    channel: String,
    bytes: Vec<u8>,
}

fn fixtures(prefix: &str) -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fixtures.json")).unwrap()).unwrap();
    let all: Vec<Fixture> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let name = entry["name"].as_str().unwrap().to_owned();
            let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
            Fixture {
                channel: entry["channel"].as_str().unwrap().to_owned(),
                name,
                bytes,
            }
        })
        .collect();
    assert_eq!(all.len(), 24, "the generator writes 24 fixtures");
    all.into_iter()
        .filter(|f| f.name.starts_with(prefix))
        .collect()
}

fn channels() -> Channels {
    Channels::new("socket.io", "/chat")
}

fn rooms(names: &[&str]) -> Vec<Room> {
    names.iter().map(|&n| Room::from(n.to_owned())).collect()
}

#[test]
fn broadcasts_decode_and_encode_byte_identically() {
    let fixtures = fixtures("broadcast_");
    assert_eq!(fixtures.len(), 4);
    for f in fixtures {
        let message = BroadcastMessage::decode(&f.bytes, &Limits::default())
            .unwrap_or_else(|err| panic!("{}: {err}", f.name));
        assert_eq!(message.encode(), f.bytes, "{}", f.name);
        assert_eq!(
            channels().for_rooms(&message.opts.rooms),
            f.channel,
            "{}",
            f.name
        );
        assert_eq!(message.packet.packet_type, 2);
        assert_eq!(message.packet.nsp, "/chat");
        let on = channels().received_on(f.channel.as_bytes());
        match f.name.as_str() {
            "broadcast_all" => {
                assert_eq!(on, Some(ReceivedOn::Broadcast));
                assert_eq!(message.packet.event_name(), Some("hello"));
                assert_eq!(message.packet.data[2], Value::Binary(vec![1, 2, 3]));
                assert_eq!(message.opts.flags, BroadcastFlags::default());
            }
            "broadcast_room" => {
                assert_eq!(on, Some(ReceivedOn::Room("room1")));
                assert_eq!(message.opts.rooms, rooms(&["room1"]));
                assert_eq!(message.opts.except, rooms(&["AAAAAAAAAAAAAAAAAAAA"]));
                assert!(message.opts.flags.volatile);
                let numbers: Vec<_> = message.packet.data[1..].iter().map(Value::as_i64).collect();
                assert_eq!(
                    numbers,
                    [Some(-7), Some(300), Some(70000), Some(5_000_000_000)]
                );
            }
            "broadcast_rooms" => {
                assert_eq!(on, Some(ReceivedOn::Broadcast));
                assert_eq!(message.opts.rooms, rooms(&["r1", "r2"]));
                assert_eq!(message.opts.flags.timeout, Some(1000));
            }
            "broadcast_numbers" => {
                // notepack writes -0 as the integer 0, and 2^53 as uint 64.
                assert_eq!(message.packet.data[19], Value::from(0));
                assert_eq!(message.packet.data[18].as_u64(), Some(1 << 53));
                assert_eq!(message.packet.data[21], Value::F64(-1.5));
            }
            other => panic!("unexpected fixture {other}"),
        }
    }
}

/// The request fixtures, decoded, by name; each checked to encode back byte for byte.
fn requests() -> HashMap<String, Request> {
    let mut out = HashMap::new();
    for f in fixtures("request_") {
        assert_eq!(f.channel, channels().request(), "{}", f.name);
        let request = Request::decode(&f.bytes, &Limits::default())
            .unwrap_or_else(|err| panic!("{}: {err}", f.name));
        assert_eq!(request.encode(), f.bytes, "{}", f.name);
        out.insert(f.name, request);
    }
    out
}

#[test]
fn requests_decode_and_encode_byte_identically() {
    let requests = requests();
    assert_eq!(requests.len(), 8);
    let kind = |name: &str| requests[name].request_type();
    assert_eq!(kind("request_all_rooms"), RequestType::AllRooms);
    assert_eq!(kind("request_remote_fetch"), RequestType::RemoteFetch);
    match &requests["request_remote_join"] {
        Request::RemoteJoin {
            uid,
            opts,
            rooms: joined,
        } => {
            assert!(uid.is_some());
            assert_eq!(opts.rooms, rooms(&["room1"]));
            assert_eq!(opts.except, rooms(&["x"]));
            assert_eq!(*joined, rooms(&["joined"]));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        requests["request_remote_leave"],
        Request::RemoteLeave { .. }
    ));
    assert!(matches!(
        requests["request_remote_disconnect"],
        Request::RemoteDisconnect { close: true, .. }
    ));
    match &requests["request_server_side_emit"] {
        Request::ServerSideEmit {
            request_id: None,
            data,
            ..
        } => {
            assert_eq!(
                *data,
                vec![
                    serde_json::json!("ping"),
                    1.into(),
                    serde_json::json!({"k": "v"})
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        requests["request_server_side_emit_ack"],
        Request::ServerSideEmit {
            request_id: Some(_),
            ..
        }
    ));
    match &requests["request_broadcast_ack"] {
        Request::Broadcast { packet, opts, .. } => {
            assert_eq!(packet.event_name(), Some("question"));
            assert_eq!(packet.data[1], Value::Binary(vec![9, 8]));
            assert_eq!(opts.flags.timeout, Some(2000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn responses_decode_and_encode_byte_identically() {
    // What each request id asked, as the asking server would remember it.
    let mut pending: HashMap<String, RequestType> =
        HashMap::from([("req000".to_owned(), RequestType::Sockets)]);
    for request in requests().into_values() {
        let id = match &request {
            Request::Sockets { request_id, .. }
            | Request::AllRooms { request_id, .. }
            | Request::RemoteFetch { request_id, .. }
            | Request::Broadcast { request_id, .. } => Some(request_id.clone()),
            Request::ServerSideEmit { request_id, .. } => request_id.clone(),
            _ => None,
        };
        if let Some(id) = id {
            pending.insert(id, request.request_type());
        }
    }

    let fixtures = fixtures("response_");
    assert_eq!(fixtures.len(), 6);
    for f in fixtures {
        let response =
            Response::decode(&f.bytes, &Limits::default(), |id| pending.get(id).copied())
                .unwrap_or_else(|err| panic!("{}: {err}", f.name));
        if f.name == "response_remote_fetch" {
            // Application objects (socket.data here) come out with their keys sorted: the
            // workspace's serde_json has no `preserve_order`. Same JSON value, other bytes.
            let ours: serde_json::Value = serde_json::from_slice(&response.encode()).unwrap();
            let theirs: serde_json::Value = serde_json::from_slice(&f.bytes).unwrap();
            assert_eq!(ours, theirs, "{}", f.name);
        } else {
            assert_eq!(response.encode(), f.bytes, "{}", f.name);
        }
        assert!(pending.contains_key(response.request_id()) || f.name == "response_sockets");
        let on = channels().received_on(f.channel.as_bytes());
        match (f.name.as_str(), &response) {
            ("response_sockets", Response::Sockets { sockets, .. }) => {
                assert_eq!(on, Some(ReceivedOn::ResponseTo("abcdef")));
                assert_eq!(*sockets, vec!["AAAAAAAAAAAAAAAAAAAA".to_owned()]);
            }
            ("response_all_rooms", Response::AllRooms { rooms: all, .. }) => {
                assert!(matches!(on, Some(ReceivedOn::ResponseTo(_))));
                assert_eq!(*all, rooms(&["AAAAAAAAAAAAAAAAAAAA", "room1"]));
            }
            ("response_remote_fetch", Response::RemoteFetch { sockets, .. }) => {
                let [socket] = sockets.as_slice() else {
                    panic!("{sockets:?}")
                };
                assert_eq!(socket.id.as_str(), "AAAAAAAAAAAAAAAAAAAA");
                assert_eq!(socket.handshake.address, "::1");
                assert_eq!(socket.handshake.issued, 1_796_284_800_000);
                assert_eq!(socket.rooms, rooms(&["AAAAAAAAAAAAAAAAAAAA", "room1"]));
                assert_eq!(socket.data, serde_json::json!({"user": "alice", "n": 1}));
            }
            ("response_server_side_emit", Response::ServerSideEmit { data, .. }) => {
                // Acks of server-side emits always go to the shared channel.
                assert_eq!(on, Some(ReceivedOn::Response));
                assert_eq!(*data, serde_json::json!("pong"));
            }
            (
                "response_broadcast_client_count",
                Response::BroadcastClientCount { client_count, .. },
            ) => {
                assert_eq!(*client_count, 1);
            }
            ("response_broadcast_ack", Response::BroadcastAck { packet, .. }) => {
                assert_eq!(*packet, Value::Binary(vec![4, 5]));
            }
            (name, response) => panic!("{name}: unexpected {response:?}"),
        }
    }
}

#[test]
fn untyped_responses_need_a_known_request() {
    let f = fixtures("response_all_rooms").remove(0);
    assert!(Response::decode(&f.bytes, &Limits::default(), |_| None).is_err());
}

#[test]
fn emitter_messages_decode() {
    let fixtures = fixtures("emitter_");
    assert_eq!(fixtures.len(), 6);
    for f in fixtures {
        if f.name.starts_with("emitter_broadcast") {
            let message = BroadcastMessage::decode(&f.bytes, &Limits::default())
                .unwrap_or_else(|err| panic!("{}: {err}", f.name));
            assert_eq!(message.uid, "emitter");
            assert_eq!(
                channels().for_rooms(&message.opts.rooms),
                f.channel,
                "{}",
                f.name
            );
            // The emitter writes opts as {rooms, flags, except}: same message, other bytes.
            let again = BroadcastMessage::decode(&message.encode(), &Limits::default()).unwrap();
            assert_eq!(again, message);
            if f.name == "emitter_broadcast_room" {
                assert_eq!(message.opts.except, rooms(&["x"]));
                assert_eq!(message.packet.data[1], Value::Binary(vec![1]));
            }
            continue;
        }
        assert_eq!(f.channel, channels().request(), "{}", f.name);
        let request = Request::decode(&f.bytes, &Limits::default())
            .unwrap_or_else(|err| panic!("{}: {err}", f.name));
        assert_eq!(request.encode(), f.bytes, "{}", f.name);
        match request {
            Request::RemoteJoin { uid, .. }
            | Request::RemoteLeave { uid, .. }
            | Request::RemoteDisconnect { uid, .. } => assert_eq!(uid, None),
            Request::ServerSideEmit {
                uid, request_id, ..
            } => {
                assert_eq!(uid.as_deref(), Some("emitter"));
                assert_eq!(request_id, None);
            }
            other => panic!("{}: unexpected {other:?}", f.name),
        }
    }
}
