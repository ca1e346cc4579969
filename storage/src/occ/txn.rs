//! A transaction of the engine: reads from its snapshot through its own writes, records
//! what it read, and hands both to [`Engine::commit`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::ranges::{point, Range, RangeSet};
use super::writes::{Overlay, WriteBuffer};
use super::{CommitRequest, Committer, Snapshot};
use crate::{KeyValue, StoreError, Transaction, Version, MAX_KEY_BYTES};

/// The largest limit of a range read that a blocking backend serves on the async thread.
const INLINE_RANGE_LIMIT: usize = 100;

pub(crate) struct OccTransaction<C: Committer> {
    engine: Arc<C>,
    /// Tells the committer when this transaction ends, however it ends.
    _live: Live<C>,
    snapshot: Arc<C::Snapshot>,
    read_version: Version,
    started: Instant,
    /// Everything read from the snapshot, for the conflict check.
    reads: Vec<Range>,
    writes: WriteBuffer,
}

impl<C: Committer> OccTransaction<C> {
    pub(crate) fn new(
        engine: Arc<C>,
        snapshot: Arc<C::Snapshot>,
        read_version: Version,
        started: Instant,
    ) -> OccTransaction<C> {
        OccTransaction {
            _live: Live {
                engine: engine.clone(),
                read_version,
            },
            engine,
            snapshot,
            read_version,
            started,
            reads: Vec::new(),
            writes: WriteBuffer::default(),
        }
    }

    fn check_age(&self) -> Result<(), StoreError> {
        if self.started.elapsed() > self.engine.max_age() {
            return Err(StoreError::Invalid(crate::TOO_OLD));
        }
        Ok(())
    }

    fn count_read(&self) {
        self.engine.counters().reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `[begin, end)` through `overlay`. On a blocking backend, only small reads
    /// run on the async thread: a limit of at most [`INLINE_RANGE_LIMIT`] and no own
    /// clears inside the range, which could hide any number of snapshot rows.
    async fn read_range(
        &self,
        overlay: Overlay,
        (begin, end): (&[u8], &[u8]),
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let small = limit != 0 && limit <= INLINE_RANGE_LIMIT && overlay.is_uncleared(begin, end);
        if !C::BLOCKING || small {
            return overlay.read(self.snapshot.as_ref(), limit, reverse);
        }
        let snapshot = self.snapshot.clone();
        tokio::task::spawn_blocking(move || overlay.read(snapshot.as_ref(), limit, reverse))
            .await
            .map_err(|e| StoreError::Io(format!("range read task failed: {e}")))?
    }
}

#[async_trait]
impl<C: Committer> Transaction for OccTransaction<C> {
    fn read_version(&self) -> Version {
        self.read_version
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_age()?;
        if key.len() > MAX_KEY_BYTES {
            return Err(StoreError::TooLarge("key"));
        }
        self.count_read();
        // a key this transaction wrote does not depend on the snapshot: no conflict
        if let Some(own) = self.writes.lookup(key) {
            return Ok(own.map(<[u8]>::to_vec));
        }
        let value = self.snapshot.get(key)?;
        self.reads.push(point(key));
        Ok(value)
    }

    async fn get_range(
        &mut self,
        begin: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.check_age()?;
        self.count_read();
        if begin >= end {
            return Ok(Vec::new());
        }
        let overlay = self.writes.overlay(begin, end);
        let rows = self
            .read_range(overlay, (begin, end), limit, reverse)
            .await?;
        // with a limit that was reached, only the part up to the last row was read
        let read = match rows.last() {
            Some((last, _)) if limit != 0 && rows.len() == limit => {
                if reverse {
                    (last.clone(), end.to_vec())
                } else {
                    (begin.to_vec(), point(last).1)
                }
            }
            _ => (begin.to_vec(), end.to_vec()),
        };
        self.reads.push(read);
        Ok(rows)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes.set(key, value);
    }

    fn clear(&mut self, key: &[u8]) {
        self.writes.clear(key);
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.writes.clear_range(begin, end);
    }

    fn add_read_conflict_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin < end {
            self.reads.push((begin.to_vec(), end.to_vec()));
        }
    }

    async fn commit(self: Box<Self>) -> Result<Version, StoreError> {
        if self.writes.is_empty() {
            return Ok(self.read_version);
        }
        self.writes.check_limits()?;
        self.check_age()?;
        let OccTransaction {
            engine,
            _live: live,
            snapshot,
            read_version,
            reads,
            writes,
            ..
        } = *self;
        // let the backend release this snapshot's resources before the commit
        drop(snapshot);
        let request = CommitRequest {
            read_version,
            reads: RangeSet::from_unsorted(reads),
            mutations: writes.into_mutations(),
        };
        // `live` ends with the commit: until its conflict check, the log must keep
        // every commit after this transaction's read version (if this future is dropped
        // while the commit waits in a queue, `live` ends early; the log then may no
        // longer reach back to the read version, and the commit is refused, never let
        // through unchecked)
        let request = match engine.enqueue(request) {
            Ok(answered) => {
                let result = answered.await.unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(
                        "the store's commit thread stopped".into(),
                    ))
                });
                drop(live);
                return result;
            }
            Err(request) => request,
        };
        if !C::BLOCKING {
            let result = engine.commit(request);
            drop(live);
            return result;
        }
        tokio::task::spawn_blocking(move || {
            let result = engine.commit(request);
            drop(live);
            result
        })
        .await
        .map_err(|e| StoreError::Io(format!("commit task failed: {e}")))?
    }
}

/// A live transaction's registration with its committer: [`Committer::finished`] when
/// dropped.
struct Live<C: Committer> {
    engine: Arc<C>,
    read_version: Version,
}

impl<C: Committer> Drop for Live<C> {
    fn drop(&mut self) {
        self.engine.finished(self.read_version);
    }
}
