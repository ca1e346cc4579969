//! The liveness loop: while this node leads, a round of pings every [`PING_EVERY`]
//! (granting leases to the members that may have one), and the live set recorded when
//! the members that answer change; on every node, the actors of users that moved away
//! released and the servers that moved here re-adopted. What to grant and who is live
//! is decided by the [`Book`]; this loop only waits, asks and writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::membership::book::{live_from, Answer, Book};
use crate::membership::live_set::{draining, read_live_set, record_live};
use crate::membership::members::ping;
use crate::membership::timing::{LEADERSHIP_CHECK, PING_EVERY, PING_TIMEOUT};
use crate::router::Router;

/// Runs liveness for `router`'s node for as long as the node runs. `leadership()` gives
/// how old this node's proof of leading is (its last quorum acknowledgement, or lease
/// renewal), `None` while it does not lead; `handover` is how old, at least, a
/// predecessor's last proof is when this node starts to lead (raft's vote lease; a
/// store lease's duration).
pub async fn run_liveness(
    router: Arc<Router>,
    leadership: impl Fn() -> Option<Duration> + Send + 'static,
    handover: Duration,
) {
    let mut book = Book::new(&router.members(), Instant::now());
    let mut seen_epoch = read_live_set(&router.ctx().replica).map(|s| s.epoch);
    let mut was_leading = false;
    let mut next_round = Instant::now() + PING_EVERY;
    loop {
        // a new leader starts its first round at once
        while Instant::now() < next_round && (was_leading || leadership().is_none()) {
            tokio::time::sleep(LEADERSHIP_CHECK).await;
        }
        next_round = Instant::now() + PING_EVERY;
        // the proof as a moment, taken at once: an age kept across a pause (this
        // process stopped or starved) would make the proof look younger than it is
        let proof_at = leadership().and_then(|age| Instant::now().checked_sub(age));
        let leads = proof_at.is_some();
        if leads && !was_leading {
            book.begin_leading(handover, Instant::now());
        }
        was_leading = leads;
        // the proof covers what the store had applied when it was made: the replica
        // this node answers from has to show that much before the proof counts
        let proof_at = match proof_at {
            Some(at) => {
                let applied = router.ctx().store.committed_version();
                let caught_up = router.catch_up(applied, PING_TIMEOUT / 2).await.is_ok();
                caught_up.then_some(at)
            }
            None => None,
        };
        if let Some(proof_at) = proof_at {
            lead_round(&router, &mut book, proof_at).await;
        }
        let epoch = read_live_set(&router.ctx().replica).map(|s| s.epoch);
        if epoch != seen_epoch {
            seen_epoch = epoch;
            router.release_moved_actors().await;
            router.adopt_servers().await;
        }
    }
}

/// One round of the leader, whose last proof of leading is `proof_at`: renews its own
/// lease, pings every other member (granting those the book says), and records the
/// live set when the members that answer changed.
async fn lead_round(router: &Arc<Router>, book: &mut Book, proof_at: Instant) {
    let me = router.node_id();
    // writes wait only for the live set's members: outside it, this node does not
    // serve either
    let in_set = router.live_members();
    if in_set.contains(&me) {
        router.lease().renew_at(proof_at);
    }
    let members = router.members();
    let others: Vec<_> = members.iter().copied().filter(|id| *id != me).collect();
    let version = router.ctx().replica.version();
    let answers = futures::future::join_all(others.iter().map(|id| {
        let grant = book.grants(*id, &in_set);
        async move {
            let (answered, granted_at) = ping(*id, version, proof_at, grant).await;
            Answer {
                member: *id,
                answered,
                granted_at,
            }
        }
    }))
    .await;
    let now = Instant::now();
    book.record_round(me, now, &answers);
    let live = live_from(
        book.answering(&router.members(), now),
        &draining(&router.ctx().replica),
    );
    let current = read_live_set(&router.ctx().replica);
    if current.as_ref().map(|c| &c.live) != Some(&live) {
        let ctx = router.ctx();
        match record_live(ctx.store.as_ref(), &ctx.replica, live).await {
            Ok(Some(set)) => {
                tracing::info!(epoch = set.epoch, live = ?set.live, "live members changed")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot record the live members: {e}"),
        }
    }
}
