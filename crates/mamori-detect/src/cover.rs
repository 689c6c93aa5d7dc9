//! Sequence covering (after P.-F. Marteau, "Sequence Covering for Efficient Host-Based Intrusion
//! Detection", IEEE Trans. Information Forensics and Security 14(4), 2019).
//!
//! A sequence that normal behaviour could have produced can be pieced together from a few long
//! stretches of the normal training sequences; an odd one needs many short pieces. The model keeps
//! every training sequence and scores a sequence by the **number of pieces per call** it takes to
//! cover it with substrings (contiguous runs) of the training sequences:
//!
//! ```text
//! score(s) = pieces(s) / len(s)        in (0, 1]; 0 for an empty sequence
//! ```
//!
//! `pieces(s)` comes from greedy longest-match parsing: from the first uncovered call, take the
//! longest run that occurs somewhere in a training sequence, and repeat. A symbol that never
//! occurs in training is a piece of its own. Because every substring of a training substring is
//! one too (the dictionary is closed under taking factors), the greedy parse uses the fewest
//! pieces of any parse into training substrings. A sequence copied from training scores
//! `1 / len`; one made of calls never seen together scores 1.
//!
//! Substring look-ups use a generalized suffix automaton over the training sequences (each
//! sequence added from the automaton's root, so no run ever spans two sequences). It has at most
//! `2 × (total training length)` states and is built in linear time; parsing a sequence of `n`
//! calls takes `O(n)` transitions. A model file stores the distinct training sequences, and the
//! automaton is rebuilt when the file is loaded.
//!
//! The score needs whole sequences to mean what it says (a trace of a process, a stream); on a
//! window it is the same count over the window's calls, which [`WindowScorer`] uses.

use serde::{Deserialize, Serialize};

use crate::classes::Symbol;
use crate::dataset::Windows;
use crate::{Fit, WindowScorer};

/// No suffix link (the root's).
const NONE: u32 = u32::MAX;

/// Settings of a [`SequenceCover`]: there are none (the model keeps its training sequences), so
/// nothing needs checking and [`Fit`] is implemented on this type directly. Fit it on
/// [`Windows`] holding whole sequences (traces or streams) where there are any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverParams;

impl Fit<Windows<'_>> for CoverParams {
    type Model = SequenceCover;
    type Error = CoverError;

    /// [`SequenceCover::fit`] on `data.windows` (the alphabet size is not needed).
    fn fit(&self, data: &Windows<'_>) -> Result<SequenceCover, CoverError> {
        SequenceCover::fit(data.windows)
    }
}

/// Why a covering model could not be trained or loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoverError {
    /// Every training sequence is empty.
    #[error("sequence covering needs at least one non-empty training sequence")]
    NoSequences,
    /// The training sequences are too long for 32-bit state numbers.
    #[error("sequence covering: {0} training calls is more than the automaton can index")]
    TooLong(usize),
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Length of the longest string reaching this state.
    len: u32,
    /// Suffix link.
    link: u32,
    /// Outgoing transitions, sorted by symbol.
    next: Vec<(Symbol, u32)>,
}

impl State {
    fn get(&self, s: Symbol) -> Option<u32> {
        self.next
            .binary_search_by_key(&s, |t| t.0)
            .ok()
            .map(|i| self.next[i].1)
    }

    fn set(&mut self, s: Symbol, to: u32) {
        match self.next.binary_search_by_key(&s, |t| t.0) {
            Ok(i) => self.next[i].1 = to,
            Err(i) => self.next.insert(i, (s, to)),
        }
    }
}

/// A generalized suffix automaton: recognises exactly the substrings of the added sequences.
#[derive(Debug, Clone)]
struct SuffixAutomaton {
    states: Vec<State>,
}

impl SuffixAutomaton {
    fn new() -> Self {
        SuffixAutomaton {
            states: vec![State {
                len: 0,
                link: NONE,
                next: Vec::new(),
            }],
        }
    }

    /// Adds one sequence, starting from the root.
    fn add_sequence(&mut self, seq: &[Symbol]) {
        let mut last = 0u32;
        for &c in seq {
            last = self.extend(last, c);
        }
    }

    /// Clones state `q` as a state of length `len`; returns the clone.
    fn clone_state(&mut self, q: u32, len: u32) -> u32 {
        let mut c = self.states[q as usize].clone();
        c.len = len;
        self.states.push(c);
        (self.states.len() - 1) as u32
    }

    /// Redirects the `c`-transitions to `q` on the suffix path from `p` to `clone`.
    fn redirect(&mut self, mut p: u32, c: Symbol, q: u32, clone: u32) {
        while p != NONE && self.states[p as usize].get(c) == Some(q) {
            self.states[p as usize].set(c, clone);
            p = self.states[p as usize].link;
        }
    }

    /// Appends `c` after the state `last`; returns the state of the extended sequence.
    fn extend(&mut self, last: u32, c: Symbol) -> u32 {
        let last_len = self.states[last as usize].len;
        // The extended string is already a known substring (generalized construction).
        if let Some(q) = self.states[last as usize].get(c) {
            if self.states[q as usize].len == last_len + 1 {
                return q;
            }
            let clone = self.clone_state(q, last_len + 1);
            self.redirect(last, c, q, clone);
            self.states[q as usize].link = clone;
            return clone;
        }
        self.states.push(State {
            len: last_len + 1,
            link: 0,
            next: Vec::new(),
        });
        let cur = (self.states.len() - 1) as u32;
        let mut p = last;
        while p != NONE && self.states[p as usize].get(c).is_none() {
            self.states[p as usize].set(c, cur);
            p = self.states[p as usize].link;
        }
        if p != NONE {
            // `p` has a `c`-transition; the automaton invariant guarantees it.
            let q = self.states[p as usize].get(c).unwrap_or(0);
            let p_len = self.states[p as usize].len;
            if self.states[q as usize].len == p_len + 1 {
                self.states[cur as usize].link = q;
            } else {
                let clone = self.clone_state(q, p_len + 1);
                self.redirect(p, c, q, clone);
                self.states[q as usize].link = clone;
                self.states[cur as usize].link = clone;
            }
        }
        cur
    }

    /// Length of the longest prefix of `s` that is a substring of the added sequences.
    fn longest_prefix(&self, s: &[Symbol]) -> usize {
        let mut state = 0usize;
        for (i, &c) in s.iter().enumerate() {
            match self.states[state].get(c) {
                Some(t) => state = t as usize,
                None => return i,
            }
        }
        s.len()
    }
}

/// A trained sequence-covering model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CoverFile", into = "CoverFile")]
pub struct SequenceCover {
    /// Distinct non-empty training sequences, sorted.
    sequences: Vec<Vec<Symbol>>,
    automaton: SuffixAutomaton,
}

impl PartialEq for SequenceCover {
    fn eq(&self, other: &Self) -> bool {
        self.sequences == other.sequences
    }
}

/// The serialised form of [`SequenceCover`]: the training sequences (the automaton is rebuilt).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverFile {
    sequences: Vec<Vec<Symbol>>,
}

impl From<SequenceCover> for CoverFile {
    fn from(m: SequenceCover) -> Self {
        CoverFile {
            sequences: m.sequences,
        }
    }
}

impl TryFrom<CoverFile> for SequenceCover {
    type Error = CoverError;

    fn try_from(f: CoverFile) -> Result<Self, CoverError> {
        let refs: Vec<&[Symbol]> = f.sequences.iter().map(Vec::as_slice).collect();
        SequenceCover::fit(&refs)
    }
}

impl SequenceCover {
    /// Builds the model from normal training sequences (whole traces or streams; windows work
    /// too, but then no piece can be longer than a window). Empty sequences are ignored and
    /// duplicates are kept once. The same as [`Fit::fit`] of [`CoverParams`] on [`Windows`].
    pub fn fit(sequences: &[&[Symbol]]) -> Result<SequenceCover, CoverError> {
        let mut seqs: Vec<Vec<Symbol>> = sequences
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_vec())
            .collect();
        if seqs.is_empty() {
            return Err(CoverError::NoSequences);
        }
        seqs.sort_unstable();
        seqs.dedup();
        let total: usize = seqs.iter().map(Vec::len).sum();
        // 2 × total states, lengths up to total: both must fit in u32 below NONE.
        if total >= (u32::MAX / 2) as usize {
            return Err(CoverError::TooLong(total));
        }
        let mut automaton = SuffixAutomaton::new();
        for s in &seqs {
            automaton.add_sequence(s);
        }
        Ok(SequenceCover {
            sequences: seqs,
            automaton,
        })
    }

    /// Number of distinct training sequences kept.
    pub fn n_sequences(&self) -> usize {
        self.sequences.len()
    }

    /// Total number of calls in the distinct training sequences.
    pub fn n_calls(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// Number of states of the suffix automaton.
    pub fn n_states(&self) -> usize {
        self.automaton.states.len()
    }

    /// The lengths of the greedy covering's pieces, in order (they sum to `seq.len()`).
    pub fn cover(&self, seq: &[Symbol]) -> Vec<usize> {
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < seq.len() {
            let l = self.automaton.longest_prefix(&seq[i..]).max(1);
            pieces.push(l);
            i += l;
        }
        pieces
    }

    /// Number of pieces of the greedy (minimum) covering; 0 for an empty sequence.
    pub fn pieces(&self, seq: &[Symbol]) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < seq.len() {
            i += self.automaton.longest_prefix(&seq[i..]).max(1);
            n += 1;
        }
        n
    }

    /// Pieces per call, in `(0, 1]`; 0.0 for an empty sequence.
    pub fn score_sequence(&self, seq: &[Symbol]) -> f64 {
        if seq.is_empty() {
            return 0.0;
        }
        self.pieces(seq) as f64 / seq.len() as f64
    }
}

impl WindowScorer for SequenceCover {
    /// [`SequenceCover::score_sequence`] of the window's calls.
    fn score(&self, window: &[Symbol]) -> f64 {
        self.score_sequence(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every substring of `seqs`, by brute force.
    fn substrings(seqs: &[&[Symbol]]) -> std::collections::HashSet<Vec<Symbol>> {
        let mut out = std::collections::HashSet::new();
        for s in seqs {
            for i in 0..s.len() {
                for j in i + 1..=s.len() {
                    out.insert(s[i..j].to_vec());
                }
            }
        }
        out
    }

    #[test]
    fn fit_trait_matches_the_inherent_fit() {
        let a: &[Symbol] = &[1, 2, 3, 1, 2];
        let b: &[Symbol] = &[3, 3];
        let by_trait = CoverParams.fit(&Windows::new(&[a, b], 4)).expect("fit");
        assert_eq!(by_trait, SequenceCover::fit(&[a, b]).expect("fit"));
        assert_eq!(
            CoverParams.fit(&Windows::new(&[&[]], 4)),
            Err(CoverError::NoSequences)
        );
    }

    #[test]
    fn automaton_recognises_exactly_the_substrings() {
        let a: &[Symbol] = &[1, 2, 1, 2, 3, 1];
        let b: &[Symbol] = &[2, 3, 3, 4];
        let c: &[Symbol] = &[4, 1, 2];
        let m = SequenceCover::fit(&[a, b, c]).unwrap();
        let known = substrings(&[a, b, c]);
        // Every string over {1..5} up to length 4 is recognised iff it is a substring.
        let mut probe = vec![Vec::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for p in &probe {
                for s in 1..=5u16 {
                    let mut q: Vec<Symbol> = p.clone();
                    q.push(s);
                    let whole = m.automaton.longest_prefix(&q) == q.len();
                    assert_eq!(whole, known.contains(&q), "{q:?}");
                    longer.push(q);
                }
            }
            probe = longer;
        }
        assert!(m.n_states() <= 2 * m.n_calls());
    }

    #[test]
    fn runs_never_span_two_training_sequences() {
        let a: &[Symbol] = &[1, 2];
        let b: &[Symbol] = &[3, 4];
        let m = SequenceCover::fit(&[a, b]).unwrap();
        // "2 3" only exists across the boundary of the two sequences.
        assert_eq!(m.cover(&[1, 2, 3, 4]), vec![2, 2]);
        assert_eq!(m.pieces(&[2, 3]), 2);
    }

    #[test]
    fn hand_computed_coverings() {
        let a: &[Symbol] = &[1, 2, 3, 4, 5];
        let b: &[Symbol] = &[5, 6, 7];
        let m = SequenceCover::fit(&[a, b]).unwrap();
        // Copied from training: one piece.
        assert_eq!(m.cover(&[1, 2, 3, 4, 5]), vec![5]);
        assert_eq!(m.score_sequence(&[1, 2, 3, 4, 5]), 0.2);
        // 2 3 4 5 | 6 7 (5 6 7 exists but the greedy parse took 5 already; still 2 pieces).
        assert_eq!(m.cover(&[2, 3, 4, 5, 6, 7]), vec![4, 2]);
        // Unknown symbol 9 is a piece of its own.
        assert_eq!(m.cover(&[3, 4, 9, 6, 7]), vec![2, 1, 2]);
        assert_eq!(m.score_sequence(&[3, 4, 9, 6, 7]), 3.0 / 5.0);
        // Nothing seen together: one piece per call.
        assert_eq!(m.score_sequence(&[5, 1, 7, 3]), 1.0);
        assert_eq!(m.score_sequence(&[]), 0.0);
        assert_eq!(m.score(&[1, 2, 3]), 1.0 / 3.0);
    }

    #[test]
    fn greedy_parse_is_minimal() {
        // Brute-force minimum covering by dynamic programming on random data.
        let mut x: u64 = 12345;
        let mut rnd = |k: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % k) as Symbol
        };
        let train: Vec<Vec<Symbol>> = (0..5).map(|_| (0..30).map(|_| rnd(4)).collect()).collect();
        let refs: Vec<&[Symbol]> = train.iter().map(Vec::as_slice).collect();
        let m = SequenceCover::fit(&refs).unwrap();
        let known = substrings(&refs);
        for _ in 0..50 {
            let s: Vec<Symbol> = (0..25).map(|_| rnd(5)).collect();
            let mut best = vec![usize::MAX; s.len() + 1];
            best[0] = 0;
            for j in 1..=s.len() {
                for i in 0..j {
                    if best[i] != usize::MAX && (j - i == 1 || known.contains(&s[i..j])) {
                        best[j] = best[j].min(best[i] + 1);
                    }
                }
            }
            assert_eq!(m.pieces(&s), best[s.len()], "{s:?}");
            assert_eq!(m.cover(&s).iter().sum::<usize>(), s.len());
        }
    }

    #[test]
    fn empty_training_is_an_error_and_duplicates_are_kept_once() {
        assert_eq!(SequenceCover::fit(&[]), Err(CoverError::NoSequences));
        let e: &[Symbol] = &[];
        assert_eq!(SequenceCover::fit(&[e]), Err(CoverError::NoSequences));
        let a: &[Symbol] = &[1, 2];
        let m = SequenceCover::fit(&[a, e, a]).unwrap();
        assert_eq!((m.n_sequences(), m.n_calls()), (1, 2));
    }

    #[test]
    fn json_round_trip_rebuilds_the_automaton() {
        let a: &[Symbol] = &[1, 2, 3, 1, 2];
        let b: &[Symbol] = &[7, 8];
        let m = SequenceCover::fit(&[a, b]).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"sequences":[[1,2,3,1,2],[7,8]]}"#);
        let back: SequenceCover = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.n_states(), m.n_states());
        assert_eq!(back.cover(&[3, 1, 2, 7, 8, 1]), vec![3, 2, 1]);
        assert!(serde_json::from_str::<SequenceCover>(r#"{"sequences":[]}"#).is_err());
        assert!(serde_json::from_str::<SequenceCover>(r#"{"sequences":[[]]}"#).is_err());
        assert!(serde_json::from_str::<SequenceCover>(r#"{"seqs":[[1]]}"#).is_err());
    }
}
