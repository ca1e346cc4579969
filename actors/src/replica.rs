//! The node's local replica: every record of the store, decoded and held in memory,
//! kept current from the store's change feed. Hot paths (token checks, route lookups,
//! API reads) read here and never from the store. A writer that wants its own write to
//! be visible waits with [`Replica::wait_for`] for the commit version it got.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use galilean_proto::codec::decode;
use galilean_proto::records::{OAuthClientRecord, ServerRecord, TokenRecord, UserRecord};
use galilean_storage::{ChangeBatch, Mutation, Store, StoreError, Version};
use tokio::sync::{broadcast, watch};

use crate::store::keys::{self, KeyKind};

/// Everything the replica holds. Cheap to read under a short read lock; never held
/// across an await.
#[derive(Debug, Default)]
pub struct State {
    pub users: BTreeMap<String, Arc<UserRecord>>,
    /// User id → the same record as in `users`: the users in the API's default order,
    /// for paging without a sort.
    pub users_by_id: BTreeMap<u64, Arc<UserRecord>>,
    pub servers: BTreeMap<(String, String), Arc<ServerRecord>>,
    /// Tokens by hex SHA-256 of their secret.
    pub tokens: HashMap<String, Arc<TokenRecord>>,
    /// Token id → hash.
    pub token_ids: HashMap<u64, String>,
    pub clients: HashMap<String, Arc<OAuthClientRecord>>,
    pub meta: HashMap<String, Vec<u8>>,
    /// Increases whenever a server record changes, and never decreases (the route table
    /// rebuilds on it, and is stamped with it).
    pub servers_generation: u64,
    pub version: Version,
}

impl State {
    fn apply_set(&mut self, key: &[u8], value: &[u8]) {
        match keys::classify(key) {
            KeyKind::User(name) => {
                if let Ok(rec) = decode::<UserRecord>(value) {
                    let rec = Arc::new(rec);
                    if let Some(old) = self.users.insert(name, rec.clone()) {
                        if old.id != rec.id {
                            self.unindex(&old);
                        }
                    }
                    self.users_by_id.insert(rec.id, rec);
                }
            }
            KeyKind::Server(u, s) => {
                if let Ok(rec) = decode::<ServerRecord>(value) {
                    self.servers.insert((u, s), Arc::new(rec));
                    self.servers_generation += 1;
                }
            }
            KeyKind::Token(hash) => {
                if let Ok(rec) = decode::<TokenRecord>(value) {
                    self.token_ids.insert(rec.id, hash.clone());
                    self.tokens.insert(hash, Arc::new(rec));
                }
            }
            KeyKind::Client(id) => {
                if let Ok(rec) = decode::<OAuthClientRecord>(value) {
                    self.clients.insert(id, Arc::new(rec));
                }
            }
            KeyKind::Meta(name) => {
                self.meta.insert(name, value.to_vec());
            }
            KeyKind::Code(_) | KeyKind::Other => {}
        }
    }

    /// Takes `old` (a record just replaced or removed) out of the id index, unless its
    /// id now belongs to another user's record.
    fn unindex(&mut self, old: &UserRecord) {
        if self
            .users_by_id
            .get(&old.id)
            .is_some_and(|r| r.name == old.name)
        {
            self.users_by_id.remove(&old.id);
        }
    }

    fn apply_clear(&mut self, key: &[u8]) {
        match keys::classify(key) {
            KeyKind::User(name) => {
                if let Some(old) = self.users.remove(&name) {
                    self.unindex(&old);
                }
            }
            KeyKind::Server(u, s) => {
                self.servers.remove(&(u, s));
                self.servers_generation += 1;
            }
            KeyKind::Token(hash) => {
                if let Some(rec) = self.tokens.remove(&hash) {
                    self.token_ids.remove(&rec.id);
                }
            }
            KeyKind::Client(id) => {
                self.clients.remove(&id);
            }
            KeyKind::Meta(name) => {
                self.meta.remove(&name);
            }
            KeyKind::Code(_) | KeyKind::Other => {}
        }
    }

    fn apply(&mut self, batch: &ChangeBatch) {
        for m in &batch.mutations {
            match m {
                Mutation::Set { key, value } => self.apply_set(key, value),
                Mutation::Clear { key } => self.apply_clear(key),
                Mutation::ClearRange { begin, end } => {
                    // range clears are rare (whole-user deletes): re-derive the keys
                    let doomed: Vec<Vec<u8>> = self
                        .all_keys()
                        .into_iter()
                        .filter(|k| {
                            k.as_slice() >= begin.as_slice() && k.as_slice() < end.as_slice()
                        })
                        .collect();
                    for k in doomed {
                        self.apply_clear(&k);
                    }
                }
            }
        }
        self.version = batch.version;
    }

    fn all_keys(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        out.extend(self.users.keys().map(|u| keys::user(u)));
        out.extend(self.servers.keys().map(|(u, s)| keys::server(u, s)));
        out.extend(self.tokens.keys().map(|h| keys::token(h)));
        out.extend(self.clients.keys().map(|c| keys::client(c)));
        out.extend(self.meta.keys().map(|m| keys::meta(m)));
        out
    }

    /// A digest of everything held (records as the store encodes them, in key order):
    /// two replicas at the same version have the same digest unless they diverged.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut put = |key: &[u8], value: Option<Vec<u8>>| {
            h.update((key.len() as u64).to_be_bytes());
            h.update(key);
            let value = value.unwrap_or_default();
            h.update((value.len() as u64).to_be_bytes());
            h.update(&value);
        };
        fn enc<T: serde::Serialize>(record: &T) -> Option<Vec<u8>> {
            rmp_serde::to_vec_named(record).ok()
        }
        for (name, rec) in &self.users {
            put(&keys::user(name), enc(rec.as_ref()));
        }
        for ((u, s), rec) in &self.servers {
            put(&keys::server(u, s), enc(rec.as_ref()));
        }
        let mut tokens: Vec<_> = self.tokens.iter().collect();
        tokens.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (hash, rec) in tokens {
            put(&keys::token(hash), enc(rec.as_ref()));
        }
        let mut clients: Vec<_> = self.clients.iter().collect();
        clients.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (id, rec) in clients {
            put(&keys::client(id), enc(rec.as_ref()));
        }
        let mut meta: Vec<_> = self.meta.iter().collect();
        meta.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (name, value) in meta {
            put(&keys::meta(name), Some(value.clone()));
        }
        hex::encode(h.finalize())
    }

    /// Servers of one user, by server name.
    pub fn servers_of<'a>(
        &'a self,
        user: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ServerRecord>> + 'a {
        self.servers
            .range((user.to_owned(), String::new())..)
            .take_while(move |((u, _), _)| u == user)
            .map(|(_, s)| s)
    }
}

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
            // the generation only grows (the route feed and the proxy compare it): a
            // reloaded state counts from zero
            state.servers_generation = guard
                .servers_generation
                .wrapping_add(state.servers_generation)
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
        assert_eq!(replica.version(), 9);
    }
}
