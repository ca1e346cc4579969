//! The cache of resolved tokens: a token's identity (its owner's roles, its own scopes,
//! its client's filter, expanded) is resolved once per replica version, not per request.

use std::collections::HashMap;
use std::sync::Arc;

use galilean_storage::Version;

use crate::auth::identity::Identity;

/// Tokens resolved against the replica, by hash, each for the replica version it was
/// resolved at: expanding a token's scopes (its owner's roles, the token's own list, the
/// issuing client's filter) allocates a set per scope, too much to repeat on every request.
/// Any applied change to the replica makes every entry stale, so an answer is never older
/// than the replica it would have been computed from. Keyed by hash: no secret is kept.
#[derive(Default)]
pub struct TokenCache {
    resolved: std::sync::RwLock<HashMap<String, Cached>>,
}

struct Cached {
    version: Version,
    expires_at: Option<i64>,
    identity: Arc<Identity>,
}

impl TokenCache {
    /// More entries than this and the cache starts over (stale entries are only
    /// overwritten otherwise).
    const MAX_ENTRIES: usize = 100_000;

    pub(crate) fn get(&self, hash: &str, version: Version, now: i64) -> Option<Option<Identity>> {
        let map = self.resolved.read().unwrap_or_else(|e| e.into_inner());
        let c = map.get(hash).filter(|c| c.version == version)?;
        if c.expires_at.is_some_and(|e| e <= now) {
            return Some(None);
        }
        Some(Some((*c.identity).clone()))
    }

    pub(crate) fn put(
        &self,
        hash: &str,
        version: Version,
        expires_at: Option<i64>,
        identity: Arc<Identity>,
    ) {
        let mut map = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES && !map.contains_key(hash) {
            map.clear();
        }
        let cached = Cached {
            version,
            expires_at,
            identity,
        };
        crate::set_entry(&mut map, hash, cached);
    }
}
