//! `ferrio-bench syscalls`: how close the echo-100 scenario is to what the machine can do.
//!
//! ```text
//! ferrio-bench syscalls [--runs 3] [--servers floor,ferrio,axum-raw] [--no-strace]
//!                       [--out DIR] [--profile release] [--no-build]
//! ferrio-bench syscalls-server      # the floor, started by `syscalls` (PORT as the examples)
//! ```
//!
//! The floor is a plain tokio server (the same runtime as the example servers) that reads
//! length-prefixed frames on loopback TCP and writes each complete frame back: the system
//! calls an echo needs, without WebSocket framing, Engine.IO or Socket.IO. It runs the echo-100
//! scenario beside the real servers through the same runner (server on core 0, generator on
//! core 1), which reads each server's user and system time from `/proc/PID/stat` at the marks.
//! A second pass attaches `strace -c -f` to the server between the marks for the number of
//! system calls per echo (strace slows the server several times; only its counts are used).

use std::fmt::Write as _;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BoxError;
use crate::args::Args;
use crate::runner::{self, Measurement};

/// The longest frame the floor accepts: a 2-byte length, so 65 535 bytes and the length.
const MAX_FRAME: usize = 2 + u16::MAX as usize;

/// The number of leading bytes of `buf` that are whole frames (2-byte big-endian length,
/// then that many bytes).
pub(crate) fn complete_frames(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 2) {
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if buf.len() < at + 2 + len {
            break;
        }
        at += 2 + len;
    }
    at
}

/// `ferrio-bench syscalls-server`: the floor server until SIGINT/SIGTERM.
pub(crate) fn server(args: Args) -> Result<(), BoxError> {
    args.finish()?;
    // The runtime the example servers get from `#[tokio::main]`: multi-threaded, one worker
    // per core it may run on (one under `taskset -c 0`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?.port());
        let accept = async {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(echo_connection(tcp));
            }
        };
        tokio::select! {
            () = accept => {}
            _ = tokio::signal::ctrl_c() => {}
            () = terminated() => {}
        }
        Ok::<(), BoxError>(())
    })
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Reads what is there (one `read`), writes the whole frames back (one `write`), keeps the
/// rest for the next read.
async fn echo_connection(mut tcp: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= 2 * MAX_FRAME {
                return;
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = match tcp.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let complete = complete_frames(&buf[..filled]);
        if complete > 0 {
            if tcp.write_all(&buf[..complete]).await.is_err() {
                return;
            }
            buf.copy_within(complete..filled, 0);
            filled -= complete;
        }
    }
}

/// `ferrio-bench syscalls`: echo-100 against the floor and the servers, then the table.
pub(crate) fn run(mut args: Args) -> Result<(), BoxError> {
    let root = runner::workspace_root();
    let runs: usize = args.value("runs", "3")?;
    let servers: String = args.value("servers", "floor,ferrio,axum-raw")?;
    let strace = !args.flag("no-strace");
    let no_build = args.flag("no-build");
    let profile: String = args.value("profile", "release")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let default_out = target.join("ferrio-bench-syscalls");
    let out: PathBuf = args.value("out", &default_out.display().to_string())?;
    args.finish()?;

    let plan = runner::Plan::new(&root, &servers, "echo-100", &profile)?;
    if !no_build {
        plan.build(&root, &profile)?;
    }
    std::fs::create_dir_all(&out)?;
    let mut measurements = Vec::new();
    for run in 1..=runs {
        for measurement in plan.run_once(run, runs, false)? {
            measurements.push(measurement);
        }
    }
    let mut traced = Vec::new();
    if strace {
        eprintln!(
            "strace pass (counts only: strace slows every server several times, and the CPU \
             figures printed are strace's own)"
        );
        traced = plan.run_once(runs + 1, runs, true)?;
    }
    let results = serde_json::json!({
        "environment": plan.environment(runs),
        "measurements": measurements,
        "traced": traced,
    });
    std::fs::write(
        out.join("syscalls.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let table = table(&plan.labels(), &measurements, &traced);
    std::fs::write(out.join("syscalls.md"), &table)?;
    print!("{table}");
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn median(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = match values.len() % 2 {
        1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    };
    Some((median, values[0], values[values.len() - 1]))
}

/// Per server: throughput, CPU per echo split into user and system time, and the system calls
/// per echo of the strace pass, the most frequent ones named.
pub(crate) fn table(
    labels: &[(String, String)],
    measurements: &[Measurement],
    traced: &[Measurement],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| server | echoes/s | server CPU per echo (µs) | user per echo (µs) | system per echo (µs) | system share | system calls per echo (strace pass) | the most frequent, per echo |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for (name, label) in labels {
        let of = |f: &dyn Fn(&Measurement) -> Option<f64>| {
            median(
                measurements
                    .iter()
                    .filter(|m| &m.server == name)
                    .filter_map(f)
                    .collect(),
            )
        };
        let ops = |m: &Measurement| m.load.get("ops").and_then(serde_json::Value::as_f64);
        let cell = |value: Option<(f64, f64, f64)>, digits: usize| match value {
            Some((med, min, max)) => format!("{med:.digits$} ({min:.digits$}–{max:.digits$})"),
            None => "–".into(),
        };
        let rate = of(&|m| m.load.get("ops_per_sec")?.as_f64());
        let cpu = of(&|m| Some(m.server_cpu_ns? as f64 / ops(m)? / 1000.0));
        let user = of(&|m| Some(m.server_user_ns? as f64 / ops(m)? / 1000.0));
        let system = of(&|m| Some(m.server_system_ns? as f64 / ops(m)? / 1000.0));
        let share = of(&|m| {
            let (user, system) = (m.server_user_ns? as f64, m.server_system_ns? as f64);
            Some(system * 100.0 / (user + system))
        });
        let (calls, top) = match traced.iter().find(|m| &m.server == name) {
            Some(m) => syscall_cells(m),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {calls} | {top} |",
            rate.map_or("–".into(), |(med, min, max)| format!(
                "{:.0}k ({:.0}k–{:.0}k)",
                med / 1000.0,
                min / 1000.0,
                max / 1000.0
            )),
            cell(cpu, 2),
            cell(user, 2),
            cell(system, 2),
            share.map_or("–".into(), |(med, _, _)| format!("{med:.0}%")),
        );
    }
    out
}

/// The strace pass of one server: calls per echo, and the four most frequent calls.
fn syscall_cells(m: &Measurement) -> (String, String) {
    let Some(ops) = m.load.get("ops").and_then(serde_json::Value::as_f64) else {
        return ("–".into(), "–".into());
    };
    let total = m.syscalls.get("total").copied().unwrap_or(0) as f64 / ops;
    let mut rows: Vec<(&String, &u64)> = m
        .syscalls
        .iter()
        .filter(|(name, _)| name.as_str() != "total")
        .collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top = rows
        .iter()
        .take(4)
        .map(|(name, calls)| format!("{name} {:.2}", **calls as f64 / ops))
        .collect::<Vec<_>>()
        .join(", ");
    (format!("{total:.2}"), top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(server: &str, ops: u64, user_ms: u64, system_ms: u64) -> Measurement {
        serde_json::from_value(serde_json::json!({
            "run": 1,
            "scenario": "echo-100",
            "server": server,
            "load": { "ops": ops, "ops_per_sec": ops as f64 / 5.0, "seconds": 5.0 },
            "server_cpu_ns": (user_ms + system_ms) * 1_000_000,
            "server_user_ns": user_ms * 1_000_000,
            "server_system_ns": system_ms * 1_000_000,
            "rss_kib": {},
        }))
        .unwrap()
    }

    #[test]
    fn the_table_divides_by_echoes() {
        let labels = vec![("floor".to_owned(), "the floor".to_owned())];
        let runs = vec![measurement("floor", 100_000, 50, 450)];
        let mut traced = measurement("floor", 10_000, 0, 0);
        traced.syscalls = [
            ("total", 20_300),
            ("sendto", 10_000),
            ("recvfrom", 10_100),
            ("epoll_wait", 200),
        ]
        .into_iter()
        .map(|(name, calls)| (name.to_owned(), calls))
        .collect();
        let table = table(&labels, &runs, &[traced]);
        let row = table.lines().nth(2).unwrap();
        assert!(
            row.starts_with("| the floor | 20k (20k–20k) | 5.00 (5.00–5.00) | 0.50 "),
            "{row}"
        );
        assert!(row.contains("| 4.50 (4.50–4.50) | 90% | 2.03 |"), "{row}");
        assert!(
            row.ends_with("| recvfrom 1.01, sendto 1.00, epoll_wait 0.02 |"),
            "{row}"
        );
        // A server without measurements gets dashes, not a panic.
        let empty = super::table(&[("x".to_owned(), "x".to_owned())], &[], &[]);
        assert!(empty.lines().nth(2).unwrap().starts_with("| x | – | – |"));
    }

    #[test]
    fn whole_frames_only() {
        assert_eq!(complete_frames(b""), 0);
        assert_eq!(complete_frames(b"\x00"), 0);
        assert_eq!(complete_frames(b"\x00\x03ab"), 0);
        assert_eq!(complete_frames(b"\x00\x03abc"), 5);
        assert_eq!(complete_frames(b"\x00\x03abc\x00\x01x\x00\x05ab"), 8);
        assert_eq!(complete_frames(b"\x00\x00\x00\x00"), 4);
    }
}
