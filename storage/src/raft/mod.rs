//! The replicated store's durable half: openraft's log and state machine kept in one redb
//! file, every write synced before it is acknowledged.
//!
//! - [`LogStore`] (`RaftLogStorage`): entries by index, the vote and the last purged log
//!   id (not the committed log id, which raft keeps in memory: see `save_committed`).
//! - [`StateMachine`] (`RaftStateMachine`): the hub's key-value state, the last applied log
//!   id and the membership, changed together in one redb transaction per batch of entries;
//!   snapshots are the whole state (hub state is tens of MB at most), serialized with
//!   rmp-serde.
//!
//! A log entry carries a [`Command`]: the mutations of one transaction that the leader has
//! already validated (the conflict check runs once, on the leader, before the entry is
//! proposed), so every replica applies the same entries to the same state in the same
//! order. The version of a write is the index of its log entry.

// openraft's trait methods return its `StorageError`, which is large; the helpers here
// return the same type rather than boxing and unboxing it at every trait boundary.
#![allow(clippy::result_large_err)]

mod batch;
mod log_store;
pub mod membership;
pub mod net;
mod state_machine;
mod store;
pub mod tls;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};
use serde::{Deserialize, Serialize};

pub use log_store::LogStore;
pub use state_machine::{StateMachine, HISTORY_SPAN};
pub use store::RaftStore;

use crate::Mutation;

/// The raft node id.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Galilean's raft types.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// What a log entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// One transaction's commit.
    Commit(Commit),
    /// Commits proposed together: one log entry, so one sync of the log on each node and
    /// one transaction of the state machine for all of them. They are decided in order,
    /// each as it would be alone, and each sees the writes of those before it (a later
    /// one that read what an earlier one wrote is a conflict). They share a version, the
    /// entry's index.
    Batch(Vec<Commit>),
}

/// A transaction's commit: applied unless a write committed after `read_version`
/// touched what it read (`reads`, key ranges `[begin, end)`). Every replica decides the
/// same way from the same log, so the check needs no leader-local state.
///
/// `request` (non-zero) names the proposal: a commit applied under a request id is not
/// applied again when the same proposal arrives again (a retry after a lost answer),
/// within the history window; the retry gets the first one's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub read_version: u64,
    pub reads: Vec<(Vec<u8>, Vec<u8>)>,
    pub mutations: Vec<Mutation>,
    #[serde(default)]
    pub request: u128,
}

impl Commit {
    /// The bytes of keys and values it carries, for bounding a batch.
    pub fn bytes(&self) -> usize {
        let reads: usize = self.reads.iter().map(|(b, e)| b.len() + e.len()).sum();
        reads + self.mutations.iter().map(Mutation::bytes).sum::<usize>()
    }
}

impl Command {
    /// The commits the entry carries, in order.
    pub fn commits(&self) -> &[Commit] {
        match self {
            Command::Commit(commit) => std::slice::from_ref(commit),
            Command::Batch(commits) => commits,
        }
    }
}

/// A request id for a [`Commit`]: this process's random half and a counter.
pub fn new_request_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.finish()
    });
    (u128::from(seed) << 64) | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// What applying an entry gives back to the proposer: what each commit it carries came
/// to, in order (nothing for entries that carry none).
pub type CommandResult = Vec<CommitResult>;

/// What one commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommitResult {
    /// The version the write created (its entry's log index; for a commit sent again, the
    /// version its first arrival created).
    pub version: u64,
    /// The commit was refused: something it read changed after its read version.
    pub conflict: bool,
}

pub type RaftError = StorageError<NodeId>;

/// Opens (or creates) the raft store file: its log store and state machine share it.
pub fn open(path: &Path) -> Result<(LogStore, StateMachine), RaftError> {
    let db = redb::Database::create(path)
        .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    let db = Arc::new(db);
    let log = LogStore::new(db.clone())?;
    let sm = StateMachine::new(db)?;
    Ok((log, sm))
}

fn io_error<E: std::error::Error + 'static>(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: E,
) -> RaftError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

fn encode<T: Serialize>(value: &T, subject: ErrorSubject<NodeId>) -> Result<Vec<u8>, RaftError> {
    rmp_serde::to_vec_named(value).map_err(|e| io_error(subject, ErrorVerb::Write, e))
}

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    subject: ErrorSubject<NodeId>,
) -> Result<T, RaftError> {
    rmp_serde::from_slice(bytes).map_err(|e| io_error(subject, ErrorVerb::Read, e))
}

/// Runs blocking redb work (which may fsync) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RaftError> + Send + 'static,
) -> Result<T, RaftError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io_error(ErrorSubject::Store, ErrorVerb::Write, e)),
    }
}

/// How long a voter refuses to vote after it last heard from a leader: openraft's leader
/// lease, which is `election_timeout_max`. A newly elected leader knows that its
/// predecessor had no quorum for at least this long before the election.
pub const VOTE_LEASE: std::time::Duration = std::time::Duration::from_millis(800);

/// Raft timing for a cluster on one machine or a LAN.
pub fn default_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "galilean".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: VOTE_LEASE.as_millis() as u64,
        ..Default::default()
    };
    Arc::new(config.validate().expect("the fixed raft config is valid"))
}

/// Starts a raft node over `path`: the store file, a server for raft traffic on
/// `listener`, and the `Store` over it. The caller initializes the membership (once,
/// on one node) or adds the node to an existing cluster. With `tls`, raft traffic is
/// HTTPS with mutual TLS.
pub async fn start_node(
    id: NodeId,
    path: &Path,
    listener: tokio::net::TcpListener,
    secret: &str,
    tls: Option<&tls::NodeTls>,
) -> Result<(RaftStore, tokio::task::JoinHandle<()>), RaftError> {
    let (log, sm) = open(path)?;
    let network = net::HttpNetwork::new(secret, tls);
    let raft = openraft::Raft::new(id, default_config(), network.clone(), log, sm.clone())
        .await
        .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let status = net::StatusSource::default();
    let server = tokio::spawn(net::serve(
        listener,
        net::Served::Raft(raft.clone()),
        secret.into(),
        status.clone(),
        tls.map(tls::NodeTls::acceptor),
    ));
    Ok((RaftStore::new(raft, sm, network, status), server))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A single-member cluster, initialized and leading.
    async fn single_node() -> (RaftStore, (tempfile::TempDir, tokio::task::JoinHandle<()>)) {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (store, server) =
            start_node(1, &dir.path().join("raft.redb"), listener, "s3cret", None)
                .await
                .unwrap();
        let members = BTreeMap::from([(1, openraft::BasicNode { addr })]);
        store.raft().initialize(members).await.unwrap();
        store
            .raft()
            .wait(Some(std::time::Duration::from_secs(10)))
            .current_leader(1, "single node leads")
            .await
            .unwrap();
        (store, (dir, server))
    }

    crate::store_conformance!(conformance, single_node);

    /// A raft request meant for another node is refused (421), not applied. Two
    /// `cluster.peers` entries leading to one node had a leader sent its own appends as
    /// another's, and its raft panicked.
    #[tokio::test]
    async fn a_node_refuses_raft_requests_meant_for_another() {
        use crate::Store;
        use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
        use openraft::raft::AppendEntriesRequest;

        let (store, _keep) = single_node().await;
        let raft = store.raft();
        let (vote, addr) = {
            let m = raft.metrics().borrow().clone();
            let addr = m.membership_config.nodes().next().unwrap().1.addr.clone();
            (m.vote, addr)
        };
        let mut net = net::HttpNetwork::new("s3cret", None);
        let option = || RPCOption::new(std::time::Duration::from_secs(2));
        let own_append = || AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        };
        let mut as_node_2 = net
            .new_client(2, &openraft::BasicNode { addr: addr.clone() })
            .await;
        let e = as_node_2
            .append_entries(own_append(), option())
            .await
            .unwrap_err();
        assert!(
            matches!(e, openraft::error::RPCError::Unreachable(_)) && e.to_string().contains("421"),
            "{e}"
        );
        // still leading, and writing
        let mut tx = store.begin().await.unwrap();
        tx.set(b"k", b"v");
        tx.commit().await.unwrap();
        assert_eq!(raft.metrics().borrow().current_leader, Some(1));
        // meant for it, the same kind of request is answered
        let mut as_node_1 = net.new_client(1, &openraft::BasicNode { addr }).await;
        let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(0, 2), None);
        as_node_1.vote(vote, option()).await.unwrap();
    }
}

/// Log entries are stored and sent with rmp-serde (named fields): an entry written
/// before batches existed must still decode, and a single commit still encodes as then.
#[cfg(test)]
mod golden {
    use super::*;

    /// A `Command::Commit` as the first raft store wrote it (a struct variant then).
    const COMMIT: &[u8] =
        b"\x81\xa6Commit\x84\xacread_version\x07\xa5reads\x91\x92\x91\x61\x91\x62\
        \xa9mutations\x92\x81\xa3Set\x82\xa3key\x91\x6b\xa5value\x91\x76\
        \x81\xa5Clear\x81\xa3key\x91\x78\
        \xa7request\xc4\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";

    fn commit() -> Commit {
        Commit {
            read_version: 7,
            reads: vec![(b"a".to_vec(), b"b".to_vec())],
            mutations: vec![
                Mutation::Set {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                },
                Mutation::Clear { key: b"x".to_vec() },
            ],
            request: 0x0102030405060708090a0b0c0d0e0f10,
        }
    }

    #[test]
    fn a_commit_encodes_and_decodes_as_before_batches() {
        let command = Command::Commit(commit());
        assert_eq!(rmp_serde::to_vec_named(&command).unwrap(), COMMIT);
        assert_eq!(rmp_serde::from_slice::<Command>(COMMIT).unwrap(), command);
    }

    #[test]
    fn a_batch_round_trips_and_lists_its_commits_in_order() {
        let mut second = commit();
        second.read_version = 8;
        let batch = Command::Batch(vec![commit(), second.clone()]);
        let bytes = rmp_serde::to_vec_named(&batch).unwrap();
        assert_eq!(rmp_serde::from_slice::<Command>(&bytes).unwrap(), batch);
        assert_eq!(batch.commits(), &[commit(), second]);
        assert_eq!(Command::Commit(commit()).commits(), &[commit()]);
        assert_eq!(commit().bytes(), 2 + 2 + 1);
    }
}
