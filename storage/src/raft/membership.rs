//! Changing the raft membership at runtime, on the leader: adding a node (first as a
//! learner that catches up from a fresh snapshot, then as a voter, through openraft's joint
//! consensus) and removing one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, Raft};
use serde::{Deserialize, Serialize};

use super::{NodeId, TypeConfig};

/// A membership change asked of the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Adds node `id`, whose `cluster.bind` is `addr`, as a voter.
    Add { id: NodeId, addr: String },
    /// Removes node `id` from the membership.
    Remove { id: NodeId },
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    #[error("this node does not lead (the leader is {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("{0}")]
    Refused(String),
    #[error("raft: {0}")]
    Raft(String),
}

/// The members as the raft state says: id → `cluster.bind` address, voters and learners.
pub fn members(raft: &Raft<TypeConfig>) -> BTreeMap<NodeId, String> {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    m.membership_config
        .membership()
        .nodes()
        .map(|(id, node)| (*id, node.addr.clone()))
        .collect()
}

/// How long a newcomer may take to catch up before the change gives up.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Carries out `change` on this node, which must lead; answers the new membership.
pub async fn change(
    raft: &Raft<TypeConfig>,
    change: MembershipChange,
) -> Result<BTreeMap<NodeId, String>, MembershipError> {
    let (me, leader, voters) = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        (m.id, m.current_leader, voters)
    };
    if leader != Some(me) {
        return Err(MembershipError::NotLeader(leader));
    }
    let raft_err = |e: &dyn std::fmt::Display| MembershipError::Raft(e.to_string());
    match change {
        MembershipChange::Add { id, addr } => {
            if voters.contains(&id) {
                return Err(MembershipError::Refused(format!(
                    "node {id} is already a member"
                )));
            }
            // a newcomer starts from a snapshot of now rather than replaying the whole log
            let applied = raft.metrics().borrow().last_applied;
            raft.trigger().snapshot().await.map_err(|e| raft_err(&e))?;
            let snapshot = raft
                .wait(Some(Duration::from_secs(30)))
                .metrics(|m| m.snapshot >= applied, "a snapshot of the state")
                .await
                .map_err(|e| raft_err(&e))?
                .snapshot;
            if let Some(s) = snapshot {
                raft.trigger()
                    .purge_log(s.index)
                    .await
                    .map_err(|e| raft_err(&e))?;
            }
            let added = tokio::time::timeout(
                CATCH_UP,
                raft.add_learner(id, BasicNode { addr: addr.clone() }, true),
            )
            .await
            .map_err(|_| {
                MembershipError::Refused(format!(
                    "node {id} at {addr} did not catch up within {CATCH_UP:?}: is it running, \
                     with this cluster's secret and certificates?"
                ))
            })?;
            added.map_err(|e| raft_err(&e))?;
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(|e| raft_err(&e))?;
        }
        MembershipChange::Remove { id } => {
            if !voters.contains(&id) {
                return Err(MembershipError::Refused(format!(
                    "node {id} is not a member"
                )));
            }
            if voters.len() == 1 {
                return Err(MembershipError::Refused(
                    "cannot remove the last member".into(),
                ));
            }
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| raft_err(&e))?;
        }
    }
    Ok(members(raft))
}
