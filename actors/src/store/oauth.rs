//! OAuth records: clients (a server's, a service's) and authorization codes, stored
//! under the SHA-256 of the code, redeemed once, and purged once expired unredeemed.

use galilean_proto::codec::decode;
use galilean_proto::records::{OAuthClientRecord, OAuthCodeRecord};
use galilean_proto::time::Micros;
use galilean_storage::{Store, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::secrets::sha256_hex;
use crate::store::keys;
use crate::store::txn::{get, put};

/// Stores a new authorization code (under its hash).
pub async fn insert_code(
    store: &dyn Store,
    code: &str,
    rec: &OAuthCodeRecord,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        put(tx.as_mut(), &keys::code(&sha256_hex(code)), rec)?;
    })?;
    Ok(v)
}

/// Redeems a code: reads and deletes it in one transaction, so that it is single-use
/// even when two redemptions race.
pub async fn take_code(store: &dyn Store, code: &str) -> Result<Option<OAuthCodeRecord>, OpError> {
    let key = keys::code(&sha256_hex(code));
    let (rec, _) = in_txn!(store, |tx| {
        let rec = get::<OAuthCodeRecord>(tx.as_mut(), &key).await?;
        if rec.is_some() {
            tx.clear(&key);
        }
        rec
    })?;
    Ok(rec)
}

/// Upserts an OAuth client record.
pub async fn put_client(store: &dyn Store, rec: &OAuthClientRecord) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        put(tx.as_mut(), &keys::client(&rec.client_id), rec)?;
    })?;
    Ok(v)
}

/// What one batch of [`purge_expired_codes`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodesPurged {
    /// Expired codes deleted.
    pub deleted: usize,
    /// Codes that did not decode (left alone: a newer node's format, perhaps).
    pub unreadable: usize,
    /// Where the next batch starts; `None` once the last code was read.
    pub next: Option<Vec<u8>>,
}

/// One batch of the purge of codes never redeemed: reads at most `limit` codes (at least
/// one) from key `from` on (the first code when `None`) and deletes those expired by
/// `now`, in one transaction. Codes are not in the replica, so the purge walks their key
/// range batch by batch, each a short transaction, resuming at [`CodesPurged::next`].
pub async fn purge_expired_codes(
    store: &dyn Store,
    from: Option<&[u8]>,
    limit: usize,
    now: Micros,
) -> Result<CodesPurged, OpError> {
    let (first, end) = keys::codes();
    let begin = from.map_or(first, <[u8]>::to_vec);
    let limit = limit.max(1);
    let (purged, _) = in_txn!(store, |tx| {
        let batch = tx.get_range(&begin, &end, limit, false).await?;
        let mut purged = CodesPurged {
            deleted: 0,
            unreadable: 0,
            next: None,
        };
        for (key, value) in &batch {
            match decode::<OAuthCodeRecord>(value) {
                Ok(rec) if rec.expires_at <= now => {
                    tx.clear(key);
                    purged.deleted += 1;
                }
                Ok(_) => {}
                Err(_) => purged.unreadable += 1,
            }
        }
        if batch.len() == limit {
            purged.next = batch.last().map(|(key, _)| {
                let mut next = key.clone();
                next.push(0);
                next
            });
        }
        purged
    })?;
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use galilean_proto::records::FORMAT;
    use galilean_storage::MemoryStore;

    fn code(expires_at: Micros) -> OAuthCodeRecord {
        OAuthCodeRecord {
            v: FORMAT,
            client_id: "jupyterhub-user-alice".into(),
            user: "alice".into(),
            scopes: vec![],
            redirect_uri: "/user/alice/oauth_callback".into(),
            session_id: None,
            code_challenge: None,
            code_challenge_method: None,
            expires_at,
        }
    }

    /// Every batch until the range is done; the codes deleted, and the batches run.
    async fn purge_all(store: &MemoryStore, limit: usize, now: Micros) -> (usize, usize) {
        let (mut deleted, mut batches) = (0, 0);
        let mut from = None;
        loop {
            let p = purge_expired_codes(store, from.as_deref(), limit, now)
                .await
                .unwrap();
            deleted += p.deleted;
            batches += 1;
            match p.next {
                Some(next) => from = Some(next),
                None => return (deleted, batches),
            }
        }
    }

    #[tokio::test]
    async fn expired_codes_are_purged_in_batches_and_live_ones_kept() {
        let store = MemoryStore::new();
        for i in 0..7 {
            insert_code(&store, &format!("stale-{i}"), &code(100))
                .await
                .unwrap();
        }
        for i in 0..3 {
            insert_code(&store, &format!("fresh-{i}"), &code(10_000))
                .await
                .unwrap();
        }
        // a client, whose key sorts right beside the codes', is no code
        let client = OAuthClientRecord {
            v: FORMAT,
            client_id: "code".into(),
            secret_hash: String::new(),
            redirect_uri: String::new(),
            description: String::new(),
            allowed_scopes: vec![],
            server: None,
            service: None,
        };
        put_client(&store, &client).await.unwrap();

        // ten codes in batches of three: four batches, the last one short
        let (deleted, batches) = purge_all(&store, 3, 5_000).await;
        assert_eq!((deleted, batches), (7, 4));
        for i in 0..7 {
            assert_eq!(
                take_code(&store, &format!("stale-{i}")).await.unwrap(),
                None
            );
        }
        // the three left fill a batch, so a second (empty) one looks past them
        let (deleted, batches) = purge_all(&store, 3, 5_000).await;
        assert_eq!((deleted, batches), (0, 2), "nothing is left to purge");
        for i in 0..3 {
            assert!(take_code(&store, &format!("fresh-{i}"))
                .await
                .unwrap()
                .is_some());
        }
        let mut tx = store.begin().await.unwrap();
        assert!(tx.get(&keys::client("code")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_unreadable_code_is_counted_and_left_alone() {
        let store = MemoryStore::new();
        let key = keys::code("junk");
        let mut tx = store.begin().await.unwrap();
        tx.set(&key, b"not a record");
        tx.commit().await.unwrap();
        let p = purge_expired_codes(&store, None, 10, i64::MAX)
            .await
            .unwrap();
        assert_eq!((p.deleted, p.unreadable, p.next), (0, 1, None));
        let mut tx = store.begin().await.unwrap();
        assert!(tx.get(&key).await.unwrap().is_some());
    }
}
