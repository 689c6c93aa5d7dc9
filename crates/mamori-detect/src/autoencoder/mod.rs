//! Dense autoencoder over windows of system-call classes: the score of a window is how badly a
//! network trained to reproduce normal windows reconstructs it (mean squared error).
//!
//! This reproduces the paper's Keras model — encoder, middle and decoder layers of 160 units
//! around a bottleneck, L1 activity regularisation `1e-6` on the middle layer, Adam, MSE — with
//! hand-written `f32` layers on `matrixmultiply::sgemm`:
//!
//! - [`encoding`]: how a window becomes features ([`Encoding::OneHot`], [`Encoding::ClassIndex`],
//!   [`Encoding::Bosc`]), then min-max scaled per feature on the training windows;
//! - [`AutoencoderParams`]: hyper-parameters (defaults and why in its doc), checked into
//!   [`AutoencoderValidParams`]; [`Fit`](crate::Fit) on [`Windows`](crate::dataset::Windows)
//!   trains an [`Autoencoder`] (the params also keep an inherent
//!   `fit(&windows, n_symbols, window_size)`, used below);
//! - [`Autoencoder`] implements [`crate::WindowScorer`]; `score_many` batches windows;
//! - [`VectorAutoencoder`]: the same network and training on rows of real-valued features that
//!   the caller has already scaled (network traffic features, in `mamori-net`): [`Fit`](crate::Fit)
//!   on a [`Matrix`](crate::matrix::Matrix); it implements [`crate::RowScorer`].
//!
//! One-hot is the default sequence encoding: class numbers are labels with no order, and
//! [`Encoding::ClassIndex`] makes the network treat "class 3 instead of class 4" as a small
//! error and "class 0 instead of class 20" as a huge one, which is meaningless. One-hot makes every
//! substitution cost the same, and the model must learn which classes follow which.
//!
//! ```
//! use mamori_detect::autoencoder::{AutoencoderParams, Encoding};
//! use mamori_detect::WindowScorer;
//!
//! // Normal traffic cycles through classes 0..4; symbol 5 is "unknown".
//! let windows: Vec<Vec<u16>> =
//!     (0..100).map(|s| (0..6).map(|i| ((s + i) % 5) as u16).collect()).collect();
//! let refs: Vec<&[u16]> = windows.iter().map(|w| &w[..]).collect();
//! let model = AutoencoderParams::new()
//!     .encoding(Encoding::OneHot)
//!     .hidden(vec![16])
//!     .bottleneck(4)
//!     .epochs(40)
//!     .batch_size(16)
//!     .fit(&refs, 6, 6)
//!     .unwrap();
//! let normal = model.score(&[0, 1, 2, 3, 4, 0]);
//! let odd = model.score(&[0, 5, 5, 3, 1, 0]);
//! assert!(odd > normal);
//! ```

pub mod encoding;
mod errors;
mod model;
mod network;
mod params;
mod vector;

pub use encoding::{Encoder, Encoding};
pub use errors::AutoencoderError;
pub use model::Autoencoder;
pub use network::Activation;
pub use params::{AutoencoderParams, AutoencoderValidParams};
pub use vector::{VectorAutoencoder, VectorScratch};
