//! The Redis adapter passes the adapter conformance suite, with clusters of three servers on
//! the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), each cluster under its own
//! key prefix so the cases run side by side.

use ferrio::IoBuilder;
use ferrio_adapter_conformance::{Cluster, conformance_tests};
use ferrio_redis::{RedisAdapter, RedisAdapterConfig};

struct RedisCluster;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

impl Cluster for RedisCluster {
    fn max_servers(&self) -> usize {
        3
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        let prefix = format!("conformance-{}", rand_suffix());
        (0..n)
            .map(|_| {
                let client = redis::Client::open(redis_url()).expect("a valid REDIS_URL");
                let redis =
                    RedisAdapter::new(client, RedisAdapterConfig::default().prefix(&prefix));
                IoBuilder::default().adapter(redis.factory())
            })
            .collect()
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

conformance_tests!(RedisCluster);
