//! The optimistic-concurrency engine shared by the memory and redb backends.
//!
//! A backend is small ([`Backend`]): it hands out read-only [`Snapshot`]s of its latest
//! state and applies batches of mutations atomically and durably. The engine adds
//! FoundationDB's transaction semantics on top:
//!
//! - `begin` takes the current version and its snapshot; the transaction reads that
//!   snapshot through its own buffered writes (`writes.rs`) and records what it read
//!   (point keys and ranges).
//! - `commit`, under one commit lock: check the recent-commit log (`log.rs`) for a commit
//!   after the read version that wrote into the read set (then `Conflict`); apply the
//!   batch through the backend, durable when that returns; publish the new snapshot and
//!   version to later transactions; record the written ranges; send the [`ChangeBatch`]
//!   on the change feed. Publishing under the lock keeps the feed in commit order.
//!
//! Backward validation against every commit since the read version makes the history
//! serializable. Read-only transactions commit without taking the lock.
//!
//! If a backend fails to apply a batch, the engine cannot know what reached the disk, so
//! it refuses every later transaction (`Unavailable`) until the store is reopened.

mod log;
pub(crate) mod ranges;
mod txn;
mod writes;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use self::log::CommitLog;
use self::ranges::RangeSet;
use crate::{ChangeBatch, Counters, KeyValue, Mutation, StoreError, Version};

pub(crate) use self::txn::OccTransaction;

/// How long a transaction may run (FoundationDB's limit).
const MAX_TRANSACTION_AGE: Duration = Duration::from_secs(5);
/// Memory budget of the recent-commit log.
const COMMIT_LOG_BYTES: usize = 64 << 20;
/// Change batches a subscriber may fall behind before it gets `Lagged`.
const FEED_CAPACITY: usize = 4096;

/// Rows of a range scan, in the order asked for.
pub(crate) type Rows<'a> = Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + 'a>;

/// A consistent, read-only view of a backend as of one version.
pub(crate) trait Snapshot: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The pairs in `[begin, end)` (`begin < end`), ascending or descending.
    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
    ) -> Result<Rows<'a>, StoreError>;
}

/// Where the data lives.
pub(crate) trait Backend: Send + Sync + 'static {
    type Snapshot: Snapshot;
    /// Whether applying and scanning may block on I/O, so the engine runs them on
    /// tokio's blocking threads.
    const BLOCKING: bool;
    /// A snapshot of everything applied so far.
    fn snapshot(&self) -> Result<Self::Snapshot, StoreError>;
    /// Applies `mutations` as one atomic step that makes `version` the newest version;
    /// durable when this returns `Ok`. On `Err` the batch may or may not have been
    /// applied.
    fn apply(&self, version: Version, mutations: &[Mutation]) -> Result<(), StoreError>;
}

/// What `begin` reads: the newest commit.
struct Current<S> {
    version: Version,
    snapshot: Arc<S>,
    /// Set when a batch failed to apply: the store refuses all further work.
    failed: Option<String>,
}

/// A finished transaction's claim to commit.
pub(crate) struct CommitRequest {
    pub(crate) read_version: Version,
    pub(crate) reads: RangeSet,
    pub(crate) mutations: Vec<Mutation>,
}

/// Decides and applies commits for [`OccTransaction`]s: the local [`Engine`], or the raft
/// store, which has the replicated state machine decide.
pub(crate) trait Committer: Send + Sync + 'static {
    type Snapshot: Snapshot;
    /// Whether reads and commits may block on I/O (then they run on blocking threads).
    const BLOCKING: bool;
    fn counters(&self) -> &Counters;
    /// How long a transaction may run.
    fn max_age(&self) -> Duration;
    /// Validates and applies one commit; durable when it returns `Ok`.
    fn commit(&self, request: CommitRequest) -> Result<Version, StoreError>;
    /// A transaction that began at `read_version` ended (committed, failed or
    /// dropped). Only a committer that counts its live transactions cares.
    fn finished(&self, _read_version: Version) {}
}

pub(crate) struct Engine<B: Backend> {
    backend: B,
    /// Held for the whole of a commit; guards the log of recent commits.
    commit: Mutex<CommitLog>,
    /// The read versions of live transactions, with how many share each. Locked only
    /// briefly; taken after `commit` and before `current` where they nest.
    live: Mutex<BTreeMap<Version, usize>>,
    current: RwLock<Current<B::Snapshot>>,
    feed: broadcast::Sender<Arc<ChangeBatch>>,
    counters: Counters,
    max_age: Duration,
}

impl<B: Backend> Engine<B> {
    /// Starts an engine over `backend`, whose newest applied version is `version`.
    pub(crate) fn new(backend: B, version: Version) -> Result<Arc<Engine<B>>, StoreError> {
        Ok(Arc::new(Engine::with_max_age(
            backend,
            version,
            MAX_TRANSACTION_AGE,
        )?))
    }

    fn with_max_age(backend: B, version: Version, max_age: Duration) -> Result<Self, StoreError> {
        let snapshot = Arc::new(backend.snapshot()?);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Engine {
            backend,
            commit: Mutex::new(CommitLog::new(version, max_age, COMMIT_LOG_BYTES)),
            live: Mutex::new(BTreeMap::new()),
            current: RwLock::new(Current {
                version,
                snapshot,
                failed: None,
            }),
            feed,
            counters: Counters::default(),
            max_age,
        })
    }

    #[cfg(test)]
    fn backend(&self) -> &B {
        &self.backend
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.feed.subscribe()
    }

    pub(crate) fn committed_version(&self) -> Version {
        self.read_current(|c| c.version)
    }

    fn read_current<T>(&self, f: impl FnOnce(&Current<B::Snapshot>) -> T) -> T {
        f(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn lock_commit(&self) -> MutexGuard<'_, CommitLog> {
        // a panic under the lock cannot leave the log half-updated in a way that
        // matters: at worst an entry is missing, and `failed` stops the store
        self.commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_live(&self) -> MutexGuard<'_, BTreeMap<Version, usize>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every commit at or below this version can leave the log: the oldest live
    /// transaction's read version, or the newest commit when none is live (a
    /// transaction that begins later reads at least that). Called under the commit lock,
    /// so the newest commit cannot move meanwhile.
    fn releasable(&self) -> Version {
        let oldest = self.lock_live().keys().next().copied();
        oldest.unwrap_or_else(|| self.committed_version())
    }

    /// Starts a transaction at the newest committed version.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<OccTransaction<Engine<B>>, StoreError> {
        // the start time is taken before the version is read, so that every commit
        // after the read version happened after the start (see `CommitLog`)
        let started = Instant::now();
        // registered under the same lock the log's release reads, so that a commit
        // never releases what this transaction's read version still needs
        let (version, snapshot) = {
            let mut live = self.lock_live();
            let (version, snapshot) = self.read_current(|c| match &c.failed {
                Some(reason) => Err(StoreError::Unavailable(reason.clone())),
                None => Ok((c.version, c.snapshot.clone())),
            })?;
            *live.entry(version).or_default() += 1;
            (version, snapshot)
        };
        Ok(OccTransaction::new(
            self.clone(),
            snapshot,
            version,
            started,
        ))
    }

    /// Validates, applies and publishes one commit. Blocks on the backend's I/O.
    pub(crate) fn commit_request(&self, request: CommitRequest) -> Result<Version, StoreError> {
        let CommitRequest {
            read_version,
            reads,
            mutations,
        } = request;
        let mut log = self.lock_commit();
        let version = self.read_current(|c| match &c.failed {
            Some(reason) => Err(StoreError::Unavailable(reason.clone())),
            None => Ok(c.version),
        })?;
        if log.conflicts(read_version, &reads) {
            self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Conflict);
        }
        let next = version + 1;
        let applied = self
            .backend
            .apply(next, &mutations)
            .and_then(|()| self.backend.snapshot());
        let snapshot = match applied {
            Ok(snapshot) => Arc::new(snapshot),
            Err(error) => {
                tracing::error!(%error, version = next, "store commit failed; refusing further transactions until reopened");
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                current.failed = Some(format!(
                    "a commit failed ({error}); the store must be reopened"
                ));
                return Err(error);
            }
        };
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            current.version = next;
            current.snapshot = snapshot;
        }
        log.push(next, RangeSet::written(&mutations), Instant::now());
        log.release_through(self.releasable());
        self.counters.write_commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .mutations
            .fetch_add(mutations.len() as u64, Ordering::Relaxed);
        // no receiver is not an error: nobody is listening yet
        let _ = self.feed.send(Arc::new(ChangeBatch {
            version: next,
            mutations,
        }));
        Ok(next)
    }
}

impl<B: Backend> Committer for Engine<B> {
    type Snapshot = B::Snapshot;
    const BLOCKING: bool = B::BLOCKING;

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn max_age(&self) -> Duration {
        self.max_age
    }

    fn commit(&self, request: CommitRequest) -> Result<Version, StoreError> {
        self.commit_request(request)
    }

    fn finished(&self, read_version: Version) {
        {
            let mut live = self.lock_live();
            if let Some(n) = live.get_mut(&read_version) {
                *n -= 1;
                if *n == 0 {
                    live.remove(&read_version);
                }
            }
        }
        // a commit in progress releases at its end; never wait for its I/O here
        if let Ok(mut log) = self.commit.try_lock() {
            log.release_through(self.releasable());
        }
    }
}

#[cfg(test)]
mod tests;
