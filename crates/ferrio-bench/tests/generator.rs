//! The load generator checks what servers answer: against a faithful server every scenario
//! completes, and against a server that gets one thing wrong the run fails. This is what
//! keeps a fast-looking but wrong server out of the tables.

use std::net::SocketAddr;
use std::process::Command;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bus_adapter::{Bus, BusAdapter};
use ferrio::{AckSender, Bytes, Data, Io, Payload, SocketRef};
use serde_json::Value;

/// How the test server departs from the benchmark contract.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Acks an echo with something else.
    WrongEcho,
    /// Acks a binary echo with other bytes (the last one changed).
    WrongBinary,
    /// Sends one broadcast less than a burst asks for.
    ShortBurst,
    /// Sends one broadcast more than a burst asks for (the total is reached early).
    LongBurst,
    /// `POST /emit` answers 500 and emits nothing.
    FailingEmit,
}

async fn serve(fault: Fault) -> SocketAddr {
    serve_on(fault, None).await
}

/// A server of the contract, a node of the cluster on `bus` when there is one.
async fn serve_on(fault: Fault, bus: Option<Bus>) -> SocketAddr {
    let (layer, io) = match bus {
        Some(bus) => Io::builder()
            .adapter(move |ctx| BusAdapter::new(ctx, bus.clone()))
            .build_layer(),
        None => Io::new_layer(),
    };
    io.ns("/", move |socket: SocketRef| {
        socket.on("echo", move |args: Payload, ack: AckSender| match fault {
            Fault::WrongEcho => ack.send(&"wrong"),
            Fault::WrongBinary => match args.get::<Bytes>(0) {
                Ok(bytes) => {
                    let mut changed = bytes.to_vec();
                    if let Some(last) = changed.last_mut() {
                        *last ^= 1;
                    }
                    ack.send(&Bytes::from(changed))
                }
                Err(_) => ack.send_args(&args),
            },
            _ => ack.send_args(&args),
        });
        socket.on(
            "join",
            |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room);
                ack.send(&true)
            },
        );
        socket.on("to-room", |io: Io, args: Payload| {
            let room: String = args.get(0).unwrap_or_default();
            let event: String = args.get(1).unwrap_or_default();
            let _ = io.within(room).emit(&event, &args.arg(2));
        });
        socket.on("burst", move |io: Io, Data(burst): Data<Value>| {
            let mut n = burst["n"].as_u64().unwrap_or(0);
            match fault {
                Fault::ShortBurst => n = n.saturating_sub(1),
                Fault::LongBurst => n += 1,
                _ => {}
            }
            for _ in 0..n {
                let _ = io.emit("bcast", &burst["payload"]);
            }
        });
    });
    async fn emit(io: Io, axum::Json(body): axum::Json<Value>) -> StatusCode {
        let room = body["room"].as_str().unwrap_or_default().to_owned();
        let event = body["event"].as_str().unwrap_or_default().to_owned();
        let _ = io.to(room).emit(&event, &body["data"]);
        StatusCode::OK
    }
    let app = if fault == Fault::FailingEmit {
        Router::new().route(
            "/emit",
            post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
    } else {
        Router::new().route("/emit", post(emit))
    }
    .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Runs `ferrio-bench load SCENARIO` with tiny sizes; returns (success, stdout + stderr).
async fn load(addr: SocketAddr, scenario: &str, extra: &[&str]) -> (bool, String) {
    load_on(&addr.to_string(), scenario, extra).await
}

/// [`load`] against `addrs` (`a,b,c` for the cluster scenario).
async fn load_on(addrs: &str, scenario: &str, extra: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrio-bench"));
    command.args(["load", scenario, "--addr", addrs]).args([
        "--warmup",
        "0.05",
        "--duration",
        "0.2",
        "--timeout",
        "3",
        "--clients",
        "3",
        "--sockets",
        "5",
        "--messages",
        "4",
        "--rounds",
        "2",
        "--requests",
        "6",
        "--concurrency",
        "2",
        "--emits",
        "5",
    ]);
    command.args(extra);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn result_of(output: &str) -> Value {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("@result "))
        .unwrap_or_else(|| panic!("no result in {output}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_completes_against_a_faithful_server() {
    let addr = serve(Fault::None).await;
    for scenario in ["echo", "polling"] {
        let (ok, output) = load(addr, scenario, &[]).await;
        assert!(ok, "{scenario}: {output}");
        assert!(result_of(&output)["ops"].as_u64().unwrap() > 0, "{output}");
        assert!(output.contains("@mark start") && output.contains("@mark end"));
    }
    let (ok, output) = load(addr, "fanout", &[]).await;
    assert!(ok, "{output}");
    assert_eq!(result_of(&output)["deliveries"], 5 * 4 * 2);
    let (ok, output) = load(addr, "http-emit", &[]).await;
    assert!(ok, "{output}");
    assert_eq!(result_of(&output)["deliveries"], 5 * 6);
    let (ok, output) = load(addr, "idle", &[]).await;
    assert!(ok, "{output}");
    assert_eq!(result_of(&output)["sockets"], 5);
    let (ok, output) = load(addr, "big-echo", &["--binary-bytes", "70000"]).await;
    assert!(ok, "{output}");
    let result = result_of(&output);
    assert!(result["ops"].as_u64().unwrap() > 0, "{output}");
    assert_eq!(result["binary_bytes"], 70000, "{output}");
    assert!(result["mb_per_sec"].as_f64().unwrap() > 0.0, "{output}");
    let (ok, output) = load(addr, "fanout", &["--payload-bytes", "5000"]).await;
    assert!(ok, "{output}");
    assert_eq!(result_of(&output)["frame_bytes"], 5000 + 30, "{output}");
    // 30 sockets from two loopback source addresses, two broadcasts to all of them.
    let (ok, output) = load(addr, "scale", &["--sockets", "30", "--sources", "2"]).await;
    assert!(ok, "{output}");
    let result = result_of(&output);
    assert_eq!(result["sources"], 2, "{output}");
    assert_eq!(result["deliveries"], 30 * 2, "{output}");
    assert!(output.contains("@mark connected") && output.contains("@mark end"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_bytes_in_a_binary_echo_fail_the_run() {
    let addr = serve(Fault::WrongBinary).await;
    let (ok, output) = load(addr, "big-echo", &["--binary-bytes", "3000"]).await;
    assert!(!ok, "big-echo passed with different bytes: {output}");
    assert!(
        output.contains("the attachment came back different (3000 bytes, 3000 sent; first difference at byte 2999)"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_echo_fails_the_run() {
    let addr = serve(Fault::WrongEcho).await;
    for scenario in ["echo", "polling"] {
        let (ok, output) = load(addr, scenario, &[]).await;
        assert!(!ok, "{scenario} passed against a wrong echo: {output}");
        assert!(output.contains(r#"got 431["wrong"]"#), "{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_broadcast_fails_the_run() {
    let addr = serve(Fault::ShortBurst).await;
    let (ok, output) = load(addr, "fanout", &[]).await;
    assert!(!ok, "fanout passed with a broadcast missing: {output}");
    assert!(
        output.contains("timed out with 15 of 20 deliveries"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_broadcast_fails_the_run() {
    let addr = serve(Fault::LongBurst).await;
    let (ok, output) = load(addr, "fanout", &[]).await;
    assert!(!ok, "fanout passed with a broadcast too many: {output}");
    assert!(output.contains("expected exactly 12"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_emit_fails_the_run() {
    let addr = serve(Fault::FailingEmit).await;
    let (ok, output) = load(addr, "http-emit", &[]).await;
    assert!(!ok, "http-emit passed against a failing /emit: {output}");
    assert!(output.contains("500"), "{output}");
}

/// Three nodes: all on one bus, or the third on its own.
async fn cluster(third_joins: bool) -> String {
    let bus = Bus::new();
    let mut addrs = Vec::new();
    for node in 0..3 {
        let bus = (node < 2 || third_joins).then(|| bus.clone());
        addrs.push(serve_on(Fault::None, bus).await.to_string());
    }
    addrs.join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_scenario_completes_on_a_cluster() {
    let (ok, output) = load_on(&cluster(true).await, "cluster", &[]).await;
    assert!(ok, "{output}");
    let result = result_of(&output);
    // The sockets of nodes 2 and 3: 2 x 5 sockets x 4 messages x 2 rounds.
    assert_eq!(result["deliveries"], 2 * 5 * 4 * 2, "{output}");
    assert!(result["latency_p50_us"].as_f64().unwrap() > 0.0, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_cluster_fails_the_run() {
    let (ok, output) = load_on(&cluster(false).await, "cluster", &[]).await;
    assert!(
        !ok,
        "cluster passed with node 3 outside the cluster: {output}"
    );
    // The warm-up burst reaches node 2's five sockets, never node 3's.
    assert!(
        output.contains("timed out with 20 of 40 deliveries"),
        "{output}"
    );
}

/// The system-call floor of `ferrio-bench syscalls` echoes the echo scenario's packets, and
/// the generator's `raw-echo` counts them; a server that is not the floor fails the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_echo_completes_against_the_floor_and_fails_against_socket_io() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut floor = Command::new(env!("CARGO_BIN_EXE_ferrio-bench"))
        .arg("syscalls-server")
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(floor.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let (ok, output) = load(SocketAddr::from(([127, 0, 0, 1], port)), "raw-echo", &[]).await;
    let _ = floor.kill();
    let _ = floor.wait();
    assert!(ok, "{output}");
    assert!(result_of(&output)["ops"].as_u64().unwrap() > 0, "{output}");

    let addr = serve(Fault::None).await;
    let (ok, _) = load(addr, "raw-echo", &[]).await;
    assert!(!ok, "raw-echo must fail against a Socket.IO server");
}
