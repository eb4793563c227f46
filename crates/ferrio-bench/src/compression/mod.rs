//! `ferrio-bench compression`: what compression would cost and save (see
//! `docs/compression.md`).
//!
//! ```text
//! ferrio-bench compression [--clients 8] [--warmup 0.5] [--duration 2]
//!                          [--deflate-rounds 20] [--states 200] [--skip-polling] [--skip-deflate]
//! ferrio-bench compression --serve gzip|gzip-1024|br|zstd|none   # PORT as for the examples
//! ```
//!
//! The first half runs an in-process Ferrio server with and without tower-http's
//! `CompressionLayer` and drives polling clients against it (`polling.rs`); the second
//! measures raw deflate as permessage-deflate would use it (`deflate.rs`). Both print
//! Markdown tables on stdout. `--serve` only serves the polling server, for a check with
//! another client.

mod deflate;
mod payloads;
mod polling;

use std::fmt::Write as _;
use std::time::Duration;

use crate::BoxError;
use crate::args::Args;

pub(crate) fn run(mut args: Args) -> Result<(), BoxError> {
    let probe: u8 = args.value("memory-probe", "0")?;
    if probe != 0 {
        let states = args.value("states", "200")?;
        args.finish()?;
        return deflate::memory_probe(probe, states);
    }
    let serve: String = args.value("serve", "")?;
    if !serve.is_empty() {
        args.finish()?;
        return polling::serve_forever(&serve);
    }
    let config = polling::PollingConfig {
        clients: args.value("clients", "8")?,
        warmup: Duration::from_secs_f64(args.value("warmup", "0.5")?),
        duration: Duration::from_secs_f64(args.value("duration", "2")?),
    };
    let rounds: usize = args.value("deflate-rounds", "20")?;
    let states: usize = args.value("states", "200")?;
    let skip_polling = args.flag("skip-polling");
    let skip_deflate = args.flag("skip-deflate");
    args.finish()?;

    let mut out = String::new();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "Measured {date}.\n");
    if !skip_deflate {
        // Memory first, while the allocator has nothing cached from the other measurements.
        eprintln!("deflate: memory per state ({states} states per window size)");
        let memory = deflate::run_memory(states)?;
        eprintln!("deflate: CPU per message ({rounds} rounds)");
        let cpu = deflate::run_cpu(rounds)?;
        out.push_str(&deflate_tables(&memory, &cpu));
    }
    if !skip_polling {
        eprintln!(
            "polling: {} clients, {:?} warm-up and {:?} measured per case and encoding",
            config.clients, config.warmup, config.duration
        );
        let results = polling::run(config)?;
        out.push_str(&polling_table(&results));
    }
    print!("{out}");
    Ok(())
}

fn polling_table(results: &[polling::PollingResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Polling responses\n\n\
         | payload | compression | GET responses per round | compressed responses | body bytes per round | decoded bytes per round | wire bytes per round | wire vs none | server CPU per round (µs) | user / system (µs) | rounds/s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|"
    );
    for result in results {
        let identity = results
            .iter()
            .find(|r| r.case == result.case && r.encoding == polling::Encoding::Identity);
        let ratio = identity.map_or(f64::NAN, |identity| {
            result.per_round(result.wire_bytes) / identity.per_round(identity.wire_bytes)
        });
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.0}% | {:.0} | {:.0} | {:.0} | {:.1}% | {:.1} | {:.0} / {:.0} | {:.0} |",
            result.case,
            result.encoding.name(),
            result.per_round(result.gets),
            result.encoded_gets as f64 * 100.0 / result.gets.max(1) as f64,
            result.per_round(result.body_bytes),
            result.per_round(result.plain_bytes),
            result.per_round(result.wire_bytes),
            ratio * 100.0,
            result.per_round(result.server_cpu_ns) / 1000.0,
            result.per_round(result.server_user_ns) / 1000.0,
            result.per_round(result.server_system_ns) / 1000.0,
            result.rounds as f64 / result.seconds,
        );
    }
    out.push('\n');
    out
}

fn deflate_tables(memory: &[deflate::MemoryResult], cpu: &[deflate::DeflateResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### permessage-deflate: memory a socket keeps (context takeover)\n\n\
         | window bits | compressor (KB) | decompressor (KB) |\n|---|---|---|"
    );
    for m in memory {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} |",
            m.window_bits,
            m.deflate_bytes / 1000.0,
            m.inflate_bytes / 1000.0
        );
    }
    let _ = writeln!(
        out,
        "\n### permessage-deflate: size and CPU per message\n\n\
         | payload | window bits | history | bytes in | bytes out | size | compress (µs) | decompress (µs) |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for r in cpu {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {:.1}% | {:.2} | {:.2} |",
            r.payload,
            r.window_bits,
            r.takeover.name(),
            r.plain_bytes,
            r.compressed_bytes,
            r.compressed_bytes * 100.0 / r.plain_bytes,
            r.compress_ns / 1000.0,
            r.decompress_ns / 1000.0,
        );
    }
    out.push('\n');
    out
}
