//! Stratified k-fold grid search of the SVM's `(C, γ)`.
//!
//! Every fold refits the [`StandardScaler`] on its own training rows and only transforms the
//! held-out rows with it: fitting the scaler on all rows first would leak the held-out rows'
//! means and spreads into training and flatter the scores. Folds are stratified so each holds
//! the same share of attacks; with rare attacks an unstratified fold may hold none, and its
//! score would be meaningless.
//!
//! The default score is balanced accuracy (mean of the detection rate and the true-negative
//! rate), because plain accuracy rewards a detector that calls everything normal when attacks
//! are rare. Ties go to the smaller `C`, then the smaller `γ`: the smoother, less fitted model.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Svm, SvmParams};
use crate::error::ModelError;
use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::scaler::StandardScaler;

/// How a fold's predictions are scored (attack is the positive class).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// `(TPR + TNR) / 2`, scikit-learn's `balanced_accuracy`.
    #[default]
    BalancedAccuracy,
    /// `2·TP / (2·TP + FP + FN)`, 0 when there is nothing to find and nothing found.
    F1,
}

impl Scoring {
    /// Scores predictions `pred` against labels `truth` (same length).
    pub fn score(self, truth: &[bool], pred: &[bool]) -> f64 {
        let (mut tp, mut tn, mut fp, mut fn_) = (0usize, 0usize, 0usize, 0usize);
        for (&t, &p) in truth.iter().zip(pred) {
            match (t, p) {
                (true, true) => tp += 1,
                (false, false) => tn += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
            }
        }
        match self {
            Scoring::BalancedAccuracy => {
                // The mean recall of the classes present (scikit-learn's rule too).
                let recalls: Vec<f64> = [(tp, fn_), (tn, fp)]
                    .iter()
                    .filter(|(hit, miss)| hit + miss > 0)
                    .map(|&(hit, miss)| hit as f64 / (hit + miss) as f64)
                    .collect();
                if recalls.is_empty() {
                    0.0
                } else {
                    recalls.iter().sum::<f64>() / recalls.len() as f64
                }
            }
            Scoring::F1 => {
                let denom = 2 * tp + fp + fn_;
                if denom == 0 {
                    0.0
                } else {
                    2.0 * tp as f64 / denom as f64
                }
            }
        }
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Scoring::BalancedAccuracy => "balanced_accuracy",
            Scoring::F1 => "f1",
        }
    }
}

/// `C` values searched by default: 0.1 to 1000 in decades, from a wide soft margin to one that
/// tolerates almost no training error.
pub fn default_cs() -> Vec<f64> {
    vec![0.1, 1.0, 10.0, 100.0, 1000.0]
}

/// `γ` values searched by default: `{0.01, 0.1, 1, 10} / n_features`.
///
/// On standardised features the mean squared distance between two rows is about
/// `2·n_features`, so `γ = 1/n_features` (scikit-learn's `gamma="scale"`) puts a typical kernel
/// value near `e^−2`. The factors span from an almost linear boundary (0.01) to one that hugs
/// individual points (10).
pub fn default_gammas(n_features: usize) -> Vec<f64> {
    let n = n_features.max(1) as f64;
    [0.01, 0.1, 1.0, 10.0].iter().map(|f| f / n).collect()
}

/// A full grid-search specification; [`grid_search`] is the short form with defaults for the
/// other SVM settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSearch {
    /// Candidate `C` values.
    pub cs: Vec<f64>,
    /// Candidate `γ` values.
    pub gammas: Vec<f64>,
    /// Number of folds (at least 2, at most the size of the smaller class).
    pub folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// What to maximise.
    pub scoring: Scoring,
    /// Settings other than `c` and `gamma` (tolerance, class weights, cache).
    pub base: SvmParams,
}

impl GridSearch {
    /// The default grid for `n_features` features: [`default_cs`] × [`default_gammas`],
    /// 5 folds, balanced accuracy, seed 0.
    pub fn new(n_features: usize) -> Self {
        GridSearch {
            cs: default_cs(),
            gammas: default_gammas(n_features),
            folds: 5,
            seed: 0,
            scoring: Scoring::BalancedAccuracy,
            base: SvmParams::default(),
        }
    }

    /// Cross-validates every `(C, γ)` pair on `x`, `y` (`true` = attack).
    pub fn run(&self, x: &Matrix, y: &[bool]) -> Result<CvReport, ModelError> {
        self.validate()?;
        if x.is_empty() {
            return Err(ModelError::Empty);
        }
        if x.rows() != y.len() {
            return Err(ModelError::LengthMismatch {
                rows: x.rows(),
                labels: y.len(),
            });
        }
        let fold_of = stratified_folds(y, self.folds, self.seed)?;
        let mut cs = self.cs.clone();
        let mut gammas = self.gammas.clone();
        cs.sort_by(f64::total_cmp);
        cs.dedup();
        gammas.sort_by(f64::total_cmp);
        gammas.dedup();
        let pairs: Vec<(f64, f64)> = cs
            .iter()
            .flat_map(|&c| gammas.iter().map(move |&g| (c, g)))
            .collect();
        let mut scores = vec![Vec::with_capacity(self.folds); pairs.len()];
        let mut n_sv = vec![0.0; pairs.len()];
        let mut converged = vec![true; pairs.len()];
        for fold in 0..self.folds {
            let train: Vec<usize> = (0..y.len()).filter(|&i| fold_of[i] != fold).collect();
            let test: Vec<usize> = (0..y.len()).filter(|&i| fold_of[i] == fold).collect();
            let (scaler, x_train) = StandardScaler::fit_transform(&x.select_rows(&train))?;
            let x_test = scaler.transform(&x.select_rows(&test));
            let y_train: Vec<bool> = train.iter().map(|&i| y[i]).collect();
            let y_test: Vec<bool> = test.iter().map(|&i| y[i]).collect();
            for (k, &(c, gamma)) in pairs.iter().enumerate() {
                let params = SvmParams {
                    c,
                    gamma,
                    ..self.base
                };
                let svm = Svm::train(&x_train, &y_train, &params)?;
                let pred = svm.predict_matrix(&x_test);
                scores[k].push(self.scoring.score(&y_test, &pred));
                n_sv[k] += svm.n_support() as f64 / self.folds as f64;
                converged[k] &= svm.converged();
            }
        }
        let rows: Vec<CvRow> = pairs
            .iter()
            .enumerate()
            .map(|(k, &(c, gamma))| {
                let s = &scores[k];
                let mean = s.iter().sum::<f64>() / s.len() as f64;
                let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s.len() as f64;
                CvRow {
                    c,
                    gamma,
                    mean,
                    std: var.sqrt(),
                    fold_scores: s.clone(),
                    mean_n_support: n_sv[k],
                    converged: converged[k],
                }
            })
            .collect();
        // Rows run by C, then γ, ascending; a strict `>` keeps the first of equal scores.
        let mut best = 0;
        for (k, row) in rows.iter().enumerate() {
            if row.mean > rows[best].mean {
                best = k;
            }
        }
        Ok(CvReport {
            scoring: self.scoring,
            folds: self.folds,
            rows,
            best,
        })
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.folds < 2 {
            return Err(ModelError::InvalidParam {
                name: "folds",
                value: self.folds.to_string(),
                reason: "needs at least 2 folds",
            });
        }
        for (name, values) in [("cs", &self.cs), ("gammas", &self.gammas)] {
            if values.is_empty() {
                return Err(ModelError::InvalidParam {
                    name,
                    value: "[]".into(),
                    reason: "needs at least one candidate",
                });
            }
            if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(ModelError::InvalidParam {
                    name,
                    value: v.to_string(),
                    reason: "candidates must be finite and > 0",
                });
            }
        }
        self.base.validate()
    }
}

/// Stratified k-fold search of `(C, γ)` with the other SVM settings at their defaults; see
/// [`GridSearch`] for full control. Use [`default_cs`] and [`default_gammas`] for the grid.
pub fn grid_search(
    x: &Matrix,
    y: &[bool],
    cs: &[f64],
    gammas: &[f64],
    folds: usize,
    seed: u64,
    scoring: Scoring,
) -> Result<CvReport, ModelError> {
    GridSearch {
        cs: cs.to_vec(),
        gammas: gammas.to_vec(),
        folds,
        seed,
        scoring,
        base: SvmParams::default(),
    }
    .run(x, y)
}

/// The fold (`0..folds`) of each row: each class is shuffled with `seed` and dealt out in
/// turn, so fold sizes per class differ by at most one.
pub fn stratified_folds(y: &[bool], folds: usize, seed: u64) -> Result<Vec<usize>, ModelError> {
    let mut rng = Rng::seeded(seed);
    let mut fold_of = vec![0; y.len()];
    for (class, name) in [(false, "normal"), (true, "attack")] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        if idx.len() < folds {
            return Err(ModelError::TooFewPerClass {
                class: name,
                count: idx.len(),
                folds,
            });
        }
        rng.shuffle(&mut idx);
        for (k, &i) in idx.iter().enumerate() {
            fold_of[i] = k % folds;
        }
    }
    Ok(fold_of)
}

/// Cross-validation result of one `(C, γ)` pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvRow {
    /// Penalty.
    pub c: f64,
    /// RBF width.
    pub gamma: f64,
    /// Mean score over the folds.
    pub mean: f64,
    /// Population standard deviation of the fold scores (as scikit-learn's `std_test_score`).
    pub std: f64,
    /// Score of each fold.
    pub fold_scores: Vec<f64>,
    /// Mean number of support vectors (cost of prediction).
    pub mean_n_support: f64,
    /// Whether every fold's training met the tolerance.
    pub converged: bool,
}

/// Every pair's cross-validated score and the winner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvReport {
    /// What was maximised.
    pub scoring: Scoring,
    /// Number of folds.
    pub folds: usize,
    /// One row per pair, by `C` then `γ` ascending.
    pub rows: Vec<CvRow>,
    /// Index of the best row.
    pub best: usize,
}

impl CvReport {
    /// The best pair's row.
    pub fn best_row(&self) -> &CvRow {
        &self.rows[self.best]
    }

    /// `base` with the best `C` and `γ`, ready for training on all rows.
    pub fn best_params(&self, base: &SvmParams) -> SvmParams {
        let b = self.best_row();
        SvmParams {
            c: b.c,
            gamma: b.gamma,
            ..*base
        }
    }
}

impl fmt::Display for CvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>10} {:>10} {:>26} {:>8}",
            "C",
            "gamma",
            format!("{} ({}-fold)", self.scoring.name(), self.folds),
            "n_SV"
        )?;
        for (k, r) in self.rows.iter().enumerate() {
            writeln!(
                f,
                "{:>10} {:>10.3e} {:>17.4} ± {:.4} {:>8.0}{}{}",
                r.c,
                r.gamma,
                r.mean,
                r.std,
                r.mean_n_support,
                if r.converged { "" } else { " (max_iter)" },
                if k == self.best { "  <- best" } else { "" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normal points on a ring of radius 1, attacks on one of radius 2.5, with noise.
    fn rings(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
        let mut rng = Rng::seeded(seed);
        let mut x = Matrix::new(2);
        let mut y = Vec::new();
        for i in 0..n {
            let attack = i % 2 == 1;
            let r = if attack { 2.5 } else { 1.0 } + 0.2 * rng.normal();
            let t = rng.f64() * std::f64::consts::TAU;
            // A large offset and scale on one axis: only standardisation makes γ sensible.
            x.push_row(&[r * t.cos() * 100.0 + 5000.0, r * t.sin()])
                .expect("row");
            y.push(attack);
        }
        (x, y)
    }

    #[test]
    fn scores_have_known_values() {
        let truth = [true, true, false, false, false, false];
        let pred = [true, false, false, false, false, true];
        // TPR 1/2, TNR 3/4; F1 = 2·1 / (2·1 + 1 + 1).
        let ba = Scoring::BalancedAccuracy.score(&truth, &pred);
        assert!((ba - 0.625).abs() < 1e-15);
        assert!((Scoring::F1.score(&truth, &pred) - 0.5).abs() < 1e-15);
        assert_eq!(Scoring::F1.score(&[false], &[false]), 0.0);
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let y: Vec<bool> = (0..53).map(|i| i % 5 == 0).collect();
        let f = stratified_folds(&y, 4, 1).expect("folds");
        for fold in 0..4 {
            let attacks = (0..y.len()).filter(|&i| f[i] == fold && y[i]).count();
            let normal = (0..y.len()).filter(|&i| f[i] == fold && !y[i]).count();
            assert!((2..=3).contains(&attacks), "{attacks}");
            assert!((10..=11).contains(&normal), "{normal}");
        }
        assert_eq!(f, stratified_folds(&y, 4, 1).expect("folds"));
        assert_ne!(f, stratified_folds(&y, 4, 2).expect("folds"));
        assert_eq!(
            stratified_folds(&y, 12, 1),
            Err(ModelError::TooFewPerClass {
                class: "attack",
                count: 11,
                folds: 12
            })
        );
    }

    #[test]
    fn grid_search_finds_a_pair_that_separates_two_rings() {
        let (x, y) = rings(300, 11);
        let cs = [0.1, 1.0, 10.0, 100.0];
        let gammas = [0.01, 0.1, 1.0, 10.0];
        let report =
            grid_search(&x, &y, &cs, &gammas, 5, 3, Scoring::BalancedAccuracy).expect("search");
        assert_eq!(report.rows.len(), 16);
        let best = report.best_row();
        assert!(best.mean > 0.97, "\n{report}");
        assert!(best.gamma >= 0.1, "\n{report}");
        // A nearly linear kernel with a soft margin cannot tell the rings apart.
        let linear = &report.rows[0];
        assert_eq!((linear.c, linear.gamma), (0.1, 0.01));
        assert!(linear.mean < 0.8, "\n{report}");
        // Ties go to the smaller C, then the smaller γ: nothing earlier scores as well.
        assert!(report.rows[..report.best]
            .iter()
            .all(|r| r.mean < best.mean));
        let text = report.to_string();
        assert!(text.contains("<- best") && text.contains("balanced_accuracy (5-fold)"));
        let p = report.best_params(&SvmParams::default());
        assert_eq!((p.c, p.gamma), (best.c, best.gamma));
    }

    #[test]
    fn ties_prefer_small_c_and_gamma() {
        // Far-apart clusters: every pair scores 1.0, so the first pair wins.
        let x = Matrix::from_rows(
            (0..20)
                .map(|i| vec![if i % 2 == 0 { 0.0 } else { 10.0 } + i as f64 * 0.01])
                .collect(),
        )
        .expect("matrix");
        let y: Vec<bool> = (0..20).map(|i| i % 2 == 1).collect();
        let report =
            grid_search(&x, &y, &[10.0, 1.0], &[1.0, 0.5], 2, 0, Scoring::F1).expect("search");
        assert!(report.rows.iter().all(|r| r.mean == 1.0), "\n{report}");
        assert_eq!((report.best_row().c, report.best_row().gamma), (1.0, 0.5));
    }

    #[test]
    fn rejects_bad_grids() {
        let (x, y) = rings(20, 1);
        let err = |cs: &[f64], g: &[f64], folds| {
            grid_search(&x, &y, cs, g, folds, 0, Scoring::F1).expect_err("invalid")
        };
        assert!(matches!(
            err(&[1.0], &[1.0], 1),
            ModelError::InvalidParam { name: "folds", .. }
        ));
        assert!(matches!(
            err(&[], &[1.0], 2),
            ModelError::InvalidParam { name: "cs", .. }
        ));
        assert!(matches!(
            err(&[1.0], &[-1.0], 2),
            ModelError::InvalidParam { name: "gammas", .. }
        ));
        assert!(matches!(
            err(&[1.0], &[1.0], 11),
            ModelError::TooFewPerClass { .. }
        ));
        assert_eq!(default_gammas(20), vec![0.0005, 0.005, 0.05, 0.5]);
    }
}
