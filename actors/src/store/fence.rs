//! The write fence: an owner's write reads the live set inside its transaction and is
//! refused when its node no longer owns the user, or may have lost it since the writing
//! actor started. Reading the key puts it in the transaction's read set, so a live-set
//! change committed meanwhile makes the write conflict and re-check: a stale owner's
//! write fails instead of overwriting the new owner's, or undoing what it did.

use galilean_proto::live::LiveSet;
use galilean_storage::Transaction;

use crate::error::OpError;
use crate::policy::placement::{LiveSetRules, Owned};
use crate::store::keys;

/// The ownership a write is fenced by: (user, the writing actor's node and start
/// epoch). `None` writes unfenced (a batch of the API, made where it was asked).
pub type Fence<'a> = Option<(&'a str, Owned)>;

/// Refuses the write in `tx` when `owned.node` does not own `user` by the stored live
/// set, or may have lost it since `owned.epoch`. Without a recorded live set (one node,
/// or a cluster's first moments) every write passes.
pub async fn fence(tx: &mut dyn Transaction, user: &str, owned: Owned) -> Result<(), OpError> {
    match stored_live_set(tx).await? {
        Some(set) => set.check_owner(user, owned),
        None => Ok(()),
    }
}

/// Applies `fence` when there is one.
pub async fn check_fence(tx: &mut dyn Transaction, fence: Fence<'_>) -> Result<(), OpError> {
    match fence {
        Some((user, owned)) => self::fence(tx, user, owned).await,
        None => Ok(()),
    }
}

/// The live set as `tx` reads it (the read joins the transaction's read set).
pub async fn stored_live_set(tx: &mut dyn Transaction) -> Result<Option<LiveSet>, OpError> {
    match tx.get(&keys::meta(keys::LIVE_KEY)).await? {
        Some(bytes) => galilean_proto::codec::decode(&bytes)
            .map(Some)
            .map_err(|e| OpError::Corrupt(e.to_string())),
        None => Ok(None),
    }
}
