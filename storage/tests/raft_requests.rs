//! The request ids that keep a commit sent again from applying twice: kept across a
//! restart for every commit of a batch, and carried over from a store written before
//! batches existed (one id per version, in a table of its own then).

use galilean_storage::raft::{self, Command, Commit, CommitResult, TypeConfig};
use galilean_storage::Mutation;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(command),
    }
}

fn set(key: &[u8], value: &[u8], request: u128) -> Commit {
    Commit {
        read_version: 0,
        reads: vec![],
        mutations: vec![Mutation::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        }],
        request,
    }
}

fn applied(version: u64) -> CommitResult {
    CommitResult {
        version,
        conflict: false,
    }
}

/// Opens the store at `path`, applies `command` as entry `index`, and makes what was
/// applied durable (a synced write to the log, as a running node's next append does);
/// what its commits came to.
async fn apply(path: &std::path::Path, index: u64, command: Command) -> Vec<CommitResult> {
    let (mut log, mut sm) = raft::open(path).unwrap();
    let mut results = sm.apply([entry(index, command)]).await.unwrap();
    log.save_vote(&Vote::new(1, 1)).await.unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

#[tokio::test]
async fn every_commit_of_a_batch_is_known_by_its_request_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let first = Command::Batch(vec![set(b"a", b"1", 11), set(b"b", b"1", 12)]);
    assert_eq!(apply(&path, 1, first).await, [applied(1), applied(1)]);
    // started again: the second commit sent again keeps its first answer and is not
    // applied; a new one is
    let again = Command::Batch(vec![set(b"b", b"2", 12), set(b"c", b"1", 13)]);
    assert_eq!(apply(&path, 2, again).await, [applied(1), applied(2)]);
    let (_, sm) = raft::open(&path).unwrap();
    assert_eq!(sm.get(b"b").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(sm.get(b"c").unwrap().as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn request_ids_kept_before_batches_are_still_known() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    // the state machine's request table as the raft store wrote it before batches
    const OLD: redb::TableDefinition<u64, u128> = redb::TableDefinition::new("sm_requests");
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(OLD).unwrap().insert(5, 77).unwrap();
        tx.commit().unwrap();
    }
    let again = Command::Commit(set(b"k", b"again", 77));
    assert_eq!(apply(&path, 6, again).await, [applied(5)]);
    let (_, sm) = raft::open(&path).unwrap();
    assert_eq!(sm.get(b"k").unwrap(), None);
    drop(sm);
    // moved, not copied: the old table is gone
    let db = redb::Database::create(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "sm_requests"), "{names:?}");
    let multimaps: Vec<String> = tx
        .list_multimap_tables()
        .unwrap()
        .map(|t| redb::MultimapTableHandle::name(&t).to_owned())
        .collect();
    assert_eq!(multimaps, ["sm_request_ids"]);
}
