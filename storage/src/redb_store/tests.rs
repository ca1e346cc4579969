use super::*;

crate::store_conformance!(conformance, || async {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("store.redb")).unwrap();
    (store, dir)
});

async fn put(store: &RedbStore, key: &[u8], value: &[u8]) -> Version {
    let mut tx = store.begin().await.unwrap();
    tx.set(key, value);
    tx.commit().await.unwrap()
}

async fn get(store: &RedbStore, key: &[u8]) -> Option<Vec<u8>> {
    store.begin().await.unwrap().get(key).await.unwrap()
}

#[tokio::test]
async fn data_and_versions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    // the directory is created too
    let path = dir.path().join("nested/dir/store.redb");
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.committed_version(), 0);
    put(&store, b"a", b"1").await;
    let v = put(&store, b"b", b"2").await;
    let mut tx = store.begin().await.unwrap();
    tx.clear(b"a");
    tx.clear_range(b"x", b"y");
    let v = tx.commit().await.unwrap().max(v);
    drop(store);

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.committed_version(), v);
    assert_eq!(get(&store, b"a").await, None);
    assert_eq!(get(&store, b"b").await.as_deref(), Some(&b"2"[..]));
    assert!(put(&store, b"c", b"3").await > v);
}

#[tokio::test]
async fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(RedbStore::open(&path).unwrap());
    {
        let db = Database::open(&path).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(META)
            .unwrap()
            .insert(META_FORMAT, FORMAT_VERSION + 1)
            .unwrap();
        w.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    let StoreError::Io(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("store format 2 is not supported"), "{msg}");
    assert!(msg.contains("store.redb"), "{msg}");
}

#[tokio::test]
async fn a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(DATA)
            .unwrap()
            .insert(&b"k"[..], &b"v"[..])
            .unwrap();
        w.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a galilean store"), "{err}");
    // not a redb file at all
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert!(matches!(RedbStore::open(&junk), Err(StoreError::Io(_))));
}

#[tokio::test]
async fn an_in_memory_backend_works() {
    let store = RedbStore::open_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
    assert_eq!(store.backend_name(), "redb");
    let v = put(&store, b"k", b"v").await;
    assert_eq!(v, 1);
    assert_eq!(get(&store, b"k").await.as_deref(), Some(&b"v"[..]));
}
