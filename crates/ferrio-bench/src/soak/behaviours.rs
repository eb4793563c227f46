//! What each kind of churn client does (see [`Kind`] for the list). Every network step has a
//! timeout ([`STEP`]), and every hold ends when the churn stops, so a client never outlives
//! the churn by more than a step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::churn::{Churn, Kind, STEP, server_closed};
use super::server::TICK_ROOM;
use crate::BoxError;
use crate::load::EchoTransport;
use crate::load::http::{HttpConn, PollingClient, sid_of_open};
use crate::load::ws::WsClient;

/// Runs one client of `kind`.
pub(crate) async fn run(
    kind: Kind,
    churn: &Arc<Churn>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BoxError> {
    match kind {
        Kind::WsAbandon => ws_abandon(churn).await,
        Kind::PollingAbandon => polling_abandon(churn).await,
        Kind::UpgradeAbandon => upgrade_abandon(churn, &mut stop).await,
        Kind::HalfOpenWs => half_open_ws(churn, &mut stop).await,
        Kind::IdleTcp => idle_tcp(churn, &mut stop).await,
        Kind::PartialHttp => partial_http(churn, &mut stop).await,
        Kind::SlowReader => slow_reader(churn, &mut stop).await,
        Kind::RandomDisconnect => random_disconnect(churn).await,
    }
}

/// `future`, or an error when it takes longer than [`STEP`].
async fn step<T>(future: impl Future<Output = Result<T, BoxError>>) -> Result<T, BoxError> {
    tokio::time::timeout(STEP, future)
        .await
        .map_err(|_| format!("a step took longer than {STEP:?}"))?
}

fn chance(p: f64) -> bool {
    rand::random_bool(p)
}

/// Leaves a WebSocket one of three ways: a close handshake, a plain TCP close (FIN), or a
/// reset (RST, as when a client's machine drops off).
async fn leave_ws(ws: WsClient) {
    match rand::random_range(0..3) {
        0 => {
            let _ = tokio::time::timeout(STEP, ws.close()).await;
        }
        1 => drop(ws),
        _ => {
            let _ = ws.tcp().set_zero_linger();
            drop(ws);
        }
    }
}

/// Sends `42<id>["echo",...]` and waits for its ack (other frames, such as ticks, skipped),
/// within [`STEP`].
pub(crate) async fn echo<T: EchoTransport>(client: &mut T, id: u64) -> Result<(), BoxError> {
    client
        .send(format!("42{id}[\"echo\",{{\"n\":{id}}}]"))
        .await?;
    let ack = format!("43{id}[");
    step(async {
        while !client.recv().await?.starts_with(&ack) {}
        Ok(())
    })
    .await
}

/// The `join` event for the tick room, as a text frame with ack id `id`.
pub(crate) fn join_ticks(id: u64) -> String {
    format!("42{id}[\"join\",\"{TICK_ROOM}\"]")
}

async fn ws_abandon(churn: &Arc<Churn>) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    let mut ws = step(WsClient::connect(churn.addr, &churn.path)).await?;
    if chance(0.5) {
        echo(&mut ws, 1).await?;
    }
    leave_ws(ws).await;
    Ok(())
}

async fn polling_abandon(churn: &Arc<Churn>) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    let mut client = step(PollingClient::connect(churn.addr, &churn.path)).await?;
    if chance(0.5) {
        echo(&mut client, 1).await?;
    }
    if chance(0.25) {
        step(client.post("1")).await?;
    }
    client.abort();
    Ok(())
}

async fn upgrade_abandon(
    churn: &Arc<Churn>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BoxError> {
    let _polling_open = churn.open_guard();
    let polling = step(PollingClient::connect(churn.addr, &churn.path)).await?;
    let query = format!(
        "{}?EIO=4&transport=websocket&sid={}",
        churn.path,
        polling.sid()
    );
    let tcp = step(async { Ok(TcpStream::connect(churn.addr).await?) }).await?;
    let _ws_open = churn.open_guard();
    let mut ws = step(WsClient::handshake(tcp, churn.addr, &query)).await?;
    ws.send("2probe".to_owned()).await?;
    let answer = step(ws.recv()).await?;
    if answer != "3probe" {
        return Err(format!("probe answered {answer:?}").into());
    }
    // Never `5`: the upgrade stays pending until the server gives up on it.
    if chance(0.5) {
        churn.hold(Kind::UpgradeAbandon, ws.tcp(), stop).await;
    }
    polling.abort();
    leave_ws(ws).await;
    Ok(())
}

async fn half_open_ws(
    churn: &Arc<Churn>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    let mut ws = step(WsClient::connect(churn.addr, &churn.path)).await?;
    if chance(0.5) {
        // In the tick room, the server has a steady stream to queue for a client that
        // reads nothing.
        ws.send(join_ticks(1)).await?;
    }
    churn.hold(Kind::HalfOpenWs, ws.tcp(), stop).await;
    drop(ws);
    Ok(())
}

async fn idle_tcp(churn: &Arc<Churn>, stop: &mut watch::Receiver<bool>) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    let tcp = step(async { Ok(TcpStream::connect(churn.addr).await?) }).await?;
    churn.hold(Kind::IdleTcp, &tcp, stop).await;
    Ok(())
}

async fn partial_http(
    churn: &Arc<Churn>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BoxError> {
    let (addr, path) = (churn.addr, &churn.path);
    let request = match rand::random_range(0..3) {
        // Headers that never end.
        0 => format!(
            "GET {path}?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n"
        ),
        // A POST to a live session whose body never completes; the session's own client
        // is gone too.
        1 => {
            let _open = churn.open_guard();
            let client = step(PollingClient::connect(addr, path)).await?;
            let sid = client.sid().to_owned();
            client.abort();
            format!(
                "POST {path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000\r\n\r\n42[\"echo\","
            )
        }
        // A WebSocket upgrade request without its blank line.
        _ => format!(
            "GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: c29hay1wYXJ0aWFsLWtleQ==\r\n"
        ),
    };
    let _open = churn.open_guard();
    let mut tcp = step(async { Ok(TcpStream::connect(addr).await?) }).await?;
    tcp.write_all(request.as_bytes()).await?;
    churn.hold(Kind::PartialHttp, &tcp, stop).await;
    Ok(())
}

async fn slow_reader(churn: &Arc<Churn>, stop: &mut watch::Receiver<bool>) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    let socket = TcpSocket::new_v4()?;
    // A small window: what the client does not read piles up on the server's side.
    socket.set_recv_buffer_size(4096)?;
    let tcp = step(async { Ok(socket.connect(churn.addr).await?) }).await?;
    let mut ws = step(WsClient::connect_on(tcp, churn.addr, &churn.path)).await?;
    ws.send(join_ticks(1)).await?;
    let started = Instant::now();
    let deadline = started + churn.hold;
    // Pauses up to twice the heartbeat deadline: some outlast it, some do not.
    let longest_pause = churn.long_hold.as_secs_f64() * 2.0;
    loop {
        // Read for a while...
        let reading = Duration::from_secs_f64(rand::random_range(0.5..3.0));
        let until = Instant::now() + reading;
        while Instant::now() < until {
            match tokio::time::timeout_at(until.into(), ws.recv()).await {
                Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => {
                    churn.record_hold(Kind::SlowReader, started.elapsed(), true);
                    return Ok(());
                }
            }
        }
        if Instant::now() >= deadline || *stop.borrow() {
            break;
        }
        // ...then stop reading while the ticks go on.
        let pause = Duration::from_secs_f64(rand::random_range(1.0..longest_pause.max(2.0)));
        let _ = tokio::time::timeout(pause, stop.wait_for(|stopped| *stopped)).await;
        if *stop.borrow() {
            break;
        }
    }
    let closed = server_closed(ws.tcp()).await;
    churn.record_hold(Kind::SlowReader, started.elapsed(), closed);
    leave_ws(ws).await;
    Ok(())
}

/// Goes away at a random step of a normal session, over either transport.
async fn random_disconnect(churn: &Arc<Churn>) -> Result<(), BoxError> {
    let _open = churn.open_guard();
    if chance(0.5) {
        random_disconnect_ws(churn).await
    } else {
        random_disconnect_polling(churn).await
    }
}

async fn random_disconnect_ws(churn: &Churn) -> Result<(), BoxError> {
    let cut = rand::random_range(0..8);
    let tcp = step(async { Ok(TcpStream::connect(churn.addr).await?) }).await?;
    if cut == 0 {
        return Ok(());
    }
    let query = format!("{}?EIO=4&transport=websocket", churn.path);
    let mut ws = step(WsClient::handshake(tcp, churn.addr, &query)).await?;
    // Steps 1 to 7; the session is left after step `cut`.
    for at in 1..8 {
        if at > cut {
            break;
        }
        match at {
            1 => {}
            2 => {
                step(ws.recv()).await?;
            }
            3 => ws.send("40".to_owned()).await?,
            4 => {
                step(async {
                    while !ws.recv().await?.starts_with("40") {}
                    Ok(())
                })
                .await?
            }
            // The ack is still to come when the client goes.
            5 => ws.send("427[\"echo\",\"bye\"]".to_owned()).await?,
            6 => ws.send(join_ticks(8)).await?,
            _ => {
                step(ws.recv()).await?;
            }
        }
    }
    leave_ws(ws).await;
    Ok(())
}

async fn random_disconnect_polling(churn: &Churn) -> Result<(), BoxError> {
    let cut = rand::random_range(0..7);
    let path = &churn.path;
    let mut conn = step(HttpConn::open(churn.addr)).await?;
    if cut == 0 {
        conn.abort();
        return Ok(());
    }
    let open = format!("{path}?EIO=4&transport=polling");
    if cut == 1 {
        // The handshake request is in flight.
        let wait = Duration::from_millis(rand::random_range(0..3));
        let _ = tokio::time::timeout(wait, get(&mut conn, &open)).await;
        conn.abort();
        return Ok(());
    }
    let (status, body) = get(&mut conn, &open).await?;
    let uri = format!("{open}&sid={}", sid_of_open(status, &body)?);
    if cut >= 3 {
        post(&mut conn, &uri, "40").await?;
    }
    if cut >= 4 {
        // The connect answer, then a long poll cut while it waits.
        get(&mut conn, &uri).await?;
        let wait = Duration::from_millis(rand::random_range(0..300));
        let _ = tokio::time::timeout(wait, get(&mut conn, &uri)).await;
        conn.abort();
        if cut == 4 {
            return Ok(());
        }
        // Same session, new connection, as a browser would after a network change.
        conn = step(HttpConn::open(churn.addr)).await?;
    }
    if cut >= 5 {
        // The ack is still to come when the client goes.
        post(&mut conn, &uri, "427[\"echo\",\"bye\"]").await?;
    }
    if cut >= 6 {
        post(&mut conn, &uri, "1").await?;
    }
    conn.abort();
    Ok(())
}

/// A GET on `conn`; any status (a server may refuse a request of a closed session).
async fn get(conn: &mut HttpConn, uri: &str) -> Result<(StatusCode, Bytes), BoxError> {
    step(conn.request(Method::GET, uri, None, Bytes::new())).await
}

/// A POST of one text packet on `conn`; any status.
async fn post(conn: &mut HttpConn, uri: &str, packet: &'static str) -> Result<(), BoxError> {
    let body = Bytes::from_static(packet.as_bytes());
    let request = conn.request(Method::POST, uri, Some("text/plain;charset=UTF-8"), body);
    step(request).await.map(drop)
}
