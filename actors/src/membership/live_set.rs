//! The live set as this node's replica shows it, the members marked draining, and the
//! leader's write of a new set (see `galilean_proto::live`).

use std::collections::BTreeSet;

use galilean_proto::live::LiveSet;
use galilean_proto::node::NodeId;
use galilean_storage::Store;

use crate::error::OpError;
use crate::in_txn;
use crate::policy::placement::LiveSetRules;
use crate::replica::Replica;
use crate::store::fence::stored_live_set;
use crate::store::keys::{self, DRAINING_PREFIX, LIVE_KEY};

/// The live set by the replica (`None`: none recorded yet).
pub fn read_live_set(replica: &Replica) -> Option<LiveSet> {
    replica.read(|s| {
        s.meta
            .get(LIVE_KEY)
            .and_then(|b| galilean_proto::codec::decode(b).ok())
    })
}

/// The members marked as draining.
pub fn draining(replica: &Replica) -> BTreeSet<NodeId> {
    replica.read(|s| {
        s.meta
            .keys()
            .filter_map(|k| k.strip_prefix(DRAINING_PREFIX)?.parse().ok().map(NodeId))
            .collect()
    })
}

/// Records `live` as the live set, following the set the store holds (read in the
/// same transaction: `since` and `left_since` carry over from the committed set, not
/// from this node's possibly older copy). `None` when the store already says so.
pub async fn record_live(
    store: &dyn Store,
    replica: &Replica,
    live: Vec<NodeId>,
) -> Result<Option<LiveSet>, OpError> {
    let key = keys::meta(LIVE_KEY);
    let (set, v) = in_txn!(store, |tx| {
        let current = stored_live_set(tx.as_mut()).await?;
        let set = LiveSet::next(current.as_ref(), live.clone());
        if current.is_some_and(|c| c.live == set.live) {
            None
        } else {
            let bytes =
                galilean_proto::codec::encode(&set).map_err(|e| OpError::Corrupt(e.to_string()))?;
            tx.set(&key, &bytes);
            Some(set)
        }
    })?;
    replica.wait_for(v).await;
    Ok(set)
}
