//! `HubCtx`: what every actor of a node shares: the store, the local replica, the
//! spawner, the spawn queue, the settings that shape spawned servers, and the timings
//! of spawns and stops.

use std::sync::Arc;

use galilean_storage::Store;
use tokio::sync::Semaphore;

use crate::metrics::ServerTimings;
use crate::replica::Replica;
use crate::settings::SpawnSettings;
use crate::spawner::Spawner;

/// Shared by the actors of one node.
pub struct HubCtx {
    pub store: Arc<dyn Store>,
    pub replica: Arc<Replica>,
    pub spawner: Arc<dyn Spawner>,
    pub settings: SpawnSettings,
    /// `spawner.concurrent_spawn_limit` permits, handed out in arrival order (tokio's
    /// semaphore is fair), so a spawn storm queues instead of being refused.
    pub spawn_slots: Arc<Semaphore>,
    /// How many spawns hold a slot now, and the most ever at once (for tests).
    pub spawning_now: std::sync::atomic::AtomicUsize,
    pub spawning_peak: std::sync::atomic::AtomicUsize,
    /// Client for readiness probes.
    pub probe: reqwest::Client,
    /// How long this node's spawns and stops took, for its metrics page.
    pub timings: ServerTimings,
}
