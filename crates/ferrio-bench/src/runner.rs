//! `ferrio-bench compare`: every scenario against every server, the servers alternating run
//! by run, each server pinned to core 0 and the load generator to core 1; server CPU time
//! and RSS read from `/proc` at the generator's marks. The cluster scenario starts its own
//! `redis-server` (core 1, beside the generator) and three processes of the server (all on
//! core 0), and sums their CPU time. The forwarding scenarios start the same cluster behind
//! this crate's reverse proxy (`proxy.rs`, core 1 too), whose CPU time is read apart.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BoxError;
use crate::args::Args;
use crate::procstat::CpuTicks;

/// A server under test.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// Short name used on the command line and in the tables.
    pub(crate) name: &'static str,
    /// What it is, for the tables.
    pub(crate) label: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    /// Whether it joins a Redis cluster when `REDIS_URL` is set (the cluster scenario).
    cluster: bool,
    /// Whether its cluster nodes pass requests for each other's sessions on (the forwarding
    /// scenarios: no sticky sessions needed).
    forwarding: bool,
    /// The only scenarios it runs (a variant of a server measured where the variant matters).
    only: Option<&'static [&'static str]>,
    /// The system-call floor of `ferrio-bench syscalls`: no Socket.IO, length-prefixed frames
    /// on plain TCP; it runs the echo scenarios only, with the generator's `raw-echo`.
    raw: bool,
}

/// A scenario as the tables name it, with the generator's scenario and sizes.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    load: &'static str,
    options: Vec<(&'static str, String)>,
    /// Server processes: 1, or the nodes of a cluster on a private Redis.
    nodes: usize,
    /// The mode of the reverse proxy the generator goes through (`proxy.rs`), if any.
    proxy: Option<&'static str>,
    /// Open files the runner, and so every process it starts, must be allowed (0: no need
    /// beyond the usual).
    open_files: u64,
    /// A larger V8 heap for the Node.js server (`--max-old-space-size`, in MB).
    node_heap_mb: Option<u32>,
}

/// One server in one scenario in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measurement {
    pub(crate) run: usize,
    pub(crate) scenario: String,
    pub(crate) server: String,
    /// What the load generator reported.
    pub(crate) load: Value,
    /// Server CPU time (all threads, all nodes of a cluster) between the `start` and `end`
    /// marks.
    pub(crate) server_cpu_ns: Option<u64>,
    /// The same, node by node (cluster scenario only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) node_cpu_ns: Vec<u64>,
    /// The CPU time of the cluster's `redis-server` between the same marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redis_cpu_ns: Option<u64>,
    /// The CPU time of the reverse proxy between the same marks (forwarding scenarios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) proxy_cpu_ns: Option<u64>,
    /// The load generator's CPU time between the same marks: near the whole measured time,
    /// the generator rather than the server may be what limits the numbers.
    #[serde(default)]
    pub(crate) load_cpu_ns: Option<u64>,
    /// Server RSS at each mark, in KiB (summed over the nodes of a cluster).
    pub(crate) rss_kib: BTreeMap<String, u64>,
    /// The server's user time between the marks (`utime` of `/proc/PID/stat`, all nodes),
    /// in 10 ms steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_user_ns: Option<u64>,
    /// The server's system time between the marks (`stime`), as `server_user_ns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_system_ns: Option<u64>,
    /// System calls of the server between the marks by name, `total` included, when the
    /// measurement ran under `strace -c` (`ferrio-bench syscalls`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) syscalls: BTreeMap<String, u64>,
}

/// How long the runner lets idle sockets settle before reading the RSS.
const IDLE_SETTLE: Duration = Duration::from_secs(3);

/// `ferrio-bench report [--out DIR]`: the tables and the plot again from `results.json`,
/// without measuring (after a change to the report itself).
pub(crate) fn report(mut args: Args) -> Result<(), BoxError> {
    let root = workspace_root();
    let default_out = root.join("docs/benchmarks");
    let out: PathBuf = args.value("out", &default_out.display().to_string())?;
    args.finish()?;
    let page = root.join("docs/benchmarks.md");
    crate::report::render(&out, (out == default_out).then_some(page.as_path()))
}

pub(crate) fn compare(mut args: Args) -> Result<(), BoxError> {
    let root = workspace_root();
    let runs: usize = args.value("runs", "3")?;
    let smoke = args.flag("smoke");
    let no_build = args.flag("no-build");
    let profile: String = args.value("profile", "release")?;
    let servers_arg: String =
        args.value("servers", "ferrio,ferrio-64k,socketioxide,node,axum-raw")?;
    let scenarios_arg: String = args.value("scenarios", "all")?;
    // The scale scenario's sockets (default 100 000; 200 in the smoke run), for a machine
    // whose open-file limit cannot be raised that far.
    let scale_sockets: Option<usize> = match args.value::<usize>("scale-sockets", "0")? {
        0 => None,
        n => Some(n),
    };
    let default_out = root.join("docs/benchmarks");
    let out: PathBuf = args.value("out", &default_out.display().to_string())?;
    args.finish()?;

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binaries = target.join(if profile == "dev" { "debug" } else { &profile });
    let all_servers = servers(&root, &binaries);
    let servers = pick(&all_servers, &servers_arg, |s| s.name)?;
    let all_scenarios = scenarios(smoke, scale_sockets);
    let scenarios = if scenarios_arg == "all" {
        all_scenarios.clone()
    } else {
        pick(&all_scenarios, &scenarios_arg, |s| s.name)?
    };
    if !no_build {
        build(&root, &profile, &servers)?;
    }
    // Raised here, so that the servers and the generator inherit it.
    if let Some(open_files) = scenarios
        .iter()
        .map(|s| s.open_files)
        .max()
        .filter(|&n| n > 0)
    {
        crate::limits::ensure_open_files(open_files)?;
    }
    let pinning = Pinning::detect();
    if !pinning.enabled {
        eprintln!("warning: taskset or a second core is missing; running without pinning");
    }
    let logs = target.join("ferrio-bench-logs");
    std::fs::create_dir_all(&logs)?;

    std::fs::create_dir_all(&out)?;
    // Taken before measuring: the commit (and whether the tree had changes) the servers were
    // built from.
    let environment = crate::report::environment(&servers, runs, smoke, &pinning.describe());
    let mut measurements = Vec::new();
    for run in 1..=runs {
        for scenario in &scenarios {
            // Alternate the order run by run so no server always goes first.
            let mut order = servers.clone();
            order.rotate_left((run - 1) % servers.len().max(1));
            for server in &order {
                let skip = match (scenario.nodes > 1, scenario.proxy.is_some()) {
                    _ if server
                        .only
                        .is_some_and(|only| !only.contains(&scenario.name)) =>
                    {
                        Some("a variant for other scenarios")
                    }
                    (true, _) if !server.cluster => Some("no Redis adapter"),
                    (_, true) if !server.forwarding => Some("no forwarding between nodes"),
                    _ if server.raw && scenario.load != "echo" => Some("echo only"),
                    _ => None,
                };
                if let Some(why) = skip {
                    eprintln!(
                        "run {run}/{runs}: {} skipped on {} ({why})",
                        scenario.name, server.name
                    );
                    continue;
                }
                eprintln!("run {run}/{runs}: {} on {}", scenario.name, server.name);
                let measurement = measure(server, scenario, run, &pinning, &logs, false)
                    .map_err(|err| format!("{} on {}: {err}", scenario.name, server.name))?;
                eprintln!("  {}", crate::report::one_line(&measurement));
                measurements.push(measurement);
                // Written as it goes, so a failure late in a long comparison keeps the rest.
                let results = serde_json::json!({
                    "environment": environment,
                    "measurements": measurements,
                });
                std::fs::write(
                    out.join("results.json"),
                    serde_json::to_string_pretty(&results)?,
                )?;
            }
        }
    }

    let page = root.join("docs/benchmarks.md");
    crate::report::render(&out, (out == default_out).then_some(page.as_path()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

fn servers(root: &Path, binaries: &Path) -> Vec<Server> {
    let rust = |name: &'static str, label: &'static str, binary: &str| Server {
        name,
        label,
        program: binaries.join(binary),
        args: Vec::new(),
        env: vec![("RUST_LOG", "warn")],
        cluster: false,
        forwarding: false,
        only: None,
        raw: false,
    };
    vec![
        Server {
            cluster: true,
            forwarding: true,
            ..rust("ferrio", "Ferrio (examples/interop)", "interop")
        },
        // The same server with a 64 KiB WebSocket read buffer instead of the default 512 bytes:
        // what big messages cost with each.
        Server {
            env: vec![("RUST_LOG", "warn"), ("WS_READ_BUFFER_BYTES", "65536")],
            only: Some(&["big-echo"]),
            ..rust("ferrio-64k", "Ferrio, 64 KiB read buffer", "interop")
        },
        rust(
            "socketioxide",
            "socketioxide 0.18.9",
            "bench-peer-socketioxide",
        ),
        Server {
            name: "node",
            label: "Node.js socket.io 4.8",
            program: PathBuf::from("node"),
            args: vec![
                root.join("crates/ferrio-bench/peers/node/server.mjs")
                    .display()
                    .to_string(),
            ],
            env: vec![("NODE_ENV", "production")],
            cluster: true,
            forwarding: false,
            only: None,
            raw: false,
        },
        rust(
            "axum-raw",
            "raw axum WebSocket (ceiling)",
            "bench-peer-axum-raw",
        ),
        // Not in the default list of `compare`: see `syscalls.rs`.
        Server {
            program: std::env::current_exe().unwrap_or_else(|_| binaries.join("ferrio-bench")),
            args: vec!["syscalls-server".into()],
            env: Vec::new(),
            raw: true,
            ..rust(
                "floor",
                "system-call floor (plain TCP echo, tokio)",
                "ferrio-bench",
            )
        },
    ]
}

/// The scenarios with full sizes, or tiny ones for the smoke run of the test suite.
fn scenarios(smoke: bool, scale_sockets: Option<usize>) -> Vec<Scenario> {
    let size = |full: &str, tiny: &str| if smoke { tiny } else { full }.to_owned();
    let timing = || vec![("warmup", size("1", "0.1")), ("duration", size("5", "0.3"))];
    let mut scenarios = vec![
        Scenario {
            name: "idle",
            load: "idle",
            options: vec![("sockets", size("10000", "20"))],
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        Scenario {
            name: "echo-1",
            load: "echo",
            options: [vec![("clients", "1".to_owned())], timing()].concat(),
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        Scenario {
            name: "echo-100",
            load: "echo",
            options: [vec![("clients", size("100", "5"))], timing()].concat(),
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        Scenario {
            name: "fanout",
            load: "fanout",
            options: vec![
                ("sockets", size("1000", "10")),
                ("messages", size("100", "5")),
                ("rounds", size("10", "2")),
            ],
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        Scenario {
            name: "polling",
            load: "polling",
            options: [vec![("clients", size("100", "3"))], timing()].concat(),
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        Scenario {
            name: "http-emit",
            load: "http-emit",
            options: vec![
                ("sockets", size("1000", "10")),
                ("requests", size("500", "10")),
                ("concurrency", size("4", "2")),
            ],
            nodes: 1,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
        // Three nodes on one Redis, `sockets` on each (see `load/cluster.rs`).
        Scenario {
            name: "cluster",
            load: "cluster",
            options: vec![
                ("sockets", size("1000", "5")),
                ("messages", size("100", "5")),
                ("rounds", size("10", "2")),
                ("emits", size("2000", "20")),
            ],
            nodes: 3,
            proxy: None,
            open_files: 0,
            node_heap_mb: None,
        },
    ];
    // The cluster's three nodes behind the reverse proxy, once without affinity and once with
    // it (see `load/forwarding.rs`).
    for (name, mode) in [
        ("forwarding-round-robin", "round-robin"),
        ("forwarding-affinity", "affinity"),
    ] {
        scenarios.push(Scenario {
            name,
            load: "forwarding",
            options: [
                vec![
                    ("clients", size("50", "3")),
                    ("sockets", size("1000", "10")),
                ],
                timing(),
            ]
            .concat(),
            nodes: 3,
            proxy: Some(mode),
            open_files: 0,
            node_heap_mb: None,
        });
    }
    // One attachment of about 1 MB (under every server's maxPayload of 1 000 000 bytes),
    // echoed with an ack by a few clients (see `big_echo` in `load/mod.rs`). The generator
    // reads with a 128 KiB buffer so that its reads are not what limits the pace.
    scenarios.push(Scenario {
        name: "big-echo",
        load: "big-echo",
        options: [
            vec![
                ("clients", size("4", "2")),
                ("binary-bytes", size("999000", "20000")),
                ("read-buffer-bytes", "131072".to_owned()),
            ],
            timing(),
        ]
        .concat(),
        nodes: 1,
        proxy: None,
        open_files: 0,
        node_heap_mb: None,
    });
    // The fan-out scenario with a 64 KiB payload and fewer broadcasts per burst.
    scenarios.push(Scenario {
        name: "big-fanout",
        load: "fanout",
        options: vec![
            ("sockets", size("1000", "10")),
            ("messages", size("10", "2")),
            ("rounds", size("5", "2")),
            ("payload-bytes", size("65536", "4096")),
            ("read-buffer-bytes", size("65536", "4096")),
        ],
        nodes: 1,
        proxy: None,
        open_files: 0,
        node_heap_mb: None,
    });
    // 100 000 WebSocket sockets from several loopback source addresses (see `scale` in
    // `load/mod.rs`), each with a 1 KiB read buffer in the generator.
    let scale_sockets = match scale_sockets {
        Some(n) => n.to_string(),
        None => size("100000", "200"),
    };
    let open_files = scale_sockets.parse::<u64>().unwrap_or(0) + 1024;
    scenarios.push(Scenario {
        name: "scale",
        load: "scale",
        options: vec![
            ("sockets", scale_sockets),
            ("sources", size("0", "2")),
            ("rounds", size("3", "1")),
            ("read-buffer-bytes", "1024".to_owned()),
        ],
        nodes: 1,
        proxy: None,
        open_files,
        // socket.io holds about 16 KB per socket: 1.6 GB at 100 000, more than V8's default
        // old space on smaller machines.
        node_heap_mb: Some(8192),
    });
    // A broken server fails the smoke run in seconds rather than minutes.
    for scenario in &mut scenarios {
        scenario.options.push(("timeout", size("120", "20")));
    }
    scenarios
}

fn pick<T: Clone>(all: &[T], list: &str, name: impl Fn(&T) -> &str) -> Result<Vec<T>, BoxError> {
    list.split(',')
        .map(|wanted| {
            all.iter()
                .find(|item| name(item) == wanted)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(&name).collect();
                    format!("unknown {wanted:?} (known: {known:?})").into()
                })
        })
        .collect()
}

/// Builds the Rust servers and installs the Node server's packages when missing.
fn build(root: &Path, profile: &str, servers: &[Server]) -> Result<(), BoxError> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(root).args(["build", "--locked"]);
    if profile == "release" {
        cargo.arg("--release");
    } else if profile != "debug" && profile != "dev" {
        cargo.args(["--profile", profile]);
    }
    let mut packages = Vec::new();
    for server in servers {
        let package = match server.name {
            "ferrio" | "ferrio-64k" => "interop",
            "socketioxide" => "bench-peer-socketioxide",
            "axum-raw" => "bench-peer-axum-raw",
            _ => continue,
        };
        if !packages.contains(&package) {
            packages.push(package);
            cargo.args(["-p", package]);
        }
    }
    if !packages.is_empty() && !cargo.status()?.success() {
        return Err("cargo build failed".into());
    }
    if servers.iter().any(|s| s.name == "node") {
        let dir = root.join("crates/ferrio-bench/peers/node");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let installed = modified(&dir.join("node_modules"));
        if installed.is_none() || modified(&dir.join("package-lock.json")) > installed {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()?;
            if !status.success() {
                return Err("npm ci failed for the Node.js peer".into());
            }
        }
    }
    Ok(())
}

/// Core pinning with `taskset`: server on core 0, load on core 1.
pub(crate) struct Pinning {
    enabled: bool,
}

impl Pinning {
    fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Pinning {
            enabled: cores >= 2 && taskset,
        }
    }

    fn command(&self, core: usize, program: &Path) -> Command {
        if self.enabled {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core.to_string()).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn describe(&self) -> String {
        match self.enabled {
            true => "server on core 0, load generator on core 1 (taskset)".into(),
            false => "no pinning (taskset or a second core missing)".into(),
        }
    }
}

/// Stops a child process (server or load generator) when dropped, so a failed run leaves
/// nothing behind.
pub(crate) struct Running {
    child: Child,
}

impl Running {
    pub(crate) fn new(child: Child) -> Self {
        Running { child }
    }

    /// Asks the process to stop (SIGTERM), kills it after 5 s, and returns how it exited:
    /// `None` when it had to be killed (or could not be waited for).
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn measure(
    server: &Server,
    scenario: &Scenario,
    run: usize,
    pinning: &Pinning,
    logs: &Path,
    strace: bool,
) -> Result<Measurement, BoxError> {
    let log_name = |suffix: &str| {
        logs.join(format!(
            "{}-{}-{run}{suffix}.log",
            server.name, scenario.name
        ))
    };
    // Stopped after the nodes (dropped last), so that none of them sees Redis go away.
    let redis = match scenario.nodes > 1 {
        true => Some(Redis::start(pinning, &log_name("-redis"))?),
        false => None,
    };
    let mut nodes = Vec::with_capacity(scenario.nodes);
    for node in 1..=scenario.nodes {
        let log = match redis {
            Some(_) => log_name(&format!("-node{node}")),
            None => log_name(""),
        };
        let url = redis.as_ref().map(|redis| redis.url.as_str());
        let mut server = server.clone();
        if let (Some(mb), "node") = (scenario.node_heap_mb, server.name) {
            server.args.insert(0, format!("--max-old-space-size={mb}"));
        }
        if strace {
            server = under_strace(&server, &log_name(&format!("-strace{node}")));
        }
        nodes.push(start_server(&server, pinning, 0, &log, url)?);
    }
    let pids: Vec<u32> = nodes.iter().map(|node| node.pid).collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|node| format!("127.0.0.1:{}", node.port))
        .collect();

    let exe = std::env::current_exe()?;
    // Stopped before the nodes (dropped first).
    let proxy = match scenario.proxy {
        Some(mode) => {
            let proxy = Server {
                name: "proxy",
                label: "reverse proxy",
                program: exe.clone(),
                args: vec![
                    "proxy".into(),
                    "--mode".into(),
                    mode.into(),
                    "--upstream".into(),
                    addrs.join(","),
                ],
                env: Vec::new(),
                cluster: false,
                forwarding: false,
                only: None,
                raw: false,
            };
            Some(start_server(&proxy, pinning, 1, &log_name("-proxy"), None)?)
        }
        None => None,
    };
    let load_addrs = match &proxy {
        Some(proxy) => format!("127.0.0.1:{}", proxy.port),
        None => addrs.join(","),
    };
    let mut load = pinning.command(1, &exe);
    let load_scenario = match (server.raw, scenario.load) {
        (true, "echo") => "raw-echo",
        (_, other) => other,
    };
    load.arg("load")
        .arg(load_scenario)
        .arg("--addr")
        .arg(load_addrs);
    for (name, value) in &scenario.options {
        load.arg(format!("--{name}")).arg(value);
    }
    let mut load = Running {
        child: load
            .env("FERRIO_BENCH_SYNC", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    };
    let load_pid = load.child.id();
    let mut to_load = load.child.stdin.take().ok_or("no stdin")?;
    let from_load = BufReader::new(load.child.stdout.take().ok_or("no stdout")?);

    let mut cpu_at: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ticks_at: BTreeMap<String, CpuTicks> = BTreeMap::new();
    let mut load_cpu_at = BTreeMap::new();
    let mut redis_cpu_at = BTreeMap::new();
    let mut proxy_cpu_at = BTreeMap::new();
    let mut rss_kib = BTreeMap::new();
    let mut result = None;
    for line in from_load.lines() {
        let line = line?;
        if let Some(mark) = line.strip_prefix("@mark ") {
            if mark == "connected" {
                std::thread::sleep(IDLE_SETTLE);
            }
            let mut cpu = Vec::with_capacity(pids.len());
            let mut rss = 0;
            let mut ticks = CpuTicks::default();
            for pid in &pids {
                let sample = Sample::read(*pid)?;
                cpu.push(sample.cpu_ns);
                rss += sample.rss_kib;
                ticks.user += sample.ticks.user;
                ticks.system += sample.ticks.system;
            }
            cpu_at.insert(mark.to_owned(), cpu);
            ticks_at.insert(mark.to_owned(), ticks);

            rss_kib.insert(mark.to_owned(), rss);
            if let Ok(load_sample) = Sample::read(load_pid) {
                load_cpu_at.insert(mark.to_owned(), load_sample.cpu_ns);
            }
            if let Some(Ok(redis_sample)) = redis.as_ref().map(|redis| Sample::read(redis.pid)) {
                redis_cpu_at.insert(mark.to_owned(), redis_sample.cpu_ns);
            }
            if let Some(Ok(proxy_sample)) = proxy.as_ref().map(|proxy| Sample::read(proxy.pid)) {
                proxy_cpu_at.insert(mark.to_owned(), proxy_sample.cpu_ns);
            }
            writeln!(to_load)?;
            to_load.flush()?;
        } else if let Some(json) = line.strip_prefix("@result ") {
            result = Some(serde_json::from_str(json)?);
        }
    }
    let status = load.child.wait()?;
    let mut syscalls = BTreeMap::new();
    if strace {
        for (i, node) in nodes.iter_mut().enumerate() {
            let counts = strace_counts(node, &log_name(&format!("-strace{}", i + 1)))?;
            for (name, calls) in counts {
                *syscalls.entry(name).or_insert(0) += calls;
            }
        }
    }
    drop(proxy);
    drop(nodes);
    drop(redis);
    if !status.success() {
        return Err(format!("the load generator failed ({status})").into());
    }
    let node_cpu_ns = match (cpu_at.get("start"), cpu_at.get("end")) {
        (Some(start), Some(end)) => start
            .iter()
            .zip(end)
            .map(|(start, end)| cpu_between(Some(start), Some(end)))
            .collect::<Result<Option<Vec<u64>>, BoxError>>()?
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let server_cpu_ns = (!node_cpu_ns.is_empty()).then(|| node_cpu_ns.iter().sum());
    let load_cpu_ns = cpu_between(load_cpu_at.get("start"), load_cpu_at.get("end"))?;
    let redis_cpu_ns = cpu_between(redis_cpu_at.get("start"), redis_cpu_at.get("end"))?;
    let proxy_cpu_ns = cpu_between(proxy_cpu_at.get("start"), proxy_cpu_at.get("end"))?;
    let ticks = match (ticks_at.get("start"), ticks_at.get("end")) {
        (Some(start), Some(end)) => end.since(*start),
        _ => None,
    };
    Ok(Measurement {
        run,
        scenario: scenario.name.to_owned(),
        server: server.name.to_owned(),
        load: result.ok_or("the load generator printed no result")?,
        server_cpu_ns,
        node_cpu_ns: match scenario.nodes > 1 {
            true => node_cpu_ns,
            false => Vec::new(),
        },
        redis_cpu_ns,
        proxy_cpu_ns,
        load_cpu_ns,
        rss_kib,
        server_user_ns: ticks.map(CpuTicks::user_ns),
        server_system_ns: ticks.map(CpuTicks::system_ns),
        syscalls,
    })
}

/// The server under `strace -c -f` for its whole life (strace may not attach to a process it
/// did not start here): the counts include starting, the connections and stopping, which the
/// strace pass keeps small against the measured phase (no warm-up, thousands of echoes).
fn under_strace(server: &Server, output: &Path) -> Server {
    let mut args = vec![
        "-c".to_owned(),
        "-f".to_owned(),
        "-o".to_owned(),
        output.display().to_string(),
        server.program.display().to_string(),
    ];
    args.extend(server.args.iter().cloned());
    Server {
        program: PathBuf::from("strace"),
        args,
        ..server.clone()
    }
}

/// Stops a server started by [`under_strace`] (its only child) so that strace writes its
/// summary, and reads the counts.
fn strace_counts(node: &mut Node, output: &Path) -> Result<BTreeMap<String, u64>, BoxError> {
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", node.pid))
        .unwrap_or_default();
    for child in children.split_whitespace() {
        let _ = Command::new("kill").args(["-TERM", child]).status();
    }
    node._running.stop();
    let summary = std::fs::read_to_string(output)?;
    let rows = crate::procstat::parse_strace_summary(&summary);
    if rows.is_empty() {
        return Err(format!("no strace summary in {}", output.display()).into());
    }
    Ok(rows.into_iter().map(|row| (row.name, row.calls)).collect())
}

/// Some servers in one scenario, run by run: what `ferrio-bench syscalls` measures.
pub(crate) struct Plan {
    servers: Vec<Server>,
    scenario: Scenario,
    pinning: Pinning,
    logs: PathBuf,
}

impl Plan {
    pub(crate) fn new(
        root: &Path,
        servers: &str,
        scenario: &str,
        profile: &str,
    ) -> Result<Self, BoxError> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let binaries = target.join(if profile == "dev" { "debug" } else { profile });
        let servers = pick(&self::servers(root, &binaries), servers, |s| s.name)?;
        let scenario = pick(&scenarios(false, None), scenario, |s| s.name)?
            .pop()
            .ok_or("no scenario")?;
        let pinning = Pinning::detect();
        if !pinning.enabled {
            eprintln!("warning: taskset or a second core is missing; running without pinning");
        }
        let logs = target.join("ferrio-bench-logs");
        std::fs::create_dir_all(&logs)?;
        Ok(Plan {
            servers,
            scenario,
            pinning,
            logs,
        })
    }

    pub(crate) fn build(&self, root: &Path, profile: &str) -> Result<(), BoxError> {
        build(root, profile, &self.servers)
    }

    /// Every server once (the order rotated by `run`), under strace when `strace`.
    pub(crate) fn run_once(
        &self,
        run: usize,
        runs: usize,
        strace: bool,
    ) -> Result<Vec<Measurement>, BoxError> {
        let mut order = self.servers.clone();
        let shift = (run - 1) % order.len().max(1);
        order.rotate_left(shift);
        // Under strace everything the server does counts: no warm-up.
        let mut scenario = self.scenario.clone();
        if strace {
            for (name, value) in &mut scenario.options {
                if *name == "warmup" {
                    *value = "0".into();
                }
            }
        }
        let mut measurements = Vec::new();
        for server in &order {
            let what = if strace {
                "strace".to_owned()
            } else {
                format!("run {run}/{runs}")
            };
            eprintln!("{what}: {} on {}", self.scenario.name, server.name);
            let measurement = measure(server, &scenario, run, &self.pinning, &self.logs, strace)
                .map_err(|err| format!("{} on {}: {err}", self.scenario.name, server.name))?;
            eprintln!("  {}", crate::report::one_line(&measurement));
            measurements.push(measurement);
        }
        Ok(measurements)
    }

    pub(crate) fn environment(&self, runs: usize) -> Value {
        crate::report::environment(&self.servers, runs, false, &self.pinning.describe())
    }

    /// The servers' names and labels, in the order asked for.
    pub(crate) fn labels(&self) -> Vec<(String, String)> {
        self.servers
            .iter()
            .map(|s| (s.name.to_owned(), s.label.to_owned()))
            .collect()
    }
}

/// CPU time between two marks, when both were read.
fn cpu_between(start: Option<&u64>, end: Option<&u64>) -> Result<Option<u64>, BoxError> {
    match (start, end) {
        (Some(start), Some(end)) if end >= start => Ok(Some(end - start)),
        (Some(_), Some(_)) => Err("CPU time went backwards between the marks".into()),
        _ => Ok(None),
    }
}

/// A started server process, stopped when dropped.
struct Node {
    _running: Running,
    pid: u32,
    port: u16,
}

/// Starts `server` on `core` with `PORT=0` (and `REDIS_URL` for a cluster node), stderr to
/// `log`, and waits for its port.
fn start_server(
    server: &Server,
    pinning: &Pinning,
    core: usize,
    log: &Path,
    redis_url: Option<&str>,
) -> Result<Node, BoxError> {
    let mut command = pinning.command(core, &server.program);
    command
        .args(&server.args)
        .env("PORT", "0")
        .envs(server.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
    if let Some(url) = redis_url {
        command.env("REDIS_URL", url);
    }
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", server.program.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = child.id();
    let running = Running { child };
    let port = wait_for_port(stdout)?;
    Ok(Node {
        _running: running,
        pid,
        port,
    })
}

/// A private `redis-server` for one cluster measurement: on a free port, nothing saved to
/// disk, pinned beside the load generator (core 1); stopped when dropped.
struct Redis {
    running: Running,
    pid: u32,
    url: String,
}

impl Redis {
    fn start(pinning: &Pinning, log: &Path) -> Result<Self, BoxError> {
        // The free port is found by binding it, then released for Redis: another process may
        // take it in between, so a Redis that exits at once is started again on another.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let port_arg = port.to_string();
            let mut command = pinning.command(1, Path::new("redis-server"));
            let child = command
                .args(["--port", &port_arg, "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(log)?)
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|err| format!("cannot start redis-server (is it installed?): {err}"))?;
            let pid = child.id();
            let mut running = Running { child };
            match wait_for_redis(&mut running, port) {
                Ok(()) => {
                    return Ok(Redis {
                        running,
                        pid,
                        url: format!("redis://127.0.0.1:{port}"),
                    });
                }
                Err(err) => last_error = err.to_string(),
            }
        }
        Err(format!(
            "redis-server did not start ({last_error}); see {}",
            log.display()
        )
        .into())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.running.stop();
    }
}

/// Waits (10 s at most) until Redis answers `PING` on `port`.
fn wait_for_redis(redis: &mut Running, port: u16) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = redis.child.try_wait() {
            return Err(format!("it exited ({status})").into());
        }
        let pong = TcpStream::connect(("127.0.0.1", port)).and_then(|mut tcp| {
            tcp.set_read_timeout(Some(Duration::from_secs(1)))?;
            tcp.write_all(b"PING\r\n")?;
            let mut answer = [0u8; 7];
            tcp.read_exact(&mut answer)?;
            Ok(answer)
        });
        if pong.is_ok_and(|answer| &answer == b"+PONG\r\n") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("no answer to PING within 10 s".into())
}

/// Reads the server's stdout until `listening on PORT` (30 s at most).
pub(crate) fn wait_for_port(stdout: ChildStdout) -> Result<u16, BoxError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.trim().strip_prefix("listening on ") {
                let _ = tx.send(port.parse::<u16>().ok());
            }
        }
        // Keep draining so the server never blocks on a full pipe.
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => Ok(port),
        Ok(None) => Err("the server printed a bad port".into()),
        Err(_) => Err("the server did not print `listening on PORT` within 30 s".into()),
    }
}

/// CPU time of all the server's threads and its resident memory.
struct Sample {
    cpu_ns: u64,
    /// User and system time of the process (`/proc/PID/stat`).
    ticks: CpuTicks,
    rss_kib: u64,
}

impl Sample {
    fn read(pid: u32) -> Result<Self, BoxError> {
        let mut cpu_ns = 0;
        let mut threads = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let path = task?.path().join("schedstat");
            // A thread may end between listing and reading.
            let Ok(schedstat) = std::fs::read_to_string(path) else {
                continue;
            };
            let ns = schedstat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok());
            cpu_ns += ns.ok_or("unreadable /proc/PID/task/TID/schedstat")?;
            threads += 1;
        }
        if threads == 0 {
            return Err(
                "no /proc/PID/task/*/schedstat to read (kernel without schedstats?)".into(),
            );
        }
        Ok(Sample {
            cpu_ns,
            ticks: crate::procstat::process_ticks(pid)?,
            rss_kib: rss_kib(pid)?,
        })
    }
}

/// The resident memory of process `pid`, in KiB (an error once it has exited: a zombie has
/// no `VmRSS`).
pub(crate) fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or("no VmRSS in /proc/PID/status")?;
    Ok(rss_kib)
}
