//! The Streams adapter passes the adapter conformance suite, with clusters of three servers
//! on the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), each cluster with its own
//! stream and channel prefix so the cases run side by side.

mod support;

use ferrio::IoBuilder;
use ferrio_adapter_conformance::{Cluster, conformance_tests};
use ferrio_redis::{RedisAdapterConfig, RedisStreamsAdapter, RedisStreamsConfig};
use support::{redis_url, unique_prefix};

/// A new cluster (a new stream and prefix) each time the suite asks for one.
struct StreamsClusters;

impl Cluster for StreamsClusters {
    fn max_servers(&self) -> usize {
        3
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        let name = unique_prefix("streams-conformance");
        let config = RedisStreamsConfig::default()
            .stream_name(name.clone())
            .connection(RedisAdapterConfig::default().prefix(name));
        (0..n)
            .map(|_| {
                let client = redis::Client::open(redis_url()).expect("a valid Redis URL");
                let redis = RedisStreamsAdapter::new(client, config.clone());
                IoBuilder::default().adapter(redis.factory())
            })
            .collect()
    }
}

conformance_tests!(StreamsClusters);
