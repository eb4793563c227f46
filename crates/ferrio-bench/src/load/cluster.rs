//! The cluster scenario: several servers on one Redis (the runner starts them and gives one
//! address per node, the first being node 1), `sockets` WebSocket sockets on each.
//!
//! 1. Room emit latency across nodes: one socket of node 2 joins room `latency`; one socket
//!    of node 1 sends `42["to-room","latency","lat",{"seq":K,"t":T}]`, T being the send
//!    time in nanoseconds since the scenario started, and waits until the member receives
//!    `42["lat",{"seq":K,"t":T}]` byte for byte; the latency is the arrival time minus T.
//!    One emit in flight, `emits / 10` warm-up emits, then `emits` measured.
//! 2. Cross-node broadcasts: a socket of node 1 asks for a `burst` of `messages`, so node 1
//!    broadcasts to every socket of the cluster; every socket of every node (the sender
//!    included) must receive each `bcast` exactly once. One warm-up burst, then `rounds`
//!    measured ones between the `start` and `end` marks. The deliveries counted are those to
//!    the sockets of the other nodes, the ones that went through Redis.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::ws::{WsClient, connect_many};
use super::{
    CONNECT_PARALLELISM, DeliveryCounter, LoadConfig, Marks, elapsed_nanos, new_histogram,
    quantile_us, spawn_counters, within,
};
use crate::BoxError;

/// The room of the latency phase and the event its member receives.
const ROOM: &str = "latency";
const EVENT: &str = "lat";

pub(super) async fn cluster(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    if config.nodes.len() < 2 {
        return Err("the cluster scenario needs two or more addresses in --addr (a,b,c)".into());
    }
    if config.sockets == 0 {
        return Err("the cluster scenario needs at least one socket per node".into());
    }
    let mut nodes = Vec::with_capacity(config.nodes.len());
    for addr in &config.nodes {
        let clients = connect_many(
            *addr,
            &config.path,
            config.sockets,
            CONNECT_PARALLELISM,
            config.timeout,
            Default::default(),
        )
        .await?;
        nodes.push(clients);
    }
    let mut local = nodes.remove(0);
    let mut remote: Vec<WsClient> = nodes.into_iter().flatten().collect();

    let base = Instant::now();
    let (sender, member) = (&mut local[0], &mut remote[0]);
    member.join(ROOM).await?;
    let warmup = (config.emits / 10).max(1);
    let mut latency = new_histogram();
    for seq in 0..warmup + config.emits {
        let took = room_emit(sender, member, seq, base, config).await?;
        if seq >= warmup {
            latency.saturating_record(took);
        }
    }

    let expected: Arc<str> = format!("42[\"bcast\",{}]", config.payload).into();
    let local_counter = DeliveryCounter::new(config.timeout);
    let remote_counter = DeliveryCounter::new(config.timeout);
    let local_sockets = local.len() as u64;
    let remote_sockets = remote.len() as u64;
    // The first socket of node 1 asks for the bursts; the remote group's first socket has
    // nothing to send.
    let (counters, local_tasks) = spawn_counters(local, expected.clone(), &local_counter);
    let (remote_counters, remote_tasks) = spawn_counters(remote, expected, &remote_counter);
    let burst = format!(
        "42[\"burst\",{{\"n\":{},\"payload\":{}}}]",
        config.messages, config.payload
    );
    let messages = config.messages as u64;
    let (local_round, remote_round) = (local_sockets * messages, remote_sockets * messages);
    counters.commands.send(burst.clone())?;
    local_counter.wait_for(local_round).await?;
    remote_counter.wait_for(remote_round).await?;

    marks.mark("start").await?;
    let started = Instant::now();
    let mut round_ms = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds as u64 {
        let round_started = Instant::now();
        counters.commands.send(burst.clone())?;
        local_counter.wait_for(local_round * (round + 1)).await?;
        remote_counter.wait_for(remote_round * (round + 1)).await?;
        round_ms.push(round_started.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    marks.mark("end").await?;
    let per_socket = messages * (config.rounds as u64 + 1);
    counters.finish(local_tasks, per_socket).await?;
    remote_counters.finish(remote_tasks, per_socket).await?;
    let deliveries = remote_round * config.rounds as u64;
    Ok(json!({
        "nodes": config.nodes.len(),
        "sockets_per_node": config.sockets,
        "messages": config.messages,
        "rounds": config.rounds,
        "deliveries": deliveries,
        "local_deliveries": local_round * config.rounds as u64,
        "seconds": seconds,
        "deliveries_per_sec": deliveries as f64 / seconds,
        "round_ms": round_ms,
        "emits": config.emits,
        "latency_p50_us": quantile_us(&latency, 0.5),
        "latency_p99_us": quantile_us(&latency, 0.99),
        "latency_max_us": latency.max() as f64 / 1000.0,
    }))
}

/// One `to-room` emit from `sender` (node 1) to the room of `member` (node 2): the
/// nanoseconds from the timestamp in the payload to the member's receiving it.
async fn room_emit(
    sender: &mut WsClient,
    member: &mut WsClient,
    seq: usize,
    base: Instant,
    config: &LoadConfig,
) -> Result<u64, BoxError> {
    let sent = elapsed_nanos(base);
    let payload = format!("{{\"seq\":{seq},\"t\":{sent}}}");
    let expected = format!("42[\"{EVENT}\",{payload}]");
    sender
        .send(format!("42[\"to-room\",\"{ROOM}\",\"{EVENT}\",{payload}]"))
        .await?;
    let arrival = async {
        loop {
            let frame = member.recv().await?;
            if frame == expected {
                return Ok(elapsed_nanos(base));
            }
            // The `welcome` of the member is the only other event it may see.
            if frame.starts_with("42") && !frame.starts_with("42[\"welcome\"") {
                return Err::<_, BoxError>(format!("expected {expected}, got {frame}").into());
            }
        }
    };
    let arrived = within(config.timeout, "a cross-node room emit", arrival).await?;
    Ok(arrived.saturating_sub(sent))
}
