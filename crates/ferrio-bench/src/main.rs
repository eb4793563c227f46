//! `ferrio-bench`: the benchmark harness of Ferrio (see `docs/benchmarks.md`).
//!
//! ```text
//! ferrio-bench compare [--runs 3] [--servers ferrio,ferrio-64k,socketioxide,node,axum-raw]
//!                      [--scenarios idle,echo-1,echo-100,fanout,polling,http-emit,cluster,
//!                                   forwarding-round-robin,forwarding-affinity,
//!                                   big-echo,big-fanout,scale]
//!                      [--smoke] [--out DIR] [--profile release|debug] [--no-build]
//!                      [--scale-sockets 100000]
//! ferrio-bench report [--out DIR]     # tables and plot again from DIR/results.json
//! ferrio-bench load SCENARIO --addr 127.0.0.1:3000 [--clients N] [--sockets N] ...
//! ferrio-bench soak [--minutes 10] [--out DIR] [--rate 40] [--steady 20] ...
//! ferrio-bench soak-server [--ping-interval-ms 5000] ...   # started by `soak`
//! ferrio-bench proxy --mode round-robin|affinity --upstream A,B,C   # started by `compare`
//! ferrio-bench compression [--duration 2] ...   # HTTP and WebSocket compression, measured
//! ferrio-bench syscalls [--runs 3] [--servers floor,ferrio,axum-raw]   # echo-100 vs the floor
//! ferrio-bench syscalls-server                  # the system-call floor, started by `syscalls`
//! ```
//!
//! `compare` builds and starts each server in turn pinned to core 0, runs the load generator
//! pinned to core 1, reads the server's CPU time and RSS from `/proc`, and writes the tables.
//! The cluster scenario runs three processes of each server that has a Redis adapter
//! (Ferrio, Node.js) on a `redis-server` of its own, all of them on core 0.
//! `load` is the generator alone, against any server that serves the benchmark contract
//! (`load cluster --addr A,B,C` against the nodes of a cluster).
//! The forwarding scenarios run the cluster's three Ferrio nodes behind `proxy`, a small
//! HTTP/1.1 reverse proxy of this crate (on core 1, beside the generator), once spreading
//! every request over the nodes and once keeping each session on its node.
//! `soak` is a long run against one server to find leaks (see `docs/reliability.md`); it is
//! never part of the test suite.

mod args;
mod compression;
mod limits;
mod load;
mod procstat;
mod proxy;
mod report;
mod runner;
mod soak;
mod svg;
mod syscalls;

use args::Args;

/// The allocator of the example servers (see `examples/interop`): the soak server's memory
/// then behaves as theirs, returning what a burst freed within half a second.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Errors of the harness: reported and the process exits with status 1.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().unwrap_or_default();
    let result = match command.as_str() {
        "load" => load_command(raw.collect()),
        "compare" => Args::parse(raw).and_then(runner::compare),
        "report" => Args::parse(raw).and_then(runner::report),
        "soak" => Args::parse(raw).and_then(soak::run),
        "soak-server" => Args::parse(raw).and_then(soak::server::run),
        "proxy" => Args::parse(raw).and_then(proxy::run),
        "compression" => Args::parse(raw).and_then(compression::run),
        "syscalls" => Args::parse(raw).and_then(syscalls::run),
        "syscalls-server" => Args::parse(raw).and_then(syscalls::server),
        _ => Err(
            "usage: ferrio-bench compare [options] | ferrio-bench report [--out DIR] | \
             ferrio-bench load SCENARIO [options] (see docs/benchmarks.md) | \
             ferrio-bench soak [--minutes 10] [--out DIR] [options] (see docs/reliability.md) | \
             ferrio-bench compression [options] (see docs/compression.md) | \
             ferrio-bench syscalls [options] (see docs/benchmarks.md)"
                .into(),
        ),
    };
    if let Err(err) = result {
        eprintln!("ferrio-bench {command}: {err}");
        std::process::exit(1);
    }
}

fn load_command(raw: Vec<String>) -> Result<(), BoxError> {
    let mut raw = raw.into_iter();
    let scenario = raw.next().unwrap_or_default();
    let mut args = Args::parse(raw)?;
    let config = load::LoadConfig::from_args(&mut args)?;
    args.finish()?;
    // One thread: the generator gets one core, as the server does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(load::run(&scenario, config))?;
    println!("@result {result}");
    Ok(())
}
