//! The soak plot: RSS, sessions and sockets, and tasks over time, one panel each, with the
//! phases marked and the levels the verdict judges against.

use super::verdict::{Level, Plan, RSS_TOLERANCE, Sample};
use crate::svg::{self, PALETTE};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 60.0;
const PANEL: f64 = 170.0;
const GAP: f64 = 65.0;

/// One series of a panel.
struct Series<'a> {
    label: &'a str,
    color: &'a str,
    value: fn(&Sample) -> f64,
}

/// One panel: a title, its series, and levels drawn as dashed lines.
struct Panel<'a> {
    title: &'a str,
    series: Vec<Series<'a>>,
    levels: Vec<(f64, &'a str)>,
}

/// The whole plot as SVG.
pub(crate) fn svg(samples: &[Sample], plan: &Plan, level: Option<Level>) -> String {
    let height = TOP + 3.0 * (PANEL + GAP) + 20.0;
    let mut out = String::new();
    svg::open(
        &mut out,
        WIDTH,
        height,
        LEFT,
        "Soak: server RSS; Engine.IO sessions, sockets and rooms of /; tokio tasks (one sample a second)",
    );
    let rss_reference = samples
        .iter()
        .find(|s| s.t >= plan.warmup_end)
        .map(|s| s.rss_kib as f64 / 1024.0);
    let panels = [
        Panel {
            title: "RSS (MiB)",
            series: vec![Series {
                label: "RSS",
                color: PALETTE[0],
                value: |s| s.rss_kib as f64 / 1024.0,
            }],
            levels: rss_reference
                .map(|r| vec![(r, "after warm-up"), (r * (1.0 + RSS_TOLERANCE), "limit")])
                .unwrap_or_default(),
        },
        Panel {
            title: "sessions, sockets, rooms, churn connections",
            series: vec![
                Series {
                    label: "Engine.IO sessions",
                    color: PALETTE[1],
                    value: |s| s.sessions as f64,
                },
                Series {
                    label: "sockets on /",
                    color: PALETTE[2],
                    value: |s| s.sockets as f64,
                },
                Series {
                    label: "rooms of /",
                    color: PALETTE[4],
                    value: |s| s.rooms as f64,
                },
                Series {
                    label: "churn connections (harness side)",
                    color: "#999",
                    value: |s| s.client_conns as f64,
                },
            ],
            levels: level
                .map(|l| vec![(l.sessions as f64, "baseline")])
                .unwrap_or_default(),
        },
        Panel {
            title: "alive tokio tasks",
            series: vec![Series {
                label: "tasks",
                color: PALETTE[3],
                value: |s| s.tasks as f64,
            }],
            levels: level
                .map(|l| vec![(l.tasks as f64, "baseline")])
                .unwrap_or_default(),
        },
    ];
    for (i, panel) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        draw(&mut out, top, plan, samples, panel);
    }
    svg::close(&mut out);
    out
}

fn draw(out: &mut String, top: f64, plan: &Plan, samples: &[Sample], panel: &Panel<'_>) {
    let Panel {
        title,
        series,
        levels,
    } = panel;
    let bottom = top + PANEL;
    let right = WIDTH - RIGHT;
    let values = samples
        .iter()
        .flat_map(|s| series.iter().map(move |series| (series.value)(s)))
        .chain(levels.iter().map(|(v, _)| *v));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        // Counts from zero; RSS around its own range, with some room.
        let pad = ((hi - lo) * 0.05).max(1.0);
        ((lo - pad).max(0.0), hi + pad)
    };
    let x = |t: f64| LEFT + t / plan.end.max(1.0) * (right - LEFT);
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * PANEL;
    svg::text(out, (LEFT, top - 8.0), "start", 13, title);
    for tick in svg::ticks(lo, hi, 4) {
        svg::grid_line(out, LEFT, right, y(tick), &tick_label(tick));
    }
    for tick in svg::ticks(0.0, plan.end, 10) {
        svg::text(
            out,
            (x(tick), bottom + 14.0),
            "middle",
            10,
            &format!("{tick}s"),
        );
    }
    let markers = [
        (plan.churn_start, "churn starts"),
        (plan.warmup_end, "warm-up ends"),
        (plan.churn_end, "churn stops"),
    ];
    for (i, (t, label)) in markers.into_iter().enumerate() {
        svg::dashed_line(out, (x(t), top), (x(t), bottom), "#888");
        // One line down each, so that close markers keep their labels apart.
        svg::text(
            out,
            (x(t) + 3.0, top + 10.0 + 10.0 * i as f64),
            "start",
            9,
            label,
        );
    }
    for &(value, label) in levels {
        svg::dashed_line(out, (LEFT, y(value)), (right, y(value)), "black");
        svg::text(out, (right - 2.0, y(value) - 3.0), "end", 9, label);
    }
    for (j, s) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = samples
            .iter()
            .map(|sample| (x(sample.t), y((s.value)(sample))))
            .collect();
        svg::polyline(out, &points, s.color);
        svg::legend(
            out,
            LEFT + j as f64 * 200.0,
            bottom + 24.0,
            s.color,
            s.label,
        );
    }
}

/// A tick value: whole numbers without decimals.
fn tick_label(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_three_panels_with_a_line_per_series() {
        let plan = Plan::new(60.0, None, None, 30.0, 5.0).unwrap();
        let samples: Vec<Sample> = (0..60)
            .map(|t| Sample {
                t: t as f64,
                rss_kib: 40_000 + t,
                sessions: 4,
                sockets: 4,
                rooms: 5,
                tasks: 10,
                client_conns: t % 7,
            })
            .collect();
        let level = Level {
            sessions: 4,
            sockets: 4,
            rooms: 5,
            tasks: 10,
        };
        let svg = svg(&samples, &plan, Some(level));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert!(svg.contains("churn stops"));
    }
}
