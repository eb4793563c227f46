//! The bus adapter passes the adapter conformance suite with clusters of three servers.

use bus_adapter::{Bus, BusAdapter};
use ferrio::IoBuilder;
use ferrio_adapter_conformance::{Cluster, conformance_tests};

struct BusCluster;

impl Cluster for BusCluster {
    fn max_servers(&self) -> usize {
        3
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        let bus = Bus::new();
        (0..n)
            .map(|_| {
                let bus = bus.clone();
                IoBuilder::default().adapter(move |ctx| BusAdapter::new(ctx, bus.clone()))
            })
            .collect()
    }
}

conformance_tests!(BusCluster);
