//! Redis shut down and started again under a running cluster: each server keeps serving its
//! own clients, counts what it could not publish, and delivers across servers again soon
//! after Redis is back, without a restart and without its clients reconnecting.
//!
//! The test runs its own `redis-server` on a free port.

mod support;

use std::time::{Duration, Instant};

use ferrio::IoBuilder;
use ferrio::adapter::AdapterErrorKind;
use ferrio_adapter_conformance::{Client, Harness, Received};
use ferrio_redis::RedisAdapterConfig;
use serde_json::{Value, json};
use support::{Nodes, PrivateRedis, unique_prefix};

/// A short heartbeat, so the outage spans several pings the clients must answer.
fn builder() -> IoBuilder {
    IoBuilder::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(500))
}

/// The events `client` receives within `wait` (answering pings meanwhile); fails on a close.
async fn events_within(client: &mut Client, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match client.next_within(left).await {
            None => break,
            Some(Received::Text(text)) => {
                let body = text
                    .strip_prefix('2')
                    .unwrap_or_else(|| panic!("not an event: {text}"));
                events.push(serde_json::from_str(body).expect("an event is JSON"));
            }
            Some(other) => panic!("client {} got {other:?}", client.id),
        }
    }
    events
}

/// What both clients receive within `wait`, read side by side so both answer their pings.
async fn both(c0: &mut Client, c1: &mut Client, wait: Duration) -> (Vec<Value>, Vec<Value>) {
    tokio::join!(events_within(c0, wait), events_within(c1, wait))
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e[0].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_survives_a_redis_restart() {
    let mut redis = PrivateRedis::start();
    let config = RedisAdapterConfig::default()
        .prefix(unique_prefix("faults"))
        .max_publish_delay(Duration::from_millis(300));
    let mut nodes = Nodes::new(redis.url(), config);
    nodes.builder = builder;
    let harness = Harness::start(&nodes, 2).await;
    let mut c0 = harness.client(0, &json!({})).await;
    let mut c1 = harness.client(1, &json!({})).await;
    let (io0, io1) = (harness.io(0).clone(), harness.io(1).clone());

    io0.emit("before", &0).expect("emitted");
    assert_eq!(c0.event().await.1, json!(["before", 0]));
    assert_eq!(c1.event().await.1, json!(["before", 0]));

    // Redis goes away: both servers notice it.
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while nodes.adapter(0).health().connected || nodes.adapter(1).health().connected {
        assert!(Instant::now() < deadline, "the outage is noticed");
        both(&mut c0, &mut c1, Duration::from_millis(20)).await;
    }

    // Local delivery goes on; nothing crosses; asking the other servers fails at once.
    for i in 0..10 {
        io0.emit("during", &i)
            .expect("a broadcast succeeds locally during an outage");
        let (got, remote) = both(&mut c0, &mut c1, Duration::from_millis(60)).await;
        assert_eq!(
            got,
            vec![json!(["during", i])],
            "local delivery during the outage"
        );
        assert!(
            remote.is_empty(),
            "nothing crosses during the outage: {remote:?}"
        );
    }
    let asked = Instant::now();
    let fetched = io0.fetch_sockets().await;
    assert_eq!(
        fetched.err().map(|e| e.kind()),
        Some(AdapterErrorKind::Unavailable)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "fails fast, not after the request timeout"
    );
    // Longer than the publish delay: what waited is given up and counted.
    let (local, remote) = both(&mut c0, &mut c1, Duration::from_millis(600)).await;
    assert!(
        local.is_empty() && remote.is_empty(),
        "{local:?} {remote:?}"
    );

    // Redis is back: cross-server delivery resumes within 2 s, both ways.
    redis.restart();
    let back = Instant::now();
    let mut probe = 0;
    'resumed: loop {
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "cross-server delivery back within 2 s of Redis (health: {:?})",
            nodes.adapter(0).health()
        );
        probe += 1;
        io0.emit("probe", &probe).expect("emitted");
        let (_, remote) = both(&mut c0, &mut c1, Duration::from_millis(50)).await;
        for event in remote {
            assert_ne!(
                event[0], "during",
                "given-up messages are not delivered late"
            );
            if event[0] == "probe" {
                break 'resumed;
            }
        }
    }
    let resumed_after = back.elapsed();
    'both_ways: loop {
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "server 1 reaches server 0 within 2 s of Redis (health: {:?})",
            nodes.adapter(1).health()
        );
        io1.emit("back", &0).expect("emitted");
        let (got, _) = both(&mut c0, &mut c1, Duration::from_millis(50)).await;
        if names(&got).contains(&"back") {
            break 'both_ways;
        }
    }

    // The clients kept their sessions through the outage.
    assert_eq!(harness.socket(0, &c0).id().as_str(), c0.id);
    assert_eq!(harness.socket(1, &c1).id().as_str(), c1.id);

    let health = nodes.adapter(0).health();
    eprintln!("resumed {resumed_after:?} after Redis came back; server 0: {health:?}");
    assert!(health.connected);
    assert!(health.reconnects >= 1, "{health:?}");
    assert!(
        health.unpublished >= 10,
        "the 10 broadcasts of the outage are counted: {health:?}"
    );
    assert_eq!(health.malformed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_without_redis_reports_it() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    drop(redis);
    let config = RedisAdapterConfig::default()
        .prefix(unique_prefix("faults"))
        .connect_timeout(Duration::from_millis(300));
    let client = redis::Client::open(url).expect("a valid URL");
    let adapter = ferrio_redis::RedisAdapter::new(client, config);
    let (_layer, io) = IoBuilder::default()
        .adapter(adapter.factory())
        .build_layer();
    let error = io
        .ready()
        .await
        .expect_err("no Redis: the adapter does not start");
    assert_eq!(error.kind(), AdapterErrorKind::Unavailable);
    assert!(!adapter.health().connected);
}
