//! The few SVG shapes the harness draws, shared by the benchmark summary (`report.rs`) and the
//! soak plot (`soak/plot.rs`): a white page with a title, grid lines with their labels, dashed
//! markers, lines through points and legend entries. Plain text, no plotting library.

use std::fmt::Write as _;

/// Series colours, in order (ColorBrewer Dark2).
pub(crate) const PALETTE: [&str; 6] = [
    "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
];

/// Starts a `width` x `height` drawing on white with `title` at the top, from `x`.
pub(crate) fn open(out: &mut String, width: f64, height: f64, x: f64, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{x}" y="20" font-size="15">{}</text>"#,
        escape(title)
    );
}

/// Ends the drawing.
pub(crate) fn close(out: &mut String) {
    out.push_str("</svg>\n");
}

/// A light horizontal grid line from `x1` to `x2` at `y`, labelled on the left of `x1`.
pub(crate) fn grid_line(out: &mut String, x1: f64, x2: f64, y: f64, label: &str) {
    let _ = writeln!(
        out,
        r##"<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
        x1 - 6.0,
        y + 4.0,
        escape(label)
    );
}

/// A dashed line (a reference level or a moment in time).
pub(crate) fn dashed_line(
    out: &mut String,
    (x1, y1): (f64, f64),
    (x2, y2): (f64, f64),
    stroke: &str,
) {
    let _ = writeln!(
        out,
        r#"<line x1="{x1}" x2="{x2}" y1="{y1}" y2="{y2}" stroke="{stroke}" stroke-dasharray="4 3"/>"#
    );
}

/// A line through `points`, in order.
pub(crate) fn polyline(out: &mut String, points: &[(f64, f64)], stroke: &str) {
    let mut coords = String::with_capacity(points.len() * 12);
    for (x, y) in points {
        let _ = write!(coords, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="1.5"/>"#,
        coords.trim_end()
    );
}

/// Text at (`x`, `y`); `anchor` is `start`, `middle` or `end`.
pub(crate) fn text(out: &mut String, (x, y): (f64, f64), anchor: &str, size: u32, label: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{}</text>"#,
        escape(label)
    );
}

/// A legend entry: a colour square at (`x`, `y`) and its label to the right.
pub(crate) fn legend(out: &mut String, x: f64, y: f64, color: &str, label: &str) {
    let _ = writeln!(
        out,
        r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
        x + 16.0,
        y + 10.0,
        escape(label)
    );
}

/// About `n` round values (1, 2 or 5 times a power of ten apart) within `lo..=hi`.
pub(crate) fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let raw = (hi - lo).max(f64::EPSILON) / n.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .min_by(|a, b| (a - raw).abs().total_cmp(&(b - raw).abs()))
        .unwrap_or(power);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Text safe inside an element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(3.0, 97.0, 4), vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(0.0, 1.0, 2), vec![0.0, 0.5, 1.0]);
        assert_eq!(ticks(40_000.0, 41_000.0, 4).len(), 6);
    }

    #[test]
    fn labels_are_escaped() {
        let mut out = String::new();
        text(&mut out, (1.0, 2.0), "start", 10, "a < b & c");
        assert!(out.contains("a &lt; b &amp; c"), "{out}");
    }
}
