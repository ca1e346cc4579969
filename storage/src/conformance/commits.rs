//! Cases about commits: conflicts, versions, retries, the change feed, limits, counters.

use std::sync::Arc;

use super::{get, put};
use crate::{
    transact, Mutation, Store, StoreError, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES,
};

pub async fn conflict_on_a_read_key(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut t1 = s.begin().await.unwrap();
    let mut t2 = s.begin().await.unwrap();
    assert_eq!(t1.get(b"x").await.unwrap(), None);
    assert_eq!(t2.get(b"x").await.unwrap(), None);
    t1.set(b"x", b"1");
    t2.set(b"x", b"2");
    t2.set(b"y", b"2");
    t1.commit().await.unwrap();
    assert_eq!(t2.commit().await, Err(StoreError::Conflict));
    // nothing of the refused transaction is visible
    assert_eq!(get(s, b"x").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(get(s, b"y").await, None);
}

pub async fn conflict_on_a_read_range(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut t1 = s.begin().await.unwrap();
    assert!(t1.get_range(b"r", b"s", 0, false).await.unwrap().is_empty());
    t1.set(b"other", b"1");
    put(s, &[(b"rq", b"1")]).await;
    assert_eq!(t1.commit().await, Err(StoreError::Conflict));

    // a cleared range that covers a read key
    put(s, &[(b"m", b"1")]).await;
    let mut t2 = s.begin().await.unwrap();
    t2.get(b"m").await.unwrap();
    t2.set(b"other", b"2");
    let mut t3 = s.begin().await.unwrap();
    t3.clear_range(b"l", b"n");
    t3.commit().await.unwrap();
    assert_eq!(t2.commit().await, Err(StoreError::Conflict));
}

pub async fn limited_range_read_conflicts_only_up_to_its_last_row(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(
        s,
        &[
            (b"a1", b""),
            (b"a2", b""),
            (b"a3", b""),
            (b"a4", b""),
            (b"a5", b""),
        ],
    )
    .await;
    let read = |limit: usize, reverse: bool| async move {
        let mut tx = s.begin().await.unwrap();
        tx.get_range(b"a", b"b", limit, reverse).await.unwrap();
        tx.set(b"w", b"");
        tx
    };
    // forward, two rows: [a, a2] was read
    let tx = read(2, false).await;
    put(s, &[(b"a3", b"changed")]).await;
    tx.commit().await.unwrap();
    let tx = read(2, false).await;
    put(s, &[(b"a2", b"changed")]).await;
    assert_eq!(tx.commit().await, Err(StoreError::Conflict));
    // reverse, two rows: [a4, b) was read
    let tx = read(2, true).await;
    put(s, &[(b"a3", b"again")]).await;
    tx.commit().await.unwrap();
    let tx = read(2, true).await;
    put(s, &[(b"a4", b"again")]).await;
    assert_eq!(tx.commit().await, Err(StoreError::Conflict));
    // a limit that was not reached: the whole range was read
    let tx = read(10, false).await;
    put(s, &[(b"a9", b"")]).await;
    assert_eq!(tx.commit().await, Err(StoreError::Conflict));
}

pub async fn disjoint_transactions_do_not_conflict(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut t1 = s.begin().await.unwrap();
    let mut t2 = s.begin().await.unwrap();
    t1.get(b"p").await.unwrap();
    t1.set(b"p", b"1");
    t2.get(b"q").await.unwrap();
    t2.set(b"q", b"1");
    t1.commit().await.unwrap();
    t2.commit().await.unwrap();
    // writes just outside a read range: at its exclusive end, just before its start
    let mut t3 = s.begin().await.unwrap();
    t3.get_range(b"r", b"s", 0, false).await.unwrap();
    t3.get(b"t").await.unwrap();
    t3.set(b"u", b"1");
    put(s, &[(b"s", b"1"), (b"q\xff", b"1"), (b"t\0", b"1")]).await;
    t3.commit().await.unwrap();
}

pub async fn blind_writes_do_not_conflict(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut t1 = s.begin().await.unwrap();
    let mut t2 = s.begin().await.unwrap();
    t1.set(b"x", b"1");
    t2.set(b"x", b"2");
    t2.commit().await.unwrap();
    t1.commit().await.unwrap();
    assert_eq!(get(s, b"x").await.as_deref(), Some(&b"1"[..]));
}

pub async fn explicit_read_conflict_ranges(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut t1 = s.begin().await.unwrap();
    t1.add_read_conflict_range(b"f", b"g");
    t1.set(b"other", b"1");
    put(s, &[(b"f1", b"1")]).await;
    assert_eq!(t1.commit().await, Err(StoreError::Conflict));
    let mut t2 = s.begin().await.unwrap();
    t2.add_read_conflict_range(b"h", b"i");
    t2.set(b"other", b"1");
    put(s, &[(b"i", b"1")]).await;
    t2.commit().await.unwrap();
}

pub async fn versions_increase(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut last = s.committed_version();
    for i in 0..5u8 {
        let v = put(s, &[(&[i], b"")]).await;
        assert!(v > last, "{v} after {last}");
        assert_eq!(s.committed_version(), v);
        last = v;
    }
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.read_version(), last);
    tx.get(b"x").await.unwrap();
    // a read-only commit commits at its read version and changes nothing
    assert_eq!(tx.commit().await, Ok(last));
    assert_eq!(s.committed_version(), last);
    // a refused commit does not stop versions from increasing
    let mut t1 = s.begin().await.unwrap();
    t1.get(b"x").await.unwrap();
    t1.set(b"x", b"");
    let after = put(s, &[(b"x", b"")]).await;
    assert!(after > last);
    assert_eq!(t1.commit().await, Err(StoreError::Conflict));
    assert!(put(s, &[(b"y", b"")]).await > after);
}

pub async fn transact_retries_until_serializable(store: Arc<dyn Store>) {
    const TASKS: u64 = 20;
    const INCREMENTS: u64 = 20;
    let before = store.counters().snapshot();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                let seen = transact(store.as_ref(), |tx| {
                    Box::pin(async move {
                        let n = tx.get(b"counter").await?.map_or(0, |b| {
                            u64::from_be_bytes(b.try_into().expect("an 8-byte counter"))
                        });
                        tx.set(b"counter", &(n + 1).to_be_bytes());
                        Ok(n)
                    })
                })
                .await
                .unwrap();
                assert!(seen < TASKS * INCREMENTS);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = get(store.as_ref(), b"counter").await.unwrap();
    assert_eq!(n, (TASKS * INCREMENTS).to_be_bytes());
    let after = store.counters().snapshot();
    assert_eq!(
        after.write_commits - before.write_commits,
        TASKS * INCREMENTS
    );
}

pub async fn change_feed_delivers_commits_in_order(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut feed = s.subscribe();
    let mut tx = s.begin().await.unwrap();
    tx.get(b"k").await.unwrap();
    tx.set(b"k", b"1");
    tx.clear(b"gone");
    tx.clear_range(b"r", b"s");
    tx.set(b"a", b"2");
    let v1 = tx.commit().await.unwrap();

    // neither a read-only commit nor a refused one publishes anything
    let mut read_only = s.begin().await.unwrap();
    read_only.get(b"k").await.unwrap();
    read_only.commit().await.unwrap();
    let mut refused = s.begin().await.unwrap();
    refused.get(b"k").await.unwrap();
    refused.set(b"k", b"refused");
    let v2 = put(s, &[(b"k", b"3")]).await;
    assert_eq!(refused.commit().await, Err(StoreError::Conflict));
    let v3 = put(s, &[(b"z", b"4")]).await;

    let batch = feed.recv().await.unwrap();
    assert_eq!(batch.version, v1);
    assert_eq!(
        batch.mutations,
        vec![
            Mutation::Set {
                key: b"k".to_vec(),
                value: b"1".to_vec()
            },
            Mutation::Clear {
                key: b"gone".to_vec()
            },
            Mutation::ClearRange {
                begin: b"r".to_vec(),
                end: b"s".to_vec()
            },
            Mutation::Set {
                key: b"a".to_vec(),
                value: b"2".to_vec()
            },
        ]
    );
    let batch = feed.recv().await.unwrap();
    assert_eq!(batch.version, v2);
    assert_eq!(
        batch.mutations,
        vec![Mutation::Set {
            key: b"k".to_vec(),
            value: b"3".to_vec()
        }]
    );
    assert_eq!(feed.recv().await.unwrap().version, v3);
}

pub async fn size_limits(store: Arc<dyn Store>) {
    size_limits_with_max_key(store, MAX_KEY_BYTES).await;
}

/// `size_limits` for a backend whose keys of `set` stop at `max_key` (at most
/// `MAX_KEY_BYTES`; FoundationDB's is smaller by its key prefix). Reads still accept keys
/// up to `MAX_KEY_BYTES`.
pub async fn size_limits_with_max_key(store: Arc<dyn Store>, max_key: usize) {
    let s = store.as_ref();
    let version = s.committed_version();
    let refused = |key: Vec<u8>, value: Vec<u8>, what: &'static str| async move {
        let mut tx = s.begin().await.unwrap();
        tx.set(&key, &value);
        assert_eq!(tx.commit().await, Err(StoreError::TooLarge(what)));
    };
    refused(vec![b'k'; max_key + 1], b"v".to_vec(), "key").await;
    refused(b"k".to_vec(), vec![0; MAX_VALUE_BYTES + 1], "value").await;
    let mut tx = s.begin().await.unwrap();
    for i in 0..=MAX_TRANSACTION_BYTES / MAX_VALUE_BYTES {
        tx.set(format!("big{i:04}").as_bytes(), &vec![0; MAX_VALUE_BYTES]);
    }
    assert_eq!(tx.commit().await, Err(StoreError::TooLarge("transaction")));
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.get(&vec![b'k'; MAX_KEY_BYTES + 1]).await,
        Err(StoreError::TooLarge("key"))
    );
    assert_eq!(s.committed_version(), version);
    assert_eq!(get(s, b"k").await, None);
    assert_eq!(get(s, b"big0000").await, None);

    // exactly at the limits is fine
    let key = vec![b'k'; max_key];
    put(s, &[(&key, &vec![7; MAX_VALUE_BYTES])]).await;
    assert_eq!(get(s, &key).await.map(|v| v.len()), Some(MAX_VALUE_BYTES));
}

pub async fn counters(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let before = s.counters().snapshot();
    let mut tx = s.begin().await.unwrap();
    tx.get(b"a").await.unwrap();
    tx.get_range(b"a", b"z", 0, false).await.unwrap();
    tx.set(b"a", b"1");
    tx.clear(b"b");
    tx.clear_range(b"c", b"d");
    tx.commit().await.unwrap();
    let mut read_only = s.begin().await.unwrap();
    read_only.get(b"a").await.unwrap();
    read_only.commit().await.unwrap();
    let mut refused = s.begin().await.unwrap();
    refused.get(b"a").await.unwrap();
    refused.set(b"a", b"2");
    put(s, &[(b"a", b"3")]).await;
    assert_eq!(refused.commit().await, Err(StoreError::Conflict));

    let after = s.counters().snapshot();
    assert_eq!(after.reads - before.reads, 4);
    assert_eq!(after.write_commits - before.write_commits, 2);
    assert_eq!(after.mutations - before.mutations, 4);
    assert_eq!(after.conflicts - before.conflicts, 1);
}
