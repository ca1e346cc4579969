//! A transaction's buffered writes, and how its reads see them (read-your-writes).
//!
//! The writes are kept twice: as the ordered list of mutations that the commit applies and
//! the change feed publishes, and as an overlay for reads: the keys set or cleared since
//! the last `clear_range` that covers them, plus the union of cleared ranges. A key's own
//! value is then its overlay entry if any, else absent if a cleared range holds it, else
//! the snapshot's.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::ranges::{Range, RangeSet};
use super::Snapshot;
use crate::{
    KeyValue, Mutation, StoreError, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES,
};

#[derive(Default)]
pub(crate) struct WriteBuffer {
    mutations: Vec<Mutation>,
    /// `Some(value)` set, `None` cleared, after any clear of a range that holds the key.
    points: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    cleared: RangeSet,
    /// Key and value bytes of `mutations`, against `MAX_TRANSACTION_BYTES`.
    bytes: usize,
    /// The first size limit broken, reported at commit.
    too_large: Option<&'static str>,
}

impl WriteBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }

    fn check_key(&mut self, key: &[u8], max: usize) {
        if key.len() > max {
            self.too_large.get_or_insert("key");
        }
        self.bytes += key.len();
    }

    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        self.check_key(key, MAX_KEY_BYTES);
        if value.len() > MAX_VALUE_BYTES {
            self.too_large.get_or_insert("value");
        }
        self.bytes += value.len();
        self.points.insert(key.to_vec(), Some(value.to_vec()));
        self.mutations.push(Mutation::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }

    pub(crate) fn clear(&mut self, key: &[u8]) {
        self.check_key(key, MAX_KEY_BYTES);
        self.points.insert(key.to_vec(), None);
        self.mutations.push(Mutation::Clear { key: key.to_vec() });
    }

    /// Clears `[begin, end)`; an empty or inverted range is ignored. The end may be one
    /// byte longer than a key (`key + 0x00` ends the range of exactly `key`).
    pub(crate) fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        self.check_key(begin, MAX_KEY_BYTES);
        self.check_key(end, MAX_KEY_BYTES + 1);
        let inside: Vec<Vec<u8>> = self
            .points
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in inside {
            self.points.remove(&k);
        }
        self.cleared.insert(begin, end);
        self.mutations.push(Mutation::ClearRange {
            begin: begin.to_vec(),
            end: end.to_vec(),
        });
    }

    /// This transaction's own answer for `key`: `Some(Some(value))` if it set the key,
    /// `Some(None)` if it cleared it, `None` if the snapshot decides.
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        match self.points.get(key) {
            Some(value) => Some(value.as_deref()),
            None if self.cleared.contains(key) => Some(None),
            None => None,
        }
    }

    /// The size limit this transaction broke, if any.
    pub(crate) fn check_limits(&self) -> Result<(), StoreError> {
        if let Some(what) = self.too_large {
            return Err(StoreError::TooLarge(what));
        }
        if self.bytes > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TooLarge("transaction"));
        }
        Ok(())
    }

    /// The mutations, in the order they were made.
    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        self.mutations
    }

    /// What a range read of `[begin, end)` needs from the buffer, as owned data so the
    /// read can run on another thread.
    pub(crate) fn overlay(&self, begin: &[u8], end: &[u8]) -> Overlay {
        Overlay {
            points: self
                .points
                .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            visible: self.cleared.gaps(begin, end),
        }
    }
}

/// One own write of a key: `Some(value)` set, `None` cleared.
type OwnWrite = (Vec<u8>, Option<Vec<u8>>);

/// The buffered writes inside one range read's bounds.
pub(crate) struct Overlay {
    /// Own sets and clears, ascending.
    points: Vec<OwnWrite>,
    /// The parts of the range where the snapshot shows through (not cleared), ascending.
    visible: Vec<Range>,
}

impl Overlay {
    /// Whether the snapshot shows through the whole range (no clears inside it).
    pub(crate) fn is_uncleared(&self, begin: &[u8], end: &[u8]) -> bool {
        matches!(self.visible.as_slice(), [(b, e)] if b == begin && e == end)
    }

    /// Reads the range through this overlay from `snapshot`: at most `limit` pairs
    /// (`0` = all), ascending or descending.
    pub(crate) fn read<S: Snapshot + ?Sized>(
        &self,
        snapshot: &S,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let want = if limit == 0 { usize::MAX } else { limit };
        let mut out = Vec::new();
        let mut points: Box<dyn Iterator<Item = &OwnWrite>> = if reverse {
            Box::new(self.points.iter().rev())
        } else {
            Box::new(self.points.iter())
        };
        let mut point = points.next();
        // whether `a` comes before `b` in the direction of the read
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        let visible: Box<dyn Iterator<Item = &Range>> = if reverse {
            Box::new(self.visible.iter().rev())
        } else {
            Box::new(self.visible.iter())
        };
        for (begin, end) in visible {
            for row in snapshot.scan(begin, end, reverse)? {
                let (key, value) = row?;
                // own writes that come first
                while let Some((pk, pv)) = point.filter(|(pk, _)| before(pk, &key)) {
                    if let Some(pv) = pv {
                        out.push((pk.clone(), pv.clone()));
                        if out.len() == want {
                            return Ok(out);
                        }
                    }
                    point = points.next();
                }
                match point {
                    // an own write of the same key replaces the snapshot's
                    Some((pk, pv)) if *pk == key => {
                        if let Some(pv) = pv {
                            out.push((key, pv.clone()));
                        }
                        point = points.next();
                    }
                    _ => out.push((key, value)),
                }
                if out.len() == want {
                    return Ok(out);
                }
            }
        }
        while let Some((pk, pv)) = point {
            if let Some(pv) = pv {
                out.push((pk.clone(), pv.clone()));
                if out.len() == want {
                    break;
                }
            }
            point = points.next();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
