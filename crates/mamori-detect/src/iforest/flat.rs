//! The forest re-laid as complete binary trees for branch-free scoring.
//!
//! Walking a node list costs a hard-to-predict branch per level (split or leaf, left or right)
//! and the loop ends at a different depth in every tree, so the processor cannot run one tree's
//! walk while it waits on the last. Here every tree is complete to the forest's depth `D`:
//! node `i` has children `2i + 1` and `2i + 2`, a leaf above depth `D` becomes a chain of
//! pass-through nodes whose whole subtree carries that leaf's path length, and each walk is
//! exactly `D` steps of `i = 2i + 2 − (x[f] ≤ t)`. Eight trees are walked side by side: their
//! loads are independent, so their latencies overlap. Scores are bit-identical to the node walk:
//! the same leaf values are summed in the same order. On device rows this took scoring from
//! 3.1 s to 2.0 s of CPU for 2.5 M packets (BENCHMARKS.md, "Network throughput").

use super::Node;

/// Deeper trees would take `2^D` nodes each; they keep the node walk.
pub(super) const MAX_FLAT_DEPTH: usize = 12;

/// Trees walked side by side: their loads are independent, so their latencies overlap.
const LANES: usize = 8;

/// One internal node: a row goes left when `x[feature] <= threshold`, else right (NaN too).
/// Both in one 16-byte slot, so a step touches one cache line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    threshold: f64,
    feature: u32,
}

/// All trees, `D` levels each, in two flat arrays.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FlatForest {
    depth: usize,
    trees: usize,
    /// Every `Cut::feature` is below this, and scored rows have exactly this many values.
    n_features: usize,
    /// Internal nodes, `max(2^D − 1, 1)` per tree.
    cuts: Vec<Cut>,
    /// Path length at each of the `2^D` leaves per tree.
    leaves: Vec<f64>,
}

impl FlatForest {
    /// Lays out `trees` (already validated: children point forward and in range). `None` when
    /// a tree is deeper than [`MAX_FLAT_DEPTH`] or tests a feature `>= n_features`.
    pub(super) fn build(trees: &[Vec<Node>], n_features: usize) -> Option<FlatForest> {
        let mut depth = 0;
        for tree in trees {
            depth = depth.max(tree_depth(tree)?);
        }
        let internal = (1usize << depth) - 1;
        // A forest of single leaves still gets one (unused) internal slot per tree.
        let stride = internal.max(1);
        let pass = Cut {
            threshold: 0.0,
            feature: 0,
        };
        let mut flat = FlatForest {
            depth,
            trees: trees.len(),
            n_features,
            cuts: vec![pass; stride * trees.len()],
            leaves: vec![0.0; (internal + 1) * trees.len()],
        };
        for (t, tree) in trees.iter().enumerate() {
            let cuts = &mut flat.cuts[t * stride..(t + 1) * stride];
            let leaves = &mut flat.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
            // (node in `tree`, position in the complete tree, level).
            let mut stack = vec![(0usize, 0usize, 0usize)];
            while let Some((node, pos, level)) = stack.pop() {
                match tree[node] {
                    Node::Split {
                        feature,
                        threshold,
                        left,
                    } => {
                        if feature as usize >= n_features {
                            return None;
                        }
                        cuts[pos] = Cut { threshold, feature };
                        stack.push((left as usize, 2 * pos + 1, level + 1));
                        stack.push((left as usize + 1, 2 * pos + 2, level + 1));
                    }
                    Node::Leaf { path } => {
                        // The leaves below `pos` at depth D are one contiguous run.
                        let below = depth - level;
                        let first = ((pos + 1) << below) - 1 - internal;
                        leaves[first..first + (1 << below)].fill(path);
                    }
                }
            }
        }
        Some(flat)
    }

    /// Sum of the path lengths of `x` over all trees, added in tree order.
    ///
    /// # Panics
    /// If `x` does not have `n_features` values.
    #[inline]
    pub(super) fn total_path(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.n_features, "feature count vs fitted forest");
        let internal = (1usize << self.depth) - 1;
        let stride = internal.max(1);
        // Unchecked loads: bounds checks were 15 % of scoring a device row, and both indices
        // are in range by construction.
        let step = |base: usize, i: usize| {
            debug_assert!(i < stride && base + stride <= self.cuts.len());
            // SAFETY: `base` is `t · stride` for a tree `t < trees`, and `i < stride`: a walk
            // reads node `i` only at levels `0..depth`, where `i ≤ 2^depth − 2 < stride`; `cuts`
            // holds `trees · stride` nodes (`build`).
            let cut = unsafe { *self.cuts.get_unchecked(base + i) };
            debug_assert!((cut.feature as usize) < x.len());
            // SAFETY: `build` admits only features `< n_features`, and `x.len() == n_features`
            // was asserted above.
            let value = unsafe { *x.get_unchecked(cut.feature as usize) };
            // Left when at or below the cut; NaN compares false and goes right.
            let left = value <= cut.threshold;
            2 * i + 2 - left as usize
        };
        let leaf = |t: usize, i: usize| self.leaves[t * (internal + 1) + i - internal];
        let mut total = 0.0;
        let mut t = 0;
        while t + LANES <= self.trees {
            let mut i = [0usize; LANES];
            for _ in 0..self.depth {
                for (lane, i) in i.iter_mut().enumerate() {
                    *i = step((t + lane) * stride, *i);
                }
            }
            for (lane, &i) in i.iter().enumerate() {
                total += leaf(t + lane, i);
            }
            t += LANES;
        }
        for t in t..self.trees {
            let mut i = 0;
            for _ in 0..self.depth {
                i = step(t * stride, i);
            }
            total += leaf(t, i);
        }
        total
    }
}

/// Number of levels below the root of the deepest leaf; `None` past [`MAX_FLAT_DEPTH`] (which
/// also bounds the walk on a hand-edited file whose splits share children).
fn tree_depth(tree: &[Node]) -> Option<usize> {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((node, level)) = stack.pop() {
        if level > MAX_FLAT_DEPTH {
            return None;
        }
        deepest = deepest.max(level);
        if let Node::Split { left, .. } = tree[node] {
            stack.push((left as usize, level + 1));
            stack.push((left as usize + 1, level + 1));
        }
    }
    Some(deepest)
}
