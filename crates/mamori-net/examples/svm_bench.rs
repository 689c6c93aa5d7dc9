//! Times SVM training and prediction (and isolation-forest fitting and scoring) on a seeded
//! synthetic problem, or on a parity CSV (label first, then features).
//!
//! ```text
//! cargo run --release -p mamori-net --example svm_bench [-- ROWS COLS C GAMMA | -- FILE.csv C GAMMA]
//! ```
//!
//! Defaults: 5 000 rows × 20 columns, C = 1, γ = 1/20. The scikit-learn comparison on the same
//! data runs in `tests/svm_parity.rs`, which prints both timings.

use std::time::Instant;

use mamori_detect::iforest::{IsolationForest, IsolationForestParams};
use mamori_detect::matrix::Matrix;
use mamori_detect::rng::Rng;
use mamori_detect::scaler::StandardScaler;
use mamori_detect::svm::{Svm, SvmParams};

/// Nonlinear, overlapping classes: the label depends on `z0² + z1² + sin(2·z2)` of standard
/// normal features plus noise; the remaining columns are noise.
fn synthetic(rows: usize, cols: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::seeded(seed);
    let mut x = Matrix::new(cols);
    let mut y = Vec::with_capacity(rows);
    let mut row = vec![0.0; cols];
    for _ in 0..rows {
        row.iter_mut().for_each(|v| *v = rng.normal());
        let z = |j: usize| row.get(j).copied().unwrap_or(0.0);
        let signal = z(0) * z(0) + z(1) * z(1) + 1.5 * (2.0 * z(2)).sin();
        y.push(signal + 0.8 * rng.normal() > 2.2);
        x.push_row(&row).expect("row of the right width");
    }
    (x, y)
}

/// CPU seconds used by this thread (Linux; NaN elsewhere): wall time lies on a busy machine.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn read_csv(path: &str) -> Result<(Matrix, Vec<bool>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut x: Option<Matrix> = None;
    let mut y = Vec::new();
    for (no, line) in text.lines().enumerate().skip(1) {
        let vals: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{path}:{}: {e}", no + 1))?;
        let (label, row) = vals
            .split_first()
            .ok_or(format!("{path}:{}: empty", no + 1))?;
        let m = x.get_or_insert_with(|| Matrix::new(row.len().max(1)));
        m.push_row(row)
            .map_err(|e| format!("{path}:{}: {e}", no + 1))?;
        y.push(*label == 1.0);
    }
    Ok((x.ok_or(format!("{path}: no rows"))?, y))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: f64| -> Result<f64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("argument {s}: {e}"))
        })
    };
    let (x, y, c, gamma) = match args.first() {
        Some(p) if p.ends_with(".csv") => {
            let (x, y) = read_csv(p)?;
            let g = 1.0 / x.cols() as f64;
            (x, y, num(1, 1.0)?, num(2, g)?)
        }
        _ => {
            let (rows, cols) = (num(0, 5000.0)? as usize, num(1, 20.0)? as usize);
            let (x, y) = synthetic(rows, cols.max(1), 42);
            (x, y, num(2, 1.0)?, num(3, 1.0 / cols.max(1) as f64)?)
        }
    };
    let (_, z) = StandardScaler::fit_transform(&x).map_err(|e| e.to_string())?;
    let params = SvmParams {
        c,
        gamma,
        ..SvmParams::default()
    };
    println!(
        "{} rows × {} features, {} attacks, C = {c}, gamma = {gamma}",
        z.rows(),
        z.cols(),
        y.iter().filter(|&&a| a).count()
    );
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut model = None;
    for _ in 0..3 {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let m = Svm::train(&z, &y, &params).map_err(|e| e.to_string())?;
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - cpu);
        model = Some(m);
    }
    let m = model.ok_or("no model")?;
    println!(
        "svm train: {best:.3} s wall, {best_cpu:.3} s cpu (best of 3), {} iterations, {} support \
         vectors, converged {}",
        m.iterations(),
        m.n_support(),
        m.converged()
    );
    let cpu = cpu_seconds();
    let dec = m.decision_matrix(&z);
    let secs = cpu_seconds() - cpu;
    let acc = dec
        .iter()
        .zip(&y)
        .filter(|(f, &a)| (**f >= 0.0) == a)
        .count() as f64
        / y.len() as f64;
    println!(
        "svm decision (cpu): {:.2} µs per row ({:.1} ns per support vector), training accuracy {acc:.4}",
        secs * 1e6 / z.rows() as f64,
        secs * 1e9 / (z.rows() * m.n_support()) as f64
    );
    let normal: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).collect();
    let cpu = cpu_seconds();
    let forest = IsolationForest::fit(
        &z.select_rows(&normal),
        &IsolationForestParams::default(),
        1,
    )
    .map_err(|e| e.to_string())?;
    let fit = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    let scores = forest.score_matrix(&z);
    let secs = cpu_seconds() - cpu;
    println!(
        "iforest (cpu): fit {:.1} ms, score {:.2} µs per row (mean score {:.4})",
        fit * 1e3,
        secs * 1e6 / z.rows() as f64,
        scores.iter().sum::<f64>() / scores.len() as f64
    );
    Ok(())
}
