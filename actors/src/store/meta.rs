//! Hub metadata kept in the store: secrets made once per hub (the cookie secret) and
//! shared by every node.

use galilean_storage::Store;
use rand::Rng;

use crate::error::OpError;
use crate::in_txn;
use crate::store::keys;

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
