//! The recent-commit log that conflict checks run against.
//!
//! Each entry is the set of ranges one commit wrote. A transaction that read at version
//! `r` conflicts if any commit after `r` wrote into its read set. The log is bounded (by
//! age and by bytes); once it no longer holds every commit after `r`, the answer is
//! unknown and the transaction is refused with a conflict, which is safe: transactions
//! live at most a few seconds, so this only happens under an extreme write burst.
//! Where the live transactions are known (the local engine), the log also lets go of
//! every commit at or below the oldest live read version
//! ([`CommitLog::release_through`]): after a burst of writes it is empty again as soon
//! as the burst's transactions end.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ranges::RangeSet;
use crate::Version;

/// Bytes charged per entry on top of its keys, so many tiny commits are bounded too.
const ENTRY_OVERHEAD: usize = 64;

struct Entry {
    version: Version,
    at: Instant,
    writes: RangeSet,
    bytes: usize,
}

pub(crate) struct CommitLog {
    entries: VecDeque<Entry>,
    /// Every commit after this version is in `entries`.
    floor: Version,
    bytes: usize,
    /// Entries older than this are dropped (no live transaction can need them).
    max_age: Duration,
    max_bytes: usize,
}

impl CommitLog {
    /// An empty log for a store whose newest commit is `version`.
    pub(crate) fn new(version: Version, max_age: Duration, max_bytes: usize) -> CommitLog {
        CommitLog {
            entries: VecDeque::new(),
            floor: version,
            bytes: 0,
            max_age,
            max_bytes,
        }
    }

    /// Whether a transaction that read `reads` at `read_version` must be refused: a
    /// commit after `read_version` wrote into `reads`, or the log no longer reaches back
    /// to `read_version` to tell.
    pub(crate) fn conflicts(&self, read_version: Version, reads: &RangeSet) -> bool {
        if reads.is_empty() {
            return false;
        }
        if read_version < self.floor {
            return true;
        }
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.version > read_version)
            .any(|e| e.writes.intersects_set(reads))
    }

    /// Commits held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops every entry at or below `version`: no live transaction read below it.
    pub(crate) fn release_through(&mut self, version: Version) {
        while let Some(oldest) = self.entries.front() {
            if oldest.version > version {
                break;
            }
            self.floor = oldest.version;
            self.bytes -= oldest.bytes;
            self.entries.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 64 {
            // a burst's worth of slots is not kept
            self.entries.shrink_to(64);
        }
    }

    /// Records the ranges written by the commit of `version` (newer than every entry),
    /// then drops entries older than the age limit or beyond the byte budget.
    pub(crate) fn push(&mut self, version: Version, writes: RangeSet, now: Instant) {
        debug_assert!(self.entries.back().is_none_or(|e| e.version < version));
        let bytes = writes.bytes() + ENTRY_OVERHEAD;
        self.bytes += bytes;
        self.entries.push_back(Entry {
            version,
            at: now,
            writes,
            bytes,
        });
        while let Some(oldest) = self.entries.front() {
            let expired = now.saturating_duration_since(oldest.at) > self.max_age;
            if !expired && self.bytes <= self.max_bytes {
                break;
            }
            self.floor = oldest.version;
            self.bytes -= oldest.bytes;
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::occ::ranges::point;

    fn keys(ks: &[&str]) -> RangeSet {
        RangeSet::from_unsorted(ks.iter().map(|k| point(k.as_bytes())).collect())
    }

    #[test]
    fn only_commits_after_the_read_version_count() {
        let now = Instant::now();
        let mut log = CommitLog::new(10, Duration::from_secs(5), 1 << 20);
        log.push(11, keys(&["a"]), now);
        log.push(12, keys(&["b"]), now);
        assert!(log.conflicts(10, &keys(&["a"])));
        assert!(!log.conflicts(11, &keys(&["a"])));
        assert!(log.conflicts(11, &keys(&["b", "c"])));
        assert!(!log.conflicts(12, &keys(&["a", "b"])));
        assert!(!log.conflicts(10, &keys(&["c"])));
        // nothing read, nothing to conflict with, however old
        assert!(!log.conflicts(0, &RangeSet::default()));
    }

    #[test]
    fn a_read_version_older_than_the_log_conflicts() {
        let now = Instant::now();
        let mut log = CommitLog::new(10, Duration::from_secs(5), 1 << 20);
        assert!(log.conflicts(9, &keys(&["a"])));
        log.push(11, keys(&["a"]), now);
        assert!(!log.conflicts(10, &keys(&["z"])));
    }

    #[test]
    fn entries_expire_by_age_and_by_bytes() {
        let start = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(5), 1 << 20);
        log.push(1, keys(&["a"]), start);
        log.push(2, keys(&["b"]), start + Duration::from_secs(3));
        log.push(3, keys(&["c"]), start + Duration::from_secs(6));
        // entry 1 is more than 5 s older than the newest commit: gone
        assert!(log.conflicts(0, &keys(&["z"])));
        assert!(!log.conflicts(1, &keys(&["z"])));
        assert!(log.conflicts(1, &keys(&["b"])));

        let mut small = CommitLog::new(0, Duration::from_secs(5), 3 * ENTRY_OVERHEAD);
        for v in 1..=10 {
            small.push(v, keys(&["k"]), start);
        }
        assert!(small.entries.len() < 3);
        assert!(small.conflicts(7, &keys(&["other"])));
        assert!(!small.conflicts(9, &keys(&["other"])));
    }

    #[test]
    fn released_entries_are_gone_and_older_reads_conflict() {
        let now = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(5), 1 << 20);
        for v in 1..=100 {
            log.push(v, keys(&["a"]), now);
        }
        log.release_through(98);
        assert_eq!(log.entries.len(), 2);
        // a reader at 98 still sees the two commits after it
        assert!(log.conflicts(98, &keys(&["a"])));
        assert!(!log.conflicts(100, &keys(&["a"])));
        // one below the floor cannot be told any more: refused
        assert!(log.conflicts(97, &keys(&["z"])));
        log.release_through(100);
        assert!(log.entries.is_empty());
        assert_eq!(log.bytes, 0);
        assert!(log.entries.capacity() <= 64);
        assert!(!log.conflicts(100, &keys(&["a"])));
    }
}
