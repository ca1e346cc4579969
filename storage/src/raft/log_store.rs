//! The raft log in redb.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, Vote,
};
use redb::{Database, ReadableTable, TableDefinition};

use super::{blocking, decode, encode, io_error, NodeId, RaftError, TypeConfig};

/// Entries by index.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// `vote`, `purged` (and `committed`, which older versions kept).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

type Entry = openraft::Entry<TypeConfig>;

/// The log store; clones share the database (a clone is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

fn rerr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn werr<E: std::error::Error + 'static>(e: E) -> RaftError {
    io_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    pub(super) fn new(db: Arc<Database>) -> Result<LogStore, RaftError> {
        let tx = db.begin_write().map_err(werr)?;
        tx.open_table(LOG).map_err(werr)?;
        tx.open_table(META).map_err(werr)?;
        tx.commit().map_err(werr)?;
        Ok(LogStore { db })
    }

    fn meta<T: for<'de> serde::Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(META).map_err(rerr)?;
        match table.get(name).map_err(rerr)? {
            Some(v) => Ok(Some(decode(v.value(), ErrorSubject::Store)?)),
            None => Ok(None),
        }
    }

    /// Writes one meta value, synced.
    async fn put_meta<T: serde::Serialize>(
        &self,
        name: &'static str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), RaftError> {
        let bytes = encode(value, subject)?;
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            {
                let mut table = tx.open_table(META).map_err(werr)?;
                table.insert(name, bytes.as_slice()).map_err(werr)?;
            }
            tx.commit().map_err(werr)
        })
        .await
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, RaftError> {
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(LOG).map_err(rerr)?;
        let last = table.last().map_err(rerr)?;
        let id = match last {
            Some((_, v)) => {
                let e: Entry = decode(v.value(), ErrorSubject::Logs)?;
                Some(*e.get_log_id())
            }
            None => None,
        };
        Ok(id)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let tx = self.db.begin_read().map_err(rerr)?;
        let table = tx.open_table(LOG).map_err(rerr)?;
        let mut out = Vec::new();
        for item in table.range(start..).map_err(rerr)? {
            let (k, v) = item.map_err(rerr)?;
            if !range.contains(&k.value()) {
                break;
            }
            out.push(decode(v.value(), ErrorSubject::Logs)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftError> {
        let last_purged: Option<LogId<NodeId>> = self.meta("purged")?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), RaftError> {
        self.put_meta("vote", vote, ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, RaftError> {
        self.meta("vote")
    }

    /// Not kept: the commit index is raft's volatile state. A restarted node resumes
    /// from its applied state and learns the commit from the leader's next message (a new
    /// leader commits its first entry and all before it); it serves nothing until a
    /// leader's ping finds it caught up to the leader's version (`Call::Ping` in actors/src/router/calls.rs).
    /// openraft calls this in its core before every apply: keeping it cost every
    /// replicated write one more redb transaction on every node.
    async fn save_committed(&mut self, _: Option<LogId<NodeId>>) -> Result<(), RaftError> {
        Ok(())
    }

    /// Nothing is kept (a value older versions stored under `committed` is ignored), so
    /// openraft starts from the applied state.
    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, RaftError> {
        Ok(None)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.get_log_id().index, encode(&e, ErrorSubject::Logs)?));
        }
        let db = self.db.clone();
        let result = blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            {
                let mut table = tx.open_table(LOG).map_err(werr)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice()).map_err(werr)?;
                }
            }
            // redb's default durability syncs before commit returns
            tx.commit().map_err(werr)
        })
        .await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftError> {
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            {
                let mut table = tx.open_table(LOG).map_err(werr)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(werr)?;
            }
            tx.commit().map_err(werr)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftError> {
        let bytes = encode(&log_id, ErrorSubject::Logs)?;
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write().map_err(werr)?;
            {
                let mut meta = tx.open_table(META).map_err(werr)?;
                meta.insert("purged", bytes.as_slice()).map_err(werr)?;
                let mut table = tx.open_table(LOG).map_err(werr)?;
                table
                    .retain_in(..=log_id.index, |_, _| false)
                    .map_err(werr)?;
            }
            tx.commit().map_err(werr)
        })
        .await
    }
}
