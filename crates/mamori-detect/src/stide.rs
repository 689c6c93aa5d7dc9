//! STIDE: sequence time-delay embedding (Forrest, Hofmeyr, Somayaji and Longstaff 1996;
//! Warrender, Forrest and Pearlmutter 1999).
//!
//! Training stores every distinct n-gram (length-`n` run of consecutive symbols) of the normal
//! windows. A window's score is its *mismatch rate*: the share of its n-grams missing from that
//! database, from 0 (every gram seen in training) to 1 (none seen).
//!
//! The database is a sorted, de-duplicated list of grams, stored flat (`n` symbols per gram), so a
//! model file is compact and a lookup is a binary search.
//!
//! # Windows shorter than `n`
//!
//! A window with fewer than `n` symbols (a flushed partial window of a short-lived process) has no
//! full n-gram. It is treated as one gram: it scores 0.0 when it is a prefix of a known n-gram or
//! of a training window that was itself shorter than `n` (those are kept, de-duplicated, beside
//! the n-grams), and 1.0 otherwise. Prefixes are the natural test because a partial window always
//! starts at the beginning of its stream. An empty window scores 0.0 (nothing was observed).
//!
//! [`locality_frame_count`] gives the locality frame count of Hofmeyr et al.: the largest number
//! of mismatching grams within any run of `frame` consecutive grams.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::classes::Symbol;
use crate::dataset::Windows;
use crate::{Fit, ParamGuard, WindowScorer};

/// STIDE settings; fit [`Windows`] through [`Fit`], which runs [`ParamGuard::check`] first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StideParams {
    /// Length of the n-grams (Forrest et al. used 6).
    pub ngram: usize,
}

impl Default for StideParams {
    fn default() -> Self {
        StideParams { ngram: 6 }
    }
}

/// [`StideParams`] that passed [`ParamGuard::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidStideParams(StideParams);

impl ValidStideParams {
    /// The checked settings.
    pub fn params(&self) -> &StideParams {
        &self.0
    }
}

impl ParamGuard for StideParams {
    type Checked = ValidStideParams;
    type Error = StideError;

    /// The n-gram length must be at least 1.
    fn check(&self) -> Result<ValidStideParams, StideError> {
        if self.ngram == 0 {
            return Err(StideError::ZeroNgram);
        }
        Ok(ValidStideParams(*self))
    }
}

impl Fit<Windows<'_>> for ValidStideParams {
    type Model = Stide;
    type Error = StideError;

    /// [`Stide::fit`] on the windows (the alphabet size is not needed).
    fn fit(&self, data: &Windows<'_>) -> Result<Stide, StideError> {
        Stide::fit_checked(data.windows, self.0.ngram)
    }
}

/// Why STIDE could not be trained, or a model file is not a valid STIDE model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StideError {
    /// `ngram` is zero.
    #[error("STIDE n-gram length must be at least 1")]
    ZeroNgram,
    /// No training window holds a symbol.
    #[error("STIDE needs at least one non-empty training window")]
    NoWindows,
    /// Every training window is shorter than the n-gram length, so the database would be empty.
    #[error("STIDE n-gram length {ngram} exceeds the longest training window ({longest} symbols)")]
    NgramLongerThanWindows {
        /// The n-gram length asked for.
        ngram: usize,
        /// Length of the longest training window.
        longest: usize,
    },
    /// A deserialised model breaks an invariant (corrupt or hand-edited model file).
    #[error("invalid STIDE model: {0}")]
    InvalidModel(String),
}

/// A trained STIDE database of normal n-grams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StideFile", into = "StideFile")]
pub struct Stide {
    ngram: usize,
    /// Distinct n-grams, sorted lexicographically, concatenated (`ngram` symbols each).
    grams: Vec<Symbol>,
    /// Distinct training windows shorter than `ngram`, sorted.
    short: Vec<Vec<Symbol>>,
    /// The grams packed into one integer each, for a hash lookup instead of a binary search
    /// (live scoring looks up every gram of every window); `None` when `ngram` > 8.
    index: Option<GramIndex>,
}

/// Packed grams of up to 8 symbols (16 bits each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GramIndex(HashSet<u128, BuildHasherDefault<GramHasher>>);

/// A multiplicative hash for packed grams: they are short integers, not attacker-chosen keys
/// (the database is fixed at training), so SipHash's cost buys nothing here.
#[derive(Default)]
struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let folded = (v as u64) ^ ((v >> 64) as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        self.0 = (folded ^ (folded >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn pack(gram: &[Symbol]) -> u128 {
    gram.iter()
        .fold(0u128, |acc, &s| (acc << 16) | u128::from(s))
}

impl GramIndex {
    fn build(ngram: usize, grams: &[Symbol]) -> Option<GramIndex> {
        (ngram <= 8).then(|| GramIndex(grams.chunks_exact(ngram).map(pack).collect()))
    }
}

/// The serialised form of [`Stide`], checked on load.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StideFile {
    ngram: usize,
    grams: Vec<Symbol>,
    #[serde(default)]
    short: Vec<Vec<Symbol>>,
}

impl From<Stide> for StideFile {
    fn from(s: Stide) -> Self {
        StideFile {
            ngram: s.ngram,
            grams: s.grams,
            short: s.short,
        }
    }
}

impl TryFrom<StideFile> for Stide {
    type Error = StideError;

    fn try_from(f: StideFile) -> Result<Self, StideError> {
        if f.ngram == 0 {
            return Err(StideError::ZeroNgram);
        }
        if f.grams.is_empty() || !f.grams.chunks_exact(f.ngram).remainder().is_empty() {
            return Err(StideError::InvalidModel(format!(
                "{} gram symbols is not a positive multiple of the n-gram length {}",
                f.grams.len(),
                f.ngram
            )));
        }
        let sorted = f
            .grams
            .chunks_exact(f.ngram)
            .zip(f.grams.chunks_exact(f.ngram).skip(1))
            .all(|(a, b)| a < b);
        if !sorted {
            return Err(StideError::InvalidModel(
                "n-grams are not sorted and distinct".into(),
            ));
        }
        let short_ok = f.short.windows(2).all(|p| p[0] < p[1])
            && f.short.iter().all(|w| !w.is_empty() && w.len() < f.ngram);
        if !short_ok {
            return Err(StideError::InvalidModel(
                "short windows must be sorted, distinct, non-empty and shorter than the n-gram"
                    .into(),
            ));
        }
        Ok(Stide {
            index: GramIndex::build(f.ngram, &f.grams),
            ngram: f.ngram,
            grams: f.grams,
            short: f.short,
        })
    }
}

impl Stide {
    /// Builds the database of every n-gram in the normal training `windows`.
    ///
    /// Windows shorter than `params.ngram` are kept whole (see the module docs); at least one
    /// window must be long enough to give an n-gram. The same as [`Fit::fit`] of `params` on
    /// [`Windows`].
    pub fn fit(windows: &[&[Symbol]], params: &StideParams) -> Result<Stide, StideError> {
        Stide::fit_checked(windows, params.check()?.0.ngram)
    }

    fn fit_checked(windows: &[&[Symbol]], n: usize) -> Result<Stide, StideError> {
        let longest = windows.iter().map(|w| w.len()).max().unwrap_or(0);
        if longest == 0 {
            return Err(StideError::NoWindows);
        }
        if longest < n {
            return Err(StideError::NgramLongerThanWindows { ngram: n, longest });
        }
        let mut grams: Vec<&[Symbol]> = windows
            .iter()
            .filter(|w| w.len() >= n)
            .flat_map(|w| w.windows(n))
            .collect();
        grams.sort_unstable();
        grams.dedup();
        let mut short: Vec<Vec<Symbol>> = windows
            .iter()
            .filter(|w| !w.is_empty() && w.len() < n)
            .map(|w| w.to_vec())
            .collect();
        short.sort_unstable();
        short.dedup();
        let grams = grams.concat();
        Ok(Stide {
            index: GramIndex::build(n, &grams),
            ngram: n,
            grams,
            short,
        })
    }

    /// The n-gram length.
    pub fn ngram(&self) -> usize {
        self.ngram
    }

    /// Number of distinct n-grams in the database.
    pub fn n_grams(&self) -> usize {
        self.grams.len() / self.ngram
    }

    fn gram(&self, i: usize) -> &[Symbol] {
        &self.grams[i * self.ngram..(i + 1) * self.ngram]
    }

    /// Index of the first stored gram not less than `key` (lexicographic order).
    fn lower_bound(&self, key: &[Symbol]) -> usize {
        let (mut lo, mut hi) = (0, self.n_grams());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.gram(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// True when `gram` (of length [`Stide::ngram`]) is in the database.
    pub fn contains(&self, gram: &[Symbol]) -> bool {
        gram.len() == self.ngram && {
            if let Some(index) = &self.index {
                return index.0.contains(&pack(gram));
            }
            let i = self.lower_bound(gram);
            i < self.n_grams() && self.gram(i) == gram
        }
    }

    /// True when `prefix` (shorter than the n-gram) starts a known n-gram or a short training
    /// window.
    fn known_prefix(&self, prefix: &[Symbol]) -> bool {
        let i = self.lower_bound(prefix);
        if i < self.n_grams() && self.gram(i).starts_with(prefix) {
            return true;
        }
        let j = self.short.partition_point(|w| w.as_slice() < prefix);
        j < self.short.len() && self.short[j].starts_with(prefix)
    }

    /// For each n-gram of `window`, oldest first, whether it is missing from the database
    /// (a mismatch). A non-empty window shorter than `n` gives one entry (see the module docs);
    /// an empty window gives none.
    pub fn mismatches(&self, window: &[Symbol]) -> Vec<bool> {
        if window.is_empty() {
            return Vec::new();
        }
        if window.len() < self.ngram {
            return vec![!self.known_prefix(window)];
        }
        window
            .windows(self.ngram)
            .map(|g| !self.contains(g))
            .collect()
    }

    /// Mismatch rate of a window: the share of its n-grams not in the database, in `0..=1`.
    pub fn mismatch_rate(&self, window: &[Symbol]) -> f64 {
        if window.is_empty() {
            return 0.0;
        }
        if window.len() < self.ngram {
            return if self.known_prefix(window) { 0.0 } else { 1.0 };
        }
        let grams = window.len() - self.ngram + 1;
        let missing = window
            .windows(self.ngram)
            .filter(|g| !self.contains(g))
            .count();
        missing as f64 / grams as f64
    }
}

impl WindowScorer for Stide {
    /// The [mismatch rate](Stide::mismatch_rate), in `0..=1`.
    fn score(&self, window: &[Symbol]) -> f64 {
        self.mismatch_rate(window)
    }

    fn max_score(&self) -> Option<f64> {
        Some(1.0)
    }
}

/// Locality frame count (Hofmeyr, Forrest and Somayaji 1998): the largest number of mismatches
/// among any `frame` consecutive grams of a sequence, given per-gram mismatch flags (e.g. from
/// [`Stide::mismatches`] over a whole trace). A sequence shorter than `frame` counts all its
/// mismatches; `frame == 0` gives 0.
pub fn locality_frame_count(mismatches: &[bool], frame: usize) -> usize {
    if frame == 0 {
        return 0;
    }
    let mut in_frame = 0usize;
    let mut best = 0usize;
    for (i, &m) in mismatches.iter().enumerate() {
        in_frame += usize::from(m);
        if i >= frame && mismatches[i - frame] {
            in_frame -= 1;
        }
        best = best.max(in_frame);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Stide {
        // Training: 1 2 3 4 5 and 1 2 3 1 2; n = 3.
        // Grams: 123 234 345 | 123 231 312 → distinct: 123 231 234 312 345.
        let a: &[Symbol] = &[1, 2, 3, 4, 5];
        let b: &[Symbol] = &[1, 2, 3, 1, 2];
        let c: &[Symbol] = &[7, 8];
        Stide::fit(&[a, b, c], &StideParams { ngram: 3 }).unwrap()
    }

    #[test]
    fn database_holds_distinct_sorted_grams() {
        let s = toy();
        assert_eq!(s.n_grams(), 5);
        assert_eq!(s.grams, vec![1, 2, 3, 2, 3, 1, 2, 3, 4, 3, 1, 2, 3, 4, 5]);
        assert!(s.contains(&[2, 3, 1]));
        assert!(!s.contains(&[2, 3, 5]));
        assert!(!s.contains(&[2, 3]));
        assert_eq!(s.short, vec![vec![7, 8]]);
    }

    #[test]
    fn hand_computed_mismatch_rates() {
        let s = toy();
        // All grams known.
        assert_eq!(s.score(&[1, 2, 3, 4, 5]), 0.0);
        // 123 ok, 231 ok, 314 miss, 145 miss → 2 / 4.
        assert_eq!(s.score(&[1, 2, 3, 1, 4, 5]), 0.5);
        // 234 ok, 345 ok, 451 miss → 1 / 3.
        assert!((s.score(&[2, 3, 4, 5, 1]) - 1.0 / 3.0).abs() < 1e-12);
        // Nothing known, including an out-of-alphabet symbol.
        assert_eq!(s.score(&[9, 9, 9, 60_000]), 1.0);
        assert_eq!(s.mismatches(&[1, 2, 3, 1, 4]), vec![false, false, true]);
    }

    #[test]
    fn short_windows_are_one_gram() {
        let s = toy();
        assert_eq!(s.score(&[2, 3]), 0.0, "prefix of 231 / 234");
        assert_eq!(s.score(&[3]), 0.0);
        assert_eq!(s.score(&[4, 3]), 1.0);
        assert_eq!(s.score(&[7]), 0.0, "prefix of a short training window");
        assert_eq!(s.score(&[7, 8]), 0.0);
        assert_eq!(s.score(&[8, 7]), 1.0);
        assert_eq!(s.score(&[]), 0.0);
        assert_eq!(s.mismatches(&[4, 3]), vec![true]);
    }

    #[test]
    fn zero_ngram_is_rejected() {
        let p = StideParams { ngram: 0 };
        assert_eq!(p.check(), Err(StideError::ZeroNgram));
        let w: &[Symbol] = &[1, 2, 3];
        assert_eq!(p.fit(&Windows::new(&[w], 4)), Err(StideError::ZeroNgram));
    }

    #[test]
    fn fit_trait_matches_the_inherent_fit() {
        let a: &[Symbol] = &[1, 2, 3, 1, 2, 4];
        let b: &[Symbol] = &[2, 2];
        let p = StideParams { ngram: 3 };
        assert_eq!(p.check().map(|c| *c.params()), Ok(p));
        let by_trait = p.fit(&Windows::new(&[a, b], 5)).expect("fit");
        assert_eq!(by_trait, Stide::fit(&[a, b], &p).expect("fit"));
        assert_eq!(
            StideParams::default().check().map(|c| c.params().ngram),
            Ok(6)
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let w: &[Symbol] = &[1, 2];
        assert_eq!(
            Stide::fit(&[w], &StideParams { ngram: 0 }),
            Err(StideError::ZeroNgram)
        );
        assert_eq!(
            Stide::fit(&[], &StideParams::default()),
            Err(StideError::NoWindows)
        );
        assert_eq!(
            Stide::fit(&[w], &StideParams { ngram: 3 }),
            Err(StideError::NgramLongerThanWindows {
                ngram: 3,
                longest: 2
            })
        );
    }

    #[test]
    fn json_round_trip_and_corrupt_models_rejected() {
        let s = toy();
        let json = serde_json::to_string(&s).unwrap();
        let back: Stide = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.score(&[1, 2, 3, 1, 4, 5]), 0.5);
        for bad in [
            r#"{"ngram":0,"grams":[1]}"#,
            r#"{"ngram":2,"grams":[1,2,3]}"#,
            r#"{"ngram":2,"grams":[3,4,1,2]}"#,
            r#"{"ngram":2,"grams":[1,2],"short":[[1,2]]}"#,
        ] {
            assert!(serde_json::from_str::<Stide>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locality_frame_counts() {
        let m = [true, false, true, true, false, false, false, true];
        assert_eq!(locality_frame_count(&m, 3), 2);
        assert_eq!(locality_frame_count(&m, 4), 3);
        assert_eq!(locality_frame_count(&m, 1), 1);
        assert_eq!(locality_frame_count(&m, 100), 4);
        assert_eq!(locality_frame_count(&m, 0), 0);
        assert_eq!(locality_frame_count(&[], 5), 0);
    }

    #[test]
    fn the_hash_index_agrees_with_the_binary_search() {
        // a pseudo-random symbol stream over 40 classes, and probes half seen, half not
        let mut x = 12345u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 40) as Symbol
        };
        let train: Vec<Symbol> = (0..3000).map(|_| next()).collect();
        let windows: Vec<&[Symbol]> = train.windows(19).collect();
        let indexed = Stide::fit(&windows, &StideParams { ngram: 6 }).expect("fit");
        assert!(indexed.index.is_some());
        let mut plain = indexed.clone();
        plain.index = None;
        let probes: Vec<Symbol> = (0..3000).map(|_| next()).collect();
        for gram in train.windows(6).chain(probes.windows(6)) {
            assert_eq!(indexed.contains(gram), plain.contains(gram), "{gram:?}");
        }
        assert!(train.windows(6).all(|g| indexed.contains(g)));
        assert!(probes.windows(6).any(|g| !indexed.contains(g)));
    }
}
