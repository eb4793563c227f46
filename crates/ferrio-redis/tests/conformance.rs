//! The Redis adapter passes the adapter conformance suite, with clusters of three servers on
//! the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), each cluster under its own
//! key prefix so the cases run side by side.

mod support;

use ferrio::IoBuilder;
use ferrio_adapter_conformance::{Cluster, conformance_tests};
use ferrio_redis::RedisAdapterConfig;
use support::{Nodes, redis_url, unique_prefix};

/// A new cluster (a new key prefix) each time the suite asks for one.
struct RedisClusters;

impl Cluster for RedisClusters {
    fn max_servers(&self) -> usize {
        3
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        let config = RedisAdapterConfig::default().prefix(unique_prefix("conformance"));
        Nodes::new(redis_url(), config).servers(n)
    }
}

conformance_tests!(RedisClusters);
