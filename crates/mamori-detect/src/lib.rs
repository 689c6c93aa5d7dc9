//! Pure anomaly-detection algorithms for mamori: everything between a system-call event and an
//! anomaly score, with no I/O, no threads and no clock.
//!
//! The pipeline is seed 000's: [`classes`] maps each call to a class of the application's table,
//! [`window`] cuts the class stream into windows (raw sequence or Bag of System Calls), and a model
//! trained on normal windows only scores new ones — higher is more anomalous:
//!
//! - [`hmm`]: discrete HMM over the sequence (the paper's detector), and a multinomial mixture
//!   over BoSC counts (what the paper's flattened-BoSC HMM should have been);
//! - [`autoencoder`]: reconstruction error of a dense autoencoder, on sequences or BoSC;
//! - [`stide`] and [`kmeans`]: the classic baselines (STIDE n-gram mismatches; k-means +
//!   Mahalanobis distance on BoSC, Yoon et al.);
//! - [`cover`]: sequence covering (Marteau 2019), the number of pieces of normal training
//!   sequences needed to cover a sequence, per call; it scores whole traces as well as windows.
//! - [`seqlm`]: a GRU language model over the call sequence (Kim et al. 2016), the mean negative
//!   log-likelihood per call; it scores whole traces as well as windows.
//!
//! Network traffic reaches the same crate as rows of `f64` features (per device window, flow or
//! host interval, extracted by `mamori-net`), held in a row-major [`matrix::Matrix`]:
//!
//! - [`scaler`]: per-feature standardisation (scikit-learn's `StandardScaler`);
//! - [`svm`]: supervised RBF C-SVC trained by SMO as libsvm does, with stratified
//!   cross-validation of `(C, γ)` ([`svm::cv`]); the decision value is positive for attack;
//! - [`iforest`]: isolation forest trained on normal rows only;
//! - [`autoencoder::VectorAutoencoder`]: the autoencoder on feature rows.
//!
//! Every model has the same shape ([`traits`], after rust-ml/linfa): a params builder with
//! documented defaults, checked by [`ParamGuard`] into a separate type so no model trains on bad
//! values; [`Fit`] on a data set ([`dataset::Windows`], [`matrix::Matrix`] or
//! [`dataset::Labelled`]) gives the fitted model; [`WindowScorer`] or [`RowScorer`] scores with
//! it, higher = more anomalous.
//!
//! [`calibrate`] turns normal scores into a threshold and [`metrics`] measures detection rate,
//! false-positive rate and ROC AUC. Every stochastic step takes a seed ([`rng::Rng`]).
//!
//! ```
//! use mamori_detect::classes::{ClassTable, ClassTableConfig};
//! use mamori_detect::event::SyscallEvent;
//! use mamori_detect::window::bosc;
//!
//! let cfg: ClassTableConfig = toml::from_str(r#"
//!     name = "demo"
//!     [[class]]
//!     syscall = "write"
//!     [[class]]
//!     syscall = "close"
//! "#).unwrap();
//! let table = ClassTable::new(cfg).unwrap();
//! let calls = ["write", "close", "write", "mmap"];
//! let symbols: Vec<u16> = calls
//!     .iter()
//!     .filter_map(|c| table.classify(&SyscallEvent::named(*c)).symbol())
//!     .collect();
//! assert_eq!(symbols, vec![0, 1, 0]); // mmap is not monitored by this table
//! assert_eq!(bosc(&symbols, table.n_symbols()), vec![2, 1, 0]);
//! ```
#![deny(missing_docs)]

pub mod autoencoder;
pub mod calibrate;
pub mod classes;
pub mod cover;
pub mod dataset;
pub mod error;
pub mod gated;
/// The system-call event, defined in `mamori-core` (re-exported so the algorithms read alone).
pub use mamori_core::event;
pub mod hmm;
pub mod iforest;
pub mod kmeans;
pub mod matrix;
pub mod metrics;
pub mod rng;
pub mod scaler;
pub mod seqlm;
pub mod stide;
pub mod svm;
pub mod traits;
pub mod window;

pub use classes::Symbol;
pub use traits::{Fit, ParamGuard, RowScorer, WindowScorer};
