//! The subscribing connection survives its own health checks: a subscribed connection
//! answers `PING` differently from an ordinary one, and reading that answer as a failure
//! replaced the connection at every check, losing what was published meanwhile. Runs on
//! the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::time::Duration;

use ferrio::{Io, SocketRef};
use ferrio_redis::{RedisAdapter, RedisAdapterConfig};

#[tokio::test]
async fn health_checks_keep_the_subscribing_connection() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = redis::Client::open(url).expect("a valid REDIS_URL");
    let config = RedisAdapterConfig::default()
        .prefix(format!("health-check-{}", std::process::id()))
        .health_check_interval(Duration::from_millis(20));
    let redis = RedisAdapter::new(client, config);
    let (_layer, io) = Io::builder().adapter(redis.factory()).build_layer();
    io.ns("/", |_: SocketRef| {});
    io.ready().await.expect("the adapter starts");
    // Ten health checks or so.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let health = redis.health();
    assert!(health.connected, "{health:?}");
    assert_eq!(health.reconnects, 0, "{health:?}");
    io.close().await;
}
