//! Hostile input: random, biased Socket.IO packets and binary messages over a real
//! connection to a server with handlers. Whatever arrives, the server must not panic, must
//! either serve the connection on or close it, must release every connection and socket it
//! closed, and must keep serving a healthy client alongside.
//!
//! One server per test, one connection per case; `PROPTEST_CASES` sets the number of cases.

mod common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::polling::PollingClient;
use common::{Client, Frame, WAIT, echo_handlers, eventually};
use ferrio::{ConnectHandler, ConnectRefusal, Io, Payload, SocketRef};
use ferrio_protocol::engine::Packet;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// Server worker threads carry this name, so the panic hook can tell a server panic from a
/// failing assertion of the test.
const SERVER_THREAD: &str = "ferrio-server";

fn handlers(socket: &SocketRef) {
    echo_handlers(socket);
    socket.on("bin", |socket: SocketRef, payload: Payload| {
        let _ = socket.emit_args("bin", &(Bytes::from_static(b"\x00\x01"), &payload));
    });
    socket.on("ask", |socket: SocketRef, payload: Payload| async move {
        if let Ok(answer) = socket.emit_with_ack("question", &payload).await {
            let _ = socket.emit_args("answer", &answer);
        }
    });
    socket.on("kick", |socket: SocketRef| socket.disconnect());
    socket.on("bye", |socket: SocketRef| socket.close());
}

// ---------------------------------------------------------------- strategies

#[derive(Debug, Clone)]
enum Out {
    Text(String),
    Binary(Vec<u8>),
}

const ALPHABET: &[char] = &[
    '0', '1', '2', '3', '4', '5', '6', '-', '/', ',', '[', ']', '{', '}', '"', '_', 'p', 'l', 'a',
    'c', 'e', 'h', 'o', 'd', 'r', ':', 't', 'u', 'n', 'm', '9', ' ',
];

const FRAGMENTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "51-",
    "52-",
    "510-",
    "511-",
    "0-",
    "/",
    "/a,",
    "/c,",
    "/dyn-1,",
    "/deny,",
    "/dyn-deny-1,",
    "/wait,",
    "/nope,",
    ",",
    "[",
    "]",
    "{",
    "}",
    "\"",
    r#""echo""#,
    r#""ack""#,
    r#""bin""#,
    r#""ask""#,
    r#""kick""#,
    r#""connect""#,
    r#""disconnect""#,
    r#""error""#,
    r#"{"_placeholder":true,"num":0}"#,
    r#"{"_placeholder":true,"num":1}"#,
    r#"{"_placeholder":false,"num":0}"#,
    r#""_placeholder""#,
    ":",
    "true",
    "false",
    "null",
    "num",
    "9007199254740991",
    "9007199254740992",
    "12",
    r#"["echo",1]"#,
    "{}",
    "[]",
];

/// One piece of garbage: a character of the alphabet, a protocol fragment, or a run of `[`.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(ALPHABET).prop_map(String::from),
        4 => select(FRAGMENTS).prop_map(str::to_owned),
        1 => (100usize..300).prop_map(|n| "[".repeat(n)),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn garbage() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat())
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => plain_leaf(),
        1 => (0u8..4).prop_map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#)),
        1 => Just(r#"{"_placeholder":false,"num":0}"#.to_owned()),
    ];
    nest(leaf)
}

/// JSON without placeholders.
fn plain_json() -> impl Strategy<Value = String> {
    nest(plain_leaf())
}

fn plain_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        "[a-z\\\\\"é]{0,5}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

fn nest(leaf: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = String> {
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec(("[a-z_]{0,4}", inner), 0..4).prop_map(|entries| {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", entries.join(","))
            }),
        ]
    })
}

const EVENT_NAMES: &[&str] = &[
    r#""echo""#,
    r#""echo""#,
    r#""ack""#,
    r#""bin""#,
    r#""ask""#,
    r#""kick""#,
    r#""bye""#,
    r#""error""#,
    r#""connect""#,
    r#""disconnect""#,
    r#""newListener""#,
    "42",
    "null",
    "{}",
];

/// A packet put together from plausible parts: `<type>[<n>-][<nsp>,][<id>][<data>]`.
fn packet() -> impl Strategy<Value = String> {
    let data = prop_oneof![
        1 => Just(String::new()),
        5 => (select(EVENT_NAMES), prop::collection::vec(json_value(), 0..4)).prop_map(
            |(name, args)| {
                let mut items = vec![name.to_owned()];
                items.extend(args);
                format!("[{}]", items.join(","))
            }
        ),
        2 => json_value(),
    ];
    (
        select(&['0', '1', '2', '2', '3', '4', '5', '5', '6', '7'][..]),
        prop_oneof![3 => Just(String::new()), 1 => (0usize..12).prop_map(|n| format!("{n}-"))],
        select(
            &[
                "",
                "",
                "",
                "/a,",
                "/c,",
                "/dyn-1,",
                "/dyn-2,",
                "/deny,",
                "/dyn-deny-1,",
                "/wait,",
                "/nope,",
                "/a",
            ][..],
        ),
        prop_oneof![
            3 => Just(String::new()),
            1 => prop_oneof![
                (0u64..100).prop_map(|n| n.to_string()),
                Just("9007199254740991".to_owned()),
                Just("9007199254740992".to_owned()),
            ],
        ],
        data,
    )
        .prop_map(|(kind, attachments, nsp, id, data)| {
            format!("{kind}{attachments}{nsp}{id}{data}")
        })
}

/// A plausible packet with a fragment inserted somewhere.
fn mutated() -> impl Strategy<Value = String> {
    (packet(), any::<prop::sample::Index>(), fragment()).prop_map(|(mut text, at, piece)| {
        let mut at = at.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &piece);
        text
    })
}

/// Valid traffic for a client in `/`: events, acks, joins and leaves, binary events with
/// their attachments.
fn valid() -> impl Strategy<Value = Vec<Out>> {
    let text = |s: String| vec![Out::Text(s)];
    prop_oneof![
        4 => prop::collection::vec(plain_json(), 0..4)
            .prop_map(move |args| text(format!(r#"2["echo"{}]"#, prefixed(&args)))),
        2 => (0u64..1000, prop::collection::vec(plain_json(), 0..3))
            .prop_map(move |(id, args)| text(format!(r#"2{id}["ack"{}]"#, prefixed(&args)))),
        1 => (0u64..1000, prop::collection::vec(plain_json(), 0..3))
            .prop_map(move |(id, args)| text(format!("3{id}[{}]", args.join(",")))),
        1 => select(
            &[
                "0/a,",
                "0/dyn-3,",
                "1/a,",
                r#"2/a,["echo"]"#,
                "0/deny,",
                "0/dyn-deny-2,",
                "0/wait,",
                "0/nope,",
            ][..]
        )
            .prop_map(move |p| text(p.to_owned())),
        2 => prop::collection::vec((prop::collection::vec(any::<u8>(), 0..8), 0u8..3), 1..4)
            .prop_map(|parts| {
                let args: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, (_, style))| {
                        let ph = format!(r#"{{"_placeholder":true,"num":{i}}}"#);
                        match style {
                            0 => ph,
                            1 => format!("[1,{ph}]"),
                            _ => format!(r#"{{"file":{ph}}}"#),
                        }
                    })
                    .collect();
                let header = format!(r#"5{}-["echo"{}]"#, parts.len(), prefixed(&args));
                let mut out = vec![Out::Text(header)];
                out.extend(parts.into_iter().map(|(data, _)| Out::Binary(data)));
                out
            }),
    ]
}

/// `,a,b...`: arguments after an event name.
fn prefixed(args: &[String]) -> String {
    args.iter().map(|a| format!(",{a}")).collect()
}

/// Anything: valid traffic, plausible packets, garbage, binary messages.
fn unit() -> impl Strategy<Value = Vec<Out>> {
    prop_oneof![
        4 => valid(),
        5 => packet().prop_map(|p| vec![Out::Text(p)]),
        3 => garbage().prop_map(|g| vec![Out::Text(g)]),
        2 => mutated().prop_map(|m| vec![Out::Text(m)]),
        3 => prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| vec![Out::Binary(b)]),
    ]
}

/// Whether the client joins `/` first, then what it sends: mostly valid traffic, or
/// anything.
fn case() -> impl Strategy<Value = (bool, Vec<Out>)> {
    let units = prop_oneof![
        2 => prop::collection::vec(valid(), 1..6),
        3 => prop::collection::vec(unit(), 1..8),
    ];
    (prop::bool::weighted(0.85), units.prop_map(|u| u.concat()))
}

// ---------------------------------------------------------------- the test

struct World {
    addr: SocketAddr,
    io: Io,
    healthy: Mutex<Client>,
    namespaces: Vec<String>,
    cases: Cell<usize>,
    /// Cases after which the server had closed the connection, and cases it served on.
    closed: Cell<usize>,
    alive: Cell<usize>,
}

impl World {
    fn counts(&self) -> (usize, usize, usize, Vec<String>) {
        let len = |name: &str| self.io.of(name).map_or(0, |ns| ns.len());
        let mut namespaces = self.io.namespaces();
        namespaces.sort();
        (
            self.io.engine().unwrap().len(),
            len("/"),
            len("/a") + len("/c") + len("/deny") + len("/wait"),
            namespaces,
        )
    }

    fn baseline(&self) -> (usize, usize, usize, Vec<String>) {
        (1, 1, 0, self.namespaces.clone())
    }

    /// Waits until the case's connection and sockets are released (`what` names them in
    /// the failure), then checks that the healthy client is still served.
    async fn assert_released(&self, n: usize, what: &str) -> Result<(), TestCaseError> {
        let baseline = self.baseline();
        eventually(what, || self.counts() == baseline).await;
        let mut healthy = self.healthy.lock().await;
        let ping = format!(r#"2["echo","healthy-{n}"]"#);
        healthy.send(&ping).await;
        prop_assert_eq!(healthy.text().await, ping);
        Ok(())
    }

    async fn run_case(&self, join: bool, frames: &[Out]) -> Result<(), TestCaseError> {
        let n = self.cases.get();
        self.cases.set(n + 1);
        let mut victim = Client::connect(self.addr).await;
        victim.set_nodelay();
        if join {
            victim.join("/", None).await;
        }
        for frame in frames {
            let sent = match frame {
                Out::Text(text) => victim.try_send(text).await,
                Out::Binary(data) => victim.try_send_binary(data).await,
            };
            if !sent {
                break;
            }
        }
        // A probe: the server either echoes it (the connection is alive and consistent) or
        // has closed the connection (before or because of it); nothing else is acceptable.
        let probe = format!(r#"2["echo","probe-{n}"]"#);
        if victim.try_send(&probe).await {
            loop {
                match victim.next_within(WAIT).await {
                    None => {
                        return Err(TestCaseError::fail(
                            "neither the probe's echo nor a close within the wait",
                        ));
                    }
                    Some(None) => {
                        self.closed.set(self.closed.get() + 1);
                        break;
                    }
                    Some(Some(Frame::Text(text))) if text == probe => {
                        self.alive.set(self.alive.get() + 1);
                        break;
                    }
                    Some(Some(Frame::Text(text))) => {
                        prop_assert!(
                            text.starts_with(|c: char| ('0'..='6').contains(&c)),
                            "the server sent {text:?}"
                        );
                    }
                    Some(Some(Frame::Binary(_))) => {}
                }
            }
        }
        drop(victim);

        self.assert_released(n, "every connection and socket of the case released")
            .await
    }

    /// The same over long-polling: the frames in one POST, then a probe.
    async fn run_polling_case(&self, join: bool, frames: &[Out]) -> Result<(), TestCaseError> {
        let n = self.cases.get();
        self.cases.set(n + 1);
        let victim = PollingClient::connect(self.addr).await;
        if join {
            victim.join("/").await;
        }
        let packets: Vec<Packet<'_>> = frames
            .iter()
            .map(|frame| match frame {
                Out::Text(text) => Packet::Message(text),
                Out::Binary(data) => Packet::Binary(data.clone()),
            })
            .collect();
        victim.send_packets(&packets).await;
        let probe = format!(r#"2["echo","probe-{n}"]"#);
        victim.send(&[&probe]).await;
        'polls: loop {
            let polled = victim.poll().await;
            for frame in polled.frames {
                match frame {
                    Frame::Text(text) if text == probe => {
                        self.alive.set(self.alive.get() + 1);
                        // The client goes away: its `close`, then the poll that ends it.
                        victim.post_raw(b"1").await;
                        victim.assert_closed().await;
                        break 'polls;
                    }
                    Frame::Text(text) => prop_assert!(
                        text.starts_with(|c: char| ('0'..='6').contains(&c)),
                        "the server sent {text:?}"
                    ),
                    Frame::Binary(_) => {}
                }
            }
            if polled.closed {
                self.closed.set(self.closed.get() + 1);
                break;
            }
        }

        self.assert_released(n, "every session and socket of the case released")
            .await
    }
}

/// Like [`common::server`], with `TCP_NODELAY` on the accepted connections: the cases send
/// bursts of small frames, which Nagle's algorithm would hold back for a delayed ACK.
async fn nodelay_server(builder: ferrio::IoBuilder, setup: impl FnOnce(&Io)) -> (SocketAddr, Io) {
    use axum::serve::ListenerExt;
    let (layer, io) = builder.build_layer();
    setup(&io);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = axum::Router::new().layer(layer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, io)
}

/// Panics on the server's threads, counted by a process-wide hook installed once.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SERVER_THREAD) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// A runtime whose workers run the server, and the server with its healthy client.
fn world() -> (Runtime, World) {
    count_server_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(async {
        let (addr, io) = nodelay_server(
            Io::builder().ack_timeout(Duration::from_millis(500)),
            |io| {
                io.ns("/", |s: SocketRef| handlers(&s));
                io.ns("/a", |s: SocketRef| handlers(&s));
                io.ns("/c", |s: SocketRef| handlers(&s));
                let deny = || {
                    Err::<(), _>(
                        ConnectRefusal::new("denied").with_data(&serde_json::json!({"n": 1})),
                    )
                };
                io.ns("/deny", (|s: SocketRef| handlers(&s)).with(deny));
                // A middleware that waits: packets arrive while a CONNECT is pending.
                let wait = || async {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<(), &'static str>(())
                };
                io.ns("/wait", (|s: SocketRef| handlers(&s)).with(wait));
                io.dyn_ns("^/dyn-[0-9]$", |s: SocketRef| handlers(&s))
                    .unwrap();
                let deny = || Err::<(), _>("denied");
                io.dyn_ns(
                    "^/dyn-deny-[0-9]$",
                    (|s: SocketRef| handlers(&s)).with(deny),
                )
                .unwrap();
            },
        )
        .await;
        let mut healthy = Client::connect(addr).await;
        healthy.set_nodelay();
        healthy.join("/", None).await;
        let mut namespaces = io.namespaces();
        namespaces.sort();
        World {
            addr,
            io,
            healthy: Mutex::new(healthy),
            namespaces,
            cases: Cell::new(0),
            closed: Cell::new(0),
            alive: Cell::new(0),
        }
    });
    assert_eq!(world.counts(), world.baseline());
    (rt, world)
}

/// Runs `cases` cases of [`case`] through `run`, then checks both outcomes were reached.
fn check<F>(world: &World, cases: u32, run: F)
where
    F: Fn(bool, Vec<Out>) -> Result<(), TestCaseError>,
{
    let config = Config {
        cases,
        failure_persistence: None,
        // Failing cases may wait out timeouts; keep shrinking short.
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |(join, frames)| {
        run(join, frames)?;
        let panics = SERVER_PANICS.load(Ordering::SeqCst);
        prop_assert_eq!(panics, 0, "the server panicked");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (cases, closed, alive) = (world.cases.get(), world.closed.get(), world.alive.get());
    eprintln!("{cases} cases: {closed} connections closed by the server, {alive} served on");
    if cases >= 32 {
        // The input is biased enough to reach both outcomes.
        assert!(closed > 0 && alive > 0, "{closed} closed, {alive} alive");
    }
}

#[test]
fn random_packets_over_websocket_never_break_the_server() {
    let (rt, world) = world();
    check(&world, Config::default().cases, |join, frames| {
        rt.block_on(world.run_case(join, &frames))
    });
}

#[test]
fn random_packets_over_polling_never_break_the_server() {
    let (rt, world) = world();
    // Each case takes several HTTP requests: a quarter of the cases.
    let cases = Config::default().cases.div_ceil(4);
    check(&world, cases, |join, frames| {
        rt.block_on(world.run_polling_case(join, &frames))
    });
}
