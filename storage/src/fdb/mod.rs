//! The FoundationDB backend (feature `fdb`, backend name `fdb`): a [`Store`] whose
//! transactions are FoundationDB transactions, for clusters larger than raft serves well.
//!
//! Every key the store uses lives under a root prefix given to [`FdbStore::open`] (one
//! hub; a test uses a fresh one and clears it afterwards). Layout, format 1
//! ([`FORMAT_VERSION`]):
//!
//! - `root ++ (0,)` (one byte, `0x14`) `++ key`: the store's keys;
//! - `root ++ ("feed",) ++ versionstamp ++ chunk`: the change feed's log (below);
//! - `root ++ ("meta", "format")`: the format, a big-endian `u64`;
//! - `root ++ ("meta", "head")`: the versionstamp of the newest commit.
//!
//! A [`Transaction`] is one FoundationDB transaction. Reads are serializable (not
//! snapshot) reads, so FoundationDB's resolvers detect conflicts, and a range read that
//! stops at its limit counts as read only up to its last row, as the contract says.
//! Writes and read conflict ranges go straight to FoundationDB; read-your-writes is
//! FoundationDB's. A commit also writes its mutations to the feed's log under a
//! versionstamped key and stamps the head key, both with atomic operations that nothing
//! reads with conflicts, so they add no conflicts of their own.
//!
//! Versions are FoundationDB commit versions. A transaction's read version is the head's
//! version (snapshot-read at `begin`): the newest commit it sees, as in the other
//! backends, rather than FoundationDB's read version, which also moves without commits.
//!
//! The change feed: a task per store watches the head key (falling back to polling every
//! second), reads the log from the last entry it published, and publishes the new entries
//! in commit order. It trims entries older than about a minute, always keeping the newest;
//! a task that finds its last entry gone has missed some and closes the feed, so that
//! subscribers re-read (`RecvError::Closed`, as a raft replica that installed a snapshot).
//!
//! Where this differs from the other backends:
//!
//! - Keys of `set` are limited to [`FdbStore::max_key_bytes`] (FoundationDB's 10,000 bytes
//!   less the prefix), a few bytes under [`MAX_KEY_BYTES`]; a longer one is refused with
//!   `TooLarge("key")` at commit. Reads, clears and ranges accept keys up to
//!   `MAX_KEY_BYTES` (FoundationDB treats longer bounds as their truncation).
//! - The feed's copy of the mutations counts against FoundationDB's 10 MB transaction
//!   limit, so a transaction of more than about 5 MB of keys and values can fail with
//!   `TooLarge("transaction")` although it is under [`MAX_TRANSACTION_BYTES`].
//! - Transactions that commit in the same FoundationDB batch share a commit version; the
//!   feed publishes them as one [`ChangeBatch`] (their mutations in commit order), so
//!   feed versions still increase strictly, but two such commits return the same version.
//! - The feed is published by the watching task, a few milliseconds after the commit
//!   returns, not before; [`Store::committed_version`] includes this node's commits at
//!   once and other nodes' as the feed sees them. A receiver may get a batch that
//!   committed just before it subscribed (its version is not newer than what it reads).
//! - `begin` costs a round trip more than FoundationDB's own (the head key's read).
//! - A commit whose outcome FoundationDB cannot know (`commit_unknown_result`, a timeout)
//!   is `Unavailable`, like a raft write whose leader stopped answering; a transient
//!   error that FoundationDB would retry (`future_version`, `process_behind`, ...) is a
//!   `Conflict`, so that [`transact`](crate::transact) retries it.
//!
//! The client network must run, once per process, around every use: see [`with_network`].

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use foundationdb::options::{ConflictRangeType, DatabaseOption, MutationType, StreamingMode};
use foundationdb::{Database, FdbError, FdbResult, RangeOption};
use tokio::sync::broadcast;

use crate::tuple::{self, Key};
use crate::{
    ChangeBatch, Counters, KeyValue, Mutation, Store, StoreError, Transaction, Version,
    MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES,
};

mod feed;

use feed::{encode_mutations, follow_feed};

/// The layout and feed encoding this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// Longest root prefix accepted by [`FdbStore::open`].
pub const MAX_ROOT_BYTES: usize = 1_000;
/// FoundationDB's limit on a key, prefix included.
const FDB_KEY_LIMIT: usize = 10_000;
/// After this long FoundationDB cancels a transaction (`transaction_timed_out`): longer
/// than the 5 s a transaction may live, so that only a cluster that does not answer
/// reaches it.
const TRANSACTION_TIMEOUT_MS: i32 = 10_000;
/// Change batches a subscriber may fall behind before it gets `Lagged`.
const FEED_CAPACITY: usize = 4096;
/// How long the feed task waits on its watch before reading the log anyway.
const FEED_POLL: Duration = Duration::from_secs(1);
/// Pause after a failed read of the log.
const FEED_RETRY: Duration = Duration::from_millis(100);
/// How often the feed task trims the log.
const FEED_TRIM_EVERY: Duration = Duration::from_secs(10);
/// Entries older than this many versions are trimmed: about a minute at FoundationDB's
/// rate of a million versions a second.
const FEED_RETENTION_VERSIONS: i64 = 60_000_000;

/// A FoundationDB versionstamp: the commit version (8 bytes, big-endian) and the
/// transaction's order in its commit batch (2 bytes).
type Stamp = [u8; 10];
/// The value template of a versionstamped value: the stamp goes at offset 0.
const HEAD_TEMPLATE: [u8; 14] = [0; 14];

static NETWORK_STARTED: AtomicBool = AtomicBool::new(false);
static NETWORK_RUNNING: AtomicBool = AtomicBool::new(false);

/// Runs `f` with FoundationDB's client network running, and stops the network when `f`
/// returns or unwinds. Every [`FdbStore`] is used inside `f`: build the tokio runtime in
/// it and drop the runtime before it returns.
///
/// ```ignore
/// fn main() -> anyhow::Result<()> {
///     galilean_storage::fdb::with_network(|| {
///         let runtime = tokio::runtime::Runtime::new()?;
///         runtime.block_on(serve()) // opens the FdbStore, serves until shut down
///     })?
/// }
/// ```
///
/// The network can run once per process (FoundationDB's rule): a second call fails with
/// `Invalid`, and once the first has returned, opening a store or beginning a transaction
/// fails with `Unavailable`. Nothing else in the process may start FoundationDB's client
/// (`foundationdb::boot`).
pub fn with_network<T>(f: impl FnOnce() -> T) -> Result<T, StoreError> {
    if NETWORK_STARTED.swap(true, Ordering::SeqCst) {
        return Err(StoreError::Invalid(
            "the FoundationDB client can be started once per process",
        ));
    }
    let builder = foundationdb::api::FdbApiBuilder::default()
        .build()
        .map_err(|e| unavailable("selecting the FoundationDB API version", e))?;
    // SAFETY: `boot` is unsafe only because the network must be stopped before the
    // process exits. The handle it returns stops the network and joins its thread when
    // dropped, and `_running` drops it when this function returns or `f` unwinds; only
    // an exit from inside `f` skips that, as it skips every destructor.
    #[allow(unsafe_code)]
    let network = unsafe { builder.boot() }
        .map_err(|e| unavailable("starting the FoundationDB client", e))?;
    let _running = Running { _network: network };
    NETWORK_RUNNING.store(true, Ordering::SeqCst);
    Ok(f())
}

/// Marks the network stopped, then stops it (fields drop after `drop`).
struct Running {
    _network: foundationdb::api::NetworkAutoStop,
}

impl Drop for Running {
    fn drop(&mut self) {
        NETWORK_RUNNING.store(false, Ordering::SeqCst);
    }
}

fn check_network() -> Result<(), StoreError> {
    if NETWORK_RUNNING.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(StoreError::Unavailable(
            "the FoundationDB client is not running (see galilean_storage::fdb::with_network)"
                .to_owned(),
        ))
    }
}

fn unavailable(context: &str, e: FdbError) -> StoreError {
    StoreError::Unavailable(format!("{context}: {e} (FoundationDB error {})", e.code()))
}

/// Maps a FoundationDB error onto the store's errors.
fn fdb_error(e: FdbError) -> StoreError {
    match e.code() {
        1020 => StoreError::Conflict, // not_committed
        1007 => StoreError::Invalid(crate::TOO_OLD),
        2101 => StoreError::TooLarge("transaction"),
        2102 => StoreError::TooLarge("key"),
        2103 => StoreError::TooLarge("value"),
        1031 => unavailable("FoundationDB did not answer in time", e),
        _ if e.is_maybe_committed() => unavailable("the commit's outcome is unknown", e),
        _ if e.is_retryable_not_committed() => StoreError::Conflict,
        _ if e.is_retryable() => unavailable("FoundationDB is not serving", e),
        code => StoreError::Io(format!("FoundationDB error {code}: {e}")),
    }
}

/// The keys of one store, all under its root.
struct Keys {
    root: Vec<u8>,
    data: Vec<u8>,
    feed: Vec<u8>,
    feed_end: Vec<u8>,
    format: Vec<u8>,
    head: Vec<u8>,
    /// Longest key `set` accepts.
    max_key: usize,
}

impl Keys {
    fn new(root: &[u8]) -> Keys {
        let under = |key: Key| [root, key.as_bytes()].concat();
        let data = under(Key::new().int(0));
        let feed = under(Key::new().str("feed"));
        Keys {
            root: root.to_vec(),
            max_key: FDB_KEY_LIMIT - data.len(),
            feed_end: tuple::prefix_end(&feed),
            format: under(Key::new().str("meta").str("format")),
            head: under(Key::new().str("meta").str("head")),
            data,
            feed,
        }
    }

    fn data(&self, key: &[u8]) -> Vec<u8> {
        [&self.data[..], key].concat()
    }

    /// The first key of the log entry `stamp`.
    fn feed_entry(&self, stamp: &Stamp) -> Vec<u8> {
        [&self.feed[..], &stamp[..]].concat()
    }

    /// The key template of chunk `chunk` of this transaction's log entry, for
    /// `SetVersionstampedKey`: the stamp goes right after the feed prefix.
    fn feed_template(&self, chunk: u16) -> Vec<u8> {
        let offset = u32::try_from(self.feed.len()).expect("the root is at most 1000 bytes");
        [
            &self.feed[..],
            &[0; 10][..],
            &chunk.to_be_bytes()[..],
            &offset.to_le_bytes()[..],
        ]
        .concat()
    }
}

fn stamp_version(stamp: &Stamp) -> Version {
    let mut version = [0; 8];
    version.copy_from_slice(&stamp[..8]);
    u64::from_be_bytes(version)
}

fn parse_head(value: Option<&[u8]>) -> Result<Option<Stamp>, StoreError> {
    value
        .map(|v| {
            Stamp::try_from(v).map_err(|_| StoreError::Io(format!("corrupt fdb store head: {v:?}")))
        })
        .transpose()
}

/// Reads `[begin, end)` whole (every batch FoundationDB returns), at most `limit` rows
/// (`0`: all), each key without its first `strip` bytes.
async fn read_range(
    trx: &foundationdb::Transaction,
    (begin, end): (&[u8], &[u8]),
    limit: usize,
    reverse: bool,
    snapshot: bool,
    strip: usize,
) -> FdbResult<Vec<KeyValue>> {
    let mut opt = RangeOption {
        limit: (limit != 0).then_some(limit),
        mode: StreamingMode::WantAll,
        reverse,
        ..RangeOption::from((begin, end))
    };
    let mut rows = Vec::new();
    for iteration in 1.. {
        let batch = trx.get_range(&opt, iteration, snapshot).await?;
        rows.extend(
            batch
                .iter()
                .map(|kv| (kv.key()[strip..].to_vec(), kv.value().to_vec())),
        );
        match opt.next_range(&batch) {
            Some(next) => opt = next,
            None => break,
        }
    }
    Ok(rows)
}

/// A [`Store`] in a FoundationDB cluster (backend name `fdb`).
pub struct FdbStore {
    shared: Arc<Shared>,
    follower: tokio::task::JoinHandle<()>,
    ids: crate::ids::IdBlocks,
}

/// What the store and its feed task share.
struct Shared {
    db: Database,
    keys: Keys,
    committed: AtomicU64,
    /// Replaced (closing the receivers) when the task misses entries.
    feed: Mutex<broadcast::Sender<Arc<ChangeBatch>>>,
    counters: Counters,
}

impl Shared {
    fn feed(&self) -> std::sync::MutexGuard<'_, broadcast::Sender<Arc<ChangeBatch>>> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FdbStore {
    /// Opens the store under `root` in the cluster of `cluster_file` (FoundationDB's
    /// default cluster file when `None`), creating it if the root holds nothing, and
    /// starts its feed task (on the current tokio runtime). Refuses a root that holds
    /// other data or another format, and one that starts with `0xff` (system keys).
    pub async fn open(cluster_file: Option<&str>, root: &[u8]) -> Result<FdbStore, StoreError> {
        check_network()?;
        if root.first() == Some(&0xff) {
            return Err(StoreError::Invalid("an fdb root must not start with 0xff"));
        }
        if root.len() > MAX_ROOT_BYTES {
            return Err(StoreError::Invalid("an fdb root is at most 1000 bytes"));
        }
        let db = Database::new(cluster_file)
            .map_err(|e| unavailable("opening the FoundationDB cluster", e))?;
        db.set_option(DatabaseOption::TransactionTimeout(TRANSACTION_TIMEOUT_MS))
            .map_err(fdb_error)?;
        let keys = Keys::new(root);
        let head = initialize(&db, &keys).await?;
        let version = head.as_ref().map_or(0, stamp_version);
        let shared = Arc::new(Shared {
            db,
            keys,
            committed: AtomicU64::new(version),
            feed: Mutex::new(broadcast::channel(FEED_CAPACITY).0),
            counters: Counters::default(),
        });
        let follower = tokio::spawn(follow_feed(shared.clone(), head));
        tracing::info!(version, root = ?root, "opened fdb store");
        Ok(FdbStore {
            shared,
            follower,
            ids: Default::default(),
        })
    }

    /// The longest key `set` accepts: FoundationDB's limit less this store's prefix.
    pub fn max_key_bytes(&self) -> usize {
        self.shared.keys.max_key
    }
}

/// Checks the format marker (writing it into an empty root) and reads the head.
async fn initialize(db: &Database, keys: &Keys) -> Result<Option<Stamp>, StoreError> {
    let mut trx = db.create_trx().map_err(fdb_error)?;
    loop {
        let attempt: FdbResult<Result<Option<Stamp>, StoreError>> = async {
            match trx.get(&keys.format, false).await?.as_deref() {
                Some(format) if format == FORMAT_VERSION.to_be_bytes() => {}
                Some(other) => {
                    let found = match <[u8; 8]>::try_from(other) {
                        Ok(n) => u64::from_be_bytes(n).to_string(),
                        Err(_) => format!("{other:?}"),
                    };
                    return Ok(Err(StoreError::Io(format!(
                        "fdb store format {found} is not supported (this build reads \
                         format {FORMAT_VERSION})"
                    ))));
                }
                None => {
                    // an empty root claims the whole keyspace but the system keys
                    let end = if keys.root.is_empty() {
                        vec![0xff]
                    } else {
                        tuple::prefix_end(&keys.root)
                    };
                    let any = read_range(&trx, (&keys.root, &end), 1, false, false, 0).await?;
                    if !any.is_empty() {
                        return Ok(Err(StoreError::Io(
                            "not a galilean store: data under the root but no format marker"
                                .to_owned(),
                        )));
                    }
                    trx.set(&keys.format, &FORMAT_VERSION.to_be_bytes());
                }
            }
            Ok(parse_head(trx.get(&keys.head, true).await?.as_deref()))
        }
        .await;
        trx = match attempt {
            Ok(Err(fatal)) => return Err(fatal),
            Ok(Ok(head)) => match trx.commit().await {
                Ok(_) => return Ok(head),
                Err(e) => e.on_error().await.map_err(fdb_error)?,
            },
            Err(e) => trx.on_error(e).await.map_err(fdb_error)?,
        };
    }
}

impl Drop for FdbStore {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl fmt::Debug for FdbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdbStore")
            .field("root", &self.shared.keys.root)
            .field("version", &self.committed_version())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for FdbStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        check_network()?;
        let shared = &self.shared;
        let mut trx = shared.db.create_trx().map_err(fdb_error)?;
        // a snapshot read: the head changes with every commit and must not conflict
        let head = loop {
            match trx.get(&shared.keys.head, true).await {
                Ok(head) => break parse_head(head.as_deref())?,
                Err(e) => trx = trx.on_error(e).await.map_err(fdb_error)?,
            }
        };
        let read_version = head.as_ref().map_or(0, stamp_version);
        shared.committed.fetch_max(read_version, Ordering::AcqRel);
        Ok(Box::new(FdbTransaction {
            shared: shared.clone(),
            trx,
            read_version,
            mutations: Vec::new(),
            bytes: 0,
            too_large: None,
            deferred: None,
        }))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.shared.feed().subscribe()
    }

    fn committed_version(&self) -> Version {
        self.shared.committed.load(Ordering::Acquire)
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn backend_name(&self) -> &'static str {
        "fdb"
    }

    fn id_blocks(&self) -> &crate::ids::IdBlocks {
        &self.ids
    }

    fn ready(&self) -> bool {
        NETWORK_RUNNING.load(Ordering::SeqCst)
    }
}

struct FdbTransaction {
    shared: Arc<Shared>,
    trx: foundationdb::Transaction,
    read_version: Version,
    /// The writes, in order: the feed's entry.
    mutations: Vec<Mutation>,
    /// Key and value bytes written, against `MAX_TRANSACTION_BYTES`.
    bytes: usize,
    /// The first size limit broken, reported at commit; later writes do not reach
    /// FoundationDB (the transaction cannot commit).
    too_large: Option<&'static str>,
    /// An error of a call that cannot return one, reported at commit.
    deferred: Option<StoreError>,
}

impl FdbTransaction {
    /// Counts a written key; whether the write may go to FoundationDB.
    fn write_key(&mut self, key: &[u8], max: usize) -> bool {
        if key.len() > max {
            self.too_large.get_or_insert("key");
        }
        self.bytes += key.len();
        self.too_large.is_none()
    }

    fn count_read(&self) {
        self.shared.counters.reads.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl Transaction for FdbTransaction {
    fn read_version(&self) -> Version {
        self.read_version
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(StoreError::TooLarge("key"));
        }
        self.count_read();
        let value = self.trx.get(&self.shared.keys.data(key), false).await;
        Ok(value.map_err(fdb_error)?.map(|v| v.to_vec()))
    }

    async fn get_range(
        &mut self,
        begin: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.count_read();
        if begin >= end {
            return Ok(Vec::new());
        }
        let keys = &self.shared.keys;
        let (begin, end) = (keys.data(begin), keys.data(end));
        read_range(
            &self.trx,
            (&begin, &end),
            limit,
            reverse,
            false,
            keys.data.len(),
        )
        .await
        .map_err(fdb_error)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        let mut ok = self.write_key(key, self.shared.keys.max_key);
        if value.len() > MAX_VALUE_BYTES {
            self.too_large.get_or_insert("value");
            ok = false;
        }
        self.bytes += value.len();
        if ok {
            self.trx.set(&self.shared.keys.data(key), value);
        }
        self.mutations.push(Mutation::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }

    fn clear(&mut self, key: &[u8]) {
        if self.write_key(key, MAX_KEY_BYTES) {
            self.trx.clear(&self.shared.keys.data(key));
        }
        self.mutations.push(Mutation::Clear { key: key.to_vec() });
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let ok = self.write_key(begin, MAX_KEY_BYTES) & self.write_key(end, MAX_KEY_BYTES + 1);
        if ok {
            let keys = &self.shared.keys;
            self.trx.clear_range(&keys.data(begin), &keys.data(end));
        }
        self.mutations.push(Mutation::ClearRange {
            begin: begin.to_vec(),
            end: end.to_vec(),
        });
    }

    fn add_read_conflict_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let keys = &self.shared.keys;
        let added = self.trx.add_conflict_range(
            &keys.data(begin),
            &keys.data(end),
            ConflictRangeType::Read,
        );
        if let Err(e) = added {
            self.deferred.get_or_insert(fdb_error(e));
        }
    }

    async fn commit(self: Box<Self>) -> Result<Version, StoreError> {
        let FdbTransaction {
            shared,
            trx,
            read_version,
            mutations,
            bytes,
            too_large,
            deferred,
        } = *self;
        if mutations.is_empty() {
            return Ok(read_version);
        }
        if let Some(what) = too_large {
            return Err(StoreError::TooLarge(what));
        }
        if bytes > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TooLarge("transaction"));
        }
        if let Some(error) = deferred {
            return Err(error);
        }
        let entry = encode_mutations(&mutations);
        for (i, chunk) in entry.chunks(MAX_VALUE_BYTES).enumerate() {
            let i = u16::try_from(i).map_err(|_| StoreError::TooLarge("transaction"))?;
            let key = shared.keys.feed_template(i);
            trx.atomic_op(&key, chunk, MutationType::SetVersionstampedKey);
        }
        trx.atomic_op(
            &shared.keys.head,
            &HEAD_TEMPLATE,
            MutationType::SetVersionstampedValue,
        );
        let committed = match trx.commit().await {
            Ok(committed) => committed,
            Err(e) => {
                let error = fdb_error(*e);
                if error == StoreError::Conflict {
                    shared.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                return Err(error);
            }
        };
        let version = committed.committed_version().map_err(fdb_error)?;
        let version = Version::try_from(version)
            .map_err(|_| StoreError::Io(format!("fdb commit version {version}")))?;
        let counters = &shared.counters;
        counters.write_commits.fetch_add(1, Ordering::Relaxed);
        counters
            .mutations
            .fetch_add(mutations.len() as u64, Ordering::Relaxed);
        shared.committed.fetch_max(version, Ordering::AcqRel);
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::feed::*;
    use super::*;

    fn set(key: &[u8], value: &[u8]) -> Mutation {
        Mutation::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn feed_entries_keep_their_encoding() {
        let mutations = vec![
            set(b"k", b"\xff"),
            Mutation::Clear { key: b"".to_vec() },
            Mutation::ClearRange {
                begin: b"a".to_vec(),
                end: b"b".to_vec(),
            },
        ];
        let golden = b"\x01\0\0\0\x01k\0\0\0\x01\xff\x02\0\0\0\0\x03\0\0\0\x01a\0\0\0\x01b";
        assert_eq!(encode_mutations(&mutations), golden.to_vec());
        assert_eq!(decode_mutations(golden), Ok(mutations));
        assert!(decode_mutations(&golden[..golden.len() - 1]).is_err());
        assert!(decode_mutations(b"\x09").is_err());
    }

    #[test]
    fn keys_sit_under_the_root() {
        let keys = Keys::new(b"r");
        assert_eq!(keys.data(b"k"), b"r\x14k");
        assert_eq!(keys.max_key, FDB_KEY_LIMIT - 2);
        assert_eq!(keys.feed, b"r\x02feed\0");
        assert_eq!(keys.feed_end, b"r\x02feed\x01");
        assert_eq!(keys.head, b"r\x02meta\0\x02head\0");
        let template = keys.feed_template(1);
        assert_eq!(template.len(), keys.feed.len() + 10 + 2 + 4);
        assert_eq!(&template[template.len() - 4..], &7u32.to_le_bytes());
    }

    fn row(version: u64, order: u16, chunk: u16, value: &[u8]) -> KeyValue {
        let key = [
            &version.to_be_bytes()[..],
            &order.to_be_bytes()[..],
            &chunk.to_be_bytes()[..],
        ]
        .concat();
        (key, value.to_vec())
    }

    fn stamp(version: u64, order: u16) -> Stamp {
        row(version, order, 0, b"").0[..10].try_into().unwrap()
    }

    #[test]
    fn feed_reads_merge_one_commit_version_and_skip_the_last_entry() {
        let a = encode_mutations(&[set(b"a", b"1")]);
        let b = encode_mutations(&[set(b"b", b"2")]);
        let big = encode_mutations(&[set(b"c", &[7; 10])]);
        let rows = vec![
            row(5, 0, 0, &a),
            row(7, 0, 0, &a),
            row(7, 1, 0, &b),
            row(9, 0, 0, &big[..4]),
            row(9, 0, 1, &big[4..]),
        ];
        let read = decode_feed(&rows, Some(stamp(5, 0)));
        assert!(!read.gap);
        assert_eq!(read.last, Some(stamp(9, 0)));
        let batches = read.batches.unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].version, 7);
        assert_eq!(batches[0].mutations, vec![set(b"a", b"1"), set(b"b", b"2")]);
        assert_eq!(batches[1].mutations, vec![set(b"c", &[7; 10])]);

        // the last entry is gone: a gap
        let read = decode_feed(&rows[1..], Some(stamp(5, 0)));
        assert!(read.gap);
        assert_eq!(read.last, Some(stamp(9, 0)));
        let read = decode_feed(&[], Some(stamp(5, 0)));
        assert!(read.gap && read.last.is_none());
        // nothing new
        let read = decode_feed(&rows[..1], Some(stamp(5, 0)));
        assert!(!read.gap && read.batches.unwrap().is_empty());
        // a missing chunk
        assert!(decode_feed(&rows[4..], None).batches.is_err());
    }
}
