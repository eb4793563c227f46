//! Tables (Markdown) and the summary plot (SVG) from the measurements.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::BoxError;
use crate::runner::{Measurement, Server};
use crate::svg;

/// One number the tables show for a scenario.
struct Metric {
    key: &'static str,
    label: &'static str,
    higher_is_better: bool,
    /// Whether the lead tables compare it (the busy shares only explain the others).
    lead: bool,
}

const fn metric(key: &'static str, label: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        key,
        label,
        higher_is_better,
        lead: true,
    }
}

const fn share(key: &'static str, label: &'static str) -> Metric {
    Metric {
        key,
        label,
        higher_is_better: false,
        lead: false,
    }
}

/// How busy the server's core and the generator's core were during the measured phase.
const SERVER_BUSY: Metric = share("server_busy_pct", "server core busy (%)");
const LOAD_BUSY: Metric = share("load_busy_pct", "generator core busy (%)");

/// The server's CPU per echo split into user and system time (`/proc/PID/stat`, 10 ms steps).
const USER_PER_OP: Metric = share("user_us_per_op", "server user per echo (µs)");
const SYSTEM_PER_OP: Metric = share("system_us_per_op", "server system per echo (µs)");

/// The metrics of a scenario; the first is its main one (the plot's).
fn metrics(scenario: &str) -> &'static [Metric] {
    const IDLE: &[Metric] = &[metric("kb_per_socket", "RSS per socket (KB)", false)];
    const ECHO: &[Metric] = &[
        metric("ops_per_sec", "echoes/s", true),
        metric("p50_us", "p50 (µs)", false),
        metric("p99_us", "p99 (µs)", false),
        metric("cpu_us_per_op", "server CPU per echo (µs)", false),
        USER_PER_OP,
        SYSTEM_PER_OP,
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const ECHO_ONE: &[Metric] = &[
        metric("p99_us", "p99 (µs)", false),
        metric("p50_us", "p50 (µs)", false),
        metric("ops_per_sec", "echoes/s", true),
        metric("cpu_us_per_op", "server CPU per echo (µs)", false),
        USER_PER_OP,
        SYSTEM_PER_OP,
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const FANOUT: &[Metric] = &[
        metric("cpu_ns_per_delivery", "server CPU per delivery (ns)", false),
        metric("deliveries_per_sec", "deliveries/s", true),
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const EMIT: &[Metric] = &[
        metric("deliveries_per_sec", "deliveries/s", true),
        metric("cpu_ns_per_delivery", "server CPU per delivery (ns)", false),
        metric("request_p99_us", "request p99 (µs)", false),
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const CLUSTER: &[Metric] = &[
        metric("deliveries_per_sec", "cross-node deliveries/s", true),
        metric(
            "cpu_ms_per_1k_deliveries",
            "server CPU per 1 000 deliveries (ms)",
            false,
        ),
        metric("latency_p50_us", "room emit p50 (µs)", false),
        metric("latency_p99_us", "room emit p99 (µs)", false),
        SERVER_BUSY,
        share("node1_cpu_pct", "node 1's share of server CPU (%)"),
        share("redis_busy_pct", "Redis busy (%)"),
        LOAD_BUSY,
    ];
    const FORWARDING: &[Metric] = &[
        metric("p50_us", "p50 (µs)", false),
        metric("p99_us", "p99 (µs)", false),
        metric("cpu_us_per_op", "node CPU per echo, 3 nodes (µs)", false),
        metric("proxy_cpu_us_per_op", "proxy CPU per echo (µs)", false),
        metric(
            "kb_per_socket",
            "node RSS per idle session, 3 nodes (KB)",
            false,
        ),
        metric("ops_per_sec", "echoes/s", true),
        SERVER_BUSY,
        share("proxy_busy_pct", "proxy busy (%)"),
        LOAD_BUSY,
    ];
    const BIG_ECHO: &[Metric] = &[
        metric("mb_per_sec", "MB/s echoed (one way)", true),
        metric("cpu_ms_per_mb", "server CPU per MB (ms)", false),
        metric("p50_us", "p50 (µs)", false),
        metric("p99_us", "p99 (µs)", false),
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const BIG_FANOUT: &[Metric] = &[
        metric("deliveries_per_sec", "deliveries/s", true),
        metric("mb_per_sec", "MB/s delivered", true),
        metric("cpu_us_per_delivery", "server CPU per delivery (µs)", false),
        metric("cpu_ms_per_mb", "server CPU per MB (ms)", false),
        SERVER_BUSY,
        LOAD_BUSY,
    ];
    const SCALE: &[Metric] = &[
        metric("kb_per_socket", "RSS per socket (KB)", false),
        metric("connects_per_sec", "connects/s", true),
        metric("broadcast_ms", "one broadcast to all (ms)", false),
        metric(
            "cpu_ms_per_broadcast",
            "server CPU per broadcast (ms)",
            false,
        ),
        share("generator_kb_per_socket", "generator RSS per socket (KB)"),
    ];
    match scenario {
        "idle" => IDLE,
        "big-echo" => BIG_ECHO,
        "big-fanout" => BIG_FANOUT,
        "scale" => SCALE,
        "forwarding-round-robin" | "forwarding-affinity" => FORWARDING,
        "cluster" => CLUSTER,
        "echo-1" => ECHO_ONE,
        "fanout" => FANOUT,
        "http-emit" => EMIT,
        _ => ECHO,
    }
}

/// A metric of one measurement, derived from what the generator and `/proc` said.
fn value(m: &Measurement, key: &str) -> Option<f64> {
    let load = |k: &str| m.load.get(k).and_then(Value::as_f64);
    let cpu = m.server_cpu_ns.map(|ns| ns as f64);
    match key {
        "kb_per_socket" => {
            let before = *m.rss_kib.get("baseline")? as f64;
            let after = *m.rss_kib.get("connected")? as f64;
            Some((after - before) * 1024.0 / 1000.0 / load("sockets")?)
        }
        "cpu_us_per_op" => Some(cpu? / load("ops")? / 1000.0),
        "user_us_per_op" => Some(m.server_user_ns? as f64 / load("ops")? / 1000.0),
        "system_us_per_op" => Some(m.server_system_ns? as f64 / load("ops")? / 1000.0),
        "proxy_cpu_us_per_op" => Some(m.proxy_cpu_ns? as f64 / load("ops")? / 1000.0),
        "proxy_busy_pct" => Some(m.proxy_cpu_ns? as f64 / load("seconds")? / 1e7),
        "cpu_ns_per_delivery" => Some(cpu? / load("deliveries")?),
        "cpu_us_per_delivery" => Some(cpu? / load("deliveries")? / 1000.0),
        // Megabytes of payload (big-echo: one way) between the marks.
        "cpu_ms_per_mb" => Some(cpu? / load("megabytes")? / 1e6),
        "cpu_ms_per_broadcast" => Some(cpu? / load("rounds")? / 1e6),
        "cpu_ms_per_1k_deliveries" => Some(cpu? / load("deliveries")? / 1000.0),
        "node1_cpu_pct" => Some(*m.node_cpu_ns.first()? as f64 * 100.0 / cpu?),
        "redis_busy_pct" => Some(m.redis_cpu_ns? as f64 / load("seconds")? / 1e7),
        "server_busy_pct" => Some(cpu? / load("seconds")? / 1e7),
        "load_busy_pct" => Some(m.load_cpu_ns? as f64 / load("seconds")? / 1e7),
        other => load(other),
    }
}

/// One line for the progress output.
pub(crate) fn one_line(m: &Measurement) -> String {
    metrics(&m.scenario)
        .iter()
        .filter_map(|metric| Some(format!("{} {:.2}", metric.label, value(m, metric.key)?)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A server as the tables name it.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub(crate) name: String,
    pub(crate) label: String,
}

/// Writes `results.md`, `summary.svg` and (when `page` is given) the results section of that
/// page from `results.json` in `out`.
pub(crate) fn render(out: &Path, page: Option<&Path>) -> Result<(), BoxError> {
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json"))?)?;
    let environment = &results["environment"];
    let measurements: Vec<Measurement> = serde_json::from_value(results["measurements"].clone())?;
    let servers: Vec<Named> = environment["servers"]
        .as_array()
        .ok_or("results.json lists no servers")?
        .iter()
        .map(|s| Named {
            name: s["name"].as_str().unwrap_or("?").to_owned(),
            label: s["label"].as_str().unwrap_or("?").to_owned(),
        })
        .collect();
    let mut scenarios: Vec<String> = Vec::new();
    for m in &measurements {
        if !scenarios.contains(&m.scenario) {
            scenarios.push(m.scenario.clone());
        }
    }
    let tables = tables(&measurements, &servers, &scenarios, environment);
    std::fs::write(out.join("results.md"), &tables)?;
    std::fs::write(out.join("summary.svg"), svg(&measurements, &servers))?;
    if let Some(page) = page {
        splice_into(page, &tables)?;
    }
    Ok(())
}

/// Where and how the numbers were taken.
pub(crate) fn environment(servers: &[Server], runs: usize, smoke: bool, pinning: &str) -> Value {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    json!({
        "date": output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        "commit": output("git", &["describe", "--always", "--dirty"]),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "rustc": output("rustc", &["--version"]),
        "node": output("node", &["--version"]),
        "redis": output("redis-server", &["--version"]),
        "servers": servers.iter().map(|s| json!({"name": s.name, "label": s.label})).collect::<Vec<_>>(),
        "runs": runs,
        "smoke": smoke,
        "pinning": pinning,
    })
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Median, min and max of a list.
fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    let median = median(&mut values)?;
    Some((median, values[0], values[values.len() - 1]))
}

fn number(x: f64) -> String {
    match x.abs() {
        a if a >= 100_000.0 => format!("{:.0}k", x / 1000.0),
        a if a >= 10_000.0 => format!("{:.1}k", x / 1000.0),
        a if a >= 1000.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

fn values_of(
    measurements: &[Measurement],
    scenario: &str,
    server: &str,
    key: &str,
) -> Vec<(usize, f64)> {
    measurements
        .iter()
        .filter(|m| m.scenario == scenario && m.server == server)
        .filter_map(|m| Some((m.run, value(m, key)?)))
        .collect()
}

/// Ferrio's lead over `peer` on a metric, run by run (same run number): above 1 means
/// Ferrio is ahead, whichever way the metric points.
fn leads(measurements: &[Measurement], scenario: &str, peer: &str, metric: &Metric) -> Vec<f64> {
    let ours = values_of(measurements, scenario, "ferrio", metric.key);
    let theirs = values_of(measurements, scenario, peer, metric.key);
    ours.iter()
        .filter_map(|(run, a)| {
            let (_, b) = theirs.iter().find(|(r, _)| r == run)?;
            let ratio = if metric.higher_is_better {
                a / b
            } else {
                b / a
            };
            ratio.is_finite().then_some(ratio)
        })
        .collect()
}

/// The Markdown tables: per scenario, the values of every server and Ferrio's lead over each.
pub(crate) fn tables(
    measurements: &[Measurement],
    servers: &[Named],
    scenarios: &[String],
    environment: &Value,
) -> String {
    let mut out = String::new();
    let env = |k: &str| environment[k].as_str().unwrap_or("?").to_owned();
    let _ = writeln!(
        out,
        "Measured {} on commit `{}`: {} ({} cores), Linux {}, {}, Node.js {}; {} run(s) per server and scenario, {}. \
         Cells are the median of the runs with min–max in brackets.\n",
        env("date"),
        env("commit"),
        env("cpu"),
        environment["cores"],
        env("kernel"),
        env("rustc"),
        env("node"),
        environment["runs"],
        env("pinning"),
    );
    for scenario in scenarios {
        let metrics = metrics(scenario);
        // Only the servers that ran it (the cluster scenario runs on those with a Redis adapter).
        let servers: Vec<&Named> = servers
            .iter()
            .filter(|s| {
                measurements
                    .iter()
                    .any(|m| m.scenario == *scenario && m.server == s.name)
            })
            .collect();
        let _ = writeln!(out, "### {scenario}\n");
        let _ = write!(out, "| server |");
        for metric in metrics {
            let _ = write!(out, " {} |", metric.label);
        }
        let _ = write!(out, "\n|---|");
        for _ in metrics {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        for server in &servers {
            let _ = write!(out, "| {} |", server.label);
            for metric in metrics {
                let values = values_of(measurements, scenario, &server.name, metric.key)
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect();
                match spread(values) {
                    Some((med, min, max)) => {
                        let _ = write!(out, " {} ({}–{}) |", number(med), number(min), number(max));
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out.push('\n');
        // A scenario only Ferrio runs (forwarding) has no lead table.
        if servers.iter().all(|s| s.name == "ferrio") {
            continue;
        }
        let compared: Vec<&Metric> = metrics.iter().filter(|m| m.lead).collect();
        let _ = write!(out, "| Ferrio's lead over |");
        for metric in &compared {
            let _ = write!(out, " {} |", metric.label);
        }
        let _ = write!(out, "\n|---|");
        for _ in &compared {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        for server in servers.iter().filter(|s| s.name != "ferrio") {
            let _ = write!(out, "| {} |", server.label);
            for metric in &compared {
                match spread(leads(measurements, scenario, &server.name, metric)) {
                    Some((med, min, max)) => {
                        let _ = write!(out, " {med:.2}x ({min:.2}–{max:.2}) |");
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(
        "A lead above 1.00x means Ferrio is ahead on that metric (more throughput, or less \
         latency, CPU or memory); below 1.00x it is behind.\n",
    );
    out
}

/// A grouped bar chart of Ferrio's lead over each peer on each scenario's main metric.
pub(crate) fn svg(measurements: &[Measurement], servers: &[Named]) -> String {
    let peers: Vec<&Named> = servers.iter().filter(|s| s.name != "ferrio").collect();
    let mut scenarios: Vec<&str> = Vec::new();
    for m in measurements {
        if !scenarios.contains(&m.scenario.as_str()) {
            scenarios.push(&m.scenario);
        }
    }
    let colors = crate::svg::PALETTE;
    let leads: Vec<Vec<Option<f64>>> = scenarios
        .iter()
        .map(|scenario| {
            let metric = &metrics(scenario)[0];
            peers
                .iter()
                .map(|peer| spread(leads(measurements, scenario, &peer.name, metric)).map(|s| s.0))
                .collect()
        })
        .collect();
    // A log2 scale from the smallest to the largest lead (at least 0.5x to 2x), so a 1.2x
    // lead and a 40x lead are both readable; bars grow from the 1x line.
    let all = leads.iter().flatten().flatten();
    let lo = all.clone().fold(0.5f64, |a, &b| a.min(b)).log2().floor();
    let hi = all.fold(2.0f64, |a, &b| a.max(b)).log2().ceil();
    let (width, height, left, bottom, plot_top) = (900.0, 420.0, 60.0, 350.0, 50.0);
    let group = (width - left - 20.0) / scenarios.len().max(1) as f64;
    let bar = (group - 20.0) / peers.len().max(1) as f64;
    let y = |v: f64| bottom - (v.log2() - lo) / (hi - lo) * (bottom - plot_top);
    let mut out = String::new();
    svg::open(
        &mut out,
        width,
        height,
        left,
        "Ferrio's lead per scenario: main metric, median of runs, log scale (above 1x = Ferrio ahead)",
    );
    let mut power = lo;
    while power <= hi {
        let tick = 2f64.powf(power);
        svg::grid_line(&mut out, left, width - 20.0, y(tick), &format!("{tick}x"));
        power += 1.0;
    }
    svg::dashed_line(&mut out, (left, y(1.0)), (width - 20.0, y(1.0)), "black");
    for (i, scenario) in scenarios.iter().enumerate() {
        let x0 = left + i as f64 * group + 10.0;
        for (j, lead) in leads[i].iter().enumerate() {
            let Some(lead) = lead else { continue };
            let x = x0 + j as f64 * bar;
            let (top, bottom_edge) = (y(lead.max(1.0)), y(lead.min(1.0)));
            let label_y = if *lead >= 1.0 {
                top - 3.0
            } else {
                bottom_edge + 11.0
            };
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{label_y:.1}" text-anchor="middle" font-size="10">{lead:.2}</text>"#,
                bar - 2.0,
                (bottom_edge - top).max(1.0),
                colors[j % colors.len()],
                x + bar / 2.0,
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{scenario}</text><text x="{:.1}" y="{}" text-anchor="middle" font-size="10" fill="#555">{}</text>"##,
            x0 + (group - 20.0) / 2.0,
            bottom + 18.0,
            x0 + (group - 20.0) / 2.0,
            bottom + 32.0,
            metrics(scenario)[0].label,
        );
    }
    for (j, peer) in peers.iter().enumerate() {
        let x = left + j as f64 * 230.0;
        let color = colors[j % colors.len()];
        svg::legend(
            &mut out,
            x,
            height - 28.0,
            color,
            &format!("vs {}", peer.label),
        );
    }
    svg::close(&mut out);
    out
}

const BEGIN: &str = "<!-- results:begin (written by ferrio-bench compare) -->";
const END: &str = "<!-- results:end -->";

/// Replaces the generated part of `docs/benchmarks.md`.
pub(crate) fn splice_into(path: &Path, tables: &str) -> Result<(), BoxError> {
    let doc = std::fs::read_to_string(path)?;
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!("{} lacks the results markers", path.display()).into());
    };
    let spliced = format!("{}{BEGIN}\n\n{tables}\n{}", &doc[..begin], &doc[end..]);
    std::fs::write(path, spliced)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn measurement(run: usize, server: &str, scenario: &str, load: Value) -> Measurement {
        Measurement {
            run,
            scenario: scenario.to_owned(),
            server: server.to_owned(),
            load,
            server_cpu_ns: Some(2_000_000),
            node_cpu_ns: Vec::new(),
            redis_cpu_ns: None,
            proxy_cpu_ns: None,
            load_cpu_ns: Some(1_000_000),
            rss_kib: BTreeMap::from([("baseline".into(), 1000), ("connected".into(), 1100)]),
            server_user_ns: Some(500_000),
            server_system_ns: Some(1_500_000),
            syscalls: BTreeMap::new(),
        }
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(Vec::new()), None);
    }

    #[test]
    fn derived_metrics() {
        let m = measurement(1, "ferrio", "idle", json!({"sockets": 10}));
        // 100 KiB over 10 sockets = 10 KiB = 10.24 KB each.
        let kb = value(&m, "kb_per_socket").unwrap();
        assert!((kb - 10.24).abs() < 1e-9, "{kb}");
        let m = measurement(1, "ferrio", "fanout", json!({"deliveries": 1000}));
        assert_eq!(value(&m, "cpu_ns_per_delivery"), Some(2000.0));
        let m = measurement(
            1,
            "ferrio",
            "echo-100",
            json!({"ops": 1000, "seconds": 0.004}),
        );
        assert_eq!(value(&m, "cpu_us_per_op"), Some(2.0));
        assert_eq!(value(&m, "user_us_per_op"), Some(0.5));
        assert_eq!(value(&m, "system_us_per_op"), Some(1.5));
        // 2 ms of server CPU and 1 ms of generator CPU in 4 ms.
        assert_eq!(value(&m, "server_busy_pct"), Some(50.0));
        assert_eq!(value(&m, "load_busy_pct"), Some(25.0));
        let mut m = measurement(
            1,
            "ferrio",
            "cluster",
            json!({"deliveries": 1000, "seconds": 0.004}),
        );
        m.node_cpu_ns = vec![500_000, 750_000, 750_000];
        m.redis_cpu_ns = Some(400_000);
        // 2 ms over 1 000 cross-node deliveries; node 1 spent a quarter of it.
        assert_eq!(value(&m, "cpu_ms_per_1k_deliveries"), Some(2.0));
        assert_eq!(value(&m, "node1_cpu_pct"), Some(25.0));
        assert_eq!(value(&m, "redis_busy_pct"), Some(10.0));
        // 2 ms of server CPU over 4 MB; over 2 broadcasts; over 1 000 deliveries.
        let m = measurement(1, "ferrio", "big-echo", json!({"megabytes": 4.0}));
        assert_eq!(value(&m, "cpu_ms_per_mb"), Some(0.5));
        let m = measurement(1, "ferrio", "scale", json!({"rounds": 2, "sockets": 10}));
        assert_eq!(value(&m, "cpu_ms_per_broadcast"), Some(1.0));
        assert!(value(&m, "kb_per_socket").is_some());
        let m = measurement(1, "ferrio", "big-fanout", json!({"deliveries": 1000}));
        assert_eq!(value(&m, "cpu_us_per_delivery"), Some(2.0));
    }

    #[test]
    fn the_new_scenarios_have_their_own_tables() {
        for (scenario, main) in [
            ("big-echo", "mb_per_sec"),
            ("big-fanout", "deliveries_per_sec"),
            ("scale", "kb_per_socket"),
        ] {
            assert_eq!(metrics(scenario)[0].key, main, "{scenario}");
        }
    }

    #[test]
    fn a_lead_above_one_means_ferrio_is_ahead_either_way() {
        let ms = vec![
            measurement(
                1,
                "ferrio",
                "echo-100",
                json!({"ops_per_sec": 200.0, "p99_us": 10.0}),
            ),
            measurement(
                1,
                "peer",
                "echo-100",
                json!({"ops_per_sec": 100.0, "p99_us": 40.0}),
            ),
            measurement(
                2,
                "ferrio",
                "echo-100",
                json!({"ops_per_sec": 150.0, "p99_us": 20.0}),
            ),
            measurement(
                2,
                "peer",
                "echo-100",
                json!({"ops_per_sec": 100.0, "p99_us": 40.0}),
            ),
        ];
        let throughput = &metrics("echo-100")[0];
        assert_eq!(leads(&ms, "echo-100", "peer", throughput), vec![2.0, 1.5]);
        let p99 = metrics("echo-100")
            .iter()
            .find(|m| m.key == "p99_us")
            .unwrap();
        assert_eq!(leads(&ms, "echo-100", "peer", p99), vec![4.0, 2.0]);
    }

    #[test]
    fn a_scenario_lists_only_the_servers_that_ran_it() {
        let named = |name: &str| Named {
            name: name.to_owned(),
            label: format!("label-{name}"),
        };
        let servers = [named("ferrio"), named("node"), named("socketioxide")];
        let load = json!({"deliveries": 1000, "seconds": 1.0, "deliveries_per_sec": 1000.0});
        let ms = vec![
            measurement(1, "ferrio", "cluster", load.clone()),
            measurement(1, "node", "cluster", load),
        ];
        let out = tables(&ms, &servers, &["cluster".to_owned()], &json!({}));
        assert!(out.contains("| label-node |"), "{out}");
        assert!(!out.contains("label-socketioxide"), "{out}");
    }

    #[test]
    fn tables_are_spliced_between_the_markers_only() {
        let dir = std::env::temp_dir().join(format!("ferrio-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("page.md");
        std::fs::write(&path, format!("intro\n{BEGIN}\nold\n{END}\noutro\n")).unwrap();
        splice_into(&path, "new table\n").unwrap();
        splice_into(&path, "newer table\n").unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            page,
            format!("intro\n{BEGIN}\n\nnewer table\n\n{END}\noutro\n")
        );
        std::fs::write(&path, "no markers").unwrap();
        assert!(splice_into(&path, "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
