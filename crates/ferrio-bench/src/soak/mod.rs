//! `ferrio-bench soak`: a long run against one server process, to find what leaks.
//!
//! The harness starts `ferrio-bench soak-server` (see [`server`]), connects the steady
//! clients, and after a short baseline starts the churn (see [`churn::Kind`]): clients that
//! come and go over both transports, upgrades abandoned after the probe, half-open and
//! half-written connections, slow readers, disconnects at random steps. Some time before the
//! end the churn stops and only the steady clients remain. Every second it reads the
//! server's RSS from `/proc/<pid>/status` and its sessions, sockets, rooms and tasks from
//! `GET /soak/stats`. It writes `samples.csv`, `soak.json` and `soak.svg` to `--out`, prints
//! the verdict, and exits with status 1 when the verdict fails. `docs/reliability.md` tells
//! how to read it.

mod behaviours;
mod churn;
mod plot;
pub(crate) mod server;
mod steady;
mod verdict;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use self::churn::Churn;
use self::server::ServerConfig;
use self::steady::Steady;
use self::verdict::{Plan, Sample};
use crate::BoxError;
use crate::args::Args;
use crate::load::http::HttpConn;
use crate::runner::{Running, rss_kib, wait_for_port, workspace_root};

/// Where Socket.IO lives on the soak server.
const PATH: &str = "/socket.io/";

/// Settings of one soak run (the command line's options).
#[derive(Debug, Clone)]
struct SoakConfig {
    plan: Plan,
    out: PathBuf,
    /// Churn clients started per second.
    rate: f64,
    steady: usize,
    /// The longest a churn client holds its connection.
    hold: Duration,
    server: ServerConfig,
}

impl SoakConfig {
    fn from_args(args: &mut Args) -> Result<Self, BoxError> {
        let minutes: f64 = args.value("minutes", "10")?;
        let default_out = workspace_root().join("target/soak");
        let out: PathBuf = args.value("out", &default_out.display().to_string())?;
        let rate: f64 = args.value("rate", "40")?;
        let steady: usize = args.value("steady", "20")?;
        let hold = Duration::from_secs_f64(args.value("hold", "30")?);
        let optional = |args: &mut Args, name: &str| -> Result<Option<f64>, BoxError> {
            let value: f64 = args.value(name, "-1")?;
            Ok((value >= 0.0).then_some(value))
        };
        let warmup = optional(args, "warmup")?;
        let quiet = optional(args, "quiet")?;
        let server = ServerConfig::from_args(args)?;
        if !(rate > 0.0 && rate <= 500.0) {
            return Err("--rate must be above 0 and at most 500 connections a second".into());
        }
        if steady == 0 {
            return Err("--steady must be at least 1".into());
        }
        // After the churn, long enough for the server to notice every silent peer, twice.
        let min_quiet = server.heartbeat_deadline().as_secs_f64() * 2.0;
        let plan = Plan::new(minutes * 60.0, warmup, quiet, min_quiet, hold.as_secs_f64())?;
        Ok(SoakConfig {
            plan,
            out,
            rate,
            steady,
            hold,
            server,
        })
    }

    fn describe(&self) -> Value {
        json!({
            "plan": self.plan,
            "rate_per_sec": self.rate,
            "steady_clients": self.steady,
            "hold_secs": self.hold.as_secs_f64(),
            "ping_interval_ms": self.server.ping_interval.as_millis() as u64,
            "ping_timeout_ms": self.server.ping_timeout.as_millis() as u64,
            "connect_timeout_ms": self.server.connect_timeout.as_millis() as u64,
            "tick_ms": self.server.tick.as_millis() as u64,
            "tick_bytes": self.server.tick_bytes,
        })
    }
}

/// What the run recorded.
struct Recorded {
    samples: Vec<Sample>,
    churn: Value,
    steady: Value,
    steady_failures: u64,
    /// Why the server stopped answering, if it did.
    server_lost: Option<String>,
}

/// `ferrio-bench soak [--minutes 10] [--out DIR] ...`
pub(crate) fn run(mut args: Args) -> Result<(), BoxError> {
    let config = SoakConfig::from_args(&mut args)?;
    args.finish()?;
    std::fs::create_dir_all(&config.out)?;
    let plan = config.plan;
    eprintln!(
        "soak: {:.0} s; churn from {:.0} s to {:.0} s at {} clients/s, RSS judged from {:.0} s; \
         {} steady clients; output in {}",
        plan.end,
        plan.churn_start,
        plan.churn_end,
        config.rate,
        plan.warmup_end,
        config.steady,
        config.out.display()
    );

    let log = std::fs::File::create(config.out.join("server.log"))?;
    let mut server = Command::new(std::env::current_exe()?);
    server
        .arg("soak-server")
        .args(config.server.to_args())
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if std::env::var_os("RUST_LOG").is_none() {
        server.env("RUST_LOG", "warn");
    }
    let mut child = server.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = child.id();
    let mut running = Running::new(child);
    let port = wait_for_port(stdout)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // One thread: the harness takes one core, the server the other.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let recorded = runtime.block_on(drive(&config, addr, pid))?;
    drop(runtime);
    let exit = running.stop();
    let server_exit = match (&recorded.server_lost, exit) {
        (Some(lost), _) => Some(lost.clone()),
        (None, Some(status)) if status.success() => None,
        (None, Some(status)) => Some(format!("it exited with {status} when asked to stop")),
        (None, None) => Some("it did not exit when asked to stop".to_owned()),
    };

    let level = verdict::baseline_level(&recorded.samples, &plan, config.steady as u64);
    let checks = verdict::judge(
        &recorded.samples,
        &plan,
        level,
        recorded.steady_failures,
        server_exit.as_deref(),
    );
    let pass = checks.iter().all(|c| c.pass);
    write_outputs(&config, &recorded, level, &checks, pass)?;

    println!("\nchurn clients (held_long: held at least the heartbeat deadline + 2 s):");
    for (kind, c) in recorded.churn.as_object().into_iter().flatten() {
        println!(
            "  {kind:<18} started {:>6}  done {:>6}  failed {:>4}  held_long {:>4}  closed by the server {:>4}",
            c["started"], c["done"], c["failed"], c["held_long"], c["closed_by_server"]
        );
        for error in c["first_errors"].as_array().into_iter().flatten() {
            println!("      e.g. {}", error.as_str().unwrap_or("?"));
        }
    }
    let s = &recorded.steady;
    println!(
        "steady clients: {} echoes, {} failures, echo p50 {} µs, p99 {} µs, max {} µs",
        s["echoes"], s["failures"], s["echo_p50_us"], s["echo_p99_us"], s["echo_max_us"]
    );
    for error in s["first_errors"].as_array().into_iter().flatten() {
        println!("      e.g. {}", error.as_str().unwrap_or("?"));
    }
    println!("\nverdict:");
    for check in &checks {
        let mark = if check.pass { "pass" } else { "FAIL" };
        println!("  [{mark}] {}: {}", check.name, check.detail);
    }
    println!(
        "\n{} ({} samples in {})",
        if pass { "PASS" } else { "FAIL" },
        recorded.samples.len(),
        config.out.display()
    );
    if pass {
        Ok(())
    } else {
        Err("the verdict failed".into())
    }
}

fn write_outputs(
    config: &SoakConfig,
    recorded: &Recorded,
    level: Option<verdict::Level>,
    checks: &[verdict::Check],
    pass: bool,
) -> Result<(), BoxError> {
    let out = &config.out;
    let plan = &config.plan;
    std::fs::write(
        out.join("samples.csv"),
        verdict::csv(&recorded.samples, plan),
    )?;
    std::fs::write(
        out.join("soak.svg"),
        plot::svg(&recorded.samples, plan, level),
    )?;
    let mut environment = crate::report::environment(&[], 1, false, "none");
    if let Some(env) = environment.as_object_mut() {
        // What a comparison records and a soak has not.
        for key in ["servers", "runs", "smoke", "pinning"] {
            env.remove(key);
        }
    }
    let json = json!({
        "environment": environment,
        "config": config.describe(),
        "baseline": level,
        "samples": recorded.samples,
        "churn": recorded.churn,
        "steady": recorded.steady,
        "verdict": { "pass": pass, "checks": checks },
    });
    std::fs::write(out.join("soak.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// The run itself: steady clients, baseline, churn, quiet phase, sampling throughout.
async fn drive(config: &SoakConfig, addr: SocketAddr, pid: u32) -> Result<Recorded, BoxError> {
    let plan = config.plan;
    let started = Instant::now();
    let at = |secs: f64| tokio::time::Instant::from_std(started + Duration::from_secs_f64(secs));
    let long_hold = config.server.heartbeat_deadline() + Duration::from_secs(2);
    let churn = Arc::new(Churn::new(addr, PATH, config.hold, long_hold));
    let steady = Steady::new(config.steady);
    let (stop_steady, steady_stop) = watch::channel(false);
    let steady_tasks = steady::spawn(&steady, addr, PATH, &steady_stop);

    let (stop_sampling, sampling_stop) = watch::channel(false);
    let mut sampler = tokio::spawn(sample(addr, pid, started, churn.clone(), sampling_stop));
    let (stop_churn, churn_stop) = watch::channel(false);

    let timeline = async {
        tokio::time::sleep_until(at(plan.churn_start)).await;
        if steady.connected() < config.steady as u64 {
            eprintln!(
                "soak: warning: only {} of {} steady clients connected by the end of the baseline",
                steady.connected(),
                config.steady
            );
        }
        eprintln!("soak: churn starts");
        let churn_task = tokio::spawn(churn::run(churn.clone(), config.rate, churn_stop));
        tokio::time::sleep_until(at(plan.churn_end)).await;
        let _ = stop_churn.send(true);
        eprintln!("soak: churn stops; quiet until the end");
        let _ = churn_task.await;
        tokio::time::sleep_until(at(plan.end)).await;
    };
    // The sampler ends early only when the server is gone: then so is the run.
    let (samples, server_lost) = tokio::select! {
        recorded = &mut sampler => recorded?,
        () = timeline => {
            let _ = stop_sampling.send(true);
            sampler.await?
        }
    };
    if let Some(why) = &server_lost {
        eprintln!("soak: the server is gone ({why}); stopping the run");
        let _ = stop_churn.send(true);
    }
    let _ = stop_steady.send(true);
    for task in steady_tasks {
        let _ = task.await;
    }
    Ok(Recorded {
        samples,
        churn: churn.report(),
        steady: steady.report(),
        steady_failures: steady.failures(),
        server_lost,
    })
}

/// Samples the server once a second until `stop`, or until it stops answering (then says why).
async fn sample(
    addr: SocketAddr,
    pid: u32,
    started: Instant,
    churn: Arc<Churn>,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Sample>, Option<String>) {
    let mut samples = Vec::new();
    let mut conn = None;
    let mut misses = 0;
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_progress = 0u64;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return (samples, None),
            _ = interval.tick() => {}
        }
        let t = started.elapsed().as_secs_f64();
        let rss = match rss_kib(pid) {
            Ok(rss) => rss,
            Err(_) => return (samples, Some(format!("its process was gone at {t:.0} s"))),
        };
        match stats(addr, &mut conn).await {
            Ok((sessions, sockets, rooms, tasks)) => {
                misses = 0;
                samples.push(Sample {
                    t,
                    rss_kib: rss,
                    sessions,
                    sockets,
                    rooms,
                    tasks,
                    client_conns: churn.open_connections(),
                });
            }
            Err(err) => {
                conn = None;
                misses += 1;
                eprintln!("soak: no stats at {t:.0} s: {err}");
                if misses >= 10 {
                    let why = format!("/soak/stats failed 10 times in a row (last: {err})");
                    return (samples, Some(why));
                }
            }
        }
        // A line every 30 s, so a long run shows it is alive.
        let progress = t as u64 / 30;
        if progress > last_progress {
            last_progress = progress;
            if let Some(s) = samples.last() {
                eprintln!(
                    "soak: {:>4.0} s  RSS {:.1} MiB  sessions {}  sockets {}  rooms {}  tasks {}  churn connections {}",
                    s.t,
                    s.rss_kib as f64 / 1024.0,
                    s.sessions,
                    s.sockets,
                    s.rooms,
                    s.tasks,
                    s.client_conns
                );
            }
        }
    }
}

/// `GET /soak/stats` on a kept-alive connection (opened again after a failure).
async fn stats(
    addr: SocketAddr,
    conn: &mut Option<HttpConn>,
) -> Result<(u64, u64, u64, u64), BoxError> {
    let request = async {
        if conn.is_none() {
            *conn = Some(HttpConn::open(addr).await?);
        }
        let conn = conn.as_mut().ok_or("no stats connection")?;
        conn.request(Method::GET, "/soak/stats", None, bytes::Bytes::new())
            .await
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .map_err(|_| "no answer within 5 s")??;
    if status != StatusCode::OK {
        return Err(format!("/soak/stats answered {status}").into());
    }
    let stats: Value = serde_json::from_slice(&body)?;
    let field = |name: &str| {
        stats[name]
            .as_u64()
            .ok_or_else(|| format!("/soak/stats lacks {name}: {stats}"))
    };
    Ok((
        field("sessions")?,
        field("sockets")?,
        field("rooms")?,
        field("tasks")?,
    ))
}
