//! The `Store` trait and its backends.
//!
//! A store is an ordered map of byte keys to byte values with FoundationDB's semantics:
//! serializable transactions with optimistic conflict detection (a transaction that read a
//! key or range written by a transaction that committed after it began fails with
//! [`StoreError::Conflict`] and is retried by [`transact`]), range reads, and a change feed.
//! Keys are built with the [`tuple`](mod@tuple) encoding so that prefixes order and nest.
//!
//! Backends: [`memory`] (tests), [`redb`](crate::redb_store) (the single-node default,
//! fsync before acknowledgement). This crate knows nothing of users or servers.
//! With the `fdb` feature, `fdb::FdbStore` keeps the store in a FoundationDB cluster.

// `deny`, not `forbid`: the `fdb` feature's one call that starts FoundationDB's client
// network is unsafe and is allowed where it is made; nothing else may be.
#![deny(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

#[cfg(feature = "fdb")]
pub mod fdb;
pub mod ids;
pub mod lease;
pub mod memory;
mod occ;
pub mod raft;
pub mod redb_store;
pub mod tuple;

/// The backend conformance suite: built for this crate's tests, and for other crates'
/// with the `conformance` feature.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

/// Waiting in tests (`eventually`): built for this crate's tests, and for other crates'
/// with the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use memory::MemoryStore;
pub use redb_store::RedbStore;

/// A commit version: strictly increasing across the commits of one store.
pub type Version = u64;

/// Largest value accepted by `set` (FoundationDB's limit).
pub const MAX_VALUE_BYTES: usize = 100_000;
/// Largest key accepted (FoundationDB's limit).
pub const MAX_KEY_BYTES: usize = 10_000;
/// Largest total of keys and values written by one transaction (FoundationDB's limit).
pub const MAX_TRANSACTION_BYTES: usize = 10_000_000;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Something this transaction read was written by a transaction that committed after
    /// this one began. Retry.
    #[error("transaction conflict")]
    Conflict,
    /// A key, value or transaction exceeds the limits above.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// The transaction was used after commit, or ran longer than allowed.
    #[error("transaction invalid: {0}")]
    Invalid(&'static str),
    /// The backend cannot serve now (no quorum, shutting down).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A write guarded by a lease whose epoch is no longer current.
    #[error("fenced: {0}")]
    Fenced(String),
    /// An I/O or backend error.
    #[error("store i/o: {0}")]
    Io(String),
}

/// The reason of [`StoreError::Invalid`] for a transaction that ran longer than allowed
/// (FoundationDB's `transaction_too_old`): a new transaction may well succeed.
pub const TOO_OLD: &str = "transaction too old";

impl StoreError {
    /// Errors that [`transact`] retries with a new transaction: a conflict, and a
    /// transaction that grew too old (under load, while its commit waited its turn).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Conflict => true,
            StoreError::Invalid(reason) => *reason == TOO_OLD,
            _ => false,
        }
    }
}

/// One change in a committed transaction, in the order the transaction made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mutation {
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Clear {
        key: Vec<u8>,
    },
    /// Clears `[begin, end)`.
    ClearRange {
        begin: Vec<u8>,
        end: Vec<u8>,
    },
}

impl Mutation {
    /// The bytes of keys and values it carries.
    pub fn bytes(&self) -> usize {
        match self {
            Mutation::Set { key, value } => key.len() + value.len(),
            Mutation::Clear { key } => key.len(),
            Mutation::ClearRange { begin, end } => begin.len() + end.len(),
        }
    }

    /// Whether this mutation can touch a key that starts with `prefix`.
    pub fn touches_prefix(&self, prefix: &[u8]) -> bool {
        match self {
            Mutation::Set { key, .. } | Mutation::Clear { key } => key.starts_with(prefix),
            Mutation::ClearRange { begin, end } => {
                let pend = tuple::prefix_end(prefix);
                // [begin, end) intersects [prefix, pend)
                begin.as_slice() < pend.as_slice() && end.as_slice() > prefix
            }
        }
    }
}

/// All mutations of one committed transaction, published on the change feed in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    pub version: Version,
    pub mutations: Vec<Mutation>,
}

/// Counts of what the store did, for tests and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Point reads and range reads served by transactions.
    pub reads: AtomicU64,
    /// Committed transactions that wrote something.
    pub write_commits: AtomicU64,
    /// Individual mutations in those commits.
    pub mutations: AtomicU64,
    /// Commits refused with a conflict.
    pub conflicts: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            reads: self.reads.load(Ordering::Relaxed),
            write_commits: self.write_commits.load(Ordering::Relaxed),
            mutations: self.mutations.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub reads: u64,
    pub write_commits: u64,
    pub mutations: u64,
    pub conflicts: u64,
}

/// A key/value pair returned by a range read.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A serializable transaction. Reads see a consistent snapshot taken at `begin` plus this
/// transaction's own writes. Writes are buffered until `commit`.
#[async_trait]
pub trait Transaction: Send {
    /// The version this transaction reads at.
    fn read_version(&self) -> Version;
    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keys in `[begin, end)`, ascending (descending with `reverse`), at most `limit`
    /// pairs (`0` = no limit). The whole range read counts as read for conflicts, except
    /// that with a limit only the part up to the last returned key does.
    async fn get_range(
        &mut self,
        begin: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError>;
    fn set(&mut self, key: &[u8], value: &[u8]);
    fn clear(&mut self, key: &[u8]);
    fn clear_range(&mut self, begin: &[u8], end: &[u8]);
    /// Adds a read-conflict range without reading it (FoundationDB's
    /// `add_read_conflict_range`), for fencing.
    fn add_read_conflict_range(&mut self, begin: &[u8], end: &[u8]);
    /// Commits; on success the writes are durable and the commit version is returned.
    /// A read-only transaction commits trivially with its read version.
    async fn commit(self: Box<Self>) -> Result<Version, StoreError>;
}

/// A transactional, ordered key/value store with a change feed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError>;
    /// Every committed batch from now on, in commit order. A receiver that lags gets
    /// `RecvError::Lagged`, and one whose store's state jumped (a replica that installed
    /// a raft snapshot) gets `RecvError::Closed`: either must subscribe again and re-read.
    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>>;
    /// The newest committed version.
    fn committed_version(&self) -> Version;
    fn counters(&self) -> &Counters;
    /// A short name for logs and `/hub/api/info`: `memory`, `redb`, `raft`, `fdb`.
    fn backend_name(&self) -> &'static str;
    /// The ids this store instance has reserved and not given out (see [`ids`]).
    fn id_blocks(&self) -> &ids::IdBlocks;
    /// Whether the store can serve reads and writes now (a replicated store: whether a
    /// leader is known).
    fn ready(&self) -> bool {
        true
    }
    /// Whether this node leads (decides cluster-wide housekeeping such as the live set);
    /// always for a store that is not replicated.
    fn leads(&self) -> bool {
        true
    }
    /// While this node leads: how old its proof of leading is (a replicated store: its
    /// last acknowledgement from a quorum). `None` when it does not lead, or its proof
    /// is too old to count.
    fn leadership(&self) -> Option<std::time::Duration> {
        self.leads().then_some(std::time::Duration::ZERO)
    }
}

/// How long to wait before retry `attempt` (1, 2, ...): "full jitter" over a window that
/// doubles from 1 ms up to 100 ms, so that contending writers spread out instead of
/// colliding again (FoundationDB's retry loop backs off the same way).
pub fn retry_backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let window_us = (1_000u64 << attempt.min(7)).min(100_000);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::time::Duration::from_micros(random % (window_us + 1))
}

/// Runs `f` in a transaction and commits it, retrying on conflict (FoundationDB's retry
/// loop). `f` must be safe to run more than once.
pub async fn transact<T, F>(store: &dyn Store, mut f: F) -> Result<T, StoreError>
where
    F: for<'t> FnMut(
        &'t mut dyn Transaction,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 't>,
    >,
    T: Send,
{
    let mut attempt: u32 = 0;
    loop {
        let mut tx = store.begin().await?;
        let out = f(tx.as_mut()).await;
        let out = match out {
            Ok(v) => v,
            Err(e) if e.is_retryable() && attempt < 100 => {
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        match tx.commit().await {
            Ok(_) => return Ok(out),
            Err(e) if e.is_retryable() && attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(retry_backoff(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
