//! The replicated state machine in redb: the hub's key-value state, the last applied log
//! id and the membership, changed together in one synced transaction per batch.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StoredMembership,
};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{
    blocking, decode, encode, io_error, Command, CommandResult, NodeId, RaftError, TypeConfig,
};
use crate::Mutation;

/// The hub's keys and values.
const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_kv");
/// `applied`, `membership`, `snapshot`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The whole state, as a snapshot carries it.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    kv: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The snapshot kept for `get_current_snapshot`.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

/// The state machine; clones share the database (a clone is the snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    snapshots_built: Arc<AtomicU64>,
}

fn rerr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Read, e)
}

fn werr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e)
}

fn apply_mutations(
    table: &mut redb::Table<&[u8], &[u8]>,
    mutations: &[Mutation],
) -> Result<(), RaftError> {
    for m in mutations {
        match m {
            Mutation::Set { key, value } => {
                table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(werr)?;
            }
            Mutation::Clear { key } => {
                table.remove(key.as_slice()).map_err(werr)?;
            }
            Mutation::ClearRange { begin, end } => {
                if begin < end {
                    table
                        .retain_in(begin.as_slice()..end.as_slice(), |_, _| false)
                        .map_err(werr)?;
                }
            }
        }
    }
    Ok(())
}

impl StateMachine {
    pub(super) fn new(db: Arc<Database>) -> Result<StateMachine, RaftError> {
        let tx = db.begin_write().map_err(werr)?;
        tx.open_table(KV).map_err(werr)?;
        tx.open_table(META).map_err(werr)?;
        tx.commit().map_err(werr)?;
        Ok(StateMachine {
            db,
            snapshots_built: Arc::new(AtomicU64::new(0)),
        })
    }

    fn meta<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(META).map_err(rerr)?;
        match table.get(name).map_err(rerr)? {
            Some(v) => Ok(Some(decode(v.value(), ErrorSubject::StateMachine)?)),
            None => Ok(None),
        }
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
            // one read transaction: the state and its applied id agree
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
            let table = tx.open_table(KV).map_err(rerr)?;
            let mut kv = Vec::new();
            for item in table.iter().map_err(rerr)? {
                let (k, v) = item.map_err(rerr)?;
                kv.push((k.value().to_vec(), v.value().to_vec()));
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
            let data = encode(&SnapshotData { kv }, ErrorSubject::Snapshot(None))?;
            let stored = StoredSnapshot { meta, data };
            let bytes = encode(&stored, ErrorSubject::Snapshot(None))?;
            let wtx = db.begin_write().map_err(werr)?;
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
        blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            let mut results = Vec::with_capacity(entries.len());
            {
                let mut kv = tx.open_table(KV).map_err(werr)?;
                let mut meta = tx.open_table(META).map_err(werr)?;
                let mut last = None;
                for e in &entries {
                    let id = *e.get_log_id();
                    match &e.payload {
                        EntryPayload::Blank => results.push(CommandResult::default()),
                        EntryPayload::Normal(Command::Write { mutations }) => {
                            apply_mutations(&mut kv, mutations)?;
                            results.push(CommandResult { version: id.index });
                        }
                        EntryPayload::Membership(m) => {
                            let stored = Membership::new(Some(id), m.clone());
                            let bytes = encode(&stored, ErrorSubject::StateMachine)?;
                            meta.insert("membership", bytes.as_slice()).map_err(werr)?;
                            results.push(CommandResult::default());
                        }
                    }
                    last = Some(id);
                }
                let bytes = encode(&last, ErrorSubject::StateMachine)?;
                meta.insert("applied", bytes.as_slice()).map_err(werr)?;
            }
            tx.commit().map_err(werr)?;
            Ok(results)
        })
        .await
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
        let stored = encode(
            &StoredSnapshot {
                meta: meta.clone(),
                data,
            },
            subject.clone(),
        )?;
        let applied = encode(&meta.last_log_id, subject.clone())?;
        let membership = encode(&meta.last_membership, subject)?;
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            {
                let mut kv = tx.open_table(KV).map_err(werr)?;
                kv.retain(|_, _| false).map_err(werr)?;
                for (k, v) in &state.kv {
                    kv.insert(k.as_slice(), v.as_slice()).map_err(werr)?;
                }
                let mut m = tx.open_table(META).map_err(werr)?;
                m.insert("applied", applied.as_slice()).map_err(werr)?;
                m.insert("membership", membership.as_slice())
                    .map_err(werr)?;
                m.insert("snapshot", stored.as_slice()).map_err(werr)?;
            }
            tx.commit().map_err(werr)
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, sm) = super::super::open(&dir.path().join("raft.redb")).unwrap();
        let tx = sm.db.begin_write().unwrap();
        {
            let mut kv = tx.open_table(KV).unwrap();
            apply_mutations(
                &mut kv,
                &[
                    Mutation::Set {
                        key: b"a".to_vec(),
                        value: b"1".to_vec(),
                    },
                    Mutation::Set {
                        key: b"b".to_vec(),
                        value: b"2".to_vec(),
                    },
                    Mutation::Set {
                        key: b"c".to_vec(),
                        value: b"3".to_vec(),
                    },
                    Mutation::ClearRange {
                        begin: b"a".to_vec(),
                        end: b"c".to_vec(),
                    },
                    Mutation::Set {
                        key: b"b".to_vec(),
                        value: b"4".to_vec(),
                    },
                    Mutation::Clear { key: b"c".to_vec() },
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(sm.get(b"a").unwrap(), None);
        assert_eq!(sm.get(b"b").unwrap(), Some(b"4".to_vec()));
        assert_eq!(sm.get(b"c").unwrap(), None);
    }
}
