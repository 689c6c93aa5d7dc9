//! SVG plots for `mamori eval`: ROC curves and a score timeline. Plain SVG text, no dependencies,
//! so the files open in any browser and diff cleanly.

use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One ROC curve: label, AUC and (fpr, tpr) points from (0,0) to (1,1).
pub struct RocSeries {
    /// Model name.
    pub label: String,
    /// Area under the curve.
    pub auc: f64,
    /// Points, fpr ascending.
    pub points: Vec<(f64, f64)>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.x0) / (self.x1 - self.x0).max(f64::MIN_POSITIVE) * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        H - BOTTOM - (v - self.y0) / (self.y1 - self.y0).max(f64::MIN_POSITIVE) * (H - TOP - BOTTOM)
    }
}

fn open(title: &str, xlabel: &str, ylabel: &str, f: &Frame) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        escape(title)
    );
    let (px0, px1, py0, py1) = (f.x(f.x0), f.x(f.x1), f.y(f.y0), f.y(f.y1));
    let _ = writeln!(
        s,
        r#"<rect x="{px0}" y="{py1}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        px1 - px0,
        py0 - py1
    );
    for i in 0..=5 {
        let t = i as f64 / 5.0;
        let xv = f.x0 + t * (f.x1 - f.x0);
        let yv = f.y0 + t * (f.y1 - f.y0);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            f.x(xv),
            py0 + 16.0,
            tick(xv),
            px0 - 6.0,
            f.y(yv) + 4.0,
            tick(yv)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (px0 + px1) / 2.0,
        H - 18.0,
        escape(xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (py0 + py1) / 2.0,
        escape(ylabel)
    );
    s
}

fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.2e}")
    } else {
        format!("{:.2}", v)
    }
}

fn legend(s: &mut String, row: usize, colour: &str, text: &str) {
    let x = W - RIGHT + 14.0;
    let y = TOP + 10.0 + row as f64 * 18.0;
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
        x + 18.0,
        x + 24.0,
        y + 4.0,
        escape(text)
    );
}

/// ROC curves of several models on one chart.
pub fn roc_svg(title: &str, series: &[RocSeries]) -> String {
    let f = Frame {
        x0: 0.0,
        x1: 1.0,
        y0: 0.0,
        y1: 1.0,
    };
    let mut s = open(title, "false-positive rate", "detection rate", &f);
    let _ = writeln!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
        f.x(0.0),
        f.y(0.0),
        f.x(1.0),
        f.y(1.0)
    );
    for (i, r) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // Millions of thresholds draw the same few hundred pixels: keep one point per pixel.
        let mut pts = String::new();
        let mut last = (f64::NAN, f64::NAN);
        for &(x, y) in &r.points {
            let p = (f.x(x).round(), f.y(y).round());
            if p != last {
                let _ = write!(pts, "{},{} ", p.0, p.1);
                last = p;
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
        legend(&mut s, i, colour, &format!("{} {:.3}", r.label, r.auc));
    }
    s.push_str("</svg>\n");
    s
}

/// Scores over time with the threshold and the attack periods shaded.
///
/// `points` are (x, score) in x order; `attacks` are x ranges. Long series are reduced to the
/// maximum per pixel column, so a spike is never lost.
pub fn timeline_svg(
    title: &str,
    xlabel: &str,
    points: &[(f64, f64)],
    threshold: Option<f64>,
    attacks: &[(f64, f64)],
) -> String {
    let finite = points.iter().filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some(t) = threshold {
        y0 = y0.min(t);
        y1 = y1.max(t);
    }
    let pad = (y1 - y0).max(1e-9) * 0.05;
    let f = Frame {
        x0,
        x1: x1.max(x0 + 1e-9),
        y0: y0 - pad,
        y1: y1 + pad,
    };
    let mut s = open(title, xlabel, "anomaly score", &f);
    for &(a, b) in attacks {
        let (a, b) = (a.max(f.x0), b.min(f.x1));
        if a < b {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728" fill-opacity="0.15"/>"##,
                f.x(a),
                f.y(f.y1),
                f.x(b) - f.x(a),
                f.y(f.y0) - f.y(f.y1)
            );
        }
    }
    // One pixel column can hold thousands of windows: draw both the highest score in it (so a
    // spike is never lost) and the mean (so the typical level stays visible).
    let columns = (W - LEFT - RIGHT) as usize;
    let mut peak: Vec<Option<(f64, f64)>> = vec![None; columns + 1];
    let mut sum: Vec<(f64, f64, usize)> = vec![(0.0, 0.0, 0); columns + 1];
    for &(x, y) in points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
        let c = ((f.x(x) - LEFT) as usize).min(columns);
        if peak[c].is_none_or(|p| y > p.1) {
            peak[c] = Some((x, y));
        }
        sum[c] = (sum[c].0 + x, sum[c].1 + y, sum[c].2 + 1);
    }
    let max_pts: String = peak
        .iter()
        .flatten()
        .map(|&(x, y)| format!("{:.1},{:.1} ", f.x(x), f.y(y)))
        .collect();
    let mean_pts: String = sum
        .iter()
        .filter(|c| c.2 > 0)
        .map(|&(x, y, n)| format!("{:.1},{:.1} ", f.x(x / n as f64), f.y(y / n as f64)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{max_pts}" fill="none" stroke="#9ecae1" stroke-width="1"/>"##
    );
    let _ = writeln!(
        s,
        r##"<polyline points="{mean_pts}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##
    );
    legend(&mut s, 0, "#9ecae1", "score, max per pixel");
    legend(&mut s, 1, "#1f77b4", "score, mean per pixel");
    if let Some(t) = threshold {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="6 3"/>"##,
            W - RIGHT,
            y = f.y(t)
        );
        legend(&mut s, 2, "#ff7f0e", &format!("threshold {}", tick(t)));
    }
    if !attacks.is_empty() {
        legend(&mut s, 3, "#f4c2c2", "attack");
    }
    s.push_str("</svg>\n");
    s
}

/// A confusion matrix as a heatmap (the layout of seed 001's Fig. 5): rows are the true class,
/// columns the predicted one; each cell shows its count and its share of the row, and is shaded
/// by that share so a detector's misses and false alarms stand out at a glance.
pub fn confusion_svg(title: &str, tn: usize, fp: usize, fn_: usize, tp: usize) -> String {
    const SIZE: f64 = 150.0;
    const X0: f64 = 150.0;
    const Y0: f64 = 70.0;
    let (w, h) = (X0 + 2.0 * SIZE + 130.0, Y0 + 2.0 * SIZE + 70.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="15" text-anchor="middle">{}</text>"#,
        X0 + SIZE,
        escape(title)
    );
    let cells = [[tn, fp], [fn_, tp]];
    let names = ["normal (0)", "attack (1)"];
    for (r, row) in cells.iter().enumerate() {
        let total = (row[0] + row[1]).max(1) as f64;
        for (c, &n) in row.iter().enumerate() {
            let share = n as f64 / total;
            // White to deep blue; text turns white on dark cells.
            let shade = |lo: f64, hi: f64| (lo + (hi - lo) * share).round() as u8;
            let fill = format!(
                "#{:02x}{:02x}{:02x}",
                shade(247.0, 8.0),
                shade(251.0, 48.0),
                shade(255.0, 107.0)
            );
            let ink = if share > 0.5 { "white" } else { "black" };
            let (x, y) = (X0 + c as f64 * SIZE, Y0 + r as f64 * SIZE);
            let _ = writeln!(
                s,
                r##"<rect x="{x}" y="{y}" width="{SIZE}" height="{SIZE}" fill="{fill}" stroke="#444"/>"##
            );
            let tag = ["TN", "FP", "FN", "TP"][r * 2 + c];
            let _ = writeln!(
                s,
                r#"<text x="{cx}" y="{}" text-anchor="middle" fill="{ink}">{tag}</text><text x="{cx}" y="{}" text-anchor="middle" font-size="22" fill="{ink}">{n}</text><text x="{cx}" y="{}" text-anchor="middle" fill="{ink}">{:.1} %</text>"#,
                y + 50.0,
                y + 82.0,
                y + 108.0,
                share * 100.0,
                cx = x + SIZE / 2.0,
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            X0 - 10.0,
            Y0 + r as f64 * SIZE + SIZE / 2.0 + 4.0,
            names[r]
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            X0 + r as f64 * SIZE + SIZE / 2.0,
            Y0 + 2.0 * SIZE + 22.0,
            names[r]
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">predicted</text>"#,
        X0 + SIZE,
        Y0 + 2.0 * SIZE + 48.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(40 {}) rotate(-90)" text-anchor="middle">actual</text>"#,
        Y0 + SIZE
    );
    let total = (tn + fp + fn_ + tp).max(1) as f64;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}">accuracy {:.2} %</text>"#,
        X0 + 2.0 * SIZE + 12.0,
        Y0 + 16.0,
        (tn + tp) as f64 / total * 100.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svgs_are_well_formed_and_escape_labels() {
        let roc = roc_svg(
            "ROC <test>",
            &[RocSeries {
                label: "hmm & co".into(),
                auc: 0.9,
                points: vec![(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)],
            }],
        );
        assert!(roc.starts_with("<svg") && roc.trim_end().ends_with("</svg>"));
        assert!(roc.contains("hmm &amp; co 0.900") && roc.contains("ROC &lt;test&gt;"));
        let dense: Vec<(f64, f64)> = (0..=1_000_000)
            .map(|i| (i as f64 / 1e6, (i as f64 / 1e6).sqrt()))
            .collect();
        let big = roc_svg(
            "dense",
            &[RocSeries {
                label: "m".into(),
                auc: 0.6,
                points: dense,
            }],
        );
        assert!(
            big.len() < 50_000,
            "one point per pixel: {} bytes",
            big.len()
        );
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        let tl = timeline_svg("t", "window", &pts, Some(5.5), &[(100.0, 200.0)]);
        assert!(tl.contains("threshold 5.50") && tl.contains("fill-opacity"));
        // Reduced to at most one point per pixel column.
        assert!(tl.len() < 60_000, "{}", tl.len());
        assert!(tl.contains("mean per pixel"));
    }

    #[test]
    fn confusion_heatmap_shows_every_cell_with_its_row_share() {
        let svg = confusion_svg("svm", 90, 10, 1, 3);
        for text in [
            ">TN<",
            ">FP<",
            ">FN<",
            ">TP<",
            ">90<",
            ">10<",
            "90.0 %",
            "75.0 %",
            "actual",
            "predicted",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // Shaded by the row share: TN (90 %) dark with white text, FP (10 %) pale.
        assert!(svg.contains(r##"fill="#20447a""##), "{svg}");
        assert!(svg.contains(r##"fill="#dfe7f0""##), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
