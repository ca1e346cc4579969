//! The in-memory backend, for tests: the OCC engine with no durability.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::occ::{Engine, Map, Volatile};
use crate::{ChangeBatch, Counters, Store, StoreError, Transaction, Version};

pub struct MemoryStore {
    engine: Arc<Engine>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            engine: Engine::new(Map::new(), 0, Box::new(Volatile)),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for MemoryStore {
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
        "memory"
    }
}
