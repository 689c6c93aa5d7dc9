//! Hidden Markov models over windows of system-call classes.
//!
//! - [`CategoricalHmm`]: discrete-emission HMM over the raw window (hmmlearn's `CategoricalHMM`,
//!   the paper's detector), trained with multi-sequence Baum–Welch ([`CategoricalHmmParams`]).
//!   The score of a window is its negative log-likelihood.
//! - [`MultinomialMixture`]: the model a Bag-of-System-Calls HMM should have been — each window's
//!   whole count vector is one multinomial emission (see the [`multinomial`] module for why the
//!   paper's flattened BoSC fails and this works).
//! - [`FlatBoscHmm`]: the paper's own flattened-BoSC HMM, kept to reproduce its result.
//!
//! Each is fitted through [`Fit`](crate::Fit) on [`Windows`](crate::dataset::Windows) from its
//! params type (the HMM's params also keep an inherent `fit(&windows, n_symbols)`, so the trait
//! call is spelled `Fit::fit(&params, &data)`):
//!
//! ```
//! use mamori_detect::dataset::Windows;
//! use mamori_detect::hmm::CategoricalHmmParams;
//! use mamori_detect::{Fit, WindowScorer};
//!
//! let normal: Vec<Vec<u16>> = (0..50).map(|i| vec![0, 1, 2, (i % 2) as u16, 0, 1, 2]).collect();
//! let windows: Vec<&[u16]> = normal.iter().map(|w| w.as_slice()).collect();
//! let params = CategoricalHmmParams::new().n_states(2).seed(1);
//! let model = Fit::fit(&params, &Windows::new(&windows, 4)).unwrap();
//! let usual = model.score(&[0, 1, 2, 0, 0, 1, 2]);
//! let odd = model.score(&[3, 3, 3, 3, 3, 3, 3]); // symbol 3 ("unknown") never seen
//! assert!(odd.is_finite() && odd > usual + 20.0);
//! ```

mod categorical;
mod errors;
mod flat_bosc;
pub mod multinomial;
mod params;

pub use categorical::{CategoricalHmm, EmFit};
pub use errors::HmmError;
pub use flat_bosc::FlatBoscHmm;
pub use multinomial::MultinomialMixture;
pub use params::{
    CategoricalHmmParams, FlatBoscHmmParams, MultinomialMixtureParams, ValidCategoricalHmmParams,
    ValidFlatBoscHmmParams, ValidMultinomialMixtureParams,
};
