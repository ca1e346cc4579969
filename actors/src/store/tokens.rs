//! Token records: stored under the SHA-256 of their secret, never the secret itself.
//! Created for users (by their actor, fenced), for servers and OAuth clients, and from
//! config for services; deleted by hash, and purged once expired.

use galilean_proto::records::{Owner, TokenRecord, FORMAT};
use galilean_proto::time::{now_micros, Micros};
use galilean_proto::wire::NewToken;
use galilean_storage::{Store, Transaction, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::secrets::{new_token_secret, sha256_hex};
use crate::store::fence::{check_fence, Fence};
use crate::store::keys;
use crate::store::txn::{get, next_id, put};

/// Writes a token record for `secret` in `tx` (a transaction of `store`).
pub async fn insert_token(
    store: &dyn Store,
    tx: &mut dyn Transaction,
    secret: &str,
    spec: &NewToken,
) -> Result<TokenRecord, OpError> {
    let id = next_id(store, "tokens").await?;
    let now = now_micros();
    let rec = TokenRecord {
        v: FORMAT,
        id,
        prefix: secret.chars().take(4).collect(),
        owner: spec.owner.clone(),
        scopes: spec.scopes.clone(),
        note: spec.note.clone(),
        created: now,
        last_activity: None,
        expires_at: spec.expires_in.map(|s| {
            now.saturating_add(
                i64::try_from(s)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1_000_000),
            )
        }),
        session_id: spec.session_id.clone(),
        client_id: spec.client_id.clone(),
    };
    put(tx, &keys::token(&sha256_hex(secret)), &rec)?;
    Ok(rec)
}

/// Creates a token with a fresh secret; returns the record and the secret.
pub async fn create_token(
    store: &dyn Store,
    spec: NewToken,
    fence: Fence<'_>,
) -> Result<((TokenRecord, String), Version), OpError> {
    let secret = new_token_secret();
    in_txn!(store, |tx| {
        check_fence(tx.as_mut(), fence).await?;
        if let Owner::User(u) = &spec.owner {
            if tx.get(&keys::user(u)).await?.is_none() {
                return Err(OpError::NotFound(format!("No such user: {u}")));
            }
        }
        let rec = insert_token(store, tx.as_mut(), &secret, &spec).await?;
        (rec, secret.clone())
    })
}

/// Stores a token whose secret comes from configuration (a service's `api_token`),
/// replacing any earlier token of that owner from config.
pub async fn upsert_config_token(
    store: &dyn Store,
    secret: &str,
    owner: Owner,
    existing: Vec<String>,
) -> Result<Version, OpError> {
    let hash = sha256_hex(secret);
    let ((), v) = in_txn!(store, |tx| {
        for h in &existing {
            if *h != hash {
                tx.clear(&keys::token(h));
            }
        }
        if tx.get(&keys::token(&hash)).await?.is_none() {
            let spec = NewToken {
                owner: owner.clone(),
                scopes: vec![galilean_proto::scopes::INHERIT.to_owned()],
                note: "from config".into(),
                expires_in: None,
                session_id: None,
                client_id: "jupyterhub".into(),
            };
            insert_token(store, tx.as_mut(), secret, &spec).await?;
        }
    })?;
    Ok(v)
}

/// Deletes tokens by hash in one transaction.
pub async fn delete_tokens(
    store: &dyn Store,
    hashes: &[String],
    fence: Fence<'_>,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        check_fence(tx.as_mut(), fence).await?;
        for h in hashes {
            tx.clear(&keys::token(h));
        }
    })?;
    Ok(v)
}

/// Deletes those of `hashes` whose token has expired by `now`, in one transaction: each
/// record is read again inside it, so a token that is gone already, or does not expire,
/// is left alone, and two purges at once delete each token once. Unfenced: an expired
/// token is refused everywhere already, whoever owns its user. Returns how many it
/// deleted; callers keep `hashes` to a batch.
pub async fn purge_expired_tokens(
    store: &dyn Store,
    hashes: &[String],
    now: Micros,
) -> Result<(usize, Version), OpError> {
    in_txn!(store, |tx| {
        let mut deleted = 0;
        for h in hashes {
            let key = keys::token(h);
            let Some(rec) = get::<TokenRecord>(tx.as_mut(), &key).await? else {
                continue;
            };
            if rec.expires_at.is_some_and(|e| e <= now) {
                tx.clear(&key);
                deleted += 1;
            }
        }
        deleted
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use galilean_storage::MemoryStore;

    fn spec(expires_in: Option<u64>) -> NewToken {
        NewToken {
            owner: Owner::User("alice".into()),
            scopes: vec![],
            note: String::new(),
            expires_in,
            session_id: None,
            client_id: "jupyterhub".into(),
        }
    }

    async fn stored(
        store: &MemoryStore,
        spec: &NewToken,
    ) -> Result<(String, TokenRecord), OpError> {
        let secret = new_token_secret();
        let (rec, _) = in_txn!(store, |tx| {
            insert_token(store, tx.as_mut(), &secret, spec).await?
        })?;
        Ok((sha256_hex(&secret), rec))
    }

    async fn present(store: &MemoryStore, hash: &str) -> bool {
        let mut tx = store.begin().await.unwrap();
        tx.get(&keys::token(hash)).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn only_expired_tokens_are_purged_and_each_once() {
        let store = MemoryStore::new();
        let (expiring, rec) = stored(&store, &spec(Some(60))).await.unwrap();
        let (lasting, _) = stored(&store, &spec(None)).await.unwrap();
        let (later, _) = stored(&store, &spec(Some(3600))).await.unwrap();
        let all = [
            expiring.clone(),
            lasting.clone(),
            later.clone(),
            "no-such-token".to_owned(),
        ];

        // before its expiry nothing goes
        let (n, _) = purge_expired_tokens(&store, &all, rec.created)
            .await
            .unwrap();
        assert_eq!(n, 0);
        let after = rec.expires_at.unwrap();
        let (n, _) = purge_expired_tokens(&store, &all, after).await.unwrap();
        assert_eq!(n, 1);
        assert!(!present(&store, &expiring).await);
        assert!(present(&store, &lasting).await && present(&store, &later).await);
        // a second purge (another node's, or the next round) finds nothing to do
        let (n, _) = purge_expired_tokens(&store, &all, after).await.unwrap();
        assert_eq!(n, 0);
    }
}
