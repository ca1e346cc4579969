//! Cases about what transactions read: points, ranges, their own writes, snapshots.

use std::sync::Arc;

use super::{get, keys, put, scan};
use crate::Store;

pub async fn get_set_clear(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(get(s, b"a").await, None);
    put(
        s,
        &[(b"a", b"1"), (b"b", b"2"), (b"", b"empty key"), (b"e", b"")],
    )
    .await;
    assert_eq!(get(s, b"a").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(get(s, b"b").await.as_deref(), Some(&b"2"[..]));
    assert_eq!(get(s, b"").await.as_deref(), Some(&b"empty key"[..]));
    assert_eq!(get(s, b"e").await.as_deref(), Some(&b""[..]));

    let mut tx = s.begin().await.unwrap();
    tx.set(b"a", b"one");
    tx.clear(b"b");
    tx.clear(b"never-set");
    tx.commit().await.unwrap();
    assert_eq!(get(s, b"a").await.as_deref(), Some(&b"one"[..]));
    assert_eq!(get(s, b"b").await, None);
    assert_eq!(get(s, b"never-set").await, None);
}

pub async fn clear_range_clears_half_open_range(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(
        s,
        &[
            (b"a", b""),
            (b"b", b""),
            (b"b\0", b""),
            (b"c", b""),
            (b"d", b""),
        ],
    )
    .await;
    let mut tx = s.begin().await.unwrap();
    tx.clear_range(b"b", b"d");
    // empty and inverted ranges clear nothing
    tx.clear_range(b"a", b"a");
    tx.clear_range(b"d", b"a");
    tx.commit().await.unwrap();
    assert_eq!(keys(&scan(s, b"", b"\xff").await), vec![&b"a"[..], b"d"]);
}

pub async fn range_reads_respect_bounds_and_order(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let all: [&[u8]; 7] = [b"", b"a", b"a\0", b"ab", b"a\xff", b"b", b"c\xff\xff"];
    let pairs: Vec<(&[u8], &[u8])> = all.iter().map(|k| (*k, *k)).collect();
    put(s, &pairs).await;
    let mut tx = s.begin().await.unwrap();

    let rows = tx.get_range(b"a", b"b", 0, false).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"a"[..], b"a\0", b"ab", b"a\xff"]);
    assert!(rows.iter().all(|(k, v)| k == v));
    let rows = tx.get_range(b"a", b"b", 0, true).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"a\xff"[..], b"ab", b"a\0", b"a"]);
    // begin is inclusive, end exclusive
    let rows = tx.get_range(b"a\0", b"a\xff", 0, false).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"a\0"[..], b"ab"]);
    let rows = tx.get_range(b"", b"\xff", 0, false).await.unwrap();
    assert_eq!(keys(&rows), all.to_vec());
    // empty and inverted ranges
    assert!(tx.get_range(b"a", b"a", 0, false).await.unwrap().is_empty());
    assert!(tx.get_range(b"b", b"a", 0, false).await.unwrap().is_empty());
    assert!(tx.get_range(b"b", b"a", 0, true).await.unwrap().is_empty());
    assert!(tx.get_range(b"d", b"e", 0, false).await.unwrap().is_empty());
}

pub async fn range_reads_with_limits(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let names: Vec<Vec<u8>> = (0..10).map(|i| format!("k{i}").into_bytes()).collect();
    let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|k| (&k[..], &b"v"[..])).collect();
    put(s, &pairs).await;
    let mut tx = s.begin().await.unwrap();
    let rows = tx.get_range(b"k", b"l", 3, false).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"k0"[..], b"k1", b"k2"]);
    let rows = tx.get_range(b"k", b"l", 3, true).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"k9"[..], b"k8", b"k7"]);
    let rows = tx.get_range(b"k3", b"k5", 1, true).await.unwrap();
    assert_eq!(keys(&rows), vec![&b"k4"[..]]);
    assert_eq!(tx.get_range(b"k", b"l", 20, false).await.unwrap().len(), 10);
    assert_eq!(tx.get_range(b"k", b"l", 0, true).await.unwrap().len(), 10);
}

/// Ranges larger than any inline fast path, read whole and in part.
pub async fn many_rows(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let names: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    for chunk in names.chunks(1000) {
        let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|k| (&k[..], &k[..])).collect();
        put(s, &pairs).await;
    }
    let mut tx = s.begin().await.unwrap();
    let rows = tx.get_range(b"", b"\xff", 0, false).await.unwrap();
    assert_eq!(
        keys(&rows),
        names.iter().map(|k| &k[..]).collect::<Vec<_>>()
    );
    let rows = tx.get_range(b"", b"\xff", 2500, true).await.unwrap();
    assert_eq!(rows.len(), 2500);
    assert_eq!(rows[0].0, names[2999]);
    assert_eq!(rows[2499].0, names[500]);
    // own clears over most of the range, then a small limit
    tx.clear_range(&names[0], &names[2990]);
    let rows = tx.get_range(b"", b"\xff", 5, false).await.unwrap();
    assert_eq!(
        keys(&rows),
        names[2990..2995].iter().map(|k| &k[..]).collect::<Vec<_>>()
    );
}

pub async fn read_your_writes_points(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(s, &[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]).await;
    let mut tx = s.begin().await.unwrap();
    tx.set(b"a", b"10");
    assert_eq!(tx.get(b"a").await.unwrap().as_deref(), Some(&b"10"[..]));
    tx.clear(b"b");
    assert_eq!(tx.get(b"b").await.unwrap(), None);
    tx.set(b"b", b"20");
    assert_eq!(tx.get(b"b").await.unwrap().as_deref(), Some(&b"20"[..]));
    tx.clear_range(b"b", b"d");
    assert_eq!(tx.get(b"b").await.unwrap(), None);
    assert_eq!(tx.get(b"c").await.unwrap(), None);
    tx.set(b"c", b"30");
    assert_eq!(tx.get(b"c").await.unwrap().as_deref(), Some(&b"30"[..]));
    tx.set(b"new", b"n");
    assert_eq!(tx.get(b"new").await.unwrap().as_deref(), Some(&b"n"[..]));
    tx.commit().await.unwrap();
    assert_eq!(get(s, b"a").await.as_deref(), Some(&b"10"[..]));
    assert_eq!(get(s, b"b").await, None);
    assert_eq!(get(s, b"c").await.as_deref(), Some(&b"30"[..]));
    assert_eq!(get(s, b"new").await.as_deref(), Some(&b"n"[..]));
}

pub async fn read_your_writes_ranges(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let base: [&[u8]; 6] = [b"k1", b"k2", b"k3", b"k4", b"k5", b"k6"];
    put(s, &base.map(|k| (k, &b"base"[..]))).await;
    let mut tx = s.begin().await.unwrap();
    tx.clear(b"k2");
    tx.set(b"k25", b"new");
    tx.clear_range(b"k4", b"k6");
    tx.set(b"k45", b"inside a cleared range");
    tx.set(b"k0", b"before");
    tx.set(b"k9", b"after");
    tx.set(b"k3", b"replaced");
    let expected: Vec<(&[u8], &[u8])> = vec![
        (b"k0", b"before"),
        (b"k1", b"base"),
        (b"k25", b"new"),
        (b"k3", b"replaced"),
        (b"k45", b"inside a cleared range"),
        (b"k6", b"base"),
        (b"k9", b"after"),
    ];
    let owned = |rows: &[(&[u8], &[u8])]| -> Vec<(Vec<u8>, Vec<u8>)> {
        rows.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    };
    let rows = tx.get_range(b"k", b"l", 0, false).await.unwrap();
    assert_eq!(rows, owned(&expected));
    let rows = tx.get_range(b"k", b"l", 3, true).await.unwrap();
    let mut tail = expected[4..].to_vec();
    tail.reverse();
    assert_eq!(rows, owned(&tail));
    let rows = tx.get_range(b"k", b"l", 2, false).await.unwrap();
    assert_eq!(rows, owned(&expected[..2]));
    let rows = tx.get_range(b"k2", b"k5", 0, false).await.unwrap();
    assert_eq!(rows, owned(&expected[2..5]));
    // clearing everything leaves only what is set afterwards
    tx.clear_range(b"k", b"l");
    tx.set(b"k7", b"last");
    let rows = tx.get_range(b"k", b"l", 0, true).await.unwrap();
    assert_eq!(rows, owned(&[(b"k7", b"last")]));
    tx.commit().await.unwrap();
    assert_eq!(scan(s, b"k", b"l").await, owned(&[(b"k7", b"last")]));
}

pub async fn snapshot_isolation(store: Arc<dyn Store>) {
    let s = store.as_ref();
    put(s, &[(b"a", b"1")]).await;
    let mut old = s.begin().await.unwrap();
    put(s, &[(b"a", b"2"), (b"b", b"2")]).await;
    let mut tx = s.begin().await.unwrap();
    tx.clear(b"a");
    tx.commit().await.unwrap();
    assert_eq!(old.get(b"a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(old.get(b"b").await.unwrap(), None);
    let rows = old.get_range(b"", b"\xff", 0, false).await.unwrap();
    assert_eq!(rows, vec![(b"a".to_vec(), b"1".to_vec())]);
    assert!(old.read_version() < s.committed_version());
    let mut new = s.begin().await.unwrap();
    assert_eq!(new.get(b"a").await.unwrap(), None);
    assert_eq!(new.get(b"b").await.unwrap().as_deref(), Some(&b"2"[..]));
}
