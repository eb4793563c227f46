//! Connection state recovery across the cluster on the Streams adapter: a client lost on one
//! server recovers on another (even once the first is gone), with its id, rooms and the
//! events it missed, each with its stream entry id as offset. Garbage on the stream and the
//! channels is dropped and counted.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ferrio::adapter::Recovery;
use ferrio::{Io, IoBuilder, SocketRef};
use ferrio_redis::{RedisAdapterConfig, RedisStreamsAdapter, RedisStreamsConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{redis_url, unique_prefix};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

struct Node {
    addr: SocketAddr,
    io: Io,
    redis: RedisStreamsAdapter,
    task: tokio::task::JoinHandle<()>,
}

fn config(name: &str) -> RedisStreamsConfig {
    RedisStreamsConfig::default()
        .stream_name(format!("{name}-stream"))
        .session_prefix(format!("{name}:session:"))
        .connection(RedisAdapterConfig::default().prefix(name.to_owned()))
}

/// A server with recovery on; a socket whose auth has `room` joins it.
async fn node(name: &str) -> Node {
    let client = redis::Client::open(redis_url()).expect("a valid Redis URL");
    let redis = RedisStreamsAdapter::new(client, config(name));
    let (layer, io) = IoBuilder::default()
        .connection_state_recovery(
            Recovery::default().max_disconnection_duration(Duration::from_secs(60)),
        )
        .adapter(redis.factory())
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        let auth = socket.auth().get::<Value>(0).unwrap_or_default();
        if let Some(room) = auth.get("room").and_then(Value::as_str) {
            socket.join(room.to_owned());
        }
    });
    io.ready().await.expect("the adapter starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().layer(layer);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Node {
        addr,
        io,
        redis,
        task,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Ws,
    sid: String,
    pid: String,
}

impl Client {
    /// Connects with `auth`; returns the client and the events received before its CONNECT
    /// reply (a recovered client's missed events).
    async fn connect(addr: SocketAddr, auth: Value) -> (Self, Vec<Value>) {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let _open = next_text(&mut ws).await;
        ws.send(Message::text(format!("40{auth}"))).await.unwrap();
        let mut missed = Vec::new();
        loop {
            let text = next_text(&mut ws).await;
            if let Some(body) = text.strip_prefix("42") {
                missed.push(serde_json::from_str(body).unwrap());
                continue;
            }
            let body = text.strip_prefix("40").unwrap_or_else(|| panic!("{text}"));
            let json: Value = serde_json::from_str(body).unwrap();
            let client = Self {
                ws,
                sid: json["sid"].as_str().unwrap().to_owned(),
                pid: json["pid"].as_str().unwrap().to_owned(),
            };
            return (client, missed);
        }
    }

    async fn event(&mut self) -> Value {
        loop {
            let text = next_text(&mut self.ws).await;
            if let Some(body) = text.strip_prefix("42") {
                return serde_json::from_str(body).unwrap();
            }
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("something arrives in time")
            .expect("the connection is open")
            .expect("a WebSocket message");
        if let Message::Text(text) = message {
            if text.as_str() == "2" {
                let _ = ws.send(Message::text("3")).await;
                continue;
            }
            return text.to_string();
        }
    }
}

fn offset(event: &Value) -> String {
    event
        .as_array()
        .and_then(|a| a.last())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

async fn command() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until the session of `pid` is in Redis.
async fn session_kept(name: &str, pid: &str) {
    let mut conn = command().await;
    let key = format!("{name}:session:{pid}");
    for _ in 0..500 {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if exists {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the session {key} was never written");
}

/// The ids of the stream's entries after `after`.
async fn entries_after(name: &str, after: &str) -> Vec<String> {
    let mut conn = command().await;
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{name}-stream"))
        .arg(after)
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id != after)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_on_another_server_with_the_exact_missed_offsets() {
    let name = unique_prefix("streams-recovery");
    let (a, b) = (node(&name).await, node(&name).await);
    let (mut client, _) = Client::connect(a.addr, json!({"room": "news"})).await;
    let (sid, pid) = (client.sid.clone(), client.pid.clone());

    b.io.emit("before", &1).unwrap();
    let first = client.event().await;
    assert_eq!(first[0], "before");
    let seen = offset(&first);
    assert!(
        entries_after(&name, "-").await.contains(&seen),
        "the offset is the entry id"
    );

    drop(client);
    session_kept(&name, &pid).await;
    b.io.emit("all", &2).unwrap();
    b.io.to("news").emit("room", &3).unwrap();
    b.io.to("elsewhere").emit("not-mine", &4).unwrap();
    b.io.except("news").emit("excepted", &5).unwrap();
    // From one server, so the stream holds them in this order.
    b.io.to(sid.as_str()).emit("own", &6).unwrap();
    // Everything is on the stream before the client comes back.
    let mut after = Vec::new();
    for _ in 0..500 {
        after = entries_after(&name, &seen).await;
        if after.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(after.len(), 5);

    let (mut back, missed) = Client::connect(b.addr, json!({"pid": pid, "offset": seen})).await;
    assert_eq!(back.sid, sid, "the old id");
    let names: Vec<&str> = missed.iter().filter_map(|e| e[0].as_str()).collect();
    assert_eq!(names, ["all", "room", "own"]);
    let offsets: Vec<String> = missed.iter().map(offset).collect();
    assert_eq!(
        offsets,
        [after[0].clone(), after[1].clone(), after[4].clone()]
    );

    // Its room came back with it, and live events go on.
    a.io.to("news").emit("live", &7).unwrap();
    let live = back.event().await;
    assert_eq!(live[0], "live");
    // And it recovers again from there, on the first server.
    let seen = offset(&live);
    drop(back);
    session_kept(&name, &pid).await;
    b.io.to("news").emit("again", &8).unwrap();
    let (back, missed) = Client::connect(a.addr, json!({"pid": pid, "offset": seen})).await;
    assert_eq!(back.sid, sid);
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0][0], "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_after_its_server_is_killed_and_without_an_offset() {
    let name = unique_prefix("streams-killed");
    let a = node(&name).await;
    let b = node(&name).await;
    // It has seen no event: it recovers from where its socket started.
    let (client, _) = Client::connect(a.addr, json!({"room": "r"})).await;
    let (sid, pid) = (client.sid.clone(), client.pid.clone());
    drop(client);
    session_kept(&name, &pid).await;
    // The first server is gone without closing anything.
    a.task.abort();
    drop(a);
    b.io.to("r").emit("missed", &1).unwrap();
    for _ in 0..500 {
        if entries_after(&name, "-").await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (back, missed) = Client::connect(b.addr, json!({"pid": pid})).await;
    assert_eq!(back.sid, sid);
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0][0], "missed");
    assert_eq!(offset(&missed[0]), entries_after(&name, "-").await[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_leaves_the_sessions_in_redis() {
    let name = unique_prefix("streams-shutdown");
    let a = node(&name).await;
    let b = node(&name).await;
    let (client, _) = Client::connect(a.addr, json!({})).await;
    let (sid, pid) = (client.sid.clone(), client.pid.clone());
    a.io.close().await;
    session_kept(&name, &pid).await;
    drop(client);
    let (back, missed) = Client::connect(b.addr, json!({"pid": pid})).await;
    assert_eq!(back.sid, sid);
    assert!(missed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_stream_and_the_channels_is_dropped_and_counted() {
    let name = unique_prefix("streams-garbage");
    let a = node(&name).await;
    let (mut client, _) = Client::connect(a.addr, json!({})).await;
    let mut conn = command().await;
    let stream = format!("{name}-stream");
    let garbage: [&[(&str, &[u8])]; 5] = [
        &[
            ("uid", b"x"),
            ("nsp", b"/"),
            ("type", b"3"),
            ("data", b"{oops"),
        ],
        &[
            ("uid", b"x"),
            ("nsp", b"/"),
            ("type", b"3"),
            ("data", b"%%%"),
        ],
        &[("uid", b"x"), ("nsp", b"/"), ("type", b"77")],
        &[("nsp", b"/"), ("type", b"3")],
        &[
            ("uid", b"x"),
            ("nsp", b"/"),
            ("type", b"3"),
            ("data", b"{\"packet\":1,\"opts\":{}}"),
        ],
    ];
    for fields in garbage {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&stream).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    for payload in [&b"\xc1"[..], b"not msgpack", b"\x81\xa4type\x03"] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{name}#/#"))
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    a.io.emit("still", &1).unwrap();
    let event = client.event().await;
    assert_eq!(event[0], "still");
    for _ in 0..500 {
        if a.redis.health().malformed >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.redis.health().malformed, 8);
}
