//! The leader's book of its members: who answered which ping, when each was last
//! granted a lease, and from that, who counts as live. Pure: the liveness loop feeds it
//! what happened and asks it what to do, and the tests here drive it with tokio's
//! paused clock.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use galilean_proto::node::NodeId;
use tokio::time::Instant;

use crate::membership::timing::{LIVE_DEADLINE, PING_EVERY, SERVE_LEASE, VOTE_LEASE_MARGIN};

/// What the leader knows of its members' answers and leases.
#[derive(Debug, Clone)]
pub struct Book {
    /// When each member last answered a ping (members known at the start count as
    /// answering then).
    last_ok: HashMap<NodeId, Instant>,
    /// While leading: when the last round's answers were counted (a member answered it
    /// if its `last_ok` is that moment); `None` when this node starts to lead, and every
    /// member counts as answering.
    last_round: Option<Instant>,
    /// When this node last granted each member a lease.
    last_grant: HashMap<NodeId, Instant>,
}

/// One member's part in a round of pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub member: NodeId,
    pub answered: bool,
    /// The moment the lease granted with the ping counts from at the latest (`None`: no
    /// grant was sent).
    pub granted_at: Option<Instant>,
}

impl Book {
    /// The book of a node starting with `members`, all counted as answering at `start`.
    pub fn new(members: &[NodeId], start: Instant) -> Book {
        Book {
            last_ok: members.iter().map(|id| (*id, start)).collect(),
            last_round: None,
            last_grant: HashMap::new(),
        }
    }

    /// This node has just become the leader; an earlier leader's last proof is at
    /// least `handover` old (raft's vote lease). A member is declared dead only after
    /// any lease an earlier leader gave it ran out; those leases count from that
    /// leader's last proof, older than this node's leadership by at least `handover`
    /// (a voter grants no vote until it has not heard from the leader for its vote
    /// lease). So every member counts as answering `handover` (less a margin) ago.
    pub fn begin_leading(&mut self, handover: Duration, now: Instant) {
        let credit = handover.saturating_sub(VOTE_LEASE_MARGIN);
        let since = now.checked_sub(credit).unwrap_or(now);
        for t in self.last_ok.values_mut() {
            *t = since;
        }
        self.last_round = None;
        self.last_grant.clear();
    }

    /// Whether the next ping to `member` grants it a lease: only members of the live
    /// set (writes wait for them) that answered the last ping. A member that stopped
    /// answering gets no more, so its last lease runs out and it can be dropped.
    pub fn grants(&self, member: NodeId, in_set: &[NodeId]) -> bool {
        let answered_last = self
            .last_round
            .is_none_or(|round| self.last_ok.get(&member) == Some(&round));
        in_set.contains(&member) && answered_last
    }

    /// Counts a round of pings sent by `me` that ended `now`.
    pub fn record_round(&mut self, me: NodeId, now: Instant, answers: &[Answer]) {
        self.last_round = Some(now);
        for a in answers {
            if a.answered {
                self.last_ok.insert(a.member, now);
            }
            if let Some(at) = a.granted_at {
                self.last_grant.insert(a.member, at);
            }
        }
        self.last_ok.insert(me, now);
    }

    /// The `members` that count as live `now`: a member stays while it answers, and
    /// until the last lease granted to it has run out (with a ping's interval to spare
    /// for the clocks of two nodes): writes stop waiting for it only then.
    pub fn answering(&self, members: &[NodeId], now: Instant) -> Vec<NodeId> {
        members
            .iter()
            .copied()
            .filter(|id| {
                self.last_ok
                    .get(id)
                    .is_some_and(|t| now.duration_since(*t) < LIVE_DEADLINE)
                    || self
                        .last_grant
                        .get(id)
                        .is_some_and(|t| now < *t + SERVE_LEASE + PING_EVERY)
            })
            .collect()
    }
}

/// The live set to record from the `answering` members: draining members own nothing,
/// unless nobody else answers. Sorted.
pub fn live_from(answering: Vec<NodeId>, draining: &BTreeSet<NodeId>) -> Vec<NodeId> {
    let mut live: Vec<NodeId> = answering
        .iter()
        .copied()
        .filter(|id| !draining.contains(id))
        .collect();
    if live.is_empty() {
        live = answering;
    }
    live.sort_unstable();
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    /// A round in which the members in `answering` answer, each granted a lease if the
    /// book says so.
    fn round(book: &mut Book, members: &[NodeId], in_set: &[NodeId], answering: &[NodeId]) {
        let now = Instant::now();
        let answers: Vec<Answer> = members
            .iter()
            .filter(|m| **m != NodeId(1))
            .map(|m| Answer {
                member: *m,
                answered: answering.contains(m),
                granted_at: book.grants(*m, in_set).then_some(now),
            })
            .collect();
        book.record_round(NodeId(1), now, &answers);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_member_stays_live_until_its_last_lease_has_run_out() {
        let members = ids(&[1, 2, 3]);
        let mut book = Book::new(&members, Instant::now());
        book.begin_leading(Duration::ZERO, Instant::now());
        round(&mut book, &members, &members, &members);
        // 3 goes silent; the grant of the round it last answered runs out at
        // SERVE_LEASE + PING_EVERY after it
        let last_answer = Instant::now();
        let mut gone_at = None;
        for _ in 0..20 {
            tokio::time::advance(PING_EVERY).await;
            round(&mut book, &members, &members, &ids(&[1, 2]));
            if !book
                .answering(&members, Instant::now())
                .contains(&NodeId(3))
            {
                gone_at = Some(Instant::now());
                break;
            }
        }
        let gone_at = gone_at.expect("3 never left");
        assert!(gone_at >= last_answer + LIVE_DEADLINE);
        assert!(gone_at >= last_answer + SERVE_LEASE + PING_EVERY);
        assert!(gone_at <= last_answer + LIVE_DEADLINE + PING_EVERY);
        assert_eq!(book.answering(&members, Instant::now()), ids(&[1, 2]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_that_missed_the_last_ping_or_is_outside_the_set_gets_no_lease() {
        let members = ids(&[1, 2, 3]);
        let mut book = Book::new(&members, Instant::now());
        book.begin_leading(Duration::ZERO, Instant::now());
        // a new leader grants to every member of the set
        assert!(book.grants(NodeId(2), &members) && book.grants(NodeId(3), &members));
        assert!(!book.grants(NodeId(3), &ids(&[1, 2])), "outside the set");
        // its first round ends a moment later (the pings take time)
        tokio::time::advance(Duration::from_millis(10)).await;
        round(&mut book, &members, &members, &ids(&[1, 2]));
        tokio::time::advance(PING_EVERY).await;
        assert!(book.grants(NodeId(2), &members));
        assert!(!book.grants(NodeId(3), &members), "missed the last ping");
        // it answers again: it may be granted once more
        round(&mut book, &members, &members, &members);
        assert!(book.grants(NodeId(3), &members));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_leader_counts_members_as_answering_only_the_handover_ago() {
        let members = ids(&[1, 2, 3]);
        let mut book = Book::new(&members, Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        // raft's vote lease of 1 s: the old leader's leases are at least that old
        let handover = Duration::from_secs(1);
        book.begin_leading(handover, Instant::now());
        let credit = handover - VOTE_LEASE_MARGIN;
        // nobody answers: everyone but this node leaves LIVE_DEADLINE after the credit
        tokio::time::advance(LIVE_DEADLINE - credit - Duration::from_millis(1)).await;
        assert_eq!(book.answering(&members, Instant::now()), members);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(book.answering(&members, Instant::now()).is_empty());
    }

    #[test]
    fn draining_members_own_nothing_unless_nobody_else_answers() {
        let draining: BTreeSet<NodeId> = ids(&[2]).into_iter().collect();
        assert_eq!(live_from(ids(&[3, 2, 1]), &draining), ids(&[1, 3]));
        assert_eq!(live_from(ids(&[2]), &draining), ids(&[2]));
        assert!(live_from(vec![], &draining).is_empty());
    }
}
