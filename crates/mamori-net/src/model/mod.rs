//! Models over feature vectors: standardisation, RBF SVM with cross-validation, isolation forest.
//!
//! Everything works on a row-major [`Matrix`] of `f64` and is serde-serialisable, so a trained
//! model is saved as JSON and re-scores identically when loaded. The pieces follow
//! scikit-learn's semantics ([`StandardScaler`], `SVC`, `IsolationForest`) closely enough to be
//! checked against it (`tests/svm_parity.rs`):
//!
//! - [`StandardScaler`]: per-feature `(x − mean) / std`, fitted on training rows only;
//! - [`Svm`]: supervised C-SVC with an RBF kernel (normal vs attack), trained by SMO;
//! - [`cv::grid_search`]: stratified k-fold search of `(C, γ)`, scaler refitted per fold;
//! - [`IsolationForest`]: unsupervised, trained on normal traffic only.
//!
//! ```
//! use mamori_net::model::{Matrix, StandardScaler, Svm, SvmParams};
//!
//! let x = Matrix::from_rows(vec![
//!     vec![0.0, 0.1], vec![0.2, 0.0], vec![0.1, 0.2], // normal
//!     vec![5.0, 5.1], vec![5.2, 4.9], vec![4.9, 5.0], // attack
//! ]).unwrap();
//! let y = [false, false, false, true, true, true];
//! let (scaler, z) = StandardScaler::fit_transform(&x).unwrap();
//! let svm = Svm::train(&z, &y, &SvmParams::default()).unwrap();
//! let mut probe = [0.0; 2];
//! scaler.transform_row(&[4.8, 5.3], &mut probe);
//! assert!(svm.predict(&probe));
//! ```

pub mod cv;
mod error;
pub mod iforest;
mod kernel;
mod matrix;
pub mod scaler;
mod smo;
pub mod svm;

pub use cv::{grid_search, CvReport, CvRow, GridSearch, Scoring};
pub use error::ModelError;
pub use iforest::{IsolationForest, IsolationForestParams};
pub use matrix::Matrix;
pub use scaler::StandardScaler;
pub use svm::{Svm, SvmParams};
