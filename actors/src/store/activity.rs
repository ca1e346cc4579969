//! Batched activity: the newest use of users, servers and tokens seen by a node since
//! its last flush, written in one transaction. Stored times only move forward.

use galilean_proto::records::{ServerPhase, ServerRecord, TokenRecord, UserRecord};
use galilean_proto::time::Micros;
use galilean_storage::{Store, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::store::keys;
use crate::store::txn::{get, put};

/// Writes batched activity: for each user, (user, server) and token hash the newest
/// time seen, moving stored values only forward. One transaction for the whole batch.
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
