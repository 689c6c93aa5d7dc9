//! Parity of mamori-detect's network models with scikit-learn on any labelled CSV.
//!
//! The CSV has a header line, then one row per sample: the label (`0` normal, `1` attack)
//! followed by the features. [`check_parity`] holds out a stratified fifth of the rows, fits
//! the `StandardScaler` on the rest, trains our `Svm` and scikit-learn's `SVC` on the same
//! standardised rows, and compares them on the held-out rows. A later test can point it at real
//! network features:
//!
//! ```ignore
//! mod common;
//! if let Some(r) = common::parity::check_parity(&csv, 10.0, 0.05) { eprintln!("{r}"); }
//! ```
//!
//! The reference interpreter is `MAMORI_REF_PYTHON`, else `<workspace>/.venv-ref/bin/python`
//! (`scripts/setup-reference-venv.sh`). Without either the check is skipped (`None`, with a
//! message), except under CI (`CI` set), where it fails; a `MAMORI_REF_PYTHON` that does not
//! run scikit-learn always fails.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mamori_detect::iforest::{IsolationForest, IsolationForestParams};
use mamori_detect::matrix::Matrix;
use mamori_detect::scaler::StandardScaler;
use mamori_detect::svm::cv::stratified_folds;
use mamori_detect::svm::{Svm, SvmParams};
use serde_json::{json, Value};

/// Smallest share of held-out rows on which both must predict the same label.
pub const MIN_AGREEMENT: f64 = 0.99;
/// Largest difference of a held-out decision value allowed.
pub const MAX_DECISION_DIFF: f64 = 1e-2;
/// Largest relative difference of the number of support vectors allowed.
pub const MAX_NSV_REL_DIFF: f64 = 0.02;
/// CPU time of the calling thread (Linux), so timings mean something on a busy machine.
pub fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Seed of the held-out split.
const SPLIT_SEED: u64 = 20_240_601;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/reference.py")
}

/// The reference interpreter, or `None` after printing why the check is skipped.
///
/// # Panics
/// When `MAMORI_REF_PYTHON` is set but cannot import scikit-learn, or under CI without any
/// interpreter.
pub fn reference_python(what: &str) -> Option<PathBuf> {
    let (py, explicit) = match std::env::var_os("MAMORI_REF_PYTHON") {
        Some(p) => (PathBuf::from(p), true),
        None => (workspace_root().join(".venv-ref/bin/python"), false),
    };
    if !explicit && !py.exists() {
        let msg = format!(
            "{what} needs the reference Python environment: run scripts/setup-reference-venv.sh \
             (or set MAMORI_REF_PYTHON); not found at {}",
            py.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIP {msg}");
        return None;
    }
    let ok = Command::new(&py)
        .args(["-c", "import sklearn, numpy"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run reference python {}: {e}", py.display()));
    assert!(
        ok.success(),
        "reference python {} cannot import scikit-learn and numpy",
        py.display()
    );
    Some(py)
}

/// Writes `x`, `y` as a parity CSV (label first, full `f64` precision).
pub fn write_csv(path: &Path, x: &Matrix, y: &[bool]) {
    let mut out = String::from("label");
    for j in 0..x.cols() {
        out.push_str(&format!(",f{j}"));
    }
    out.push('\n');
    for (row, &label) in x.iter_rows().zip(y) {
        out.push(if label { '1' } else { '0' });
        for v in row {
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Reads a parity CSV; panics naming the line of a malformed row.
pub fn read_csv(path: &Path) -> (Matrix, Vec<bool>) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().expect("CSV header");
    let cols = header.split(',').count() - 1;
    let mut x = Matrix::new(cols);
    let mut y = Vec::new();
    for (no, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let mut fields = line.split(',');
        let label = match fields.next().map(str::trim) {
            Some("1") => true,
            Some("0") => false,
            other => panic!("{}:{}: label {other:?}", path.display(), no + 1),
        };
        let row: Vec<f64> = fields
            .map(|f| {
                f.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{}:{}: {f:?}: {e}", path.display(), no + 1))
            })
            .collect();
        x.push_row(&row)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), no + 1));
        y.push(label);
    }
    (x, y)
}

/// Runs `tests/parity/reference.py` on `request`.
fn run_reference(py: &Path, request: &Value) -> Value {
    // Tests run in parallel threads of one process: each call gets its own directory.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mamori-net-parity-{}-{}-{}",
        std::process::id(),
        request["task"].as_str().unwrap_or("task"),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (inp, out) = (dir.join("in.json"), dir.join("out.json"));
    std::fs::write(&inp, serde_json::to_vec(request).expect("json")).expect("write request");
    let status = Command::new(py)
        .arg(script())
        .arg(&inp)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    assert!(status.success(), "{} failed: {status}", script().display());
    let reply: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read reply")).expect("parse reply");
    let _ = std::fs::remove_dir_all(&dir);
    reply
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn rows_json(m: &Matrix) -> Value {
    json!(m.iter_rows().collect::<Vec<_>>())
}

/// Data split into standardised train and held-out parts.
struct Split {
    raw_train: Matrix,
    train: Matrix,
    y_train: Vec<bool>,
    test: Matrix,
    y_test: Vec<bool>,
    scaler: StandardScaler,
}

/// Holds out a stratified fifth; the scaler sees the training part only.
fn split(x: &Matrix, y: &[bool]) -> Split {
    let fold = stratified_folds(y, 5, SPLIT_SEED).expect("stratified split");
    let train_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != 0).collect();
    let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == 0).collect();
    let raw_train = x.select_rows(&train_idx);
    let (scaler, train) = StandardScaler::fit_transform(&raw_train).expect("scaler");
    Split {
        train,
        test: scaler.transform(&x.select_rows(&test_idx)),
        y_train: train_idx.iter().map(|&i| y[i]).collect(),
        y_test: test_idx.iter().map(|&i| y[i]).collect(),
        raw_train,
        scaler,
    }
}

/// How our SVM compared with scikit-learn's on one data set and `(C, γ)`.
#[derive(Debug, Clone)]
pub struct ParityReport {
    /// Source CSV.
    pub csv: PathBuf,
    /// Penalty.
    pub c: f64,
    /// RBF width.
    pub gamma: f64,
    /// Training rows × features.
    pub train_shape: (usize, usize),
    /// Held-out rows.
    pub n_test: usize,
    /// Share of held-out rows with the same predicted label.
    pub agreement: f64,
    /// Largest |ours − sklearn| decision value on held-out rows.
    pub max_abs_diff: f64,
    /// Mean |ours − sklearn| decision value.
    pub mean_abs_diff: f64,
    /// Largest difference of the scalers' means and scales, relative to the scale.
    pub scaler_max_rel_diff: f64,
    /// Support vectors `[normal, attack]`: ours.
    pub n_support_ours: [usize; 2],
    /// Support vectors `[normal, attack]`: scikit-learn's.
    pub n_support_sklearn: [usize; 2],
    /// Intercepts, ours then scikit-learn's.
    pub intercepts: (f64, f64),
    /// Training wall-clock seconds, ours then scikit-learn's (`SVC.fit` only), same run.
    pub fit_seconds: (f64, f64),
    /// Training CPU seconds of the training thread, ours then scikit-learn's.
    pub fit_cpu_seconds: (f64, f64),
    /// Seconds for all held-out decision values, ours then scikit-learn's.
    pub decision_seconds: (f64, f64),
    /// SMO iterations (ours).
    pub iterations: usize,
    /// Held-out balanced accuracy, ours then scikit-learn's.
    pub balanced_accuracy: (f64, f64),
    /// scikit-learn version.
    pub sklearn_version: String,
}

impl fmt::Display for ParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "svm parity {} C={} gamma={} train {}x{} test {} (sklearn {}): agreement {:.4}, \
             |Δdecision| max {:.2e} mean {:.2e}, n_SV ours {:?} sklearn {:?}, intercept \
             {:.6} vs {:.6}, balanced acc {:.4} vs {:.4}, scaler max rel diff {:.1e}, \
             fit {:.3}s wall / {:.3}s cpu ours ({} iter) vs {:.3}s / {:.3}s sklearn, decision \
             {:.3}s vs {:.3}s",
            self.csv.display(),
            self.c,
            self.gamma,
            self.train_shape.0,
            self.train_shape.1,
            self.n_test,
            self.sklearn_version,
            self.agreement,
            self.max_abs_diff,
            self.mean_abs_diff,
            self.n_support_ours,
            self.n_support_sklearn,
            self.intercepts.0,
            self.intercepts.1,
            self.balanced_accuracy.0,
            self.balanced_accuracy.1,
            self.scaler_max_rel_diff,
            self.fit_seconds.0,
            self.fit_cpu_seconds.0,
            self.iterations,
            self.fit_seconds.1,
            self.fit_cpu_seconds.1,
            self.decision_seconds.0,
            self.decision_seconds.1,
        )
    }
}

fn balanced_accuracy(truth: &[bool], pred: &[bool]) -> f64 {
    mamori_detect::svm::Scoring::BalancedAccuracy.score(truth, pred)
}

/// Trains our `Svm` and scikit-learn's `SVC(kernel="rbf", C=c, gamma, tol=1e-3,
/// shrinking=True)` on the same standardised four fifths of `csv`, and asserts on the held-out
/// fifth: ≥ [`MIN_AGREEMENT`] label agreement, decision values within
/// [`MAX_DECISION_DIFF`], support-vector counts within [`MAX_NSV_REL_DIFF`], and matching
/// scalers. Returns `None` (after a message) when no reference interpreter is available.
pub fn check_parity(csv: &Path, c: f64, gamma: f64) -> Option<ParityReport> {
    let py = reference_python("svm parity")?;
    let (x, y) = read_csv(csv);
    let s = split(&x, &y);
    let params = SvmParams {
        c,
        gamma,
        ..SvmParams::default()
    };

    let (start, cpu) = (Instant::now(), thread_cpu_seconds());
    let svm = Svm::train(&s.train, &s.y_train, &params).expect("train");
    let ours_fit = start.elapsed().as_secs_f64();
    let ours_cpu = thread_cpu_seconds() - cpu;
    let start = Instant::now();
    let ours = svm.decision_matrix(&s.test);
    let ours_decision = start.elapsed().as_secs_f64();
    assert!(svm.converged(), "our SMO hit max_iter");

    let reply = run_reference(
        &py,
        &json!({
            "task": "svc",
            "c": c,
            "gamma": gamma,
            "tol": params.tol,
            "cache_mb": params.cache_mb,
            "x_train_raw": rows_json(&s.raw_train),
            "x_train": rows_json(&s.train),
            "y_train": s.y_train.iter().map(|&a| u8::from(a)).collect::<Vec<_>>(),
            "x_test": rows_json(&s.test),
        }),
    );
    let theirs = floats(&reply["decision"]);
    let their_pred: Vec<bool> = reply["predict"]
        .as_array()
        .expect("predict")
        .iter()
        .map(|v| v.as_i64() == Some(1))
        .collect();
    let nsv: Vec<usize> = reply["n_support"]
        .as_array()
        .expect("n_support")
        .iter()
        .map(|v| v.as_u64().expect("count") as usize)
        .collect();
    assert_eq!(theirs.len(), s.test.rows());

    let our_pred: Vec<bool> = ours.iter().map(|&f| f >= 0.0).collect();
    let agree = our_pred
        .iter()
        .zip(&their_pred)
        .filter(|(a, b)| a == b)
        .count();
    let diffs: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let scaler_max_rel_diff = floats(&reply["scaler_mean"])
        .iter()
        .zip(&s.scaler.mean)
        .chain(floats(&reply["scaler_scale"]).iter().zip(&s.scaler.scale))
        .zip(s.scaler.scale.iter().chain(&s.scaler.scale))
        .map(|((a, b), sc)| (a - b).abs() / sc)
        .fold(0.0, f64::max);
    let report = ParityReport {
        csv: csv.to_path_buf(),
        c,
        gamma,
        train_shape: (s.train.rows(), s.train.cols()),
        n_test: s.test.rows(),
        agreement: agree as f64 / ours.len() as f64,
        max_abs_diff: diffs.iter().cloned().fold(0.0, f64::max),
        mean_abs_diff: diffs.iter().sum::<f64>() / diffs.len() as f64,
        scaler_max_rel_diff,
        n_support_ours: svm.n_support_per_class(),
        n_support_sklearn: [nsv[0], nsv[1]],
        intercepts: (
            svm.intercept(),
            reply["intercept"].as_f64().expect("intercept"),
        ),
        fit_seconds: (ours_fit, reply["fit_seconds"].as_f64().expect("seconds")),
        fit_cpu_seconds: (
            ours_cpu,
            reply["fit_cpu_seconds"].as_f64().expect("seconds"),
        ),
        decision_seconds: (
            ours_decision,
            reply["decision_seconds"].as_f64().expect("seconds"),
        ),
        iterations: svm.iterations(),
        balanced_accuracy: (
            balanced_accuracy(&s.y_test, &our_pred),
            balanced_accuracy(&s.y_test, &their_pred),
        ),
        sklearn_version: reply["versions"]["sklearn"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
    };
    eprintln!("{report}");

    assert!(report.agreement >= MIN_AGREEMENT, "{report}");
    assert!(report.max_abs_diff <= MAX_DECISION_DIFF, "{report}");
    let (a, b) = (svm.n_support() as f64, (nsv[0] + nsv[1]) as f64);
    assert!((a - b).abs() <= MAX_NSV_REL_DIFF * b, "{report}");
    assert!(report.scaler_max_rel_diff < 1e-12, "{report}");
    Some(report)
}

/// How our isolation forest compared with scikit-learn's (different random streams).
#[derive(Debug, Clone)]
pub struct ForestReport {
    /// Spearman rank correlation of held-out scores.
    pub spearman: f64,
    /// ROC AUC of held-out scores against the labels (attack = positive), ours then sklearn's.
    pub auc: (f64, f64),
    /// Mean held-out score, ours then sklearn's.
    pub mean_score: (f64, f64),
    /// Fit seconds, ours then sklearn's.
    pub fit_seconds: (f64, f64),
}

impl fmt::Display for ForestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iforest parity: spearman {:.4}, ROC AUC {:.4} ours vs {:.4} sklearn, mean score \
             {:.4} vs {:.4}, fit {:.3}s vs {:.3}s",
            self.spearman,
            self.auc.0,
            self.auc.1,
            self.mean_score.0,
            self.mean_score.1,
            self.fit_seconds.0,
            self.fit_seconds.1
        )
    }
}

/// Ranks with ties averaged (1-based).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// ROC AUC as the Mann–Whitney statistic (ties count half).
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> f64 {
    let r = ranks(scores);
    let pos = truth.iter().filter(|&&t| t).count() as f64;
    let neg = truth.len() as f64 - pos;
    let rank_sum: f64 = r
        .iter()
        .zip(truth)
        .filter(|(_, &t)| t)
        .map(|(x, _)| x)
        .sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Fits both isolation forests (100 trees, ψ = min(256, n)) on the normal rows of the training
/// part of `csv` and compares their held-out scores: rank correlation ≥ `min_spearman` and ROC
/// AUC within 0.03. Random streams differ, so scores agree only statistically.
pub fn check_iforest(csv: &Path, min_spearman: f64) -> Option<ForestReport> {
    let py = reference_python("iforest parity")?;
    let (x, y) = read_csv(csv);
    let s = split(&x, &y);
    let normal: Vec<usize> = (0..s.y_train.len()).filter(|&i| !s.y_train[i]).collect();
    let train = s.train.select_rows(&normal);
    let start = Instant::now();
    let forest = IsolationForest::fit(&train, &IsolationForestParams::default(), 1).expect("fit");
    let ours_fit = start.elapsed().as_secs_f64();
    let ours = forest.score_matrix(&s.test);
    let reply = run_reference(
        &py,
        &json!({
            "task": "iforest",
            "n_estimators": 100,
            "seed": 1,
            "x_train": rows_json(&train),
            "x_test": rows_json(&s.test),
        }),
    );
    let theirs = floats(&reply["score"]);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let report = ForestReport {
        spearman: spearman(&ours, &theirs),
        auc: (roc_auc(&ours, &s.y_test), roc_auc(&theirs, &s.y_test)),
        mean_score: (mean(&ours), mean(&theirs)),
        fit_seconds: (ours_fit, reply["fit_seconds"].as_f64().expect("seconds")),
    };
    eprintln!("{report}");
    assert!(report.spearman >= min_spearman, "{report}");
    assert!((report.auc.0 - report.auc.1).abs() < 0.03, "{report}");
    assert!(
        (report.mean_score.0 - report.mean_score.1).abs() < 0.02,
        "{report}"
    );
    Some(report)
}
