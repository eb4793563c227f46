//! Prometheus metrics (feature `metrics`): the text served on `/metrics` parses with a
//! Prometheus text parser, and its counters move with connects, events, bytes, refusals and
//! disconnects.

mod common;

use axum::Router;
use axum::routing::get;
use common::{Client, serve};
use ferrio::metrics::Metrics;
use ferrio::{ConnectHandler, ConnectRefusal, Io, SocketRef};

/// Fetches `/metrics` and parses it; (content type, samples).
async fn scrape(addr: std::net::SocketAddr) -> (String, prometheus_parse::Scrape) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    (
        content_type,
        prometheus_parse::Scrape::parse(lines).unwrap(),
    )
}

/// The value of `name` with label namespace=`nsp` (or no label when `nsp` is empty); 0 when
/// absent.
fn value(scrape: &prometheus_parse::Scrape, name: &str, nsp: &str) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && (nsp.is_empty() || s.labels.get("namespace") == Some(nsp)))
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

async fn metrics_server() -> (std::net::SocketAddr, Io) {
    let metrics = Metrics::new();
    let (layer, io) = Io::builder().observe(metrics.clone()).build_layer();
    io.ns("/", |socket: SocketRef| {
        common::echo_handlers(&socket);
        socket.on("shout", |io: Io| {
            let _ = io.emit("heard", &"all");
        });
    });
    io.ns(
        "/private",
        (|_: SocketRef| {}).with(|_: SocketRef| Err::<(), _>(ConnectRefusal::new("no"))),
    );
    let served = io.clone();
    let router = Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render(&served);
                async move { ([("content-type", Metrics::CONTENT_TYPE)], text) }
            }),
        )
        .layer(layer);
    (serve(router).await, io)
}

#[tokio::test]
async fn counters_move_with_the_traffic() {
    let (addr, _io) = metrics_server().await;

    let (content_type, before) = scrape(addr).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    assert_eq!(value(&before, "socket_io_connected", "/"), 0.0);

    let mut a = Client::connect(addr).await;
    a.join("/", None).await;
    let mut b = Client::connect(addr).await;
    b.join("/", None).await;
    let (_, joined) = scrape(addr).await;
    assert_eq!(value(&joined, "socket_io_connected", "/"), 2.0);
    assert_eq!(value(&joined, "socket_io_connect_total", "/"), 2.0);
    let websocket = joined
        .samples
        .iter()
        .find(|s| {
            s.metric == "engine_io_sessions" && s.labels.get("transport") == Some("websocket")
        })
        .unwrap();
    assert_eq!(websocket.value, prometheus_parse::Value::Gauge(2.0));

    // One event in (18 bytes on the wire: `42["echo","hello"]`), one event back.
    a.send(r#"2["echo","hello"]"#).await;
    assert_eq!(a.text().await, r#"2["echo","hello"]"#);
    let (_, echoed) = scrape(addr).await;
    assert_eq!(value(&echoed, "socket_io_events_received_total", "/"), 1.0);
    assert_eq!(value(&echoed, "socket_io_recv_bytes", "/"), 18.0);
    assert_eq!(value(&echoed, "socket_io_events_sent_total", "/"), 1.0);
    assert_eq!(value(&echoed, "socket_io_transmit_bytes", "/"), 18.0);

    // A broadcast counts once per recipient: `42["heard","all"]` is 17 bytes.
    a.send(r#"2["shout"]"#).await;
    assert_eq!(a.text().await, r#"2["heard","all"]"#);
    assert_eq!(b.text().await, r#"2["heard","all"]"#);
    let (_, shouted) = scrape(addr).await;
    assert_eq!(value(&shouted, "socket_io_events_received_total", "/"), 2.0);
    assert_eq!(value(&shouted, "socket_io_events_sent_total", "/"), 3.0);
    assert_eq!(
        value(&shouted, "socket_io_transmit_bytes", "/"),
        18.0 + 2.0 * 17.0
    );

    // A refused connect is an error of its namespace.
    a.send("0/private,").await;
    assert!(a.text().await.starts_with("4/private,"));
    let (_, refused) = scrape(addr).await;
    assert_eq!(value(&refused, "socket_io_errors_total", "/private"), 1.0);

    // Disconnects.
    b.send("1").await;
    drop(a);
    let mut last = None;
    for _ in 0..100 {
        let (_, now) = scrape(addr).await;
        if value(&now, "socket_io_disconnect_total", "/") == 2.0 {
            last = Some(now);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after = last.expect("both disconnects counted");
    assert_eq!(value(&after, "socket_io_connected", "/"), 0.0);
    assert_eq!(value(&after, "socket_io_connect_total", "/"), 2.0);
}
