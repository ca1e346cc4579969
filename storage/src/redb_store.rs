//! The embedded single-node backend: the OCC engine over a redb file.
//!
//! Data lives in one redb table of byte keys to byte values; a metadata table holds the
//! store format and the newest committed version, written in the same redb transaction as
//! each batch so that versions keep increasing across restarts. Every commit is a redb
//! write transaction with immediate durability: it is fsynced before it is acknowledged.
//! A transaction reads a redb read transaction (an MVCC snapshot) taken when it began.
//! Commits and large range reads run on tokio's blocking threads.
//!
//! New files use redb's v3 file format (the one redb 3 reads), so that moving to redb 3
//! needs no file migration. On-disk format 1: table `kv` (`&[u8]` → `&[u8]`) holds the keyspace; table `meta`
//! (`&str` → `u64`) holds `format` (= [`FORMAT_VERSION`]) and `version`. A store written
//! by a newer format is refused at open.

use std::fmt;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{
    Database, Durability, ReadOnlyTable, ReadableTable, ReadableTableMetadata, StorageBackend,
    TableDefinition, TableError,
};
use tokio::sync::broadcast;

use crate::occ::{Backend, Engine, Rows, Snapshot};
use crate::{ChangeBatch, Counters, Mutation, Store, StoreError, Transaction, Version};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_FORMAT: &str = "format";
const META_VERSION: &str = "version";
/// The page cache redb keeps in memory (its default is 1 GiB, which it fills as the file
/// grows): the hub reads from its replica, so the store needs only the pages a write
/// touches.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The on-disk format this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;

fn io(e: impl fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// A read-only view of a key-value table: a consistent snapshot (also the raft store's).
pub(crate) type Table = ReadOnlyTable<&'static [u8], &'static [u8]>;

impl Snapshot for Table {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(ReadableTable::get(self, key)
            .map_err(io)?
            .map(|v| v.value().to_vec()))
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
    ) -> Result<Rows<'a>, StoreError> {
        let range = self
            .range::<&[u8]>((Bound::Included(begin), Bound::Excluded(end)))
            .map_err(io)?;
        let rows = range.map(|row| {
            let (k, v) = row.map_err(io)?;
            Ok((k.value().to_vec(), v.value().to_vec()))
        });
        Ok(if reverse {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        })
    }
}

/// Applies `mutations` in order to a key-value table inside a write transaction.
pub(crate) fn apply_mutations(
    data: &mut redb::Table<&[u8], &[u8]>,
    mutations: &[Mutation],
) -> Result<(), StoreError> {
    for m in mutations {
        match m {
            Mutation::Set { key, value } => {
                data.insert(key.as_slice(), value.as_slice()).map_err(io)?;
            }
            Mutation::Clear { key } => {
                data.remove(key.as_slice()).map_err(io)?;
            }
            Mutation::ClearRange { begin, end } => {
                if begin < end {
                    data.retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false)
                        .map_err(io)?;
                }
            }
        }
    }
    Ok(())
}

struct RedbBackend {
    db: Database,
}

impl Backend for RedbBackend {
    type Snapshot = Table;
    const BLOCKING: bool = true;

    fn snapshot(&self) -> Result<Table, StoreError> {
        self.db
            .begin_read()
            .map_err(io)?
            .open_table(DATA)
            .map_err(io)
    }

    fn apply(&self, version: Version, mutations: &[Mutation]) -> Result<(), StoreError> {
        let mut w = self.db.begin_write().map_err(io)?;
        w.set_durability(Durability::Immediate);
        {
            let mut data = w.open_table(DATA).map_err(io)?;
            apply_mutations(&mut data, mutations)?;
            let mut meta = w.open_table(META).map_err(io)?;
            meta.insert(META_VERSION, version).map_err(io)?;
        }
        w.commit().map_err(io)
    }
}

/// A [`Store`] in a redb file (backend name `redb`).
pub struct RedbStore {
    engine: Arc<Engine<RedbBackend>>,
    ids: crate::ids::IdBlocks,
}

impl RedbStore {
    /// Opens the store at `path`, creating the file (and its directory) if missing.
    ///
    /// This blocks (after a crash, redb checks the whole file before it opens): in async
    /// code, call it through `tokio::task::spawn_blocking`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let context = |e: &dyn fmt::Display| StoreError::Io(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| context(&e))?;
        }
        if path.exists() {
            let file = redb::backends::FileBackend::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| context(&e))?,
            )
            .map_err(|e| context(&e))?;
            reset_if_never_initialized(&file).map_err(|e| context(&e))?;
        }
        let db = builder().create(path).map_err(|e| context(&e))?;
        let store = Self::from_database(db).map_err(|e| match e {
            StoreError::Io(msg) => context(&msg),
            other => other,
        })?;
        tracing::info!(path = %path.display(), version = store.committed_version(), "opened redb store");
        Ok(store)
    }

    /// Opens a store over a caller-supplied redb storage backend (an in-memory or
    /// fault-injecting one, for tests), creating it if the backend is empty.
    pub fn open_with_backend(backend: impl StorageBackend) -> Result<RedbStore, StoreError> {
        reset_if_never_initialized(&backend).map_err(io)?;
        let db = builder().create_with_backend(backend).map_err(io)?;
        Self::from_database(db)
    }

    fn from_database(db: Database) -> Result<RedbStore, StoreError> {
        let version = match read_meta(&db)? {
            Some(version) => version,
            None => initialize(&db)?,
        };
        let engine = Engine::new(RedbBackend { db }, version)?;
        Ok(RedbStore {
            engine,
            ids: Default::default(),
        })
    }
}

/// A file whose magic number is still zeros is a store whose creation never reached its first
/// sync (a crash at the very first start, with some later pages written back): redb
/// writes and syncs its header, magic number first, before it can acknowledge anything,
/// so nothing acknowledged is lost by starting it afresh. redb itself refuses such a file
/// ("invalid data"). A file with anything else at offset 0 is left to redb.
fn reset_if_never_initialized(backend: &impl StorageBackend) -> std::io::Result<()> {
    // redb's magic number is the first 9 bytes; the rest of the header is written
    // separately, so only the magic number tells whether creation reached the disk
    const HEADER: u64 = 9;
    let len = backend.len()?;
    if len == 0 {
        return Ok(());
    }
    let head = backend.read(0, HEADER.min(len) as usize)?;
    if head.iter().any(|b| *b != 0) {
        return Ok(());
    }
    tracing::warn!(
        len,
        "the store file has no header (its creation never completed); starting it afresh"
    );
    backend.set_len(0)?;
    backend.sync_data(false)
}

fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    // the format redb 3 reads, so that upgrading redb needs no file migration
    builder.create_with_file_format_v3(true);
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// The committed version of an initialized store, after checking its format; `None` for
/// a new one.
fn read_meta(db: &Database) -> Result<Option<Version>, StoreError> {
    let r = db.begin_read().map_err(io)?;
    let meta = match r.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let get = |name: &str| -> Result<Option<u64>, StoreError> {
        Ok(meta.get(name).map_err(io)?.map(|v| v.value()))
    };
    match get(META_FORMAT)? {
        Some(FORMAT_VERSION) => Ok(Some(get(META_VERSION)?.unwrap_or(0))),
        Some(other) => Err(StoreError::Io(format!(
            "store format {other} is not supported (this build reads format \
             {FORMAT_VERSION}){}",
            if other > FORMAT_VERSION {
                "; it was written by a newer galilean"
            } else {
                ""
            }
        ))),
        None => Err(StoreError::Io(
            "not a galilean store: no format marker".to_owned(),
        )),
    }
}

/// Creates the tables and the format marker of a new store; returns its version, 0.
fn initialize(db: &Database) -> Result<Version, StoreError> {
    let mut w = db.begin_write().map_err(io)?;
    w.set_durability(Durability::Immediate);
    {
        let data = w.open_table(DATA).map_err(io)?;
        if !data.is_empty().map_err(io)? {
            return Err(StoreError::Io(
                "not a galilean store: data but no format marker".to_owned(),
            ));
        }
        let mut meta = w.open_table(META).map_err(io)?;
        meta.insert(META_FORMAT, FORMAT_VERSION).map_err(io)?;
        meta.insert(META_VERSION, 0).map_err(io)?;
    }
    w.commit().map_err(io)?;
    Ok(0)
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("version", &self.engine.committed_version())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(self.engine.begin()?))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.engine.subscribe()
    }

    fn committed_version(&self) -> Version {
        self.engine.committed_version()
    }

    fn counters(&self) -> &Counters {
        self.engine.counters()
    }

    fn backend_name(&self) -> &'static str {
        "redb"
    }

    fn id_blocks(&self) -> &crate::ids::IdBlocks {
        &self.ids
    }
}

#[cfg(test)]
mod tests;
