//! Isolation forest (Liu, Ting & Zhou 2008, "Isolation Forest", ICDM), as scikit-learn
//! implements it.
//!
//! An anomaly is easy to isolate: random axis-parallel cuts separate it from the rest in few
//! steps. Each tree is grown on `ψ = min(256, n)` rows drawn without replacement, cutting a
//! uniformly chosen feature at a uniform value between the node's minimum and maximum, until
//! a node holds one row, its rows are all equal, or the depth reaches `⌈log₂ ψ⌉`. A point's path
//! length in a tree is the depth of the leaf it reaches plus `c(size)`, the average depth an
//! unbuilt subtree of the leaf's training rows would have added, with
//! `c(n) = 2(ln(n − 1) + γ_E) − 2(n − 1)/n` (`c(2) = 1`, `c(1) = 0`). The score is
//! `s = 2^(−E[h(x)] / c(ψ))`: near 1 for anomalies, below 0.5 for ordinary points.
//!
//! Only features that vary within a node are candidates for its cut (scikit-learn draws
//! features until it finds one that varies, which picks among the same set uniformly), so
//! constant features and duplicate rows end in a leaf instead of an endless search.
//!
//! Differences from scikit-learn: it counts a feature as constant when its range in the node
//! is below 1e-7 in absolute terms, here any range above zero counts (a feature on a tiny scale
//! stays usable); its trees round values to `f32`, these keep `f64`; and the random streams
//! differ, so scores agree in distribution, not value by value (`mamori-net`'s
//! `tests/svm_parity.rs` compares their ranks).
//!
//! Scoring walks the trees re-laid as complete binary trees (`flat.rs`), branch-free; the node
//! lists are what is saved.

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, ModelError};
use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::{Fit, ParamGuard, RowScorer};

mod flat;
use flat::FlatForest;

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Settings of an [`IsolationForest`]: set the fields (or start from
/// [`IsolationForestParams::default`]), then fit a [`Matrix`] of normal rows through [`Fit`],
/// which runs [`ParamGuard::check`] first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationForestParams {
    /// Number of trees. Default 100 (the paper's and scikit-learn's); scores vary less with more.
    pub n_estimators: usize,
    /// Rows per tree; `None` means `min(256, n)` (scikit-learn's `"auto"`). Small subsamples
    /// are the point: they keep dense normal clusters from masking anomalies. Larger than the
    /// data means all rows.
    pub max_samples: Option<usize>,
    /// Seed of the subsamples and cuts. Default 0; the same seed gives the same forest on every
    /// platform.
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: None,
            seed: 0,
        }
    }
}

/// [`IsolationForestParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidIsolationForestParams(IsolationForestParams);

impl ValidIsolationForestParams {
    /// The checked settings.
    pub fn params(&self) -> &IsolationForestParams {
        &self.0
    }
}

impl ParamGuard for IsolationForestParams {
    type Checked = ValidIsolationForestParams;
    type Error = ModelError;

    /// At least one tree, and at least one row per tree when `max_samples` is given.
    fn check(&self) -> Result<ValidIsolationForestParams, ModelError> {
        if self.n_estimators == 0 {
            return Err(ModelError::InvalidParam {
                name: "n_estimators",
                value: "0".into(),
                reason: "needs at least one tree",
            });
        }
        if self.max_samples == Some(0) {
            return Err(ModelError::InvalidParam {
                name: "max_samples",
                value: "0".into(),
                reason: "needs at least one row per tree",
            });
        }
        Ok(ValidIsolationForestParams(*self))
    }
}

/// One tree node. Children of a split are stored next to each other.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, the rest to `left + 1`.
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
    },
    /// Path length credited to a row ending here: depth + `c(training rows here)`.
    Leaf { path: f64 },
}

/// A fitted isolation forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ForestRepr", into = "ForestRepr")]
pub struct IsolationForest {
    n_features: usize,
    max_samples: usize,
    trees: Vec<Vec<Node>>,
    /// The same trees laid out for fast scoring (derived, not saved); `None` for trees too
    /// deep to lay out, which are walked node by node.
    flat: Option<FlatForest>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForestRepr {
    n_features: usize,
    max_samples: usize,
    trees: Vec<Vec<Node>>,
}

impl TryFrom<ForestRepr> for IsolationForest {
    type Error = ModelError;

    /// Rejects trees whose children point backwards or out of range, which would make scoring
    /// loop or panic.
    fn try_from(r: ForestRepr) -> Result<Self, ModelError> {
        if r.trees.is_empty() || r.max_samples == 0 || r.n_features == 0 {
            return Err(ModelError::Corrupt("empty isolation forest".into()));
        }
        for (t, tree) in r.trees.iter().enumerate() {
            if tree.is_empty() {
                return Err(ModelError::Corrupt(format!("tree {t} has no nodes")));
            }
            for (k, node) in tree.iter().enumerate() {
                if let Node::Split { feature, left, .. } = *node {
                    let left = left as usize;
                    if feature as usize >= r.n_features || left <= k || left + 1 >= tree.len() {
                        return Err(ModelError::Corrupt(format!("tree {t}, node {k}")));
                    }
                }
            }
        }
        Ok(IsolationForest::new(r.n_features, r.max_samples, r.trees))
    }
}

impl From<IsolationForest> for ForestRepr {
    fn from(f: IsolationForest) -> Self {
        ForestRepr {
            n_features: f.n_features,
            max_samples: f.max_samples,
            trees: f.trees,
        }
    }
}

/// Average path length `c(n)` of an unsuccessful search in a binary search tree of `n` keys:
/// the normaliser of the score and the correction for leaves holding several rows.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

impl Fit<Matrix> for ValidIsolationForestParams {
    type Model = IsolationForest;
    type Error = ModelError;

    /// Grows the forest on the rows of `x` (normal traffic); the same seed gives the same forest
    /// on every platform. Errors: no rows, or a non-finite value (named by row and column).
    fn fit(&self, x: &Matrix) -> Result<IsolationForest, ModelError> {
        let params = &self.0;
        if x.is_empty() {
            return Err(ModelError::Empty);
        }
        check_finite(x)?;
        let n = x.rows();
        let psi = params.max_samples.unwrap_or(256).min(n);
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let mut rng = Rng::seeded(params.seed);
        let mut all: Vec<usize> = (0..n).collect();
        let trees = (0..params.n_estimators)
            .map(|_| {
                let mut tree_rng = rng.fork();
                // Partial Fisher–Yates: the first ψ entries become a uniform sample.
                for k in 0..psi {
                    let j = k + tree_rng.below(n - k);
                    all.swap(k, j);
                }
                let mut rows = all[..psi].to_vec();
                grow(x, &mut rows, max_depth, &mut tree_rng)
            })
            .collect();
        Ok(IsolationForest::new(x.cols(), psi, trees))
    }
}

impl IsolationForest {
    /// Grows the forest on the rows of `x` (normal traffic) with `seed` in place of
    /// `params.seed`: [`Fit::fit`] of `IsolationForestParams { seed, ..*params }` on `x`.
    pub fn fit(
        x: &Matrix,
        params: &IsolationForestParams,
        seed: u64,
    ) -> Result<IsolationForest, ModelError> {
        IsolationForestParams { seed, ..*params }.fit(x)
    }

    fn new(n_features: usize, max_samples: usize, trees: Vec<Vec<Node>>) -> IsolationForest {
        IsolationForest {
            flat: FlatForest::build(&trees, n_features),
            n_features,
            max_samples,
            trees,
        }
    }

    /// Sum of path lengths over the trees, walking the node lists (the reference for the flat
    /// layout, and the path for trees too deep for it).
    fn total_path_walked(&self, x: &[f64]) -> f64 {
        self.trees.iter().map(|t| path_length(t, x)).sum()
    }

    /// Anomaly score in `(0, 1]`; higher = more anomalous, about 0.5 or less for typical rows.
    ///
    /// # Panics
    /// If `x` does not have as many features as the training rows.
    pub fn score(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.n_features, "feature count vs fitted forest");
        let total = match &self.flat {
            Some(flat) => flat.total_path(x),
            None => self.total_path_walked(x),
        };
        let norm = self.trees.len() as f64 * average_path_length(self.max_samples);
        // A single-row forest has nothing to compare against; scikit-learn scores it 0.5.
        let ratio = if norm > 0.0 { total / norm } else { 1.0 };
        (-ratio).exp2()
    }

    /// [`IsolationForest::score`] of every row.
    ///
    /// # Panics
    /// If `x` has the wrong number of columns.
    pub fn score_matrix(&self, x: &Matrix) -> Vec<f64> {
        x.iter_rows().map(|r| self.score(r)).collect()
    }

    /// Rows each tree was grown on (`ψ`).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.trees.len()
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
}

impl RowScorer for IsolationForest {
    /// [`IsolationForest::score`]: in `(0, 1]`, higher = more anomalous.
    fn score_row(&self, row: &[f64]) -> f64 {
        self.score(row)
    }
}

fn path_length(tree: &[Node], x: &[f64]) -> f64 {
    let mut k = 0;
    loop {
        match tree[k] {
            Node::Leaf { path } => return path,
            Node::Split {
                feature,
                threshold,
                left,
            } => {
                // NaN compares false and goes right, like any value above every threshold.
                k = if x[feature as usize] <= threshold {
                    left as usize
                } else {
                    left as usize + 1
                };
            }
        }
    }
}

/// Grows one isolation tree over `rows` breadth-first, so siblings sit next to each other.
fn grow(x: &Matrix, rows: &mut [usize], max_depth: usize, rng: &mut Rng) -> Vec<Node> {
    let d = x.cols();
    // (node index, start, end, depth) of nodes still to be decided.
    let mut pending = std::collections::VecDeque::from([(0usize, 0usize, rows.len(), 0usize)]);
    let mut nodes = vec![Node::Leaf { path: 0.0 }];
    let mut lo = vec![0.0; d];
    let mut hi = vec![0.0; d];
    let mut varying = Vec::with_capacity(d);
    while let Some((node, start, end, depth)) = pending.pop_front() {
        let part = &mut rows[start..end];
        let leaf = Node::Leaf {
            path: depth as f64 + average_path_length(part.len()),
        };
        if depth >= max_depth || part.len() < 2 {
            nodes[node] = leaf;
            continue;
        }
        lo.copy_from_slice(x.row(part[0]));
        hi.copy_from_slice(x.row(part[0]));
        for &r in &part[1..] {
            for (j, &v) in x.row(r).iter().enumerate() {
                lo[j] = lo[j].min(v);
                hi[j] = hi[j].max(v);
            }
        }
        varying.clear();
        varying.extend((0..d).filter(|&j| hi[j] > lo[j]));
        if varying.is_empty() {
            nodes[node] = leaf;
            continue;
        }
        let feature = varying[rng.below(varying.len())];
        let (a, b) = (lo[feature], hi[feature]);
        let mut threshold = a + rng.f64() * (b - a);
        if threshold >= b {
            // Rounding reached the maximum; cut at the minimum so both sides stay non-empty.
            threshold = a;
        }
        // Partition: rows at or below the threshold first.
        let mut split = 0;
        for k in 0..part.len() {
            if x.row(part[k])[feature] <= threshold {
                part.swap(k, split);
                split += 1;
            }
        }
        let left = nodes.len();
        nodes.push(Node::Leaf { path: 0.0 });
        nodes.push(Node::Leaf { path: 0.0 });
        nodes[node] = Node::Split {
            feature: feature as u32,
            threshold,
            left: left as u32,
        };
        pending.push_back((left, start, start + split, depth + 1));
        pending.push_back((left + 1, start + split, end, depth + 1));
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(n: usize, d: usize, seed: u64) -> Matrix {
        let mut rng = Rng::seeded(seed);
        let mut m = Matrix::new(d);
        for _ in 0..n {
            let row: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            m.push_row(&row).expect("row");
        }
        m
    }

    #[test]
    fn average_path_length_known_values() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(256) = 2(ln 255 + γ) − 2·255/256 ≈ 10.2448.
        assert!((average_path_length(256) - 10.244_770_920_910_42).abs() < 1e-9);
    }

    #[test]
    fn outlier_scores_above_inliers() {
        let x = cloud(500, 4, 1);
        let f = IsolationForest::fit(&x, &IsolationForestParams::default(), 7).expect("fit");
        assert_eq!((f.max_samples(), f.n_estimators()), (256, 100));
        let outlier = f.score(&[6.0, -6.0, 6.0, 6.0]);
        let centre = f.score(&[0.0; 4]);
        let inliers = f.score_matrix(&x);
        let mean = inliers.iter().sum::<f64>() / inliers.len() as f64;
        assert!(outlier > 0.7, "outlier {outlier}");
        assert!(centre < 0.45, "centre {centre}");
        assert!(outlier > inliers.iter().cloned().fold(0.0, f64::max) - 1e-12);
        assert!((0.35..0.5).contains(&mean), "mean inlier score {mean}");
    }

    /// The flat layout must give exactly the node walk's sums, including for NaN, values on
    /// thresholds, leaves above the full depth and single-leaf trees.
    #[test]
    fn flat_layout_scores_exactly_as_the_node_walk() {
        let x = cloud(700, 5, 3);
        let mut probes = cloud(300, 5, 4);
        probes
            .push_row(&[f64::NAN, 0.0, 1.0, -1.0, 0.5])
            .expect("row");
        probes.push_row(&[1e9, -1e9, 0.0, 0.0, 0.0]).expect("row");
        for max_samples in [None, Some(2), Some(37), Some(700)] {
            let p = IsolationForestParams {
                n_estimators: 30,
                max_samples,
                ..Default::default()
            };
            let f = IsolationForest::fit(&x, &p, 11).expect("fit");
            assert!(f.flat.is_some(), "{max_samples:?} should be laid out");
            // A row exactly on the first tree's root cut goes left in both.
            let mut on_cut = vec![0.0; 5];
            if let Node::Split {
                feature, threshold, ..
            } = f.trees[0][0]
            {
                on_cut[feature as usize] = threshold;
            }
            for row in probes.iter_rows().chain([on_cut.as_slice()]) {
                let flat = f.flat.as_ref().expect("flat").total_path(row);
                assert_eq!(flat.to_bits(), f.total_path_walked(row).to_bits());
            }
        }
        // Identical rows: every tree is a single leaf (depth 0).
        let same = Matrix::from_rows(vec![vec![1.0, 1.0]; 10]).expect("matrix");
        let g = IsolationForest::fit(&same, &IsolationForestParams::default(), 0).expect("fit");
        let flat = g.flat.as_ref().expect("flat").total_path(&[1.0, 2.0]);
        assert_eq!(flat, g.total_path_walked(&[1.0, 2.0]));
        // 8,192 rows per tree is depth 13: too deep to lay out, walked instead.
        let big = cloud(9_000, 2, 5);
        let p = IsolationForestParams {
            n_estimators: 2,
            max_samples: Some(8_192),
            ..Default::default()
        };
        let h = IsolationForest::fit(&big, &p, 0).expect("fit");
        assert!(h.flat.is_none());
        assert!(h.score(&[0.0, 0.0]) < h.score(&[9.0, 9.0]));
    }

    #[test]
    fn seeded_and_serialisable() {
        let x = cloud(300, 3, 2);
        let p = IsolationForestParams {
            n_estimators: 20,
            max_samples: Some(64),
            ..Default::default()
        };
        let a = IsolationForest::fit(&x, &p, 5).expect("fit");
        let b = IsolationForest::fit(&x, &p, 5).expect("fit");
        assert_eq!(a, b);
        let c = IsolationForest::fit(&x, &p, 6).expect("fit");
        assert_ne!(a, c);
        let text = serde_json::to_string(&a).expect("json");
        let back: IsolationForest = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.score(x.row(3)), a.score(x.row(3)));
    }

    #[test]
    fn constant_features_and_duplicates_terminate() {
        let mut x = Matrix::new(3);
        for i in 0..400 {
            x.push_row(&[1.0, 2.0, if i % 100 == 0 { 9.0 } else { 5.0 }])
                .expect("row");
        }
        let f = IsolationForest::fit(&x, &IsolationForestParams::default(), 0).expect("fit");
        assert!(f.score(&[1.0, 2.0, 9.0]) > f.score(&[1.0, 2.0, 5.0]));
        let same = Matrix::from_rows(vec![vec![3.0, 3.0]; 50]).expect("matrix");
        let g = IsolationForest::fit(&same, &IsolationForestParams::default(), 0).expect("fit");
        // Every tree is one leaf of 50 rows: path c(50) = c(ψ), score exactly 0.5.
        assert!((g.score(&[3.0, 3.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn fit_trait_uses_the_seed_in_the_params() {
        let x = cloud(200, 3, 9);
        let p = IsolationForestParams {
            n_estimators: 10,
            seed: 4,
            ..Default::default()
        };
        let a = p.fit(&x).expect("fit");
        let b = IsolationForest::fit(&x, &IsolationForestParams::default(), 4).expect("fit");
        // Same trees; `b` came from params with another n_estimators, so compare the first ten.
        assert_eq!(a.trees[..], b.trees[..10]);
        assert_eq!(a.score_row(x.row(0)), a.score(x.row(0)));
        assert_eq!(a.score_rows(&x), a.score_matrix(&x));
        let checked = p.check().expect("valid");
        assert_eq!(checked.params(), &p);
        assert_eq!(Fit::fit(&checked, &x).expect("fit"), a);
    }

    #[test]
    fn zero_trees_are_rejected() {
        let p = IsolationForestParams {
            n_estimators: 0,
            ..Default::default()
        };
        let expected = ModelError::InvalidParam {
            name: "n_estimators",
            value: "0".into(),
            reason: "needs at least one tree",
        };
        assert_eq!(p.check(), Err(expected.clone()));
        assert_eq!(p.fit(&cloud(5, 1, 0)), Err(expected));
    }

    #[test]
    fn zero_max_samples_is_rejected() {
        let p = IsolationForestParams {
            max_samples: Some(0),
            ..Default::default()
        };
        let expected = ModelError::InvalidParam {
            name: "max_samples",
            value: "0".into(),
            reason: "needs at least one row per tree",
        };
        assert_eq!(p.check(), Err(expected.clone()));
        assert_eq!(p.fit(&cloud(5, 1, 0)), Err(expected));
    }

    #[test]
    fn defaults_are_valid_and_parse_from_partial_json() {
        assert!(IsolationForestParams::default().check().is_ok());
        let p: IsolationForestParams =
            serde_json::from_str(r#"{"n_estimators": 5}"#).expect("parse");
        assert_eq!((p.n_estimators, p.max_samples, p.seed), (5, None, 0));
    }

    #[test]
    fn rejects_bad_input_and_corrupt_files() {
        let p = IsolationForestParams::default();
        assert_eq!(
            IsolationForest::fit(&Matrix::new(2), &p, 0),
            Err(ModelError::Empty)
        );
        let nan = Matrix::from_rows(vec![vec![0.0, f64::INFINITY]]).expect("matrix");
        assert!(matches!(
            IsolationForest::fit(&nan, &p, 0),
            Err(ModelError::NonFinite { row: 0, col: 1, .. })
        ));
        let zero = IsolationForestParams {
            n_estimators: 0,
            ..p
        };
        assert!(matches!(
            IsolationForest::fit(&cloud(5, 1, 0), &zero, 0),
            Err(ModelError::InvalidParam {
                name: "n_estimators",
                ..
            })
        ));
        let looping = r#"{"n_features":1,"max_samples":2,"trees":[[
            {"split":{"feature":0,"threshold":0.0,"left":0}},{"leaf":{"path":1.0}}]]}"#;
        assert!(serde_json::from_str::<IsolationForest>(looping).is_err());
    }
}
