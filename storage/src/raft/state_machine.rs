//! The replicated state machine in redb: the hub's key-value state, the last applied log
//! id, the membership and the recent-commit history, changed together in one transaction
//! per batch of entries (not synced itself: the raft log's next synced write, in the same
//! database, makes it durable; see `apply`).
//!
//! The conflict check of a commit runs here, on every replica, against the history of
//! the writes of the last [`HISTORY_SPAN`] log indices. The history is part of the state
//! (stored, and carried by snapshots), so every replica decides every commit the same way.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StoredMembership,
};
use redb::{
    Database, Durability, MultimapTableDefinition, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::{
    blocking, decode, encode, io_error, CommandResult, Commit, CommitResult, NodeId, RaftError,
    TypeConfig,
};
use crate::occ::ranges::RangeSet;
use crate::redb_store::{apply_mutations, Table};
use crate::{ChangeBatch, StoreError, Version};

/// How many log indices of write history the conflict check keeps: a transaction whose
/// read version is older than that is refused as a conflict (and retried).
pub const HISTORY_SPAN: u64 = 50_000;
/// Change batches a feed subscriber may fall behind.
const FEED_CAPACITY: usize = 4096;

/// The hub's keys and values.
const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_kv");
/// `applied`, `membership`, `snapshot`, `floor`, `version` (the newest write's log index).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
/// Write ranges of recent commits, by version.
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("sm_history");
/// Request ids of recent commits, by version (pruned with the history); a batch's
/// commits share a version.
const REQUESTS: MultimapTableDefinition<u64, u128> = MultimapTableDefinition::new("sm_request_ids");
/// Where request ids were kept before batches, one per version: moved to [`REQUESTS`]
/// when a store written then is opened.
const OLD_REQUESTS: TableDefinition<u64, u128> = TableDefinition::new("sm_requests");

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;
type Ranges = Vec<(Vec<u8>, Vec<u8>)>;

/// The whole state, as a snapshot carries it.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    kv: Vec<(Vec<u8>, Vec<u8>)>,
    history: Vec<(u64, Ranges)>,
    #[serde(default)]
    requests: Vec<(u64, u128)>,
    floor: u64,
    /// The newest write's version.
    version: u64,
}

/// The snapshot kept for `get_current_snapshot`.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

/// The conflict-check history: writes of recent commits. Reads with a version below
/// `floor` cannot be checked.
#[derive(Default)]
struct History {
    writes: BTreeMap<u64, RangeSet>,
    /// Request id → the version its commit created, and the reverse for pruning.
    requests: std::collections::HashMap<u128, u64>,
    request_of: BTreeMap<u64, Vec<u128>>,
    floor: u64,
}

impl History {
    fn add_request(&mut self, version: u64, request: u128) {
        self.requests.insert(request, version);
        self.request_of.entry(version).or_default().push(request);
    }

    /// Forgets everything at or below `floor`.
    fn prune(&mut self, floor: u64) {
        self.floor = floor;
        self.writes = self.writes.split_off(&(floor + 1));
        let kept = self.request_of.split_off(&(floor + 1));
        for requests in std::mem::replace(&mut self.request_of, kept).into_values() {
            for request in requests {
                self.requests.remove(&request);
            }
        }
    }
}

impl History {
    fn conflicts(&self, read_version: u64, reads: &RangeSet) -> bool {
        if reads.is_empty() {
            return false;
        }
        if read_version < self.floor {
            return true;
        }
        self.writes
            .range(read_version + 1..)
            .any(|(_, w)| w.intersects_set(reads))
    }
}

/// The state machine; clones share the database, the history, the change feed and the
/// applied index (a clone is the snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    history: Arc<Mutex<History>>,
    /// Replaced when a snapshot is installed, which closes every receiver: a follower of
    /// the feed must then re-read the state (see `Store::subscribe`).
    feed: Arc<Mutex<broadcast::Sender<Arc<ChangeBatch>>>>,
    /// The newest applied log index.
    applied: Arc<watch::Sender<Version>>,
    /// The newest write's version (log entries that write nothing do not move it).
    version: Arc<watch::Sender<Version>>,
    snapshots_built: Arc<AtomicU64>,
}

fn rerr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Read, e)
}

fn werr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e)
}

/// Moves the request ids a store written before batches kept (one per version) into
/// [`REQUESTS`], and drops their old table.
fn move_old_requests(tx: &redb::WriteTransaction) -> Result<(), RaftError> {
    let old = tx
        .list_tables()
        .map_err(werr)?
        .any(|t| redb::TableHandle::name(&t) == redb::TableHandle::name(&OLD_REQUESTS));
    if !old {
        return Ok(());
    }
    {
        let table = tx.open_table(OLD_REQUESTS).map_err(werr)?;
        let mut requests = tx.open_multimap_table(REQUESTS).map_err(werr)?;
        for item in table.iter().map_err(werr)? {
            let (version, request) = item.map_err(werr)?;
            requests
                .insert(version.value(), request.value())
                .map_err(werr)?;
        }
    }
    tx.delete_table(OLD_REQUESTS).map_err(werr)?;
    Ok(())
}

fn store_err(e: StoreError) -> RaftError {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e)
}

impl StateMachine {
    pub(super) fn new(db: Arc<Database>) -> Result<StateMachine, RaftError> {
        let tx = db.begin_write().map_err(werr)?;
        tx.open_table(KV).map_err(werr)?;
        tx.open_table(META).map_err(werr)?;
        tx.open_table(HISTORY).map_err(werr)?;
        tx.open_multimap_table(REQUESTS).map_err(werr)?;
        move_old_requests(&tx)?;
        tx.commit().map_err(werr)?;
        let feed = broadcast::channel(FEED_CAPACITY).0;
        let sm = StateMachine {
            db,
            history: Arc::default(),
            feed: Arc::new(Mutex::new(feed)),
            applied: Arc::new(watch::channel(0).0),
            version: Arc::new(watch::channel(0).0),
            snapshots_built: Arc::new(AtomicU64::new(0)),
        };
        sm.load_history()?;
        let applied = sm.meta::<Option<LogId<NodeId>>>("applied")?.flatten();
        sm.applied.send_replace(applied.map_or(0, |id| id.index));
        sm.version
            .send_replace(sm.meta::<u64>("version")?.unwrap_or(0));
        Ok(sm)
    }

    fn load_history(&self) -> Result<(), RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(HISTORY).map_err(rerr)?;
        let mut h = History {
            floor: self.meta::<u64>("floor")?.unwrap_or(0),
            ..History::default()
        };
        for item in table.iter().map_err(rerr)? {
            let (k, v) = item.map_err(rerr)?;
            let ranges: Ranges = decode(v.value(), ErrorSubject::StateMachine)?;
            h.writes.insert(k.value(), RangeSet::from_unsorted(ranges));
        }
        let table = tx.open_multimap_table(REQUESTS).map_err(rerr)?;
        for item in table.iter().map_err(rerr)? {
            let (version, requests) = item.map_err(rerr)?;
            for request in requests {
                h.add_request(version.value(), request.map_err(rerr)?.value());
            }
        }
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = h;
        Ok(())
    }

    fn meta<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(META).map_err(rerr)?;
        match table.get(name).map_err(rerr)? {
            Some(v) => Ok(Some(decode(v.value(), ErrorSubject::StateMachine)?)),
            None => Ok(None),
        }
    }

    /// A consistent read view and the version (applied log index) it shows.
    pub(crate) fn read_view(&self) -> Result<(Table, Version), StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::Io(e.to_string());
        let tx = self.db.begin_read().map_err(|e| io(&e))?;
        let meta = tx.open_table(META).map_err(|e| io(&e))?;
        let version: u64 = match meta.get("version").map_err(|e| io(&e))? {
            Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| io(&e))?,
            None => 0,
        };
        let table = tx.open_table(KV).map_err(|e| io(&e))?;
        Ok((table, version))
    }

    /// The newest applied log index.
    pub fn applied_index(&self) -> Version {
        *self.applied.borrow()
    }

    /// The newest write's version.
    pub fn version(&self) -> Version {
        *self.version.borrow()
    }

    /// Waits until the log index `version` has been applied here.
    pub async fn wait_applied(&self, version: Version) {
        let mut rx = self.applied.subscribe();
        let _ = rx.wait_for(|v| *v >= version).await;
    }

    /// Committed batches, in log order, as they are applied here.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subscribe()
    }

    /// The value of `key` as applied so far.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(KV).map_err(rerr)?;
        Ok(table.get(key).map_err(rerr)?.map(|v| v.value().to_vec()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, RaftError> {
        let db = self.db.clone();
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
        let stored = blocking(move || {
            // one read transaction: the state, its history and its applied id agree
            let tx = db.begin_read().map_err(rerr)?;
            let meta_table = tx.open_table(META).map_err(rerr)?;
            let read_meta = |name: &str| -> Result<Option<Vec<u8>>, RaftError> {
                Ok(meta_table
                    .get(name)
                    .map_err(rerr)?
                    .map(|v| v.value().to_vec()))
            };
            let applied: Option<LogId<NodeId>> = match read_meta("applied")? {
                Some(b) => decode(&b, ErrorSubject::StateMachine)?,
                None => None,
            };
            let membership: Membership = match read_meta("membership")? {
                Some(b) => decode(&b, ErrorSubject::StateMachine)?,
                None => Membership::default(),
            };
            let floor: u64 = match read_meta("floor")? {
                Some(b) => decode(&b, ErrorSubject::StateMachine)?,
                None => 0,
            };
            let version: u64 = match read_meta("version")? {
                Some(b) => decode(&b, ErrorSubject::StateMachine)?,
                None => 0,
            };
            let mut kv = Vec::new();
            for item in tx.open_table(KV).map_err(rerr)?.iter().map_err(rerr)? {
                let (k, v) = item.map_err(rerr)?;
                kv.push((k.value().to_vec(), v.value().to_vec()));
            }
            let mut history = Vec::new();
            for item in tx.open_table(HISTORY).map_err(rerr)?.iter().map_err(rerr)? {
                let (k, v) = item.map_err(rerr)?;
                history.push((k.value(), decode(v.value(), ErrorSubject::StateMachine)?));
            }
            let mut requests = Vec::new();
            for item in tx
                .open_multimap_table(REQUESTS)
                .map_err(rerr)?
                .iter()
                .map_err(rerr)?
            {
                let (version, ids) = item.map_err(rerr)?;
                for id in ids {
                    requests.push((version.value(), id.map_err(rerr)?.value()));
                }
            }
            drop(tx);
            let snapshot_id = match &applied {
                Some(id) => format!("{}-{}-{n}", id.leader_id, id.index),
                None => format!("none-{n}"),
            };
            let meta = Meta {
                last_log_id: applied,
                last_membership: membership,
                snapshot_id,
            };
            let data = encode(
                &SnapshotData {
                    kv,
                    history,
                    requests,
                    floor,
                    version,
                },
                ErrorSubject::Snapshot(None),
            )?;
            let stored = StoredSnapshot { meta, data };
            let bytes = encode(&stored, ErrorSubject::Snapshot(None))?;
            let mut wtx = db.begin_write().map_err(werr)?;
            wtx.set_durability(Durability::Immediate);
            {
                let mut meta_table = wtx.open_table(META).map_err(werr)?;
                meta_table
                    .insert("snapshot", bytes.as_slice())
                    .map_err(werr)?;
            }
            wtx.commit().map_err(werr)?;
            Ok(stored)
        })
        .await?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

/// What one batch of entries did, for the history and the feed once it is durable.
#[derive(Default)]
struct Applied {
    results: Vec<CommandResult>,
    /// By version, in log order (an entry's commits share one): the union of the
    /// writes, which later commits of the batch are checked against and the history
    /// keeps, and every mutation in order, for the feed.
    versions: Vec<(u64, RangeSet, Vec<crate::Mutation>)>,
    /// Request id → version of this batch's commits.
    requests: std::collections::HashMap<u128, u64>,
    last: u64,
}

/// The tables one batch of entries changes.
struct Tables<'t> {
    kv: redb::Table<'t, &'static [u8], &'static [u8]>,
    hist: redb::Table<'t, u64, &'static [u8]>,
    reqs: redb::MultimapTable<'t, u64, u128>,
}

impl Applied {
    /// Decides and applies one commit of the entry `id`.
    fn commit(
        &mut self,
        tables: &mut Tables<'_>,
        h: &History,
        id: LogId<NodeId>,
        commit: &Commit,
    ) -> Result<CommitResult, RaftError> {
        let Commit {
            read_version,
            reads,
            mutations,
            request,
        } = commit;
        if *request != 0 {
            // a retry of a commit already applied: its first answer again
            if let Some(version) = h
                .requests
                .get(request)
                .or_else(|| self.requests.get(request))
            {
                return Ok(CommitResult {
                    version: *version,
                    conflict: false,
                });
            }
        }
        let reads = RangeSet::from_unsorted(reads.clone());
        let batch_conflict = self
            .versions
            .iter()
            .any(|(v, w, _)| *v > *read_version && w.intersects_set(&reads));
        if batch_conflict || h.conflicts(*read_version, &reads) {
            return Ok(CommitResult {
                version: 0,
                conflict: true,
            });
        }
        apply_mutations(&mut tables.kv, mutations).map_err(store_err)?;
        let writes = RangeSet::written(mutations);
        match self.versions.last_mut() {
            Some((v, all, changes)) if *v == id.index => {
                for (begin, end) in writes.into_ranges() {
                    all.insert(&begin, &end);
                }
                changes.extend_from_slice(mutations);
            }
            _ => self.versions.push((id.index, writes, mutations.clone())),
        }
        if *request != 0 {
            tables.reqs.insert(id.index, *request).map_err(werr)?;
            self.requests.insert(*request, id.index);
        }
        Ok(CommitResult {
            version: id.index,
            conflict: false,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), RaftError> {
        let applied = self.meta::<Option<LogId<NodeId>>>("applied")?.flatten();
        let membership = self.meta::<Membership>("membership")?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, RaftError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.clone();
        let history = self.history.clone();
        let applied = blocking(move || {
            let mut tx = db.begin_write().map_err(werr)?;
            // Not synced: the entries are in the raft log, synced before they could be
            // committed, and applying them again after a crash gives the same state
            // (history and request ids included). The log shares this database, and
            // every write to it is synced, which makes this one durable too; so logs are
            // purged (a synced write) only after the state that covers them is on disk.
            // One sync less per batch on every node.
            tx.set_durability(Durability::None);
            let mut out = Applied {
                results: Vec::with_capacity(entries.len()),
                ..Applied::default()
            };
            // the history as this batch sees it: the stored one plus this batch's commits
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            let mut floor = h.floor;
            {
                let mut tables = Tables {
                    kv: tx.open_table(KV).map_err(werr)?,
                    hist: tx.open_table(HISTORY).map_err(werr)?,
                    reqs: tx.open_multimap_table(REQUESTS).map_err(werr)?,
                };
                let mut meta = tx.open_table(META).map_err(werr)?;
                let mut last = None;
                for e in &entries {
                    let id = *e.get_log_id();
                    match &e.payload {
                        EntryPayload::Blank => out.results.push(CommandResult::default()),
                        EntryPayload::Normal(command) => {
                            let mut results = Vec::with_capacity(command.commits().len());
                            for commit in command.commits() {
                                results.push(out.commit(&mut tables, &h, id, commit)?);
                            }
                            if let Some((_, writes, _)) =
                                out.versions.last().filter(|(v, _, _)| *v == id.index)
                            {
                                let stored =
                                    encode(&writes.clone().into_ranges(), ErrorSubject::Apply(id))?;
                                tables
                                    .hist
                                    .insert(id.index, stored.as_slice())
                                    .map_err(werr)?;
                            }
                            out.results.push(results);
                        }
                        EntryPayload::Membership(m) => {
                            let stored = Membership::new(Some(id), m.clone());
                            let bytes = encode(&stored, ErrorSubject::StateMachine)?;
                            meta.insert("membership", bytes.as_slice()).map_err(werr)?;
                            out.results.push(CommandResult::default());
                        }
                    }
                    last = Some(id);
                }
                let last_index = last.map_or(0, |id| id.index);
                // the window moves with the log: deterministic on every replica
                let new_floor = last_index.saturating_sub(HISTORY_SPAN);
                if new_floor > floor {
                    floor = new_floor;
                    tables
                        .hist
                        .retain_in(..=floor, |_, _| false)
                        .map_err(werr)?;
                    let pruned = tables
                        .reqs
                        .range(..=floor)
                        .map_err(werr)?
                        .map(|item| item.map(|(v, _)| v.value()))
                        .collect::<Result<Vec<u64>, _>>()
                        .map_err(werr)?;
                    for v in pruned {
                        tables.reqs.remove_all(v).map_err(werr)?;
                    }
                    meta.insert(
                        "floor",
                        encode(&floor, ErrorSubject::StateMachine)?.as_slice(),
                    )
                    .map_err(werr)?;
                }
                let bytes = encode(&last, ErrorSubject::StateMachine)?;
                meta.insert("applied", bytes.as_slice()).map_err(werr)?;
                if let Some((v, _, _)) = out.versions.last() {
                    let bytes = encode(v, ErrorSubject::StateMachine)?;
                    meta.insert("version", bytes.as_slice()).map_err(werr)?;
                }
                out.last = last_index;
            }
            tx.commit().map_err(werr)?;
            // committed: now the in-memory history may show it
            for (v, w, _) in &out.versions {
                h.writes.insert(*v, w.clone());
            }
            for (request, v) in &out.requests {
                h.add_request(*v, *request);
            }
            h.prune(floor);
            Ok(out)
        })
        .await?;
        {
            let feed = self.feed.lock().unwrap_or_else(|e| e.into_inner());
            for (version, _, mutations) in applied.versions {
                self.version.send_replace(version);
                let _ = feed.send(Arc::new(ChangeBatch { version, mutations }));
            }
        }
        self.applied.send_replace(applied.last);
        Ok(applied.results)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftError> {
        let data = snapshot.into_inner();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let state: SnapshotData = decode(&data, subject.clone())?;
        tracing::info!(
            last_log = ?meta.last_log_id.map(|l| l.index),
            keys = state.kv.len(),
            bytes = data.len(),
            "installing a snapshot from the leader"
        );
        let stored = encode(
            &StoredSnapshot {
                meta: meta.clone(),
                data,
            },
            subject.clone(),
        )?;
        let applied = encode(&meta.last_log_id, subject.clone())?;
        let membership = encode(&meta.last_membership, subject.clone())?;
        let floor = encode(&state.floor, subject.clone())?;
        let version = encode(&state.version, subject.clone())?;
        let new_version = state.version;
        let mut history_rows = Vec::with_capacity(state.history.len());
        for (v, ranges) in &state.history {
            history_rows.push((*v, encode(ranges, subject.clone())?));
        }
        let db = self.db.clone();
        let kv_rows = state.kv;
        let request_rows = state.requests;
        blocking(move || {
            let mut tx = db.begin_write().map_err(werr)?;
            tx.set_durability(Durability::Immediate);
            {
                let mut kv = tx.open_table(KV).map_err(werr)?;
                kv.retain(|_, _| false).map_err(werr)?;
                for (k, v) in &kv_rows {
                    kv.insert(k.as_slice(), v.as_slice()).map_err(werr)?;
                }
                let mut hist = tx.open_table(HISTORY).map_err(werr)?;
                hist.retain(|_, _| false).map_err(werr)?;
                for (v, bytes) in &history_rows {
                    hist.insert(*v, bytes.as_slice()).map_err(werr)?;
                }
                tx.delete_multimap_table(REQUESTS).map_err(werr)?;
                let mut reqs = tx.open_multimap_table(REQUESTS).map_err(werr)?;
                for (v, request) in &request_rows {
                    reqs.insert(*v, *request).map_err(werr)?;
                }
                let mut m = tx.open_table(META).map_err(werr)?;
                m.insert("applied", applied.as_slice()).map_err(werr)?;
                m.insert("membership", membership.as_slice())
                    .map_err(werr)?;
                m.insert("snapshot", stored.as_slice()).map_err(werr)?;
                m.insert("floor", floor.as_slice()).map_err(werr)?;
                m.insert("version", version.as_slice()).map_err(werr)?;
            }
            tx.commit().map_err(werr)
        })
        .await?;
        self.load_history()?;
        self.version.send_replace(new_version);
        // the state jumped: close the feed so that its followers reload
        *self.feed.lock().unwrap_or_else(|e| e.into_inner()) = broadcast::channel(FEED_CAPACITY).0;
        self.applied
            .send_replace(meta.last_log_id.map_or(0, |id| id.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, RaftError> {
        let Some(stored) = self.meta::<StoredSnapshot>("snapshot")? else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
