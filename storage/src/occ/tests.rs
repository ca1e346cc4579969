use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::*;
use crate::Transaction;

/// A map backend whose next `apply` can be made to fail.
#[derive(Default)]
struct TestBackend {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    fail_next: AtomicBool,
}

impl Backend for TestBackend {
    type Snapshot = BTreeMap<Vec<u8>, Vec<u8>>;
    const BLOCKING: bool = false;

    fn snapshot(&self) -> Result<Self::Snapshot, StoreError> {
        Ok(self.map.lock().unwrap().clone())
    }

    fn apply(&self, _: Version, mutations: &[Mutation]) -> Result<(), StoreError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Io("disk on fire".into()));
        }
        let mut map = self.map.lock().unwrap();
        for m in mutations {
            match m {
                Mutation::Set { key, value } => {
                    map.insert(key.clone(), value.clone());
                }
                Mutation::Clear { key } => {
                    map.remove(key);
                }
                Mutation::ClearRange { begin, end } => map.retain(|k, _| !(k >= begin && k < end)),
            }
        }
        Ok(())
    }
}

fn engine(max_age: Duration) -> Arc<Engine<TestBackend>> {
    Arc::new(Engine::with_max_age(TestBackend::default(), 0, max_age).unwrap())
}

async fn write(engine: &Arc<Engine<TestBackend>>, key: &[u8]) -> Result<Version, StoreError> {
    let mut tx = Box::new(engine.begin()?);
    tx.set(key, b"v");
    tx.commit().await
}

#[tokio::test]
async fn transactions_expire() {
    let engine = engine(Duration::from_millis(50));
    let mut tx = Box::new(engine.begin().unwrap());
    tx.get(b"a").await.unwrap();
    let mut writer = Box::new(engine.begin().unwrap());
    writer.set(b"a", b"1");
    let mut reader = Box::new(engine.begin().unwrap());
    reader.get(b"b").await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let too_old = Err(StoreError::Invalid(crate::TOO_OLD));
    // a new transaction may succeed: retried like a conflict
    assert!(StoreError::Invalid(crate::TOO_OLD).is_retryable());
    assert!(!StoreError::Invalid("used after commit").is_retryable());
    assert_eq!(tx.get(b"a").await, too_old);
    assert_eq!(
        tx.get_range(b"a", b"b", 0, false).await.map(|_| ()),
        too_old.clone().map(|_| ())
    );
    assert_eq!(writer.commit().await, too_old.map(|_| 0));
    // a read-only transaction commits trivially whatever its age
    assert_eq!(reader.commit().await, Ok(0));
    assert_eq!(engine.committed_version(), 0);
}

#[tokio::test]
async fn a_failed_apply_stops_the_store() {
    let engine = engine(MAX_TRANSACTION_AGE);
    let mut feed = engine.subscribe();
    assert_eq!(write(&engine, b"a").await, Ok(1));
    let mut pending = Box::new(engine.begin().unwrap());
    pending.set(b"c", b"v");
    engine.backend().fail_next.store(true, Ordering::SeqCst);
    assert_eq!(
        write(&engine, b"b").await,
        Err(StoreError::Io("disk on fire".into()))
    );
    assert!(matches!(engine.begin(), Err(StoreError::Unavailable(_))));
    assert!(matches!(
        pending.commit().await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(engine.committed_version(), 1);
    assert_eq!(feed.recv().await.unwrap().version, 1);
    assert!(feed.try_recv().is_err());
    assert_eq!(engine.counters().snapshot().write_commits, 1);
}

#[tokio::test]
async fn reading_own_writes_adds_no_conflict() {
    let engine = engine(MAX_TRANSACTION_AGE);
    let mut tx = Box::new(engine.begin().unwrap());
    tx.set(b"k", b"mine");
    assert_eq!(tx.get(b"k").await.unwrap().as_deref(), Some(&b"mine"[..]));
    tx.clear_range(b"r", b"s");
    assert_eq!(tx.get(b"r1").await.unwrap(), None);
    write(&engine, b"k").await.unwrap();
    write(&engine, b"r1").await.unwrap();
    assert_eq!(tx.commit().await, Ok(3));
    assert_eq!(engine.counters().snapshot().conflicts, 0);
}

#[tokio::test]
async fn commits_publish_snapshots_and_batches_in_order() {
    let engine = engine(MAX_TRANSACTION_AGE);
    let mut feed = engine.subscribe();
    let before = Box::new(engine.begin().unwrap());
    for i in 1..=5u8 {
        assert_eq!(write(&engine, &[i]).await, Ok(u64::from(i)));
        let mut tx = Box::new(engine.begin().unwrap());
        assert_eq!(tx.read_version(), u64::from(i));
        assert_eq!(tx.get(&[i]).await.unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(before.read_version(), 0);
    for i in 1..=5u64 {
        assert_eq!(feed.recv().await.unwrap().version, i);
    }
}

/// How many commits the engine's conflict log holds.
fn logged(engine: &Engine<TestBackend>) -> usize {
    engine.lock_commit().len()
}

#[tokio::test]
async fn the_conflict_log_keeps_only_what_live_transactions_need() {
    let engine = engine(MAX_TRANSACTION_AGE);
    // a burst with nothing else live: nothing stays logged
    for i in 0..200u8 {
        write(&engine, &[i]).await.unwrap();
    }
    assert_eq!(logged(&engine), 0);

    // a transaction that read "a" before three commits: they stay until it ends, and
    // the one that wrote "a" still refuses it
    let mut old = Box::new(engine.begin().unwrap());
    old.get(b"a").await.unwrap();
    old.set(b"x", b"1");
    let mut bystander = Box::new(engine.begin().unwrap());
    bystander.get(b"b").await.unwrap();
    write(&engine, b"a").await.unwrap();
    write(&engine, b"c").await.unwrap();
    write(&engine, b"d").await.unwrap();
    assert_eq!(logged(&engine), 3);
    assert_eq!(old.commit().await, Err(StoreError::Conflict));
    // the bystander, at the same read version, is still live: nothing released yet
    assert_eq!(logged(&engine), 3);
    bystander.set(b"y", b"1");
    assert_eq!(bystander.commit().await, Ok(204));
    assert_eq!(logged(&engine), 0);

    // a dropped transaction releases too, without a commit after it
    let mut reader = Box::new(engine.begin().unwrap());
    reader.get(b"e").await.unwrap();
    write(&engine, b"f").await.unwrap();
    assert_eq!(logged(&engine), 1);
    drop(reader);
    assert_eq!(logged(&engine), 0);
    assert_eq!(engine.counters().snapshot().conflicts, 1);
}

/// A backend that blocks (as a disk does): each apply takes a while, and is counted.
#[derive(Default)]
struct SlowBackend {
    inner: TestBackend,
    applies: std::sync::atomic::AtomicUsize,
}

impl Backend for SlowBackend {
    type Snapshot = BTreeMap<Vec<u8>, Vec<u8>>;
    const BLOCKING: bool = true;

    fn snapshot(&self) -> Result<Self::Snapshot, StoreError> {
        self.inner.snapshot()
    }

    fn apply(&self, version: Version, mutations: &[Mutation]) -> Result<(), StoreError> {
        std::thread::sleep(Duration::from_millis(30));
        self.applies.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(version, mutations)
    }
}

/// Commits that arrive while the backend is busy go to it together, one apply (one
/// sync) for the group, and come out as if committed one by one: each its own version,
/// in order on the feed, each checked against the group's earlier ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_commits_are_applied_as_one_group_and_checked_in_order() {
    let engine = Engine::new(SlowBackend::default(), 0).unwrap();
    let mut feed = engine.subscribe();
    // two transactions that read x at the same version and write it
    let mut rivals = Vec::new();
    for value in [b"1", b"2"] {
        let mut tx = Box::new(engine.begin().unwrap());
        assert_eq!(tx.get(b"x").await.unwrap(), None);
        tx.set(b"x", value);
        rivals.push(tx);
    }
    let writers: Vec<_> = (0..20u8)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut tx = Box::new(engine.begin().unwrap());
                tx.set(&[b'k', i], b"v");
                tx.commit().await
            })
        })
        .collect();
    let rivals: Vec<_> = rivals
        .into_iter()
        .map(|tx| tokio::spawn(tx.commit()))
        .collect();
    let mut versions = Vec::new();
    for w in writers {
        versions.push(w.await.unwrap().unwrap());
    }
    let mut outcomes = Vec::new();
    for r in rivals {
        outcomes.push(r.await.unwrap());
    }
    let won: Vec<Version> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&Err(StoreError::Conflict)),
        "{outcomes:?}"
    );
    versions.extend(won);
    versions.sort_unstable();
    assert_eq!(versions, (1..=21).collect::<Vec<Version>>());
    assert_eq!(engine.committed_version(), 21);
    let applies = engine.backend().applies.load(Ordering::SeqCst);
    assert!(
        applies < 21,
        "{applies} applies for 21 commits: none grouped"
    );
    for v in 1..=21 {
        assert_eq!(feed.recv().await.unwrap().version, v);
    }
    // what the winner wrote is what the store holds, and every writer's key
    let mut tx = Box::new(engine.begin().unwrap());
    assert!(tx.get(b"x").await.unwrap().is_some());
    for i in 0..20u8 {
        assert!(tx.get(&[b'k', i]).await.unwrap().is_some());
    }
    assert_eq!(engine.counters().snapshot().write_commits, 21);
}

/// The commit thread lets the engine go: once the store is dropped, the engine (and a
/// file it holds) is freed, and the thread ends.
#[tokio::test]
async fn the_commit_thread_does_not_keep_the_engine() {
    let engine = Engine::new(SlowBackend::default(), 0).unwrap();
    let mut tx = Box::new(engine.begin().unwrap());
    tx.set(b"a", b"1");
    assert_eq!(tx.commit().await, Ok(1));
    let weak = Arc::downgrade(&engine);
    drop(engine);
    assert!(
        weak.upgrade().is_none(),
        "the commit thread kept the engine"
    );
}
