//! Last-activity timestamps of proxied servers, accumulated in memory.
//!
//! The forwarding stage records every successfully proxied request (status below 300, as
//! CHP counts) and, throttled, traffic on upgraded connections against the route's
//! [`RouteKey`]. The node calls
//! [`ActivityRecorder::take`] every few seconds and writes the batch to the store in one
//! transaction: activity is never one store write per request (design §6).
//!
//! Recording computes the time outside the lock, then holds a `std::sync::Mutex` for one
//! hash-map probe; nothing awaits while it is held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::routes::RouteKey;

pub use galilean_proto::time::{now_micros, Micros};

/// Accumulates the newest activity time per route key until taken. Cheap to clone: clones
/// share one map.
#[derive(Debug, Clone, Default)]
pub struct ActivityRecorder {
    pending: Arc<Mutex<HashMap<RouteKey, Micros>>>,
}

impl ActivityRecorder {
    pub fn new() -> ActivityRecorder {
        ActivityRecorder::default()
    }

    /// Records activity on `key` now.
    pub fn record(&self, key: &RouteKey) {
        self.record_at(key, now_micros());
    }

    /// Records activity on `key` at `at`; an older time than the one pending is ignored.
    pub fn record_at(&self, key: &RouteKey, at: Micros) {
        let mut pending = self.lock();
        match pending.get_mut(key) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(key.clone(), at);
            }
        }
    }

    /// Takes everything recorded since the last call, leaving the recorder empty.
    pub fn take(&self) -> HashMap<RouteKey, Micros> {
        std::mem::take(&mut *self.lock())
    }

    /// Number of keys with pending activity.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RouteKey, Micros>> {
        // A panic while holding the lock cannot leave the map half-updated: keep using it.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
