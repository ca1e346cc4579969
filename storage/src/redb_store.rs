//! The embedded single-node backend: the OCC engine made durable by redb. Every commit
//! is one redb write transaction with immediate durability (fsync) before it is
//! acknowledged; the keyspace is loaded into memory at open.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::broadcast;

use crate::occ::{Durable, Engine, Map};
use crate::{ChangeBatch, Counters, Mutation, Store, StoreError, Transaction, Version};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The on-disk format this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

struct RedbDurable {
    db: Database,
}

impl Durable for RedbDurable {
    fn persist(&self, version: Version, mutations: &[Mutation]) -> Result<(), StoreError> {
        let mut w = self.db.begin_write().map_err(io)?;
        w.set_durability(redb::Durability::Immediate);
        {
            let mut data = w.open_table(DATA).map_err(io)?;
            for m in mutations {
                match m {
                    Mutation::Set { key, value } => {
                        data.insert(key.as_slice(), value.as_slice()).map_err(io)?;
                    }
                    Mutation::Clear { key } => {
                        data.remove(key.as_slice()).map_err(io)?;
                    }
                    Mutation::ClearRange { begin, end } => {
                        data.retain_in(begin.as_slice()..end.as_slice(), |_, _| false)
                            .map_err(io)?;
                    }
                }
            }
            let mut meta = w.open_table(META).map_err(io)?;
            meta.insert("version", version).map_err(io)?;
        }
        w.commit().map_err(io)
    }
}

pub struct RedbStore {
    engine: Arc<Engine>,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let db = Database::create(path)
            .map_err(|e| StoreError::Io(format!("opening {}: {e}", path.display())))?;
        Self::from_database(db)
    }

    /// Opens a store over a caller-supplied redb storage backend (tests).
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<RedbStore, StoreError> {
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(io)?;
        Self::from_database(db)
    }

    fn from_database(db: Database) -> Result<RedbStore, StoreError> {
        // make sure both tables and the format marker exist
        let mut w = db.begin_write().map_err(io)?;
        w.set_durability(redb::Durability::Immediate);
        {
            w.open_table(DATA).map_err(io)?;
            let mut meta = w.open_table(META).map_err(io)?;
            let format = meta.get("format").map_err(io)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert("format", FORMAT_VERSION).map_err(io)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Io(format!(
                        "store format {other} is newer than this galilean understands ({FORMAT_VERSION})"
                    )))
                }
            }
        }
        w.commit().map_err(io)?;
        let r = db.begin_read().map_err(io)?;
        let version = r
            .open_table(META)
            .map_err(io)?
            .get("version")
            .map_err(io)?
            .map_or(0, |v| v.value());
        let mut map = Map::new();
        for entry in r.open_table(DATA).map_err(io)?.iter().map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            map.insert(k.value().to_vec(), v.value().to_vec());
        }
        drop(r);
        Ok(RedbStore {
            engine: Engine::new(map, version, Box::new(RedbDurable { db })),
        })
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(self.engine.begin()))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.engine.subscribe()
    }

    fn committed_version(&self) -> Version {
        self.engine.committed_version()
    }

    fn counters(&self) -> &Counters {
        &self.engine.counters
    }

    fn backend_name(&self) -> &'static str {
        "redb"
    }
}
