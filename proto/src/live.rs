//! The live set: the members that answer, as the raft leader last recorded them under
//! the meta key `live`. Users are placed over it, so every node agrees on owners at each
//! version. The rules that make and judge a live set are in `galilean_actors`' policy;
//! this is the record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// Current format version of [`LiveSet`]. A set recorded before the field existed
/// decodes as this version: its shape is the same.
pub const LIVE_SET_FORMAT: u8 = 1;

fn format() -> u8 {
    LIVE_SET_FORMAT
}

/// Ownership is a function of the set, so a user may leave a node and come back to it
/// (the node was cut off, or a member that outranks it for the user joined and left).
/// An actor that lived through that must not write: the owner in between may have
/// changed the user. `since` and `left_since` let a fence tell, from the current set
/// alone, whether a node's ownership of any user can have lapsed after a given epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSet {
    #[serde(default = "format")]
    pub v: u8,
    /// Increases with every change.
    pub epoch: u64,
    pub live: Vec<NodeId>,
    /// The epoch at which each live member last joined the set; 0 for the members of
    /// the first set, which placed users as the full membership did before it (and for
    /// a set recorded before this field existed).
    #[serde(default)]
    pub since: BTreeMap<NodeId, u64>,
    /// The highest `since` of a member that has left the set: a member that joined
    /// after an epoch and left again may have owned, in between, users that were
    /// another node's at that epoch and are again now.
    #[serde(default)]
    pub left_since: u64,
}

impl LiveSet {
    /// The epoch at which live member `id` joined (0 when unknown).
    pub fn joined(&self, id: NodeId) -> u64 {
        self.since.get(&id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn set() -> LiveSet {
        LiveSet {
            v: LIVE_SET_FORMAT,
            epoch: 4,
            live: vec![NodeId(1), NodeId(3)],
            since: [(NodeId(1), 0), (NodeId(3), 4)].into_iter().collect(),
            left_since: 2,
        }
    }

    #[test]
    fn golden_live_set() {
        let bytes = encode(&set()).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_LIVE_SET);
        assert_eq!(decode::<LiveSet>(&bytes).unwrap(), set());
    }

    /// The live set as nodes wrote it before it had a version (and before `NodeId`).
    #[derive(Serialize)]
    struct Unversioned {
        epoch: u64,
        live: Vec<u64>,
        since: BTreeMap<u64, u64>,
        left_since: u64,
    }

    #[test]
    fn sets_recorded_before_versions_and_before_since_still_decode() {
        let unversioned = encode(&Unversioned {
            epoch: 4,
            live: vec![1, 3],
            since: [(1, 0), (3, 4)].into_iter().collect(),
            left_since: 2,
        })
        .unwrap();
        assert_eq!(hex(&unversioned), GOLDEN_UNVERSIONED);
        assert_eq!(decode::<LiveSet>(&unversioned).unwrap(), set());
        // and before `since` and `left_since` existed
        let older =
            rmp_serde::to_vec_named(&serde_json::json!({"epoch": 9, "live": [1, 2]})).unwrap();
        let older: LiveSet = decode(&older).unwrap();
        assert_eq!(
            (older.v, older.epoch, older.live.clone(), older.left_since),
            (LIVE_SET_FORMAT, 9, vec![NodeId(1), NodeId(2)], 0)
        );
        assert_eq!(older.joined(NodeId(1)), 0);
    }

    const GOLDEN_LIVE_SET: &str =
        "85a17601a565706f636804a46c697665920103a573696e63658201000304aa6c6566745f73696e636502";
    const GOLDEN_UNVERSIONED: &str =
        "84a565706f636804a46c697665920103a573696e63658201000304aa6c6566745f73696e636502";
}
