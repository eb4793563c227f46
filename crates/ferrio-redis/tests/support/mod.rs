//! What the Redis tests share: a cluster of ferrio servers on a Redis under a key prefix of
//! their own, a private `redis-server` for fault tests, a raw Redis peer.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use ferrio::IoBuilder;
use ferrio_adapter_conformance::Cluster;
use ferrio_redis::{RedisAdapter, RedisAdapterConfig};
use futures_util::StreamExt;

/// The shared Redis of the test run.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test uses.
pub fn unique_prefix(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Servers on one Redis under one prefix; keeps each server's adapter handle.
pub struct Nodes {
    pub url: String,
    pub config: RedisAdapterConfig,
    pub builder: fn() -> IoBuilder,
    pub adapters: Mutex<Vec<RedisAdapter>>,
}

impl Nodes {
    pub fn new(url: String, config: RedisAdapterConfig) -> Self {
        Self {
            url,
            config,
            builder: IoBuilder::default,
            adapters: Mutex::default(),
        }
    }

    /// Server `i`'s adapter handle.
    pub fn adapter(&self, i: usize) -> RedisAdapter {
        self.adapters.lock().expect("not poisoned")[i].clone()
    }
}

impl Cluster for Nodes {
    fn max_servers(&self) -> usize {
        3
    }

    fn servers(&self, n: usize) -> Vec<IoBuilder> {
        (0..n)
            .map(|_| {
                let client = redis::Client::open(self.url.as_str()).expect("a valid Redis URL");
                let redis = RedisAdapter::new(client, self.config.clone());
                self.adapters
                    .lock()
                    .expect("not poisoned")
                    .push(redis.clone());
                (self.builder)().adapter(redis.factory())
            })
            .collect()
    }
}

/// A `redis-server` of the test's own, on a free port, stopped and started at will.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Stops the server (its clients see their connections closed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A raw Redis client playing another server: subscribes like one, publishes anything.
pub struct Peer {
    pub publisher: redis::aio::MultiplexedConnection,
    messages: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Peer {
    /// Connects to `url` and subscribes to `channels` and `patterns`.
    pub async fn connect(url: &str, channels: &[String], patterns: &[String]) -> Self {
        let client = redis::Client::open(url).expect("a valid Redis URL");
        let publisher = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers");
        let mut pubsub = client.get_async_pubsub().await.expect("Redis answers");
        for channel in channels {
            pubsub.subscribe(channel).await.expect("subscribed");
        }
        for pattern in patterns {
            pubsub.psubscribe(pattern).await.expect("subscribed");
        }
        let (tx, messages) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(message) = stream.next().await {
                let channel = message.get_channel_name().to_owned();
                if tx
                    .send((channel, message.get_payload_bytes().to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        });
        Self {
            publisher,
            messages,
        }
    }

    pub async fn publish(&mut self, channel: &str, payload: &[u8]) {
        let _: usize = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut self.publisher)
            .await
            .expect("published");
    }

    /// The next message received, within 5 s.
    pub async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(Duration::from_secs(5), self.messages.recv())
            .await
            .expect("a message within 5 s")
            .expect("the subscription is open")
    }

    /// The next message on `channel`, skipping others, within 5 s.
    pub async fn next_on(&mut self, channel: &str) -> Vec<u8> {
        loop {
            let (on, payload) = self.next().await;
            if on == channel {
                return payload;
            }
        }
    }

    /// Whatever arrives within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout(wait, self.messages.recv()).await {
            out.push(message);
        }
        out
    }
}
