//! Sequential ids without a hot key: each store hands out ids from blocks it reserved
//! earlier, one short transaction per [`BLOCK`] ids or so.
//!
//! Reading and bumping a counter inside every transaction that creates a user or a
//! token makes all such transactions conflict with each other: under a storm of logins
//! or spawns nearly every one is refused and retried after a back-off. Instead, a
//! reservation moves the counter (the key holds the last id reserved) by a whole block
//! in a transaction of its own, and the ids in it are then given out from memory. Ids
//! stay unique across a cluster (each reservation is a committed transaction that read
//! the counter) and increase on each node; across nodes their order follows the blocks,
//! and a node that restarts leaves the rest of its block unused, as a deleted row leaves
//! a gap in a database sequence.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::{transact, Store, StoreError};

/// Ids reserved beyond what the taker that found the block used up asks for: up to this
/// many ids go unused when a node restarts.
pub const BLOCK: u64 = 256;

/// Ids `[next, end)` not given out yet.
type IdRange = (u64, u64);

/// The ids a store has reserved and not yet given out, per counter key.
#[derive(Debug, Default)]
pub struct IdBlocks {
    /// Per key, ranges `[next, end)` in the order they were reserved. A std lock, never
    /// held across an await.
    free: Mutex<HashMap<Vec<u8>, VecDeque<IdRange>>>,
    /// Held while reserving, so that takers who all found the block used up wait for
    /// one reservation instead of making as many, conflicting with each other.
    reserving: tokio::sync::Mutex<()>,
}

impl IdBlocks {
    /// Moves up to `n - ids.len()` reserved ids into `ids`; whether it has `n` now.
    fn take(&self, key: &[u8], n: usize, ids: &mut Vec<u64>) -> bool {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ranges) = free.get_mut(key) else {
            return ids.len() >= n;
        };
        while ids.len() < n {
            let Some((next, end)) = ranges.front_mut() else {
                break;
            };
            if *next < *end {
                ids.push(*next);
                *next += 1;
            } else {
                ranges.pop_front();
            }
        }
        ids.len() >= n
    }

    fn give(&self, key: &[u8], next: u64, end: u64) {
        if next < end {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            free.entry(key.to_vec()).or_default().push_back((next, end));
        }
    }
}

/// The next id of the counter at `key` (8 bytes, big-endian: the last id reserved; an
/// absent key counts as 0, so the first id is 1). Runs its own transaction when this
/// store's block is used up, so the caller's transaction never reads the counter.
pub async fn next_id(store: &dyn Store, key: &[u8]) -> Result<u64, StoreError> {
    let ids = next_ids(store, key, 1).await?;
    ids.first()
        .copied()
        .ok_or_else(|| StoreError::Io("no id reserved".into()))
}

/// `n` new ids of the counter at `key` (see [`next_id`]), increasing, with at most one
/// reservation however many are asked for.
pub async fn next_ids(store: &dyn Store, key: &[u8], n: usize) -> Result<Vec<u64>, StoreError> {
    let blocks = store.id_blocks();
    let mut ids = Vec::with_capacity(n);
    if blocks.take(key, n, &mut ids) {
        return Ok(ids);
    }
    let _reserving = blocks.reserving.lock().await;
    // another taker may have reserved while this one waited
    if blocks.take(key, n, &mut ids) {
        return Ok(ids);
    }
    let missing = (n - ids.len()) as u64;
    let wanted = missing + BLOCK;
    let (first, end) = transact(store, |tx| {
        // owned: the future must not borrow past the transaction's lifetime
        let key = key.to_vec();
        Box::pin(async move {
            let last = match tx.get(&key).await? {
                Some(b) => <[u8; 8]>::try_from(b.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| {
                        StoreError::Io(format!("corrupt id counter ({} bytes, not 8)", b.len()))
                    })?,
                None => 0,
            };
            let reserved = last
                .checked_add(wanted)
                .ok_or_else(|| StoreError::Io("id counter exhausted".into()))?;
            tx.set(&key, &reserved.to_be_bytes());
            Ok((last + 1, reserved + 1))
        })
    })
    .await?;
    // this taker's share straight from the new block, the rest for later
    ids.extend(first..first + missing);
    blocks.give(key, first + missing, end);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn ids_are_unique_and_increase_on_one_store() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut last = 0;
        for _ in 0..3 * BLOCK {
            let id = next_id(store.as_ref(), b"seq").await.unwrap();
            assert!(id > last, "{id} after {last}");
            last = id;
        }
        assert_eq!(last, 3 * BLOCK);
        // three reservations (the first for BLOCK + 1), not one write per id
        assert_eq!(store.counters().snapshot().write_commits, 3);
        // a batch takes what is left and reserves the rest in one go
        let batch = next_ids(store.as_ref(), b"seq", 1000).await.unwrap();
        assert_eq!(batch.len(), 1000);
        assert_eq!(batch[0], last + 1);
        assert!(batch.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(store.counters().snapshot().write_commits, 4);
        // another counter is separate
        assert_eq!(next_id(store.as_ref(), b"other").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn concurrent_takers_and_two_stores_sharing_a_counter_never_collide() {
        // two "nodes" with their own blocks over one counter, as a cluster's nodes are
        let store = Arc::new(MemoryStore::new());
        let a: Arc<dyn Store> = store.clone();
        let b: Arc<dyn Store> = Arc::new(MemoryStore::sharing(&store));
        let mut tasks = Vec::new();
        for i in 0..400 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                next_id(s.as_ref(), b"seq").await.unwrap()
            }));
        }
        let mut ids = BTreeSet::new();
        for t in tasks {
            assert!(ids.insert(t.await.unwrap()), "an id was given twice");
        }
        assert_eq!(ids.len(), 400);
    }

    #[tokio::test]
    async fn an_existing_counter_goes_on_from_its_value() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut tx = store.begin().await.unwrap();
        tx.set(b"seq", &41u64.to_be_bytes());
        tx.commit().await.unwrap();
        assert_eq!(next_id(store.as_ref(), b"seq").await.unwrap(), 42);
        let mut tx = store.begin().await.unwrap();
        tx.set(b"bad", b"xyz");
        tx.commit().await.unwrap();
        assert!(matches!(
            next_id(store.as_ref(), b"bad").await,
            Err(StoreError::Io(_))
        ));
    }
}
