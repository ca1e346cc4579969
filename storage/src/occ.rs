//! The optimistic-concurrency engine shared by the memory and redb backends.
//!
//! The whole keyspace is held in memory as an immutable snapshot (`Arc<BTreeMap>`),
//! replaced at each commit; a transaction reads the snapshot of its read version and
//! buffers its writes. Commit, under one lock: check that no transaction committed since
//! the read version wrote into anything this one read (backward validation, which makes
//! the history serializable), make the batch durable through the [`Durable`] sink, then
//! publish the new snapshot and the change batch. Hub state is tens of MB at most, so a
//! copy per commit is affordable; a persistent map would remove that cost.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{
    ChangeBatch, Counters, KeyValue, Mutation, StoreError, Transaction, Version, MAX_KEY_BYTES,
    MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES,
};

pub(crate) type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Where committed batches are made durable before they are acknowledged.
pub(crate) trait Durable: Send + Sync + 'static {
    fn persist(&self, version: Version, mutations: &[Mutation]) -> Result<(), StoreError>;
}

/// No durability (the memory backend).
pub(crate) struct Volatile;

impl Durable for Volatile {
    fn persist(&self, _: Version, _: &[Mutation]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How old a transaction may get (FoundationDB's limit).
const MAX_TXN_AGE: Duration = Duration::from_secs(5);
/// How many recent commits are kept for conflict checks.
const LOG_LEN: usize = 20_000;

struct Committed {
    version: Version,
    /// Written ranges `[begin, end)`.
    writes: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Inner {
    snapshot: Arc<Map>,
    version: Version,
    log: VecDeque<Committed>,
}

pub(crate) struct Engine {
    inner: Mutex<Inner>,
    durable: Box<dyn Durable>,
    feed: broadcast::Sender<Arc<ChangeBatch>>,
    pub(crate) counters: Counters,
}

fn point_range(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = key.to_vec();
    end.push(0);
    (key.to_vec(), end)
}

fn overlaps(a: &(Vec<u8>, Vec<u8>), b: &(Vec<u8>, Vec<u8>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl Engine {
    pub(crate) fn new(map: Map, version: Version, durable: Box<dyn Durable>) -> Arc<Engine> {
        let (feed, _) = broadcast::channel(4096);
        Arc::new(Engine {
            inner: Mutex::new(Inner {
                snapshot: Arc::new(map),
                version,
                log: VecDeque::new(),
            }),
            durable,
            feed,
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn begin(self: &Arc<Self>) -> OccTransaction {
        let (snapshot, version) = {
            let g = self.lock();
            (g.snapshot.clone(), g.version)
        };
        OccTransaction {
            engine: self.clone(),
            snapshot,
            read_version: version,
            started: Instant::now(),
            reads: Vec::new(),
            mutations: Vec::new(),
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.feed.subscribe()
    }

    pub(crate) fn committed_version(&self) -> Version {
        self.lock().version
    }

    fn commit_sync(
        &self,
        read_version: Version,
        reads: &[(Vec<u8>, Vec<u8>)],
        mutations: Vec<Mutation>,
    ) -> Result<Version, StoreError> {
        let mut g = self.lock();
        if g.version > read_version {
            let oldest = g.log.front().map_or(g.version + 1, |c| c.version);
            if oldest > read_version + 1 {
                self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Conflict);
            }
            for c in g.log.iter().rev().take_while(|c| c.version > read_version) {
                if c.writes
                    .iter()
                    .any(|w| reads.iter().any(|r| overlaps(w, r)))
                {
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    return Err(StoreError::Conflict);
                }
            }
        }
        let version = g.version + 1;
        self.durable.persist(version, &mutations)?;
        let mut map = (*g.snapshot).clone();
        let mut writes = Vec::with_capacity(mutations.len());
        for m in &mutations {
            match m {
                Mutation::Set { key, value } => {
                    map.insert(key.clone(), value.clone());
                    writes.push(point_range(key));
                }
                Mutation::Clear { key } => {
                    map.remove(key);
                    writes.push(point_range(key));
                }
                Mutation::ClearRange { begin, end } => {
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((
                            Bound::Included(begin.as_slice()),
                            Bound::Excluded(end.as_slice()),
                        ))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        map.remove(&k);
                    }
                    writes.push((begin.clone(), end.clone()));
                }
            }
        }
        g.snapshot = Arc::new(map);
        g.version = version;
        g.log.push_back(Committed { version, writes });
        while g.log.len() > LOG_LEN {
            g.log.pop_front();
        }
        self.counters.write_commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .mutations
            .fetch_add(mutations.len() as u64, Ordering::Relaxed);
        // publish while still holding the lock, so batches go out in commit order
        let _ = self.feed.send(Arc::new(ChangeBatch { version, mutations }));
        Ok(version)
    }
}

pub(crate) struct OccTransaction {
    engine: Arc<Engine>,
    snapshot: Arc<Map>,
    read_version: Version,
    started: Instant,
    reads: Vec<(Vec<u8>, Vec<u8>)>,
    mutations: Vec<Mutation>,
}

impl OccTransaction {
    fn check_age(&self) -> Result<(), StoreError> {
        if self.started.elapsed() > MAX_TXN_AGE {
            return Err(StoreError::Invalid("transaction too old"));
        }
        Ok(())
    }

    /// This transaction's own view of `key`: `Some(Some(v))` written, `Some(None)`
    /// cleared, `None` untouched.
    fn own_write(&self, key: &[u8]) -> Option<Option<&Vec<u8>>> {
        for m in self.mutations.iter().rev() {
            match m {
                Mutation::Set { key: k, value } if k.as_slice() == key => return Some(Some(value)),
                Mutation::Clear { key: k } if k.as_slice() == key => return Some(None),
                Mutation::ClearRange { begin, end }
                    if key >= begin.as_slice() && key < end.as_slice() =>
                {
                    return Some(None)
                }
                _ => {}
            }
        }
        None
    }
}

#[async_trait]
impl Transaction for OccTransaction {
    fn read_version(&self) -> Version {
        self.read_version
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_age()?;
        self.engine.counters.reads.fetch_add(1, Ordering::Relaxed);
        if let Some(own) = self.own_write(key) {
            return Ok(own.cloned());
        }
        self.reads.push(point_range(key));
        Ok(self.snapshot.get(key).cloned())
    }

    async fn get_range(
        &mut self,
        begin: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.check_age()?;
        self.engine.counters.reads.fetch_add(1, Ordering::Relaxed);
        if begin >= end {
            return Ok(Vec::new());
        }
        self.reads.push((begin.to_vec(), end.to_vec()));
        let mut view: Map = self
            .snapshot
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for m in &self.mutations {
            match m {
                Mutation::Set { key, value } => {
                    if key.as_slice() >= begin && key.as_slice() < end {
                        view.insert(key.clone(), value.clone());
                    }
                }
                Mutation::Clear { key } => {
                    view.remove(key);
                }
                Mutation::ClearRange { begin: b, end: e } => {
                    view.retain(|k, _| !(k >= b && k < e));
                }
            }
        }
        let take = if limit == 0 { usize::MAX } else { limit };
        Ok(if reverse {
            view.into_iter().rev().take(take).collect()
        } else {
            view.into_iter().take(take).collect()
        })
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.mutations.push(Mutation::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }

    fn clear(&mut self, key: &[u8]) {
        self.mutations.push(Mutation::Clear { key: key.to_vec() });
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin < end {
            self.mutations.push(Mutation::ClearRange {
                begin: begin.to_vec(),
                end: end.to_vec(),
            });
        }
    }

    fn add_read_conflict_range(&mut self, begin: &[u8], end: &[u8]) {
        self.reads.push((begin.to_vec(), end.to_vec()));
    }

    async fn commit(self: Box<Self>) -> Result<Version, StoreError> {
        if self.mutations.is_empty() {
            return Ok(self.read_version);
        }
        self.check_age()?;
        let mut total = 0usize;
        for m in &self.mutations {
            match m {
                Mutation::Set { key, value } => {
                    if key.len() > MAX_KEY_BYTES {
                        return Err(StoreError::TooLarge("key"));
                    }
                    if value.len() > MAX_VALUE_BYTES {
                        return Err(StoreError::TooLarge("value"));
                    }
                    total += key.len() + value.len();
                }
                Mutation::Clear { key } => total += key.len(),
                Mutation::ClearRange { begin, end } => total += begin.len() + end.len(),
            }
        }
        if total > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TooLarge("transaction"));
        }
        let this = *self;
        let engine = this.engine.clone();
        tokio::task::spawn_blocking(move || {
            engine.commit_sync(this.read_version, &this.reads, this.mutations)
        })
        .await
        .map_err(|e| StoreError::Io(format!("commit task failed: {e}")))?
    }
}
