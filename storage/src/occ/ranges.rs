//! Sets of key ranges: what a transaction read, what a commit wrote, what a transaction
//! cleared.

use std::cmp::Ordering;

/// A key range `[begin, end)`.
pub(crate) type Range = (Vec<u8>, Vec<u8>);

/// The range holding exactly `key`: `[key, key + 0x00)`.
pub(crate) fn point(key: &[u8]) -> Range {
    let mut end = Vec::with_capacity(key.len() + 1);
    end.extend_from_slice(key);
    end.push(0);
    (key.to_vec(), end)
}

/// Sorted, disjoint, non-empty ranges; touching ranges are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range>,
}

impl RangeSet {
    /// The union of `ranges`, in any order; empty ones are dropped.
    pub(crate) fn from_unsorted(mut ranges: Vec<Range>) -> RangeSet {
        ranges.retain(|(b, e)| b < e);
        ranges.sort_unstable();
        let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
        for (b, e) in ranges {
            match merged.last_mut() {
                Some(last) if b <= last.1 => {
                    if e > last.1 {
                        last.1 = e;
                    }
                }
                _ => merged.push((b, e)),
            }
        }
        RangeSet { ranges: merged }
    }

    /// The key ranges that `mutations` write.
    pub(crate) fn written(mutations: &[crate::Mutation]) -> RangeSet {
        use crate::Mutation;
        let ranges = mutations
            .iter()
            .map(|m| match m {
                Mutation::Set { key, .. } | Mutation::Clear { key } => point(key),
                Mutation::ClearRange { begin, end } => (begin.clone(), end.clone()),
            })
            .collect();
        RangeSet::from_unsorted(ranges)
    }

    pub(crate) fn into_ranges(self) -> Vec<Range> {
        self.ranges
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Key bytes held, for bounding memory.
    pub(crate) fn bytes(&self) -> usize {
        self.ranges.iter().map(|(b, e)| b.len() + e.len()).sum()
    }

    /// Index of the first range that ends after `key`.
    fn first_ending_after(&self, key: &[u8]) -> usize {
        self.ranges.partition_point(|(_, e)| e.as_slice() <= key)
    }

    /// Adds `[begin, end)`, merging it with the ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        // ranges [first, last) overlap or touch the new one
        let first = self.ranges.partition_point(|(_, e)| e.as_slice() < begin);
        let last = self.ranges.partition_point(|(b, _)| b.as_slice() <= end);
        let mut merged = (begin.to_vec(), end.to_vec());
        if first < last {
            if self.ranges[first].0 < merged.0 {
                merged.0 = std::mem::take(&mut self.ranges[first].0);
            }
            if self.ranges[last - 1].1 > merged.1 {
                merged.1 = std::mem::take(&mut self.ranges[last - 1].1);
            }
        }
        self.ranges.splice(first..last, [merged]);
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.ranges
            .get(self.first_ending_after(key))
            .is_some_and(|(b, _)| b.as_slice() <= key)
    }

    /// Whether `[begin, end)` shares a key with this set.
    pub(crate) fn intersects(&self, begin: &[u8], end: &[u8]) -> bool {
        begin < end
            && self
                .ranges
                .get(self.first_ending_after(begin))
                .is_some_and(|(b, _)| b.as_slice() < end)
    }

    /// Whether the two sets share a key. Linear in the smaller set, logarithmic in the
    /// larger.
    pub(crate) fn intersects_set(&self, other: &RangeSet) -> bool {
        let (small, large) = match self.ranges.len().cmp(&other.ranges.len()) {
            Ordering::Greater => (other, self),
            _ => (self, other),
        };
        small.ranges.iter().any(|(b, e)| large.intersects(b, e))
    }

    /// The parts of `[begin, end)` outside this set, in ascending order.
    pub(crate) fn gaps(&self, begin: &[u8], end: &[u8]) -> Vec<Range> {
        let mut out = Vec::new();
        let mut cursor = begin;
        for (b, e) in &self.ranges[self.first_ending_after(begin)..] {
            if b.as_slice() >= end {
                break;
            }
            if cursor < b.as_slice() {
                out.push((cursor.to_vec(), b.clone()));
            }
            cursor = e.as_slice();
        }
        if cursor < end {
            out.push((cursor.to_vec(), end.to_vec()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn r(b: &str, e: &str) -> Range {
        (b.as_bytes().to_vec(), e.as_bytes().to_vec())
    }

    #[test]
    fn from_unsorted_merges_overlapping_and_touching() {
        let set = RangeSet::from_unsorted(vec![
            r("m", "p"),
            r("a", "c"),
            r("b", "d"),
            r("d", "e"),
            r("x", "x"),
        ]);
        assert_eq!(set.ranges(), &[r("a", "e"), r("m", "p")]);
    }

    #[test]
    fn point_range_holds_only_its_key() {
        let set = RangeSet::from_unsorted(vec![point(b"k")]);
        assert!(set.contains(b"k"));
        assert!(!set.contains(b"k\0"));
        assert!(!set.contains(b"j\xff"));
        assert!(set.intersects(b"a", b"k\0"));
        assert!(!set.intersects(b"k\0", b"z"));
    }

    #[test]
    fn gaps_are_the_complement_within_bounds() {
        let set = RangeSet::from_unsorted(vec![r("b", "c"), r("e", "g")]);
        assert_eq!(
            set.gaps(b"a", b"z"),
            vec![r("a", "b"), r("c", "e"), r("g", "z")]
        );
        assert_eq!(set.gaps(b"bb", b"f"), vec![r("c", "e")]);
        assert_eq!(set.gaps(b"e", b"f"), Vec::<Range>::new());
        assert_eq!(RangeSet::default().gaps(b"a", b"b"), vec![r("a", "b")]);
    }

    /// Every operation agrees with a model that keeps the set as a bitmap over a small
    /// key alphabet.
    #[test]
    fn agrees_with_a_bitmap_model() {
        let keys: Vec<Vec<u8>> = (0u8..12).map(|i| vec![b'a' + i]).collect();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let mut set = RangeSet::default();
            let mut model = [false; 12];
            let mut inserted = Vec::new();
            for _ in 0..rng.gen_range(0..6) {
                let b = rng.gen_range(0..12);
                let e = rng.gen_range(b..=12);
                let end = if e == 12 {
                    b"z".to_vec()
                } else {
                    keys[e].clone()
                };
                set.insert(&keys[b], &end);
                inserted.push((keys[b].clone(), end));
                model[b..e].iter_mut().for_each(|m| *m = true);
            }
            assert_eq!(set, RangeSet::from_unsorted(inserted));
            assert!(set.ranges().windows(2).all(|w| w[0].1 < w[1].0));
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(set.contains(k), model[i]);
            }
            let b = rng.gen_range(0..12);
            let e = rng.gen_range(b..12);
            assert_eq!(
                set.intersects(&keys[b], &keys[e]),
                model[b..e].iter().any(|m| *m)
            );
            let gaps = RangeSet::from_unsorted(set.gaps(&keys[b], &keys[e]));
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(gaps.contains(k), (b..e).contains(&i) && !model[i]);
            }
        }
    }
}
