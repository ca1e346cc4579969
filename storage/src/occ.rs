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
//! With a blocking backend (a disk), commits go through a queue to one commit thread,
//! which takes whatever waits (up to [`MAX_GROUP`]) as a group: each request is checked
//! in order, against the log and the group's earlier ones, gets its own version and
//! change batch, and the accepted ones are applied as one backend write, one sync. A
//! waiting commit holds no thread.
//!
//! If a backend fails to apply a batch, the engine cannot know what reached the disk, so
//! it refuses every later transaction (`Unavailable`) until the store is reopened.

mod log;
pub(crate) mod ranges;
mod txn;
mod writes;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};

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
/// The most commits a blocking backend applies as one write (one sync), and the most
/// mutation bytes such a group gathers before it is applied.
const MAX_GROUP: usize = 64;
const MAX_GROUP_BYTES: usize = 8 << 20;

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

impl CommitRequest {
    /// The bytes of keys and values it writes.
    fn bytes(&self) -> usize {
        self.mutations.iter().map(Mutation::bytes).sum()
    }
}

/// Where a queued commit's outcome goes.
pub(crate) type Answer = oneshot::Receiver<Result<Version, StoreError>>;

/// A commit waiting for the commit thread.
struct Queued {
    request: CommitRequest,
    answer: oneshot::Sender<Result<Version, StoreError>>,
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
    fn commit(self: &Arc<Self>, request: CommitRequest) -> Result<Version, StoreError>;
    /// Takes `request` to commit without a thread waiting for it (the engine's commit
    /// thread, which commits it with whatever else is waiting, see
    /// [`Engine::commit_group`]; the raft store's task) and answers on the returned
    /// channel; gives it back when this committer cannot (then `commit`).
    fn enqueue(self: &Arc<Self>, request: CommitRequest) -> Result<Answer, CommitRequest> {
        Err(request)
    }
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
    /// The commit thread's queue (blocking backends): commits wait there without
    /// holding a thread each, and go to the backend in groups.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl<B: Backend> Engine<B> {
    /// Starts an engine over `backend`, whose newest applied version is `version`; with
    /// a commit thread when the backend blocks.
    pub(crate) fn new(backend: B, version: Version) -> Result<Arc<Engine<B>>, StoreError> {
        let engine = Arc::new(Engine::with_max_age(backend, version, MAX_TRANSACTION_AGE)?);
        if B::BLOCKING {
            engine.start_commit_thread()?;
        }
        Ok(engine)
    }

    /// Starts the thread that commits what [`Committer::enqueue`] queues. It holds the
    /// engine weakly, and ends when the engine (the queue's sender) is gone.
    fn start_commit_thread(self: &Arc<Self>) -> Result<(), StoreError> {
        let (queue, queued) = mpsc::channel();
        let engine = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("store-commits".into())
            .spawn(move || commit_groups(engine, queued))
            .map_err(|e| StoreError::Io(format!("cannot start the commit thread: {e}")))?;
        let _ = self.queue.set(queue);
        Ok(())
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
            queue: OnceLock::new(),
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
        self.commit_group(vec![request])
            .pop()
            .unwrap_or_else(|| Err(StoreError::Io("a commit got no answer".into())))
    }

    /// Validates `requests` in order, each against the commits after its read version
    /// (earlier ones of the group included), applies the accepted ones as one backend
    /// write, durable at once, and publishes each as its own version, in order: as if
    /// committed one by one, with one sync. Answers each request, in order. Blocks on the
    /// backend's I/O.
    fn commit_group(&self, requests: Vec<CommitRequest>) -> Vec<Result<Version, StoreError>> {
        let mut log = self.lock_commit();
        let version = match self.read_current(|c| match &c.failed {
            Some(reason) => Err(StoreError::Unavailable(reason.clone())),
            None => Ok(c.version),
        }) {
            Ok(version) => version,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        let now = Instant::now();
        let mut next = version;
        let mut answers = Vec::with_capacity(requests.len());
        let mut accepted: Vec<(Version, Vec<Mutation>)> = Vec::with_capacity(requests.len());
        for request in requests {
            if log.conflicts(request.read_version, &request.reads) {
                self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                answers.push(Err(StoreError::Conflict));
                continue;
            }
            next += 1;
            log.push(next, RangeSet::written(&request.mutations), now);
            answers.push(Ok(next));
            accepted.push((next, request.mutations));
        }
        if accepted.is_empty() {
            return answers;
        }
        let applied = match accepted.as_slice() {
            [(_, only)] => self.backend.apply(next, only),
            group => {
                let all: Vec<Mutation> =
                    group.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
                self.backend.apply(next, &all)
            }
        }
        .and_then(|()| self.backend.snapshot());
        let snapshot = match applied {
            Ok(snapshot) => Arc::new(snapshot),
            Err(error) => {
                tracing::error!(%error, version = next, "store commit failed; refusing further transactions until reopened");
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                current.failed = Some(format!(
                    "a commit failed ({error}); the store must be reopened"
                ));
                // what the group wrote may or may not be on disk
                return answers
                    .into_iter()
                    .map(|a| a.and(Err(error.clone())))
                    .collect();
            }
        };
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            current.version = next;
            current.snapshot = snapshot;
        }
        log.release_through(self.releasable());
        self.counters
            .write_commits
            .fetch_add(accepted.len() as u64, Ordering::Relaxed);
        for (version, mutations) in accepted {
            self.counters
                .mutations
                .fetch_add(mutations.len() as u64, Ordering::Relaxed);
            // no receiver is not an error: nobody is listening yet
            let _ = self.feed.send(Arc::new(ChangeBatch { version, mutations }));
        }
        answers
    }
}

/// The commit thread: takes what is queued, up to a group's worth, commits it as one
/// group, answers each, and again; ends when the engine is gone.
fn commit_groups<B: Backend>(engine: Weak<Engine<B>>, queued: mpsc::Receiver<Queued>) {
    while let Ok(first) = queued.recv() {
        let mut bytes = first.request.bytes();
        let mut group = vec![first];
        while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
            match queued.try_recv() {
                Ok(next) => {
                    bytes += next.request.bytes();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let (requests, answers): (Vec<_>, Vec<_>) =
            group.into_iter().map(|q| (q.request, q.answer)).unzip();
        // the engine is let go before anyone hears back: whoever then drops the store
        // closes it (its file) at once
        let results = match engine.upgrade() {
            Some(engine) => engine.commit_group(requests),
            None => requests
                .iter()
                .map(|_| Err(StoreError::Unavailable("the store is closed".into())))
                .collect(),
        };
        for (answer, result) in answers.into_iter().zip(results) {
            // a dropped receiver: its transaction stopped waiting, the commit stands
            let _ = answer.send(result);
        }
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

    fn commit(self: &Arc<Self>, request: CommitRequest) -> Result<Version, StoreError> {
        self.commit_request(request)
    }

    fn enqueue(self: &Arc<Self>, request: CommitRequest) -> Result<Answer, CommitRequest> {
        let Some(queue) = self.queue.get() else {
            return Err(request);
        };
        let (answer, answered) = oneshot::channel();
        match queue.send(Queued { request, answer }) {
            Ok(()) => Ok(answered),
            Err(mpsc::SendError(q)) => Err(q.request),
        }
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
