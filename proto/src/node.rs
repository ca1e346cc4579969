//! `NodeId`: the id of a hub node in a cluster (`cluster.node_id`), as the live set, the
//! placement of users and the node-to-node calls name it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A hub node's id. Encoded as the bare integer, so every record and message that
/// carried a `u64` node id before this type existed decodes unchanged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl NodeId {
    /// The id as the integer the config, raft and the status reports use.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for NodeId {
    fn from(id: u64) -> NodeId {
        NodeId(id)
    }
}

/// A node id compares with, and looks up maps by, the integer it is.
impl PartialEq<u64> for NodeId {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl std::borrow::Borrow<u64> for NodeId {
    fn borrow(&self) -> &u64 {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::NodeId;

    #[test]
    fn a_node_id_encodes_as_its_integer() {
        let bytes = rmp_serde::to_vec_named(&NodeId(3)).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec_named(&3u64).unwrap());
        assert_eq!(rmp_serde::from_slice::<NodeId>(&bytes).unwrap(), NodeId(3));
        assert_eq!(NodeId(3).to_string(), "3");
        assert_eq!(NodeId(3), 3);
        let since: std::collections::BTreeMap<NodeId, u64> = [(NodeId(3), 9)].into();
        assert_eq!(since.get(&3), Some(&9));
    }
}
