//! Process-crash durability of the raft store, as `crash.rs` checks the redb store: a
//! child process runs a single-member raft cluster over one file and commits in a loop
//! (key `("k", i)` and `("last",)` = `i`, printing `ack <i>` once `commit` returned); the
//! parent kills it with SIGKILL at a random moment, starts the node again over the same
//! file, and checks that every acknowledged commit is there and whole. The state machine
//! is not synced by itself (the raft log is, see `state_machine.rs`), so this also checks
//! that a restarted node applies again what its log holds before it answers a commit.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ack, judge_acks, run_child_and_kill, CHILD_LIFETIME};

use galilean_storage::raft::{self, RaftStore};
use galilean_storage::tuple::Key;
use galilean_storage::{Store, StoreError};
use rand::Rng;

/// Set to the store's path in the child process.
const CHILD_ENV: &str = "GALILEAN_RAFT_CRASH_CHILD";
const ROUNDS: usize = 4;
const SECRET: &str = "raft-crash-secret";

fn key(i: u64) -> Vec<u8> {
    Key::new().str("k").int(i).build()
}

fn last_key() -> Vec<u8> {
    Key::new().str("last").build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the single member over `path`, initializing it the first time, and waits
/// until it leads.
async fn start(path: &Path) -> (RaftStore, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (store, server) = raft::start_node(1, path, listener, SECRET, None)
        .await
        .unwrap();
    // a restarted member is initialized already (refused as "not allowed"), as a hub node
    // takes it too
    let members = BTreeMap::from([(1, openraft::BasicNode { addr })]);
    let _ = store.raft().initialize(members).await;
    store
        .raft()
        .wait(Some(Duration::from_secs(20)))
        .current_leader(1, "the single member leads")
        .await
        .unwrap();
    (store, server)
}

/// Commits `writes` in one transaction, retrying while the node settles after its start.
async fn commit(store: &RaftStore, writes: &[(Vec<u8>, Vec<u8>)]) -> Result<u64, StoreError> {
    let began = Instant::now();
    loop {
        let mut tx = store.begin().await?;
        for (k, v) in writes {
            tx.set(k, v);
        }
        match tx.commit().await {
            Err(e) if e.is_retryable() && began.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// The last commit, read after a commit of this node's own: a commit returns once this
/// node has applied it, so everything before it is applied too.
async fn read_last(store: &RaftStore) -> Option<u64> {
    let barrier = Key::new().str("barrier").build();
    commit(store, &[(barrier, b"1".to_vec())]).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let value = tx.get(&last_key()).await.unwrap()?;
    Some(u64::from_be_bytes(value.try_into().unwrap()))
}

/// The child process's body; does nothing in a normal test run.
#[test]
fn raft_crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    runtime().block_on(async move {
        let (store, _server) = start(Path::new(&path)).await;
        let mut i = read_last(&store).await.unwrap_or(0);
        let started = Instant::now();
        while started.elapsed() < CHILD_LIFETIME {
            i += 1;
            let value = i.to_be_bytes().to_vec();
            commit(&store, &[(key(i), value.clone()), (last_key(), value)])
                .await
                .unwrap();
            if !ack(i) {
                return;
            }
        }
    });
}

#[test]
fn acknowledged_raft_commits_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let mut rng = rand::thread_rng();
    let mut last_acked = 0;
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.gen_range(0..250));
        let acked = run_child_and_kill("raft_crash_child", CHILD_ENV, &path, delay);
        last_acked = judge_acks(round, delay, &acked, last_acked);

        runtime().block_on(async {
            let (store, server) = start(&path).await;
            let last = read_last(&store).await.expect("no commit survived");
            assert!(
                last >= last_acked,
                "round {round}: acknowledged {last_acked}, found only {last}"
            );
            let mut tx = store.begin().await.unwrap();
            for i in 1..=last {
                assert_eq!(
                    tx.get(&key(i)).await.unwrap(),
                    Some(i.to_be_bytes().to_vec()),
                    "round {round}: commit {i} of {last} is missing or torn"
                );
            }
            assert_eq!(tx.get(&key(last + 1)).await.unwrap(), None);
            drop(tx);
            store.raft().shutdown().await.unwrap();
            server.abort();
        });
    }
}
