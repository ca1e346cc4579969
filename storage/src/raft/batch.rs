//! Group commit for the raft store: the commits waiting to be proposed go as one log entry.
//!
//! openraft 0.9 handles one proposal at a time: it appends the proposal's entry to the
//! leader's log and waits for the sync before it looks at the next proposal or sends the
//! entry to the followers. A proposal per commit therefore cost the leader one sync per
//! write, one after another; under a storm of starts, with syncs slowed to tens of
//! milliseconds by the servers' own disk traffic, proposals queued for seconds behind
//! them, the leader's heartbeats with them, and the cluster stopped serving. Commits are
//! now proposed together: while [`IN_FLIGHT`] proposals are under way, new ones wait, and
//! all that waited go in the next entry (up to [`MAX_COMMITS`] and [`MAX_BYTES`]).
//!
//! This file holds the queue; `store.rs` proposes what it hands out.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{Commit, CommitResult};
use crate::StoreError;

/// Proposals a node keeps under way at once: while one waits for its quorum, the next
/// can be appended.
pub(super) const IN_FLIGHT: usize = 2;
/// The most commits in one entry.
pub(super) const MAX_COMMITS: usize = 256;
/// The most key and value bytes in one entry, unless a single commit carries more.
pub(super) const MAX_BYTES: usize = 512 << 10;

/// What a waiting commit is told: what it came to, or why it is not known.
pub(super) type Answer = oneshot::Sender<Result<CommitResult, StoreError>>;

/// A commit waiting to be proposed.
pub(super) struct Waiting {
    pub(super) commit: Commit,
    pub(super) answer: Answer,
}

/// The commits waiting to be proposed, and how many proposals are under way.
#[derive(Default)]
pub(super) struct Batcher {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    waiting: VecDeque<Waiting>,
    in_flight: usize,
}

impl Pending {
    /// The commits that wait, oldest first, within the limits of one entry (at least one).
    fn take(&mut self) -> Vec<Waiting> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = self.waiting.front() {
            let size = next.commit.bytes();
            if !batch.is_empty() && (batch.len() == MAX_COMMITS || bytes + size > MAX_BYTES) {
                break;
            }
            bytes += size;
            batch.extend(self.waiting.pop_front());
        }
        batch
    }
}

impl Batcher {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `waiting`. When fewer than [`IN_FLIGHT`] proposals are under way, the
    /// caller gets a batch to propose at once (and owns that proposal's slot).
    pub(super) fn add(&self, waiting: Waiting) -> Option<Vec<Waiting>> {
        let mut pending = self.pending();
        pending.waiting.push_back(waiting);
        if pending.in_flight == IN_FLIGHT {
            return None;
        }
        pending.in_flight += 1;
        Some(pending.take())
    }

    /// A proposal ended: the next batch for its slot, or `None` (the slot is free) when
    /// nothing waits.
    pub(super) fn next(&self) -> Option<Vec<Waiting>> {
        let mut pending = self.pending();
        if pending.waiting.is_empty() {
            pending.in_flight -= 1;
            return None;
        }
        Some(pending.take())
    }

    /// Frees a slot whose proposals stopped before [`Batcher::next`] freed it (the task
    /// panicked or was dropped): what waits goes with the next commit added.
    pub(super) fn release(&self) {
        let mut pending = self.pending();
        pending.in_flight = pending.in_flight.saturating_sub(1);
    }
}

/// Owns a proposal slot while its task runs: frees it if the task ends any other way
/// than through [`Batcher::next`] returning `None`.
pub(super) struct Slot<'a> {
    batcher: &'a Batcher,
    held: bool,
}

impl<'a> Slot<'a> {
    pub(super) fn new(batcher: &'a Batcher) -> Slot<'a> {
        Slot {
            batcher,
            held: true,
        }
    }

    /// The next batch for this slot, or `None` once it is free.
    pub(super) fn next(&mut self) -> Option<Vec<Waiting>> {
        let next = self.batcher.next();
        self.held = next.is_some();
        next
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.held {
            self.batcher.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mutation;

    fn waiting(
        value_bytes: usize,
    ) -> (Waiting, oneshot::Receiver<Result<CommitResult, StoreError>>) {
        let (answer, answered) = oneshot::channel();
        let commit = Commit {
            read_version: 0,
            reads: vec![],
            mutations: vec![Mutation::Set {
                key: b"k".to_vec(),
                value: vec![0; value_bytes],
            }],
            request: 0,
        };
        (Waiting { commit, answer }, answered)
    }

    #[test]
    fn commits_wait_while_the_slots_are_taken_and_go_together_after() {
        let batcher = Batcher::default();
        let mut receivers = Vec::new();
        // the first IN_FLIGHT commits are proposed at once, alone
        for _ in 0..IN_FLIGHT {
            let (w, r) = waiting(1);
            receivers.push(r);
            assert_eq!(batcher.add(w).map(|b| b.len()), Some(1));
        }
        // the next ones wait for a slot ...
        for _ in 0..10 {
            let (w, r) = waiting(1);
            receivers.push(r);
            assert!(batcher.add(w).is_none());
        }
        // ... and the first slot to come free proposes all of them
        assert_eq!(batcher.next().map(|b| b.len()), Some(10));
        // nothing waits: both slots come free, and the next commit goes at once
        assert!(batcher.next().is_none());
        assert!(batcher.next().is_none());
        let (w, _r) = waiting(1);
        assert_eq!(batcher.add(w).map(|b| b.len()), Some(1));
    }

    #[test]
    fn a_slot_dropped_under_way_is_freed() {
        let batcher = Batcher::default();
        let slots: Vec<Slot<'_>> = (0..IN_FLIGHT)
            .map(|_| {
                assert!(batcher.add(waiting(1).0).is_some());
                Slot::new(&batcher)
            })
            .collect();
        assert!(batcher.add(waiting(1).0).is_none(), "every slot is taken");
        // their tasks end without finishing (a panic): the slots are free again, and the
        // commit that waited goes with the next one
        drop(slots);
        assert_eq!(batcher.add(waiting(1).0).map(|b| b.len()), Some(2));
        // a slot that ran out of work freed itself through `next`, and frees no other
        let mut slot = Slot::new(&batcher);
        assert!(slot.next().is_none());
        drop(slot);
        assert_eq!(batcher.pending().in_flight, 0);
    }

    #[test]
    fn an_entry_holds_at_most_max_commits_and_max_bytes_but_always_one() {
        let batcher = Batcher::default();
        for _ in 0..IN_FLIGHT {
            assert!(batcher.add(waiting(1).0).is_some());
        }
        for _ in 0..MAX_COMMITS + 5 {
            assert!(batcher.add(waiting(1).0).is_none());
        }
        assert_eq!(batcher.next().map(|b| b.len()), Some(MAX_COMMITS));
        assert_eq!(batcher.next().map(|b| b.len()), Some(5));
        // by bytes: two commits of 60 % of the limit go one at a time; one larger than the
        // limit still goes, alone
        for size in [MAX_BYTES * 6 / 10, MAX_BYTES * 6 / 10, MAX_BYTES * 2] {
            assert!(batcher.add(waiting(size).0).is_none());
        }
        for _ in 0..3 {
            assert_eq!(batcher.next().map(|b| b.len()), Some(1));
        }
        assert!(batcher.next().is_none());
    }
}
