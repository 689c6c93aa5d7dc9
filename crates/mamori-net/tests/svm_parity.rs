//! Parity of `mamori_detect::svm::Svm` with scikit-learn's `SVC` (and, loosely, of
//! `IsolationForest`) on a seeded synthetic data set.
//!
//! Needs the reference Python environment (`scripts/setup-reference-venv.sh`, or an
//! interpreter with scikit-learn in `MAMORI_REF_PYTHON`); without it the tests are skipped
//! locally and fail in CI. The reusable check lives in `common/parity.rs`, so a test on real
//! network features only has to write a CSV and call `check_parity`.

mod common;

use std::path::PathBuf;

use common::parity::{check_iforest, check_parity, roc_auc, spearman, write_csv};
use mamori_detect::matrix::Matrix;
use mamori_detect::rng::Rng;

/// 6 250 rows (5 000 train, 1 250 held out) × 20 features.
const ROWS: usize = 6_250;

/// A nonlinear, overlapping two-class problem that looks a little like traffic features.
///
/// Six latent factors `z` decide the class through `z0² + z1² + 1.5·sin(2·z2) + z3·z4 +
/// 0.5·z5` plus Gaussian noise (σ = 0.8), so no boundary is perfect (about 5–10 % of rows sit
/// on the wrong side). The 20 observed columns: the six factors on wildly different scales and
/// offsets (as counts, bytes and ratios are), six noisy linear mixtures of them, four Gaussian
/// and two log-normal noise columns, and two count-like columns.
fn synthetic(rows: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::seeded(seed);
    let scales = [1.0, 1000.0, 0.01, 50.0, 3.0, 1e5];
    let offsets = [0.0, 5000.0, -2.0, 100.0, 0.0, 1e6];
    let mut x = Matrix::new(20);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let z: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
        let signal =
            z[0] * z[0] + z[1] * z[1] + 1.5 * (2.0 * z[2]).sin() + z[3] * z[4] + 0.5 * z[5];
        y.push(signal + 0.8 * rng.normal() > 2.2);
        let mut row = Vec::with_capacity(20);
        row.extend((0..6).map(|j| z[j] * scales[j] + offsets[j]));
        for j in 0..6 {
            let mix = z[j] - 0.5 * z[(j + 1) % 6] + 0.3 * z[(j + 3) % 6];
            row.push(mix + 0.5 * rng.normal());
        }
        row.extend((0..4).map(|_| rng.normal()));
        row.extend((0..2).map(|_| rng.normal().exp()));
        row.push((20.0 * z[0].abs()).floor());
        row.push((3.0 + z[4]).max(0.0).round());
        x.push_row(&row).expect("20 columns");
    }
    (x, y)
}

/// Writes the synthetic set to a file of its own per test (tests run in parallel).
fn synthetic_csv(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mamori-net-svm-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("synthetic-{test}.csv"));
    let (x, y) = synthetic(ROWS, 42);
    let attacks = y.iter().filter(|&&a| a).count();
    assert!(
        (ROWS / 5..ROWS / 2).contains(&attacks),
        "{attacks} attacks of {ROWS}"
    );
    write_csv(&path, &x, &y);
    path
}

#[test]
fn svm_matches_sklearn_svc_on_synthetic_nonlinear_data() {
    let csv = synthetic_csv("svm");
    // 1/n_features = 0.05 is scikit-learn's gamma="scale" on standardised data.
    for (c, gamma) in [(1.0, 0.05), (10.0, 0.02), (0.5, 0.2)] {
        if check_parity(&csv, c, gamma).is_none() {
            break;
        }
    }
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn isolation_forest_ranks_like_sklearn() {
    let csv = synthetic_csv("iforest");
    let _ = check_iforest(&csv, 0.9);
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn rank_helpers_have_known_values() {
    assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-15);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-15);
    // Positives at ranks 3 and 4 of 4: perfect; a tie between classes counts half.
    assert_eq!(
        roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
        1.0
    );
    assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), 0.5);
}
