//! The soak's timeline, its samples, and the verdict drawn from them.

use std::fmt::Write as _;

use serde::Serialize;

use crate::BoxError;

/// Seconds of steady clients alone before the churn starts: the level to come back to.
pub(crate) const BASELINE_SECS: f64 = 5.0;

/// How far RSS may rise above its level at the end of the warm-up.
pub(crate) const RSS_TOLERANCE: f64 = 0.10;

/// When each phase starts and ends, in seconds from the start of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Plan {
    /// End of the baseline (steady clients only) and start of the churn.
    pub(crate) churn_start: f64,
    /// End of the warm-up: RSS is judged against its level here.
    pub(crate) warmup_end: f64,
    /// End of the churn and start of the quiet phase (steady clients only again).
    pub(crate) churn_end: f64,
    pub(crate) end: f64,
}

impl Plan {
    /// A run of `total` seconds whose held connections take `ramp` seconds to reach their
    /// steady number. The warm-up defaults to a quarter of the run, at most a minute, but at
    /// least until that ramp is over; the quiet phase to a fifth of the run, at least
    /// `min_quiet`.
    pub(crate) fn new(
        total: f64,
        warmup: Option<f64>,
        quiet: Option<f64>,
        min_quiet: f64,
        ramp: f64,
    ) -> Result<Self, BoxError> {
        let quiet = quiet.unwrap_or((total / 5.0).max(min_quiet));
        let warmup = warmup
            .unwrap_or((total / 4.0).min(60.0).max(BASELINE_SECS + ramp))
            .max(BASELINE_SECS);
        let plan = Plan {
            churn_start: BASELINE_SECS,
            warmup_end: warmup,
            churn_end: total - quiet,
            end: total,
        };
        if plan.churn_end <= plan.warmup_end {
            return Err(format!(
                "a {total} s run leaves no churn after the warm-up ({warmup} s) and before the \
                 quiet phase ({quiet} s): give more --minutes, or a shorter --hold, --warmup or \
                 --quiet"
            )
            .into());
        }
        Ok(plan)
    }

    pub(crate) fn phase(&self, t: f64) -> &'static str {
        if t < self.churn_start {
            "baseline"
        } else if t < self.churn_end {
            "churn"
        } else {
            "quiet"
        }
    }
}

/// One second of the run, as the server saw it (and how many churn connections the harness
/// held open).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Sample {
    pub(crate) t: f64,
    pub(crate) rss_kib: u64,
    pub(crate) sessions: u64,
    pub(crate) sockets: u64,
    pub(crate) rooms: u64,
    pub(crate) tasks: u64,
    pub(crate) client_conns: u64,
}

/// The samples as CSV, with the phase of each.
pub(crate) fn csv(samples: &[Sample], plan: &Plan) -> String {
    let mut out = String::from("t_secs,phase,rss_kib,sessions,sockets,rooms,tasks,client_conns\n");
    for s in samples {
        let _ = writeln!(
            out,
            "{:.2},{},{},{},{},{},{},{}",
            s.t,
            plan.phase(s.t),
            s.rss_kib,
            s.sessions,
            s.sockets,
            s.rooms,
            s.tasks,
            s.client_conns
        );
    }
    out
}

/// One rule of the verdict.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) pass: bool,
    pub(crate) detail: String,
}

/// The level the server must come back to: the steady clients alone.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Level {
    pub(crate) sessions: u64,
    pub(crate) sockets: u64,
    pub(crate) rooms: u64,
    pub(crate) tasks: u64,
}

/// Sessions and sockets: one per steady client. Rooms and tasks: the most seen in the
/// baseline once the steady clients were all connected (its last seconds).
pub(crate) fn baseline_level(samples: &[Sample], plan: &Plan, steady: u64) -> Option<Level> {
    let settled = plan.churn_start - 3.0;
    let tail = || {
        samples
            .iter()
            .filter(move |s| s.t >= settled && s.t < plan.churn_start)
    };
    Some(Level {
        sessions: steady,
        sockets: steady,
        rooms: tail().map(|s| s.rooms).max()?,
        tasks: tail().map(|s| s.tasks).max()?,
    })
}

/// What the run must show: the server up to the end, RSS within [`RSS_TOLERANCE`] of its
/// level after the warm-up, sessions, sockets, rooms and tasks back to the steady clients' level
/// once the churn stopped and not growing after that, and no steady client failing.
pub(crate) fn judge(
    samples: &[Sample],
    plan: &Plan,
    level: Option<Level>,
    steady_failures: u64,
    server_exit: Option<&str>,
) -> Vec<Check> {
    let mut checks = vec![Check {
        name: "server up",
        pass: server_exit.is_none(),
        detail: server_exit.map_or_else(
            || "the server served until the end".to_owned(),
            |why| format!("the server stopped during the run: {why}"),
        ),
    }];
    checks.push(rss_check(samples, plan));
    checks.extend(level_checks(samples, plan, level));
    checks.push(Check {
        name: "steady clients",
        pass: steady_failures == 0,
        detail: format!("{steady_failures} failures (disconnected, refused or an echo unacked)"),
    });
    checks
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rss_check(samples: &[Sample], plan: &Plan) -> Check {
    let name = "RSS stable";
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t >= plan.warmup_end).collect();
    let (Some(reference), Some(last)) = (after.first(), after.last()) else {
        return Check {
            name,
            pass: false,
            detail: "no sample after the warm-up".to_owned(),
        };
    };
    let peak = after.iter().max_by_key(|s| s.rss_kib).unwrap_or(reference);
    let limit = reference.rss_kib as f64 * (1.0 + RSS_TOLERANCE);
    let churn: Vec<(f64, f64)> = after
        .iter()
        .filter(|s| s.t < plan.churn_end)
        .map(|s| (s.t, s.rss_kib as f64))
        .collect();
    // A few seconds of samples give a slope that says nothing.
    let span = churn.last().map_or(0.0, |l| l.0) - churn.first().map_or(0.0, |f| f.0);
    let trend = match slope(&churn) {
        Some(kib_per_sec) if span >= 45.0 => format!("{:+.0} KiB/min", kib_per_sec * 60.0),
        _ => "n/a (under 45 s of churn after the warm-up)".to_owned(),
    };
    let rise = |kib: u64| (kib as f64 / reference.rss_kib.max(1) as f64 - 1.0) * 100.0;
    Check {
        name,
        pass: peak.rss_kib as f64 <= limit,
        detail: format!(
            "{:.1} MiB at {:.0} s (end of warm-up); peak {:.1} MiB at {:.0} s ({:+.1}%); \
             last {:.1} MiB ({:+.1}%); limit +{:.0}%; trend during the churn after the \
             warm-up {trend}",
            mib(reference.rss_kib),
            reference.t,
            mib(peak.rss_kib),
            peak.t,
            rise(peak.rss_kib),
            mib(last.rss_kib),
            rise(last.rss_kib),
            RSS_TOLERANCE * 100.0
        ),
    }
}

/// The least-squares slope of `points` (y per unit of x), with at least two distinct xs.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

fn level_checks(samples: &[Sample], plan: &Plan, level: Option<Level>) -> Vec<Check> {
    let quiet: Vec<&Sample> = samples.iter().filter(|s| s.t >= plan.churn_end).collect();
    let (Some(level), Some(first), Some(last)) = (level, quiet.first(), quiet.last()) else {
        let detail = "no baseline or no sample after the churn".to_owned();
        return vec![Check {
            name: "back to baseline",
            pass: false,
            detail,
        }];
    };
    let at_level = |s: &Sample| {
        s.sessions <= level.sessions
            && s.sockets <= level.sockets
            && s.rooms <= level.rooms
            && s.tasks <= level.tasks
    };
    // The first quiet sample from which every later one is at the level.
    let settled = quiet
        .iter()
        .rposition(|s| !at_level(s))
        .map_or(Some(0), |i| (i + 1 < quiet.len()).then_some(i + 1))
        .map(|i| quiet[i]);
    let counts = |s: &Sample| format!("{}/{}/{}/{}", s.sessions, s.sockets, s.rooms, s.tasks);
    let back = Check {
        name: "back to baseline",
        pass: settled.is_some(),
        detail: format!(
            "sessions/sockets/rooms/tasks: baseline {}/{}/{}/{}, churn end {}, last {}; {}",
            level.sessions,
            level.sockets,
            level.rooms,
            level.tasks,
            counts(first),
            counts(last),
            match settled {
                Some(s) => format!("back {:.0} s after the churn stopped", s.t - plan.churn_end),
                None => "never back by the end of the run".to_owned(),
            }
        ),
    };
    let grew = last.sessions > first.sessions
        || last.sockets > first.sockets
        || last.rooms > first.rooms
        || last.tasks > first.tasks;
    let growth = Check {
        name: "no growth after the churn",
        pass: !grew,
        detail: format!(
            "sessions/sockets/rooms/tasks {} -> {} between the end of the churn and the end of \
             the run",
            counts(first),
            counts(last)
        ),
    };
    vec![back, growth]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, rss_kib: u64, sessions: u64, tasks: u64) -> Sample {
        Sample {
            t,
            rss_kib,
            sessions,
            sockets: sessions,
            rooms: sessions + 1,
            tasks,
            client_conns: 0,
        }
    }

    fn plan() -> Plan {
        Plan::new(60.0, None, None, 30.0, 5.0).unwrap()
    }

    fn passed(checks: &[Check], name: &str) -> bool {
        checks.iter().find(|c| c.name == name).unwrap().pass
    }

    /// 60 s: baseline to 5 s (4 sessions, 10 tasks), churn to 30 s, quiet to 60 s.
    fn run(rss_at: impl Fn(f64) -> u64, quiet_tasks: impl Fn(f64) -> u64) -> Vec<Sample> {
        (0..60)
            .map(|t| {
                let t = t as f64;
                let (sessions, tasks) = match plan().phase(t) {
                    "baseline" => (4, 10),
                    "churn" => (40, 90),
                    _ => (if t < 40.0 { 9 } else { 4 }, quiet_tasks(t)),
                };
                sample(t, rss_at(t), sessions, tasks)
            })
            .collect()
    }

    #[test]
    fn the_plan_scales_with_the_run() {
        let short = plan();
        assert_eq!(
            (short.churn_start, short.warmup_end, short.churn_end),
            (5.0, 15.0, 30.0)
        );
        // The defaults of the command: quiet at least 20 s, held connections for 30 s.
        let minute = Plan::new(60.0, None, None, 20.0, 30.0).unwrap();
        assert_eq!((minute.warmup_end, minute.churn_end), (35.0, 40.0));
        let long = Plan::new(600.0, None, None, 20.0, 30.0).unwrap();
        assert_eq!((long.warmup_end, long.churn_end), (60.0, 480.0));
        assert!(Plan::new(20.0, None, None, 30.0, 5.0).is_err());
        assert!(Plan::new(600.0, None, None, 20.0, 500.0).is_err());
    }

    #[test]
    fn a_clean_run_passes() {
        let samples = run(|t| 50_000 + (t as u64 % 3) * 100, |_| 10);
        let level = baseline_level(&samples, &plan(), 4);
        let checks = judge(&samples, &plan(), level, 0, None);
        assert!(checks.iter().all(|c| c.pass), "{checks:#?}");
    }

    #[test]
    fn growing_rss_fails() {
        let samples = run(|t| 50_000 + t as u64 * 300, |_| 10);
        let level = baseline_level(&samples, &plan(), 4);
        let checks = judge(&samples, &plan(), level, 0, None);
        assert!(!passed(&checks, "RSS stable"));
        assert!(passed(&checks, "back to baseline"));
    }

    #[test]
    fn tasks_that_stay_fail() {
        let samples = run(|_| 50_000, |t| if t < 59.0 { 10 } else { 11 });
        let level = baseline_level(&samples, &plan(), 4);
        let checks = judge(&samples, &plan(), level, 0, None);
        assert!(!passed(&checks, "back to baseline"), "{checks:#?}");
        assert!(passed(&checks, "RSS stable"));
    }

    #[test]
    fn failures_and_a_dead_server_fail() {
        let samples = run(|_| 50_000, |_| 10);
        let level = baseline_level(&samples, &plan(), 4);
        let checks = judge(&samples, &plan(), level, 2, Some("killed by signal 9"));
        assert!(!passed(&checks, "steady clients"));
        assert!(!passed(&checks, "server up"));
    }

    #[test]
    fn slope_of_a_line() {
        let points: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 1.0)).collect();
        assert!((slope(&points).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&points[..1]), None);
    }

    #[test]
    fn csv_has_a_phase_per_row() {
        let text = csv(&[sample(0.5, 1, 2, 3), sample(31.0, 1, 2, 3)], &plan());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "0.50,baseline,1,2,2,3,3,0");
        assert_eq!(lines[2], "31.00,quiet,1,2,2,3,3,0");
    }
}
