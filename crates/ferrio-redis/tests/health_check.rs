//! The `PING` that checks the subscribing connection must not itself break the connection.
//!
//! Regression: the check read the reply as a string, but a subscribed (RESP2) connection
//! answers `PING` with the array `["pong", ""]`; every check "failed", so the adapter dropped
//! and re-made its subscriptions every `health_check_interval` (2 s by default), and messages
//! published during each gap were lost (seen in tests/e2e/redis-cluster.test.mjs as a
//! server-side emit answered by nobody, `PUBSUB NUMSUB` briefly counting fewer servers).

mod support;

use std::time::Duration;

use ferrio_adapter_conformance::Harness;
use ferrio_redis::RedisAdapterConfig;
use support::{Nodes, redis_url, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_keep_the_subscribing_connection() {
    let interval = Duration::from_millis(50);
    let config = RedisAdapterConfig::default()
        .prefix(unique_prefix("health"))
        .health_check_interval(interval);
    let nodes = Nodes::new(redis_url(), config);
    let _harness = Harness::start(&nodes, 1).await;
    let adapter = nodes.adapter(0);

    // About ten checks.
    tokio::time::sleep(interval * 10).await;
    let health = adapter.health();
    assert!(health.connected, "{health:?}");
    assert_eq!(
        health.reconnects, 0,
        "a health check dropped the connection: {health:?}"
    );
}
