//! Asking the other members: the leader's pings (which grant leases), and the wait
//! after a write until every live member has applied it (or has surely stopped serving).

use std::time::Duration;

use galilean_proto::node::NodeId;
use galilean_proto::wire::{Answer, Call, Routed};
use tokio::time::Instant;

use crate::membership::timing::{unix_ms, PING_EVERY, PING_TIMEOUT, SERVE_LEASE};
use crate::router::{router_actor, Router, RouterMsg};

/// Sends a node-level call (ping, wait-applied) to member `id`; whether it answered
/// within `limit`, and whether the answer was a success.
async fn ask_member(id: NodeId, call: &Call, limit: Duration) -> Option<bool> {
    let actor = router_actor(id.get())?;
    let bytes = Routed::encode(call, 0).ok()?;
    match actor
        .call(|port| RouterMsg::Call(bytes, port), Some(limit))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(b)) => Some(matches!(
            galilean_proto::codec::decode::<Answer>(&b),
            Ok((Ok(_), _))
        )),
        _ => None,
    }
}

/// Pings member `id`, granting it a lease or not: whether it answered (caught up or
/// not), and, for a grant, a moment no earlier than the send time the member counts its
/// lease from (the lease ends [`SERVE_LEASE`] after it at the latest). `version` is the
/// leader's replica version, `proof_at` its last proof of leading.
pub async fn ping(
    id: NodeId,
    version: u64,
    proof_at: Instant,
    grant: bool,
) -> (bool, Option<Instant>) {
    // the send time first, then the grant's moment and the proof's age: a pause in
    // between only moves the moment later or ages the proof, so the lease the member
    // counts from `sent - age` never starts late, nor after the moment recorded
    let sent_unix_ms = unix_ms();
    let granted_at = grant.then(Instant::now);
    let proof_age_ms = proof_at.elapsed().as_micros().div_ceil(1000) as u64;
    let answered = ask_member(
        id,
        &Call::Ping {
            version,
            sent_unix_ms,
            proof_age_ms,
            grant,
        },
        PING_TIMEOUT,
    )
    .await
    .is_some();
    (answered, granted_at)
}

/// After a write this node has applied (a revocation, or any write an answer reports):
/// waits until every other live member has applied it too, or, for one that does not
/// confirm, until its serving lease has surely run out. Then no node accepts what was
/// revoked, and every serving node shows what was written.
pub async fn await_everywhere(router: &Router) {
    if !router.lease().is_clustered() {
        return;
    }
    let version = router.ctx().replica.version();
    let me = router.node_id();
    let others: Vec<NodeId> = router
        .live_members()
        .into_iter()
        .filter(|id| *id != me)
        .collect();
    let limit = SERVE_LEASE + PING_EVERY;
    let until = Instant::now() + limit;
    let waits = others.iter().map(|id| async move {
        if !confirm_applied(*id, version, limit).await {
            tracing::warn!(
                node = %id,
                version,
                "a node did not confirm a write; waiting out its lease"
            );
            // or until it leaves the live set: a member is declared not live only once
            // its lease has run out (LIVE_DEADLINE > SERVE_LEASE)
            while Instant::now() < until && router.live_members().contains(id) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    futures::future::join_all(waits).await;
}

/// Whether member `id` confirms within `limit` that it applied `version`.
async fn confirm_applied(id: NodeId, version: u64, limit: Duration) -> bool {
    ask_member(id, &Call::WaitApplied { version }, limit)
        .await
        .unwrap_or(false)
}
