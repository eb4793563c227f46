//! The server's heartbeat over polling, on a paused clock: pings from the handshake, pongs that
//! reset the interval, and the ping timeout.

mod common;
use common::*;

use std::time::Duration;

use ferrio_engine::{CloseReason, EngineIoConfig};
use tokio::time::{Instant, sleep};

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);

fn config() -> EngineIoConfig {
    EngineIoConfig::default()
        .ping_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
}

#[tokio::test(start_paused = true)]
async fn the_first_ping_comes_ping_interval_after_the_handshake() {
    let t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "2");
    assert_eq!(start.elapsed(), INTERVAL);
}

#[tokio::test(start_paused = true)]
async fn the_ping_timer_starts_at_the_handshake_not_at_the_first_get() {
    let t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;

    sleep(Duration::from_millis(250)).await;
    let polled = Instant::now();
    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.body, "2");
    assert_eq!(polled.elapsed(), Duration::from_millis(50));
    assert_eq!(start.elapsed(), INTERVAL);
}

#[tokio::test(start_paused = true)]
async fn after_a_pong_the_next_ping_comes_ping_interval_later() {
    let mut t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;

    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "2");
    assert_eq!(start.elapsed(), INTERVAL);

    // Answer late, but within the timeout.
    sleep(Duration::from_millis(150)).await;
    let ponged = Instant::now();
    let reply = post(&t.router, &poll_uri(sid), "3").await;
    assert_eq!(reply.body, "ok");

    let reply = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(reply.body, "2");
    assert_eq!(ponged.elapsed(), INTERVAL);
    assert_eq!(start.elapsed(), Duration::from_millis(750));

    // A second round trip keeps the session alive past the first deadlines.
    post(&t.router, &poll_uri(sid), "3").await;
    let again = get(&t.router, &poll_uri(sid)).await;
    assert_eq!(again.body, "2");
    assert_eq!(start.elapsed(), Duration::from_millis(1050));
    t.events.assert_no_close();
    assert!(t.engine.get(sid).is_some());
}

#[tokio::test(start_paused = true)]
async fn without_a_pong_the_session_closes_with_ping_timeout() {
    let mut t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;

    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "2");
    assert_eq!(t.events.close_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(start.elapsed(), INTERVAL + TIMEOUT);
    assert!(t.engine.get(sid).is_none());

    get(&t.router, &poll_uri(sid)).await.assert_error(1);
    post(&t.router, &poll_uri(sid), "3").await.assert_error(1);
}

#[tokio::test(start_paused = true)]
async fn a_pending_get_is_not_a_pong() {
    let mut t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;
    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "2");

    // The client keeps polling but never answers the ping.
    let pending = spawn_get(&t.router, &poll_uri(sid));
    assert_eq!(t.events.close_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(start.elapsed(), INTERVAL + TIMEOUT);
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "1");
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_never_polls_is_reaped() {
    let mut t = app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;
    assert_eq!(t.engine.len(), 1);

    assert_eq!(t.events.close_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(start.elapsed(), INTERVAL + TIMEOUT);
    assert!(t.engine.is_empty());
    get(&t.router, &poll_uri(sid)).await.assert_error(1);
}

#[tokio::test(start_paused = true)]
async fn messages_do_not_replace_the_pong() {
    let mut t = echo_app(config());
    let start = Instant::now();
    let sid = handshake(&t.router).await;
    assert_eq!(get(&t.router, &poll_uri(sid)).await.body, "2");

    sleep(Duration::from_millis(100)).await;
    assert_eq!(post(&t.router, &poll_uri(sid), "4busy").await.body, "ok");
    assert_eq!(t.events.close_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(start.elapsed(), INTERVAL + TIMEOUT);
}
