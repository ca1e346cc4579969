//! The transaction loop every store operation runs in, and typed reads and writes of
//! records inside a transaction.

use galilean_proto::codec::{decode, encode};
use galilean_storage::{Store, Transaction};

use crate::error::OpError;
use crate::store::keys;

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

/// Reads and decodes the record at `key`.
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

/// Encodes and writes `value` at `key`.
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
    Ok(galilean_storage::ids::next_id(store, &keys::sequence(seq)).await?)
}

/// `n` ids of a sequence at once.
pub async fn next_ids(store: &dyn Store, seq: &str, n: usize) -> Result<Vec<u64>, OpError> {
    Ok(galilean_storage::ids::next_ids(store, &keys::sequence(seq), n).await?)
}
