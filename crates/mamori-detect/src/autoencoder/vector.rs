//! The autoencoder on rows of real-valued features instead of windows of classes.
//!
//! Same network, Adam, early stopping and activity regularisation as [`super::Autoencoder`];
//! the difference is the input: rows the caller has already transformed and scaled (for traffic
//! features, `ln(1 + x)` then standardisation), used as they are. No min-max scaling here: a
//! standardised feature that was constant in training is 0 there, and any value it takes later
//! is reconstructed as about 0, so the deviation shows up in full in the error. That is what an
//! isolation forest cannot do (it only cuts features that varied in training).

use serde::{Deserialize, Serialize};

use super::errors::AutoencoderError;
use super::model::{build_network, finite, train};
use super::network::{Network, Workspace};
use super::params::{AutoencoderParams, AutoencoderValidParams};
use crate::matrix::Matrix;
use crate::{Fit, RowScorer};

/// Rows per forward pass in [`VectorAutoencoder::score_many`].
const SCORE_BATCH: usize = 512;

/// A dense autoencoder trained on normal feature rows; the score of a row is the mean squared
/// error of its reconstruction. `params.encoding` is not used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VectorRepr")]
pub struct VectorAutoencoder {
    params: AutoencoderParams,
    n_features: usize,
    network: Network,
    history: Vec<f64>,
    validation_history: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorRepr {
    params: AutoencoderParams,
    n_features: usize,
    network: Network,
    history: Vec<f64>,
    validation_history: Vec<f64>,
}

impl TryFrom<VectorRepr> for VectorAutoencoder {
    type Error = AutoencoderError;
    fn try_from(r: VectorRepr) -> Result<Self, AutoencoderError> {
        r.network
            .validate()
            .map_err(AutoencoderError::InvalidModel)?;
        if r.n_features == 0
            || r.network.n_inputs() != r.n_features
            || r.network.n_outputs() != r.n_features
        {
            return Err(AutoencoderError::InvalidModel(format!(
                "network maps {} to {} features, the model has {}",
                r.network.n_inputs(),
                r.network.n_outputs(),
                r.n_features
            )));
        }
        Ok(VectorAutoencoder {
            params: r.params,
            n_features: r.n_features,
            network: r.network,
            history: r.history,
            validation_history: r.validation_history,
        })
    }
}

/// Buffers reused across [`VectorAutoencoder::score`] calls.
#[derive(Debug, Clone)]
pub struct VectorScratch {
    ws: Workspace,
    row: Vec<f32>,
}

impl AutoencoderValidParams {
    /// Trains on normal `rows`, all of the same length and finite.
    ///
    /// Errors: no rows, rows of different lengths, a non-finite value, a validation split that
    /// leaves nothing to train on, or divergence.
    pub fn fit_vectors(&self, rows: &[&[f64]]) -> Result<VectorAutoencoder, AutoencoderError> {
        let d = rows.first().map_or(0, |r| r.len());
        if d == 0 {
            return Err(AutoencoderError::NoRows);
        }
        for (index, r) in rows.iter().enumerate() {
            if r.len() != d {
                return Err(AutoencoderError::RowLength {
                    index,
                    len: r.len(),
                    expected: d,
                });
            }
            if let Some(col) = r.iter().position(|v| !v.is_finite()) {
                return Err(AutoencoderError::NonFinite { row: index, col });
            }
        }
        let p = self.params();
        let mut network = build_network(p, d);
        let trained = train(&mut network, p, rows.len(), |i, out| {
            for (o, &v) in out.iter_mut().zip(rows[i]) {
                *o = v as f32;
            }
        })?;
        Ok(VectorAutoencoder {
            params: p.clone(),
            n_features: d,
            network,
            history: trained.history,
            validation_history: trained.validation_history,
        })
    }
}

impl Fit<Matrix> for AutoencoderValidParams {
    type Model = VectorAutoencoder;
    type Error = AutoencoderError;

    /// [`AutoencoderValidParams::fit_vectors`] on the rows of `x`.
    fn fit(&self, x: &Matrix) -> Result<VectorAutoencoder, AutoencoderError> {
        let rows: Vec<&[f64]> = x.iter_rows().collect();
        self.fit_vectors(&rows)
    }
}

impl AutoencoderParams {
    /// [`AutoencoderParams::check`], then [`AutoencoderValidParams::fit_vectors`]; the same as
    /// [`Fit::fit`] on a [`Matrix`] of the rows.
    pub fn fit_vectors(&self, rows: &[&[f64]]) -> Result<VectorAutoencoder, AutoencoderError> {
        self.check()?.fit_vectors(rows)
    }
}

impl VectorAutoencoder {
    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &AutoencoderParams {
        &self.params
    }

    /// Training loss per epoch run.
    pub fn history(&self) -> &[f64] {
        &self.history
    }

    /// Validation loss per epoch (empty without a validation split).
    pub fn validation_history(&self) -> &[f64] {
        &self.validation_history
    }

    /// Buffers for [`VectorAutoencoder::score`].
    pub fn scratch(&self) -> VectorScratch {
        VectorScratch {
            ws: Workspace::new(&self.network, 1),
            row: vec![0.0; self.n_features],
        }
    }

    /// Mean squared reconstruction error of one row (always finite).
    ///
    /// # Panics
    /// If `row` does not have [`VectorAutoencoder::n_features`] values, or `scratch` was made
    /// by a model of another shape.
    pub fn score(&self, row: &[f64], scratch: &mut VectorScratch) -> f64 {
        assert_eq!(
            row.len(),
            self.n_features,
            "feature count vs fitted autoencoder"
        );
        for (o, &v) in scratch.row.iter_mut().zip(row) {
            *o = v as f32;
        }
        self.network.forward_row(&scratch.row, &mut scratch.ws);
        let mut err = [0.0];
        self.network
            .row_errors(&scratch.row, 1, &scratch.ws, &mut err);
        finite(err[0])
    }

    /// [`VectorAutoencoder::score`] of every row, in batches.
    ///
    /// # Panics
    /// If a row does not have [`VectorAutoencoder::n_features`] values.
    pub fn score_many(&self, rows: &[&[f64]]) -> Vec<f64> {
        let d = self.n_features;
        let mut scores = vec![0.0; rows.len()];
        let bs_max = SCORE_BATCH.min(rows.len()).max(1);
        let mut ws = Workspace::new(&self.network, bs_max);
        let mut x = vec![0.0f32; bs_max * d];
        for (chunk, out) in rows.chunks(bs_max).zip(scores.chunks_mut(bs_max)) {
            for (r, xr) in chunk.iter().zip(x.chunks_exact_mut(d)) {
                assert_eq!(r.len(), d, "feature count vs fitted autoencoder");
                for (o, &v) in xr.iter_mut().zip(r.iter()) {
                    *o = v as f32;
                }
            }
            self.network.forward(&x, chunk.len(), &mut ws);
            self.network.row_errors(&x, chunk.len(), &ws, out);
            out.iter_mut().for_each(|s| *s = finite(*s));
        }
        scores
    }
}

impl RowScorer for VectorAutoencoder {
    /// [`VectorAutoencoder::score`] with fresh buffers (keep a [`VectorScratch`] and call
    /// `score` directly in a hot loop).
    fn score_row(&self, row: &[f64]) -> f64 {
        self.score(row, &mut self.scratch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoencoder::Activation;
    use crate::rng::Rng;

    /// Points on a 2-D plane in 6-D (standardised-looking: centred, unit-ish spread), with two
    /// features constant at 0 in training.
    fn plane(n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut r = Rng::seeded(seed);
        (0..n)
            .map(|_| {
                let (a, b) = (r.normal(), r.normal());
                vec![a, b, a + b, a - b, 0.0, 0.0]
            })
            .collect()
    }

    fn params() -> AutoencoderParams {
        AutoencoderParams::new()
            .hidden(vec![16])
            .bottleneck(2)
            .bottleneck_activation(Activation::Linear)
            .batch_size(32)
            .epochs(200)
            .patience(10)
            .seed(3)
    }

    #[test]
    fn learns_the_plane_and_flags_points_off_it_and_on_constant_features() {
        let train = plane(2000, 1);
        let refs: Vec<&[f64]> = train.iter().map(|r| &r[..]).collect();
        let ae = params().fit_vectors(&refs).expect("fit");
        let test = plane(200, 2);
        let test_refs: Vec<&[f64]> = test.iter().map(|r| &r[..]).collect();
        let normal = ae.score_many(&test_refs);
        let worst_normal = normal.iter().cloned().fold(0.0, f64::max);
        let mean_normal = normal.iter().sum::<f64>() / normal.len() as f64;
        assert!(mean_normal < 0.05, "mean normal error {mean_normal}");
        // Off the plane: the third feature should be a + b = 0.
        let off = ae.score(&[1.0, 1.0, -2.0, 0.0, 0.0, 0.0], &mut ae.scratch());
        // On the plane but a feature constant in training moves (an isolation forest never
        // cuts such a feature, so it cannot see this).
        let constant_moved = ae.score(&[0.5, 0.5, 1.0, 0.0, 3.0, 0.0], &mut ae.scratch());
        assert!(off > 5.0 * worst_normal, "off {off} vs {worst_normal}");
        assert!(
            constant_moved > 5.0 * worst_normal,
            "constant feature {constant_moved} vs {worst_normal}"
        );
        // One row at a time (matrix-vector) and in batches (matrix product) agree to rounding.
        let mut scratch = ae.scratch();
        for (r, &s) in test_refs.iter().zip(&normal) {
            let one = ae.score(r, &mut scratch);
            assert!((one - s).abs() <= 1e-4 * s + 1e-9, "{one} vs {s}");
        }
    }

    #[test]
    fn fit_on_a_matrix_is_fit_vectors_and_row_scorer_is_score() {
        let train = plane(300, 5);
        let refs: Vec<&[f64]> = train.iter().map(|r| &r[..]).collect();
        let p = params().epochs(5);
        let a = p.fit_vectors(&refs).expect("fit");
        let x = Matrix::from_rows(train.clone()).expect("matrix");
        let b = Fit::fit(&p, &x).expect("fit");
        assert_eq!(a, b);
        let row = [0.3, -0.2, 0.1, 0.5, 0.0, 1.0];
        assert_eq!(b.score_row(&row), a.score(&row, &mut a.scratch()));
        let bad = p.bottleneck(0);
        assert_eq!(
            Fit::fit(&bad, &x).unwrap_err(),
            AutoencoderError::ZeroBottleneck
        );
    }

    #[test]
    fn round_trips_and_rejects_bad_rows_and_files() {
        let train = plane(300, 4);
        let refs: Vec<&[f64]> = train.iter().map(|r| &r[..]).collect();
        let ae = params().epochs(3).fit_vectors(&refs).expect("fit");
        let text = serde_json::to_string(&ae).expect("json");
        let back: VectorAutoencoder = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, ae);
        let bad = text.replace("\"n_features\":6", "\"n_features\":5");
        assert!(serde_json::from_str::<VectorAutoencoder>(&bad).is_err());

        assert_eq!(params().fit_vectors(&[]), Err(AutoencoderError::NoRows));
        let short: &[f64] = &[1.0];
        assert_eq!(
            params().fit_vectors(&[refs[0], short]),
            Err(AutoencoderError::RowLength {
                index: 1,
                len: 1,
                expected: 6
            })
        );
        let nan: &[f64] = &[0.0, 0.0, f64::NAN, 0.0, 0.0, 0.0];
        assert_eq!(
            params().fit_vectors(&[refs[0], nan]),
            Err(AutoencoderError::NonFinite { row: 1, col: 2 })
        );
    }
}
