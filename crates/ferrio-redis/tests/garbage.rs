//! Garbage published on every channel the adapter reads is dropped and counted, and the
//! cluster keeps working. (The Node adapter's process dies on the first malformed message.)

mod support;

use std::time::Duration;

use ferrio_adapter_conformance::{Harness, eventually};
use ferrio_redis::RedisAdapterConfig;
use ferrio_redis::wire::{BroadcastMessage, Channels, WirePacket};
use serde_json::json;
use support::{Nodes, Peer, redis_url, unique_prefix};

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Every kind of malformed message the issue lists, and some more.
fn garbage() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Random bytes, of random lengths.
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    for _ in 0..200 {
        let len = (rng.next() % 1_000) as usize;
        out.push(rng.bytes(len));
    }
    // Truncated msgpack: a valid broadcast cut at every length.
    let valid = BroadcastMessage {
        uid: "garbage".into(),
        packet: WirePacket::event("/", "x", vec![rmpv::Value::Binary(vec![1; 40])]),
        opts: Default::default(),
    }
    .encode();
    for cut in 0..valid.len() {
        out.push(valid[..cut].to_vec());
    }
    // Length claims of 4 G elements: array, map, string, binary.
    for header in [0xdd, 0xdf, 0xdb, 0xc6] {
        out.push(vec![header, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]);
    }
    // 100 000 nested arrays, msgpack and JSON.
    let mut nested = vec![0x91; 100_000];
    nested.push(0xc0);
    out.push(nested);
    out.push(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    out.push(format!(r#"{{"type":5,"opts":{}}}"#, "[".repeat(100_000)).into_bytes());
    // Wrong types in the right places.
    let mp = |v: rmpv::Value| {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).expect("encodes into a Vec");
        buf
    };
    use rmpv::Value as V;
    out.push(mp(V::Array(vec![V::from(1), V::from(2), V::from(3)])));
    out.push(mp(V::Array(vec![
        V::from("u"),
        V::from("not a map"),
        V::Map(vec![]),
    ])));
    out.push(mp(V::Array(vec![
        V::from("u"),
        V::Map(vec![
            (V::from("type"), V::from(2)),
            (V::from("data"), V::from("x")),
        ]),
        V::Map(vec![]),
    ])));
    out.push(mp(V::Array(vec![
        V::from("u"),
        V::Map(vec![
            (V::from("type"), V::from(2)),
            (V::from("data"), V::Array(vec![V::from(42)])),
            (V::from("nsp"), V::from("/")),
        ]),
        V::Map(vec![(V::from("rooms"), V::from(7))]),
    ])));
    out.push(mp(V::Map(vec![(V::from("uid"), V::from(5))])));
    out.push(mp(V::Map(vec![(V::from("type"), V::from(7))])));
    // 5 MB strings, msgpack and JSON.
    let big = "x".repeat(5 * 1024 * 1024);
    out.push(mp(V::Array(vec![V::from(big.as_str()), V::Nil, V::Nil])));
    out.push(
        json!({"type": 1, "uid": big, "requestId": "r"})
            .to_string()
            .into_bytes(),
    );
    // JSON requests and responses with wrong field types.
    for bad in [
        json!({"type": "5"}),
        json!({"type": 5, "requestId": 3, "uid": []}),
        json!({"type": 5, "requestId": "r", "uid": "u", "opts": "x"}),
        json!({"type": 2, "opts": "x", "rooms": {}}),
        json!({"type": 2, "opts": {"rooms": [{}], "except": 1}, "rooms": ["a"]}),
        json!({"type": 3, "opts": {"rooms": []}, "rooms": [null, true]}),
        json!({"type": 4, "opts": {"rooms": []}, "close": "yes"}),
        json!({"type": 6, "data": "not an array"}),
        json!({"type": 6, "data": [42, "arg"]}),
        json!({"type": 6, "data": []}),
        json!({"type": 7, "uid": "u", "requestId": "r", "packet": [], "opts": {}}),
        json!({"type": 8, "requestId": "r", "clientCount": -1}),
        json!({"type": 9, "requestId": 5}),
        json!({"type": 1e308}),
        json!({"type": -1}),
        json!({"requestId": "unknown", "sockets": "x"}),
        json!([1, 2, 3]),
        json!("just a string"),
    ] {
        out.push(bad.to_string().into_bytes());
    }
    out.push(b"{not json".to_vec());
    out.push(vec![b'{'; 10]);
    out.push(Vec::new());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_channel_is_dropped_and_the_cluster_keeps_working() {
    let prefix = unique_prefix("garbage");
    let nodes = Nodes::new(redis_url(), RedisAdapterConfig::default().prefix(&prefix));
    let harness = Harness::start(&nodes, 2).await;
    let mut c0 = harness.client(0, &json!({})).await;
    let mut c1 = harness.client(1, &json!({})).await;
    harness.socket(1, &c1).join("room");
    let channels = Channels::new(&prefix, "/");
    let mut targets = vec![
        channels.broadcast().to_owned(),
        channels.room("room"),
        channels.request().to_owned(),
        channels.response().to_owned(),
    ];
    for i in 0..2 {
        targets.push(channels.response_to(nodes.adapter(i).uid()));
    }
    let mut peer = Peer::connect(&redis_url(), &[], &[]).await;

    // A request of server 0 is pending while the garbage arrives; its answers still count.
    let io0 = harness.io(0).clone();
    let pending = tokio::spawn(async move { io0.fetch_sockets().await });
    let messages = garbage();
    for channel in &targets {
        for message in &messages {
            peer.publish(channel, message).await;
        }
    }

    // Every server dropped what it read, counted it, and goes on.
    let expected = messages.len() as u64;
    eventually("both servers counted the garbage", || {
        (0..2).all(|i| nodes.adapter(i).health().malformed >= expected)
    })
    .await;
    let sockets = pending
        .await
        .expect("joined")
        .expect("fetching sockets during the garbage works");
    assert_eq!(sockets.len(), 2);

    harness.io(0).emit("after", &0).expect("emitted");
    assert_eq!(c0.event().await.1, json!(["after", 0]));
    assert_eq!(c1.event().await.1, json!(["after", 0]));
    harness.io(1).to("room").emit("room", &1).expect("emitted");
    assert_eq!(c1.event().await.1, json!(["room", 1]));
    harness.io(1).emit("back", &2).expect("emitted");
    assert_eq!(c0.event().await.1, json!(["back", 2]));
    assert_eq!(c1.event().await.1, json!(["back", 2]));
    let sockets = harness.io(1).fetch_sockets().await.expect("answered");
    assert_eq!(sockets.len(), 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
    for i in 0..2 {
        let health = nodes.adapter(i).health();
        assert!(health.connected, "server {i}: {health:?}");
        eprintln!("server {i}: {health:?}");
    }
}
