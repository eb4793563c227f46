//! The conformance suite of Ferrio adapters: the same cases, over real connections, for the
//! in-memory adapter and every distributed one.
//!
//! An adapter's crate describes how to build one cluster ([`Cluster`]) and expands
//! [`conformance_tests!`] in a test file, which makes one `#[tokio::test]` per case:
//!
//! ```no_run
//! use ferrio::IoBuilder;
//! use ferrio_adapter_conformance::{Cluster, conformance_tests};
//!
//! /// Clusters of one server on the in-memory adapter.
//! struct InMemory;
//!
//! impl Cluster for InMemory {
//!     fn max_servers(&self) -> usize {
//!         1
//!     }
//!     fn servers(&self, n: usize) -> Vec<IoBuilder> {
//!         (0..n).map(|_| IoBuilder::default()).collect()
//!     }
//! }
//!
//! conformance_tests!(InMemory);
//! ```
//!
//! Each case starts a new cluster of up to three servers on 127.0.0.1 (fewer when the
//! adapter cannot have more), with clients spread over them round-robin, so a cluster of
//! one server checks the same outcomes as a cluster of three.

use std::net::SocketAddr;

use ferrio::{Io, IoBuilder, NamespaceRef, Sid, SocketRef};
use serde_json::Value;

pub mod cases;
mod client;

pub use client::{Client, QUIET, Received, WAIT};

/// How to build the servers of one cluster.
pub trait Cluster: Send + Sync {
    /// The most servers one cluster may have (1 for an adapter that does not cross servers).
    fn max_servers(&self) -> usize;

    /// The settings of `n` new servers forming one cluster, which shares nothing with the
    /// clusters made before (a new bus, a new key prefix...).
    fn servers(&self, n: usize) -> Vec<IoBuilder>;
}

/// One running cluster: its servers, each serving `/` on 127.0.0.1.
#[derive(Debug)]
pub struct Harness {
    servers: Vec<(SocketAddr, Io)>,
}

impl Harness {
    /// Starts a cluster of `wanted` servers (at most what the adapter allows), waits until
    /// every adapter has started, and serves `/`: a socket whose auth has a `data` field
    /// shares it as its data.
    pub async fn start(cluster: &dyn Cluster, wanted: usize) -> Self {
        let n = wanted.clamp(1, cluster.max_servers().max(1));
        let mut servers = Vec::with_capacity(n);
        for builder in cluster.servers(n) {
            let (layer, io) = builder.build_layer();
            io.ns("/", |socket: SocketRef| {
                let data = socket.auth().get::<Value>(0).ok();
                if let Some(data) = data.as_ref().and_then(|auth| auth.get("data")) {
                    socket.set_data(data).expect("a JSON value serializes");
                }
            });
            io.ready().await.expect("the adapter starts");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free port on 127.0.0.1");
            let addr = listener
                .local_addr()
                .expect("a bound listener has an address");
            let app = axum::Router::new().layer(layer);
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            servers.push((addr, io));
        }
        assert_eq!(
            servers.len(),
            n,
            "the cluster builds one server per builder"
        );
        Self { servers }
    }

    /// How many servers the cluster has.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether the cluster has no server (never, once started).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The server a client number `i` connects to (round-robin).
    pub fn server_of(&self, client: usize) -> usize {
        client % self.len()
    }

    /// Server `i`'s handle.
    pub fn io(&self, i: usize) -> &Io {
        &self.servers[i].1
    }

    /// Server `i`'s `/`.
    pub fn root(&self, i: usize) -> NamespaceRef {
        self.io(i).of("/").expect("`/` always exists")
    }

    /// Connects client number `i` to its server with `auth` (and `x=<i>&who=c%20<i>` in
    /// the query).
    pub async fn client(&self, i: usize, auth: &Value) -> Client {
        let addr = self.servers[self.server_of(i)].0;
        Client::join(addr, &format!("x={i}&who=c%20{i}"), auth).await
    }

    /// Connects `count` clients, client `i` on server `i % len`, with empty auth.
    pub async fn clients(&self, count: usize) -> Vec<Client> {
        let mut clients = Vec::with_capacity(count);
        for i in 0..count {
            clients.push(self.client(i, &serde_json::json!({})).await);
        }
        clients
    }

    /// The server-side socket of client number `i`.
    pub fn socket(&self, i: usize, client: &Client) -> SocketRef {
        let sid: Sid = client.id.parse().expect("socket ids are Sids");
        self.root(self.server_of(i))
            .get_socket(sid)
            .expect("the client's socket is on its server")
    }
}

/// Waits until `check` holds, at most [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// One `#[tokio::test]` per case of the suite, for the [`Cluster`] `$cluster` builds.
#[macro_export]
macro_rules! conformance_tests {
    ($cluster:expr) => {
        $crate::conformance_tests!(@cases $cluster;
            broadcast_reaches_every_socket_on_every_server,
            binary_arguments_cross_servers_intact,
            rooms_and_exceptions_select_the_same_sockets_everywhere,
            local_broadcasts_stay_on_their_server,
            volatile_broadcasts_reach_clients_that_keep_up,
            a_sockets_broadcast_leaves_it_out,
            fetch_sockets_describes_the_whole_cluster,
            remote_join_leave_emit_and_disconnect,
            remote_close_ends_the_connection,
            rooms_are_listed_from_every_server,
            server_side_events_reach_the_other_servers,
            broadcast_acks_count_every_servers_clients,
            silent_recipients_of_a_broadcast_with_acks_time_out,
            server_count_counts_every_server,
        );
    };
    (@cases $cluster:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::cases::$case(&$cluster).await;
            }
        )*
    };
}

// The adapter guide's code compiles as part of the test suite (it uses this crate too).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/adapters.md")]
mod adapters_guide {}
