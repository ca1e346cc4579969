//! Transactional operations on the keyspace: each is one short store transaction,
//! retried on conflict. Actors call these to serialize a key's writes; nothing here
//! holds state.

use galilean_proto::codec::{decode, encode};
use galilean_proto::records::{
    OAuthClientRecord, OAuthCodeRecord, Owner, ServerPhase, ServerRecord, TokenRecord, UserRecord,
    FORMAT,
};
use galilean_proto::time::{now_micros, Micros};
use galilean_storage::{Store, StoreError, Transaction, Version};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::OpError;
use crate::keys;

/// Runs `$body` in a transaction on `$store` bound to `$tx`, commits, and retries on
/// conflict. Evaluates to `Result<(T, Version), OpError>`; `?` inside the body returns
/// from the enclosing function.
#[macro_export]
macro_rules! in_txn {
    ($store:expr, |$tx:ident| $body:block) => {{
        let mut attempts = 0u32;
        loop {
            let mut $tx = $store.begin().await.map_err($crate::error::OpError::from)?;
            let value = $body;
            match $tx.commit().await {
                Ok(version) => break Ok::<_, $crate::error::OpError>((value, version)),
                Err(e) if e.is_retryable() && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(galilean_storage::retry_backoff(attempts)).await;
                }
                Err(e) => break Err($crate::error::OpError::from(e)),
            }
        }
    }};
}

/// Hex SHA-256, for token and code lookups.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token secret: 32 lowercase hex characters (128 random bits), like
/// JupyterHub's `uuid4().hex`.
pub fn new_token_secret() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A random string of letters and digits (OAuth codes and access tokens).
pub fn random_alnum(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub async fn get<T: serde::de::DeserializeOwned>(
    tx: &mut dyn Transaction,
    key: &[u8],
) -> Result<Option<T>, OpError> {
    match tx.get(key).await? {
        None => Ok(None),
        Some(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|e| OpError::Corrupt(e.to_string())),
    }
}

pub fn put<T: serde::Serialize>(
    tx: &mut dyn Transaction,
    key: &[u8],
    value: &T,
) -> Result<(), OpError> {
    let bytes = encode(value).map_err(|e| OpError::Corrupt(e.to_string()))?;
    tx.set(key, &bytes);
    Ok(())
}

/// Takes the next id of a sequence (`users`, `tokens`) from this store's reserved block
/// (see `galilean_storage::ids`): the caller's transaction does not touch the counter,
/// so creating users or tokens at once does not make the transactions conflict.
pub async fn next_id(store: &dyn Store, seq: &str) -> Result<u64, OpError> {
    Ok(galilean_storage::ids::next_id(store, &seq_key(seq)).await?)
}

/// The counter key of a sequence.
fn seq_key(seq: &str) -> Vec<u8> {
    keys::meta(&format!("seq.{seq}"))
}

pub fn new_user(id: u64, name: &str, admin: bool) -> UserRecord {
    UserRecord {
        v: FORMAT,
        id,
        name: name.to_owned(),
        admin,
        created: now_micros(),
        last_activity: None,
        cookie_id: random_alnum(32),
    }
}

/// Creates the users that do not exist yet; returns the created ones. A user's actor
/// creates its user under its `fence`; a batch of the API, made where it was asked,
/// under none.
pub async fn create_users(
    store: &dyn Store,
    names: &[String],
    admin: bool,
    fence: Fence<'_>,
) -> Result<(Vec<UserRecord>, Version), OpError> {
    // one id per name, taken at once (a name that exists leaves its id unused)
    let ids = galilean_storage::ids::next_ids(store, &seq_key("users"), names.len()).await?;
    in_txn!(store, |tx| {
        check_fence(tx.as_mut(), fence).await?;
        let mut created = Vec::new();
        for (name, &id) in names.iter().zip(&ids) {
            let key = keys::user(name);
            if tx.get(&key).await?.is_some() {
                continue;
            }
            let rec = new_user(id, name, admin);
            put(tx.as_mut(), &key, &rec)?;
            created.push(rec);
        }
        created
    })
}

/// Ensures a user exists (login of an allowed user), updating `admin` when `admin` is
/// `Some`.
pub async fn ensure_user(
    store: &dyn Store,
    name: &str,
    admin: Option<bool>,
) -> Result<(UserRecord, Version), OpError> {
    in_txn!(store, |tx| {
        let key = keys::user(name);
        match get::<UserRecord>(tx.as_mut(), &key).await? {
            Some(mut rec) => {
                if let Some(a) = admin {
                    if rec.admin != a {
                        rec.admin = a;
                        put(tx.as_mut(), &key, &rec)?;
                    }
                }
                rec
            }
            None => {
                let id = next_id(store, "users").await?;
                let rec = new_user(id, name, admin.unwrap_or(false));
                put(tx.as_mut(), &key, &rec)?;
                rec
            }
        }
    })
}

/// What a new token should be.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewToken {
    pub owner: Owner,
    pub scopes: Vec<String>,
    pub note: String,
    pub expires_in: Option<u64>,
    pub session_id: Option<String>,
    pub client_id: String,
}

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

/// The ownership a write is fenced by: (user, this actor's node and start epoch). The
/// write fails with `Moved` when the live set in the same transaction names another
/// owner, or says the owner may have changed since (see `remote::fence`).
pub type Fence<'a> = Option<(&'a str, crate::remote::Owned)>;

async fn check_fence(tx: &mut dyn Transaction, fence: Fence<'_>) -> Result<(), OpError> {
    match fence {
        Some((user, owned)) => crate::remote::fence(tx, user, owned).await,
        None => Ok(()),
    }
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

/// Writes batched activity: for each (user, server) the newest time seen, moving stored
/// values only forward. One transaction for the whole batch.
pub async fn record_activity(
    store: &dyn Store,
    users: &[(String, Micros)],
    servers: &[((String, String), Micros)],
    tokens: &[(String, Micros)],
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        for (name, t) in users {
            let key = keys::user(name);
            if let Some(mut rec) = get::<UserRecord>(tx.as_mut(), &key).await? {
                if rec.last_activity.is_none_or(|old| old < *t) {
                    rec.last_activity = Some(*t);
                    put(tx.as_mut(), &key, &rec)?;
                }
            }
        }
        for ((u, s), t) in servers {
            let key = keys::server(u, s);
            if let Some(mut rec) = get::<ServerRecord>(tx.as_mut(), &key).await? {
                if rec.phase != ServerPhase::Stopped && rec.last_activity.is_none_or(|old| old < *t)
                {
                    rec.last_activity = Some(*t);
                    put(tx.as_mut(), &key, &rec)?;
                }
            }
        }
        for (hash, t) in tokens {
            let key = keys::token(hash);
            if let Some(mut rec) = get::<TokenRecord>(tx.as_mut(), &key).await? {
                if rec.last_activity.is_none_or(|old| old < *t) {
                    rec.last_activity = Some(*t);
                    put(tx.as_mut(), &key, &rec)?;
                }
            }
        }
    })?;
    Ok(v)
}

/// Reads or creates a random secret stored under `("m", name)`.
pub async fn secret(store: &dyn Store, name: &str, len: usize) -> Result<Vec<u8>, OpError> {
    let key = keys::meta(name);
    let (bytes, _) = in_txn!(store, |tx| {
        match tx.get(&key).await? {
            Some(b) if b.len() == len => b,
            _ => {
                let mut b = vec![0u8; len];
                rand::thread_rng().fill(b.as_mut_slice());
                tx.set(&key, &b);
                b
            }
        }
    })?;
    Ok(bytes)
}

/// Upserts an OAuth client record.
pub async fn put_client(store: &dyn Store, rec: &OAuthClientRecord) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        put(tx.as_mut(), &keys::client(&rec.client_id), rec)?;
    })?;
    Ok(v)
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}
