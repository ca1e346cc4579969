//! OAuth records: clients (a server's, a service's) and authorization codes, stored
//! under the SHA-256 of the code and redeemed once.

use galilean_proto::records::{OAuthClientRecord, OAuthCodeRecord};
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
