//! The in-memory adapter passes the suite, as a cluster of one server.

use ferrio::IoBuilder;
use ferrio_adapter_conformance::{Cluster, conformance_tests};

struct InMemory;

impl Cluster for InMemory {
    fn max_servers(&self) -> usize {
        1
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        (0..n).map(|_| IoBuilder::default()).collect()
    }
}

conformance_tests!(InMemory);
