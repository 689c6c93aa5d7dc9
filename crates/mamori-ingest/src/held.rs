//! Calls waiting for their other half (strace `<unfinished ...>`, LID-DS enter lines), one per
//! thread, at most a cap of them: at the cap the oldest is given back to be emitted incomplete
//! and counted. Without a cap, a trace with millions of threads blocked at once (or a hostile
//! one) would hold them all.

use std::collections::{BTreeMap, HashMap};

use crate::DEFAULT_MAX_PENDING;

/// Held halves by thread key, oldest first when evicting.
#[derive(Debug)]
pub(crate) struct Held<V> {
    by_key: HashMap<u32, (u64, V)>,
    /// The keys of `by_key` by age (insertion number).
    by_age: BTreeMap<u64, u32>,
    next_age: u64,
    max: usize,
    evicted: u64,
}

impl<V> Default for Held<V> {
    fn default() -> Self {
        Held {
            by_key: HashMap::new(),
            by_age: BTreeMap::new(),
            next_age: 0,
            max: DEFAULT_MAX_PENDING,
            evicted: 0,
        }
    }
}

impl<V> Held<V> {
    /// The half held for `key`, removed.
    pub(crate) fn take(&mut self, key: u32) -> Option<V> {
        let (age, v) = self.by_key.remove(&key)?;
        self.by_age.remove(&age);
        Some(v)
    }

    /// Holds `v` for `key` (which must not hold one: take it first). At the cap, the oldest
    /// held halves go to `evict` first, counted.
    pub(crate) fn hold(&mut self, key: u32, v: V, mut evict: impl FnMut(V)) {
        while self.by_key.len() >= self.max {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some((_, old)) = self.by_key.remove(&oldest) {
                self.evicted += 1;
                evict(old);
            }
        }
        let age = self.next_age;
        self.next_age += 1;
        self.by_age.insert(age, key);
        self.by_key.insert(key, (age, v));
    }

    /// Everything still held with its key, in key order (at the end of the input).
    pub(crate) fn drain(&mut self) -> Vec<(u32, V)> {
        let mut all: Vec<(u32, V)> = self.by_key.drain().map(|(k, (_, v))| (k, v)).collect();
        self.by_age.clear();
        all.sort_by_key(|(k, _)| *k);
        all
    }

    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_goes_at_the_cap_and_is_counted() {
        let mut h = Held::default();
        h.set_max(2);
        let mut out = Vec::new();
        h.hold(1, "a", |v| out.push(v));
        h.hold(2, "b", |v| out.push(v));
        assert_eq!(h.take(1), Some("a"));
        h.hold(3, "c", |v| out.push(v));
        h.hold(4, "d", |v| out.push(v));
        assert_eq!(out, ["b"]);
        assert_eq!((h.len(), h.evicted()), (2, 1));
        assert_eq!(h.drain(), [(3, "c"), (4, "d")]);
        assert_eq!(h.len(), 0);
    }
}
