//! Who owns a user: the live member with the highest rendezvous (highest-random-weight)
//! score for the user's name, so that a membership change moves only the users of the
//! member that came or went. And the rules of the live set that placement runs over:
//! how it follows the members that answer, and whether an owner's claim (`Owned`) still
//! holds by it. Pure: no store, no actors.

use galilean_proto::live::{LiveSet, LIVE_SET_FORMAT};
use galilean_proto::node::NodeId;
use sha2::{Digest, Sha256};

use crate::error::OpError;

/// The member that owns `key`, or `None` when there are no members.
pub fn owner(key: &[u8], members: &[NodeId]) -> Option<NodeId> {
    members.iter().copied().max_by_key(|m| score(key, *m))
}

fn score(key: &[u8], member: NodeId) -> (u64, NodeId) {
    let mut h = Sha256::new();
    h.update(member.get().to_be_bytes());
    h.update(key);
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    // ties (practically impossible) are broken by the member id
    (u64::from_be_bytes(first), member)
}

/// What an actor writes under: its node, and the live-set epoch its node owned the
/// actor's user at when the actor started (0 before any set was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub node: NodeId,
    pub epoch: u64,
}

/// The rules of a live set, as methods on the record.
pub trait LiveSetRules {
    /// The set that follows `current` (`None`: no set recorded yet) when `live` answer.
    fn next(current: Option<&LiveSet>, live: Vec<NodeId>) -> LiveSet;
    /// Whether `node`, if it owns a user by this set, may not have owned it all along
    /// since `epoch`: it left the set and came back, or a member that joined after
    /// `epoch` has left since (and may have owned the user in between).
    fn ownership_may_have_lapsed(&self, node: NodeId, epoch: u64) -> bool;
    /// Whether an actor writing under `owned` may write for `user` by this set: its node
    /// owns the user, and has owned it all along since the actor started.
    fn check_owner(&self, user: &str, owned: Owned) -> Result<(), OpError>;
}

impl LiveSetRules for LiveSet {
    fn next(current: Option<&LiveSet>, mut live: Vec<NodeId>) -> LiveSet {
        live.sort_unstable();
        live.dedup();
        let Some(current) = current else {
            return LiveSet {
                v: LIVE_SET_FORMAT,
                epoch: 1,
                since: live.iter().map(|id| (*id, 0)).collect(),
                live,
                left_since: 0,
            };
        };
        let epoch = current.epoch + 1;
        let since = live
            .iter()
            .map(|id| {
                let kept = current.live.contains(id).then(|| current.joined(*id));
                (*id, kept.unwrap_or(epoch))
            })
            .collect();
        let left_since = current
            .live
            .iter()
            .filter(|id| !live.contains(id))
            .map(|id| current.joined(*id))
            .fold(current.left_since, u64::max);
        LiveSet {
            v: LIVE_SET_FORMAT,
            epoch,
            live,
            since,
            left_since,
        }
    }

    fn ownership_may_have_lapsed(&self, node: NodeId, epoch: u64) -> bool {
        self.joined(node) > epoch || self.left_since > epoch
    }

    fn check_owner(&self, user: &str, owned: Owned) -> Result<(), OpError> {
        match owner(user.as_bytes(), &self.live) {
            Some(owner) if owner != owned.node => Err(OpError::Moved(format!(
                "{user} is now owned by node {owner} (live set epoch {})",
                self.epoch
            ))),
            Some(_) if self.ownership_may_have_lapsed(owned.node, owned.epoch) => {
                Err(OpError::Moved(format!(
                    "{user} may have been owned by another node since live set epoch {} \
                     (now {}): this actor is stale",
                    owned.epoch, self.epoch
                )))
            }
            Some(_) => Ok(()),
            None => Err(OpError::Unavailable("no live members".into())),
        }
    }
}

/// Whether an actor that writes under `owned` is stale by the live set `set`: its user
/// may have had another owner since it started.
pub fn stale_by(set: Option<&LiveSet>, owned: Owned) -> bool {
    set.is_some_and(|set| set.ownership_may_have_lapsed(owned.node, owned.epoch))
}

/// [`owner`] for callers that hold node ids as the integers config, raft and status
/// reports use.
pub fn owner_of_ids(key: &[u8], members: &[u64]) -> Option<u64> {
    owner(key, &node_ids(members)).map(NodeId::get)
}

/// `ids` as node ids (for tests and callers that hold plain integers).
pub fn node_ids(ids: &[u64]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_owns_everything() {
        assert_eq!(owner(b"alice", &[NodeId(7)]), Some(NodeId(7)));
        assert_eq!(owner(b"alice", &[]), None);
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let members = node_ids(&[1, 2, 3]);
        let survivors = node_ids(&[1, 3]);
        let mut moved = 0;
        for i in 0..1000 {
            let key = format!("user{i}");
            let before = owner(key.as_bytes(), &members).unwrap();
            let after = owner(key.as_bytes(), &survivors).unwrap();
            if before != NodeId(2) {
                assert_eq!(before, after, "{key} moved needlessly");
            } else {
                moved += 1;
            }
        }
        // roughly a third of the keys belonged to member 2
        assert!((250..420).contains(&moved), "{moved}");
    }

    #[test]
    fn a_live_set_remembers_when_members_joined_and_who_came_and_went() {
        let n = NodeId;
        let first = LiveSet::next(None, node_ids(&[3, 1, 2]));
        assert_eq!((first.epoch, first.live.clone()), (1, node_ids(&[1, 2, 3])));
        // the first set's members count as live from the start
        assert_eq!(first.since.values().copied().collect::<Vec<_>>(), [0, 0, 0]);
        assert!(!first.ownership_may_have_lapsed(n(1), 0));
        // 3 leaves: it joined at the start, so it owned nothing then that 1 owns now
        let second = LiveSet::next(Some(&first), node_ids(&[1, 2]));
        assert_eq!((second.epoch, second.left_since), (2, 0));
        assert!(!second.ownership_may_have_lapsed(n(1), 0));
        // 3 comes back: its actors from before are stale, the others' are not
        let third = LiveSet::next(Some(&second), node_ids(&[1, 2, 3]));
        assert_eq!(third.since.get(&n(3)), Some(&3));
        assert!(third.ownership_may_have_lapsed(n(3), 1));
        assert!(!third.ownership_may_have_lapsed(n(3), 3));
        assert!(!third.ownership_may_have_lapsed(n(1), 1));
        // 3 leaves again, having joined at 3: whatever it owned in between is back with
        // 1 or 2, so their actors started before epoch 3 are stale
        let fourth = LiveSet::next(Some(&third), node_ids(&[1, 2]));
        assert_eq!(fourth.left_since, 3);
        assert!(fourth.ownership_may_have_lapsed(n(1), 2));
        assert!(!fourth.ownership_may_have_lapsed(n(1), 3));
        // a set recorded before `since` existed reads as everyone live from the start
        let old: LiveSet = rmp_serde::from_slice(
            &rmp_serde::to_vec_named(&serde_json::json!({"epoch": 9, "live": [1, 2]})).unwrap(),
        )
        .unwrap();
        assert!(!old.ownership_may_have_lapsed(n(1), 0));
        assert_eq!(LiveSet::next(Some(&old), node_ids(&[1])).left_since, 0);
    }

    #[test]
    fn an_owner_s_claim_holds_only_while_it_owned_the_user_all_along() {
        let set = LiveSet::next(None, node_ids(&[1, 2]));
        let user = (0..100)
            .map(|i| format!("u{i}"))
            .find(|u| owner(u.as_bytes(), &set.live) == Some(NodeId(1)))
            .unwrap();
        let mine = Owned {
            node: NodeId(1),
            epoch: 1,
        };
        assert!(set.check_owner(&user, mine).is_ok());
        let other = Owned {
            node: NodeId(2),
            epoch: 1,
        };
        assert!(matches!(
            set.check_owner(&user, other),
            Err(OpError::Moved(_))
        ));
        let back = LiveSet::next(
            Some(&LiveSet::next(Some(&set), node_ids(&[2]))),
            node_ids(&[1, 2]),
        );
        assert!(matches!(
            back.check_owner(&user, mine),
            Err(OpError::Moved(_))
        ));
        assert!(stale_by(Some(&back), mine));
        assert!(!stale_by(None, mine));
        let empty = LiveSet::next(None, vec![]);
        assert!(matches!(
            empty.check_owner(&user, mine),
            Err(OpError::Unavailable(_))
        ));
    }
}
