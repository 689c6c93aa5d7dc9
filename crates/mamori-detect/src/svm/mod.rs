//! Supervised RBF support vector machine over feature rows (normal vs attack), with
//! cross-validation of its `(C, γ)`.
//!
//! Everything works on a row-major [`Matrix`](crate::matrix::Matrix) of `f64` and is
//! serde-serialisable, so a trained model is saved as JSON and re-scores identically when
//! loaded. The pieces follow scikit-learn's semantics (`SVC`, `GridSearchCV` with
//! `StratifiedKFold`) closely enough to be checked against it (`mamori-net`'s
//! `tests/svm_parity.rs`):
//!
//! - [`Svm`]: C-SVC with an RBF kernel, trained by SMO as libsvm does (`smo.rs`, with the
//!   kernel and its column cache in `kernel.rs`), fitted from [`SvmParams`] on
//!   [`Labelled`](crate::dataset::Labelled) rows through [`Fit`](crate::Fit) (or
//!   [`Svm::train`]); [`RowScorer`](crate::RowScorer) gives its decision value;
//! - [`cv::grid_search`]: stratified k-fold search of `(C, γ)`, the
//!   [`StandardScaler`](crate::scaler::StandardScaler) refitted per fold.
//!
//! ```
//! use mamori_detect::dataset::Labelled;
//! use mamori_detect::matrix::Matrix;
//! use mamori_detect::scaler::StandardScaler;
//! use mamori_detect::svm::SvmParams;
//! use mamori_detect::Fit;
//!
//! let x = Matrix::from_rows(vec![
//!     vec![0.0, 0.1], vec![0.2, 0.0], vec![0.1, 0.2], // normal
//!     vec![5.0, 5.1], vec![5.2, 4.9], vec![4.9, 5.0], // attack
//! ]).unwrap();
//! let y = [false, false, false, true, true, true];
//! let (scaler, z) = StandardScaler::fit_transform(&x).unwrap();
//! let svm = SvmParams::default().fit(&Labelled::new(&z, &y)).unwrap();
//! let mut probe = [0.0; 2];
//! scaler.transform_row(&[4.8, 5.3], &mut probe);
//! assert!(svm.predict(&probe));
//! ```

mod algorithm;
pub mod cv;
mod kernel;
mod params;
mod smo;

pub use algorithm::Svm;
pub use cv::{grid_search, CvReport, CvRow, GridSearch, Scoring};
pub use params::{SvmParams, ValidSvmParams};
