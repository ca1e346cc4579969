//! The node's local replica: every record of the store, decoded and held in memory,
//! kept current from the store's change feed. Hot paths (token checks, route lookups,
//! API reads) read here and never from the store. A writer that wants its own write to
//! be visible waits with [`Replica::wait_for`] for the commit version it got.

mod shares;
mod state;

use std::sync::{Arc, RwLock};

use galilean_storage::{ChangeBatch, Store, StoreError, Version};
use tokio::sync::{broadcast, watch};

pub use shares::Shares;
pub use state::State;

/// The replica and the version it has applied.
pub struct Replica {
    state: RwLock<State>,
    applied: watch::Sender<Version>,
}

impl Replica {
    /// Loads every record and starts following the change feed.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Replica>, StoreError> {
        let rx = store.subscribe();
        let state = load(store.as_ref()).await?;
        let version = state.version;
        let (applied, _) = watch::channel(version);
        let replica = Arc::new(Replica {
            state: RwLock::new(state),
            applied,
        });
        tokio::spawn(follow(Arc::downgrade(&replica), store, rx));
        Ok(replica)
    }

    /// Runs `f` with the current state under a short read lock.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub fn version(&self) -> Version {
        *self.applied.borrow()
    }

    /// A receiver that changes whenever a batch is applied.
    pub fn watch(&self) -> watch::Receiver<Version> {
        self.applied.subscribe()
    }

    /// Waits until the replica has applied `version` (a commit this node just made).
    pub async fn wait_for(&self, version: Version) {
        let mut rx = self.applied.subscribe();
        let _ = rx.wait_for(|v| *v >= version).await;
    }

    fn apply(&self, batch: &ChangeBatch) {
        {
            let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
            if batch.version <= guard.version {
                return;
            }
            guard.apply(batch);
        }
        self.applied.send_replace(batch.version);
    }

    fn replace(&self, mut state: State) {
        let version = state.version;
        {
            let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
            // the generations only grow (the route feed, the proxy and the scope caches
            // compare them): a reloaded state counts from zero
            state.servers_generation = guard
                .servers_generation
                .wrapping_add(state.servers_generation)
                .wrapping_add(1);
            state.grants_generation = guard
                .grants_generation
                .wrapping_add(state.grants_generation)
                .wrapping_add(1);
            *guard = state;
        }
        self.applied.send_replace(version);
    }
}

async fn load(store: &dyn Store) -> Result<State, StoreError> {
    let mut tx = store.begin().await?;
    let version = tx.read_version();
    let all = tx.get_range(b"", b"\xff\xff", 0, false).await?;
    let mut state = State {
        version,
        ..State::default()
    };
    for (k, v) in all {
        state.apply_set(&k, &v);
    }
    Ok(state)
}

async fn follow(
    replica: std::sync::Weak<Replica>,
    store: Arc<dyn Store>,
    mut rx: broadcast::Receiver<Arc<ChangeBatch>>,
) {
    loop {
        match rx.recv().await {
            Ok(batch) => {
                let Some(r) = replica.upgrade() else { return };
                r.apply(&batch);
            }
            Err(e) => {
                // lagged, or the store's state jumped (a raft snapshot was installed)
                tracing::warn!(error = %e, "replica lost the change feed, reloading");
                if matches!(e, broadcast::error::RecvError::Closed) {
                    // never spin on a feed that closes again at once
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                let Some(r) = replica.upgrade() else { return };
                rx = store.subscribe();
                match load(store.as_ref()).await {
                    Ok(state) => r.replace(state),
                    Err(e) => tracing::error!(error = %e, "replica reload failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_moves_the_servers_generation_on() {
        let (applied, _) = watch::channel(0);
        let replica = Replica {
            state: RwLock::new(State {
                servers_generation: 3,
                ..State::default()
            }),
            applied,
        };
        // the reloaded state loaded three server records: generation 3, as before
        replica.replace(State {
            servers_generation: 3,
            version: 9,
            ..State::default()
        });
        assert!(replica.read(|s| s.servers_generation) > 3);
        assert!(replica.read(|s| s.grants_generation) > 0);
        assert_eq!(replica.version(), 9);
    }
}
