//! One conformance suite for every backend, instantiated by [`store_conformance!`].

/// Instantiates the conformance suite as a test module for a backend built by `$make`.
#[macro_export]
macro_rules! store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            use std::sync::Arc;
            use $crate::{transact, Mutation, Store, StoreError};

            fn store() -> (Arc<dyn Store>, Box<dyn std::any::Any>) {
                let (s, guard) = $make;
                (s, guard)
            }

            #[tokio::test]
            async fn set_get_clear() {
                let (s, _g) = store();
                let mut tx = s.begin().await.unwrap();
                tx.set(b"a", b"1");
                tx.set(b"b", b"2");
                assert_eq!(tx.get(b"a").await.unwrap().as_deref(), Some(&b"1"[..]));
                tx.commit().await.unwrap();
                let mut tx = s.begin().await.unwrap();
                assert_eq!(tx.get(b"b").await.unwrap().as_deref(), Some(&b"2"[..]));
                tx.clear(b"a");
                assert_eq!(tx.get(b"a").await.unwrap(), None);
                tx.commit().await.unwrap();
                let mut tx = s.begin().await.unwrap();
                assert_eq!(tx.get(b"a").await.unwrap(), None);
            }

            #[tokio::test]
            async fn ranges_with_own_writes() {
                let (s, _g) = store();
                let mut tx = s.begin().await.unwrap();
                for k in ["k1", "k2", "k3", "k4", "z"] {
                    tx.set(k.as_bytes(), b"v");
                }
                tx.commit().await.unwrap();
                let mut tx = s.begin().await.unwrap();
                tx.clear(b"k2");
                tx.set(b"k25", b"new");
                tx.clear_range(b"k4", b"k5");
                let keys: Vec<Vec<u8>> = tx
                    .get_range(b"k", b"l", 0, false)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(keys, vec![b"k1".to_vec(), b"k25".to_vec(), b"k3".to_vec()]);
                let rev = tx.get_range(b"k", b"l", 2, true).await.unwrap();
                assert_eq!(rev[0].0, b"k3".to_vec());
                assert_eq!(rev.len(), 2);
                assert!(tx.get_range(b"l", b"k", 0, false).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn snapshot_isolation_and_conflicts() {
                let (s, _g) = store();
                let mut t1 = s.begin().await.unwrap();
                let mut t2 = s.begin().await.unwrap();
                assert_eq!(t1.get(b"x").await.unwrap(), None);
                assert_eq!(t2.get(b"x").await.unwrap(), None);
                t1.set(b"x", b"1");
                t2.set(b"x", b"2");
                t1.commit().await.unwrap();
                assert_eq!(t2.commit().await.unwrap_err(), StoreError::Conflict);
                // a range read conflicts with a write inside it
                let mut t3 = s.begin().await.unwrap();
                t3.get_range(b"r", b"s", 0, false).await.unwrap();
                t3.set(b"other", b"1");
                let mut t4 = s.begin().await.unwrap();
                t4.set(b"rq", b"1");
                t4.commit().await.unwrap();
                assert_eq!(t3.commit().await.unwrap_err(), StoreError::Conflict);
                // disjoint keys do not conflict, and reads see their snapshot
                let mut t5 = s.begin().await.unwrap();
                let mut t6 = s.begin().await.unwrap();
                t5.get(b"p").await.unwrap();
                t5.set(b"p", b"1");
                t6.get(b"q").await.unwrap();
                t6.set(b"q", b"1");
                let mut t7 = s.begin().await.unwrap();
                t5.commit().await.unwrap();
                t6.commit().await.unwrap();
                // t7 began before t5 committed: it still sees the old value
                assert_eq!(t7.get(b"p").await.unwrap(), None);
                t7.commit().await.unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn transact_retries_to_serial_result() {
                let (s, _g) = store();
                let mut tasks = Vec::new();
                for _ in 0..10 {
                    let s = s.clone();
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..10 {
                            transact(s.as_ref(), |tx| {
                                Box::pin(async move {
                                    let n = tx.get(b"counter").await?.map_or(0u64, |b| {
                                        u64::from_be_bytes(b.try_into().unwrap())
                                    });
                                    tx.set(b"counter", &(n + 1).to_be_bytes());
                                    Ok(())
                                })
                            })
                            .await
                            .unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                let mut tx = s.begin().await.unwrap();
                let n = u64::from_be_bytes(
                    tx.get(b"counter")
                        .await
                        .unwrap()
                        .unwrap()
                        .try_into()
                        .unwrap(),
                );
                assert_eq!(n, 100);
            }

            #[tokio::test]
            async fn change_feed_in_commit_order() {
                let (s, _g) = store();
                let mut rx = s.subscribe();
                let v0 = s.committed_version();
                for i in 0..3u8 {
                    let mut tx = s.begin().await.unwrap();
                    tx.set(&[i], &[i]);
                    if i == 2 {
                        tx.clear(&[0]);
                    }
                    tx.commit().await.unwrap();
                }
                // a read-only commit publishes nothing
                let mut tx = s.begin().await.unwrap();
                tx.get(b"x").await.unwrap();
                tx.commit().await.unwrap();
                for i in 0..3u8 {
                    let b = rx.recv().await.unwrap();
                    assert_eq!(b.version, v0 + u64::from(i) + 1);
                    assert_eq!(
                        b.mutations[0],
                        Mutation::Set {
                            key: vec![i],
                            value: vec![i]
                        }
                    );
                }
                assert!(rx.try_recv().is_err());
            }

            #[tokio::test]
            async fn limits_and_counters() {
                let (s, _g) = store();
                let mut tx = s.begin().await.unwrap();
                tx.set(b"big", &vec![0u8; $crate::MAX_VALUE_BYTES + 1]);
                assert_eq!(
                    tx.commit().await.unwrap_err(),
                    StoreError::TooLarge("value")
                );
                let before = s.counters().snapshot();
                let mut tx = s.begin().await.unwrap();
                tx.get(b"a").await.unwrap();
                tx.set(b"a", b"1");
                tx.commit().await.unwrap();
                let after = s.counters().snapshot();
                assert_eq!(after.reads - before.reads, 1);
                assert_eq!(after.write_commits - before.write_commits, 1);
            }
        }
    };
}

#[cfg(test)]
mod backends {
    crate::store_conformance!(
        memory,
        (
            std::sync::Arc::new(crate::MemoryStore::new()) as std::sync::Arc<dyn crate::Store>,
            Box::new(()) as Box<dyn std::any::Any>
        )
    );

    crate::store_conformance!(redb, {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::RedbStore::open(&dir.path().join("db.redb")).unwrap();
        (
            std::sync::Arc::new(s) as std::sync::Arc<dyn crate::Store>,
            Box::new(dir) as Box<dyn std::any::Any>,
        )
    });
}
