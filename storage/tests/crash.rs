//! Process-crash durability of the redb store.
//!
//! A child process (this test binary, re-run with [`CHILD_ENV`] set, so it works the same
//! under `cargo test` and `cargo nextest`) opens a store and commits in a loop; each
//! commit writes key `("k", i)` and sets `("last",)` to `i`, and the child prints
//! `ack <i>` only after `commit` has returned. The parent kills it with SIGKILL at a random
//! moment, reopens the store, and checks that every acknowledged commit is there, that
//! commits are whole (the keys are exactly `1..=last`), and that the next child carries on
//! from there. Several rounds, each with a different delay.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ack, judge_acks, run_child_and_kill, CHILD_LIFETIME};

use galilean_storage::tuple::Key;
use galilean_storage::{RedbStore, Store};
use rand::Rng;

/// Set to the store's path in the child process.
const CHILD_ENV: &str = "GALILEAN_STORAGE_CRASH_CHILD";
const ROUNDS: usize = 5;

fn key(i: u64) -> Vec<u8> {
    Key::new().str("k").int(i).build()
}

fn last_key() -> Vec<u8> {
    Key::new().str("last").build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The child process's body; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    runtime().block_on(commit_forever(Path::new(&path)));
}

async fn commit_forever(path: &Path) {
    let store = RedbStore::open(path).unwrap();
    let mut i = read_last(&store).await.unwrap_or(0);
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        i += 1;
        let mut tx = store.begin().await.unwrap();
        tx.set(&key(i), &i.to_be_bytes());
        tx.set(&last_key(), &i.to_be_bytes());
        tx.commit().await.unwrap();
        if !ack(i) {
            return;
        }
    }
}

async fn read_last(store: &RedbStore) -> Option<u64> {
    let mut tx = store.begin().await.unwrap();
    let value = tx.get(&last_key()).await.unwrap()?;
    Some(u64::from_be_bytes(value.try_into().unwrap()))
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut rng = rand::thread_rng();
    let mut last_acked = 0;
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.gen_range(0..250));
        let acked = run_child_and_kill("crash_child", CHILD_ENV, &path, delay);
        last_acked = judge_acks(round, delay, &acked, last_acked);

        runtime().block_on(async {
            let store = RedbStore::open(&path).unwrap();
            let last = read_last(&store).await.expect("no commit survived");
            assert!(
                last >= last_acked,
                "round {round} ({delay:?}): acknowledged {last_acked}, recovered {last}"
            );
            let mut tx = store.begin().await.unwrap();
            let (begin, end) = Key::new().str("k").range();
            let rows = tx.get_range(&begin, &end, 0, false).await.unwrap();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = (1..=last)
                .map(|i| (key(i), i.to_be_bytes().to_vec()))
                .collect();
            assert!(
                rows == expected,
                "round {round}: commits 1..={last} are not all whole"
            );
            assert!(store.committed_version() >= last);
        });
    }
}
