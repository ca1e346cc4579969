//! The in-memory backend, for tests and throwaway hubs: the OCC engine over a persistent
//! ordered map. A commit updates the map in `O(log n)` per mutation and a snapshot is an
//! `O(1)` clone of it, so transactions read a consistent version without copying. Nothing
//! survives the process.

use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rpds::RedBlackTreeMapSync;
use tokio::sync::broadcast;

use crate::occ::{Backend, Engine, Rows, Snapshot};
use crate::{ChangeBatch, Counters, Mutation, Store, StoreError, Transaction, Version};

type Map = RedBlackTreeMapSync<Vec<u8>, Vec<u8>>;

impl Snapshot for Map {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(RedBlackTreeMapSync::get(self, key).cloned())
    }

    fn scan<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
    ) -> Result<Rows<'a>, StoreError> {
        let rows = self
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, v)| Ok((k.clone(), v.clone())));
        Ok(if reverse {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        })
    }
}

/// The map as of the newest commit.
struct MemoryBackend {
    map: Mutex<Map>,
}

impl Backend for MemoryBackend {
    type Snapshot = Map;
    const BLOCKING: bool = false;

    fn snapshot(&self) -> Result<Map, StoreError> {
        Ok(self.map.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn apply(&self, _version: Version, mutations: &[Mutation]) -> Result<(), StoreError> {
        // build the new map aside and swap it in, so a panic leaves the old one whole
        let mut map = self.snapshot()?;
        for m in mutations {
            match m {
                Mutation::Set { key, value } => map.insert_mut(key.clone(), value.clone()),
                Mutation::Clear { key } => {
                    map.remove_mut(key.as_slice());
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
                        map.remove_mut(k.as_slice());
                    }
                }
            }
        }
        *self.map.lock().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }
}

/// A [`Store`] held in memory (backend name `memory`).
pub struct MemoryStore {
    engine: Arc<Engine<MemoryBackend>>,
    ids: crate::ids::IdBlocks,
}

impl MemoryStore {
    /// An empty store at version 0.
    pub fn new() -> MemoryStore {
        let backend = MemoryBackend {
            map: Mutex::new(Map::new_sync()),
        };
        let engine = Engine::new(backend, 0).expect("a memory snapshot cannot fail");
        MemoryStore {
            engine,
            ids: Default::default(),
        }
    }

    /// Another handle on `other`'s data with its own reserved ids, as another node of a
    /// cluster would be.
    #[cfg(test)]
    pub(crate) fn sharing(other: &MemoryStore) -> MemoryStore {
        MemoryStore {
            engine: other.engine.clone(),
            ids: Default::default(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("version", &self.engine.committed_version())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for MemoryStore {
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
        "memory"
    }

    fn id_blocks(&self) -> &crate::ids::IdBlocks {
        &self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;

    crate::store_conformance!(conformance, || async { (MemoryStore::new(), ()) });
}
