//! The serving lease: a node in a cluster answers from its replica only while its last
//! proof of being caught up with the leader is younger than [`SERVE_LEASE`]. A node cut
//! off or behind stops answering, so it never accepts a token whose revocation was
//! acknowledged elsewhere. Every request reads it: one atomic, no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::membership::timing::SERVE_LEASE;

/// A node's serving lease.
#[derive(Debug)]
pub struct ServeLease {
    /// In a cluster: when this node last proved it had applied everything the leader
    /// had, as microseconds since `started` plus one (0: never). `None` on a single
    /// node, which needs no lease.
    caught_up: Option<AtomicU64>,
    started: Instant,
}

impl ServeLease {
    /// The lease of a single node: always valid.
    pub fn single() -> ServeLease {
        ServeLease {
            caught_up: None,
            started: Instant::now(),
        }
    }

    /// The lease of a cluster's member: not valid until first renewed.
    pub fn clustered() -> ServeLease {
        ServeLease {
            caught_up: Some(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Whether this node is a cluster's member (and needs renewing).
    pub fn is_clustered(&self) -> bool {
        self.caught_up.is_some()
    }

    /// Renews the lease from a leader's proof of leading that is `age` old.
    pub fn renew_since(&self, age: Duration) {
        let now = Instant::now();
        self.renew_at(now.checked_sub(age).unwrap_or(self.started));
    }

    /// Renews the lease from a proof of leading made at `proof`.
    pub fn renew_at(&self, proof: Instant) {
        if let Some(at) = &self.caught_up {
            let proof = proof.saturating_duration_since(self.started).as_micros() as u64 + 1;
            // a proof that arrives late never moves the lease back
            at.fetch_max(proof, Ordering::Relaxed);
        }
    }

    /// Whether the node may answer from its replica now.
    pub fn valid(&self) -> bool {
        match &self.caught_up {
            None => true,
            Some(at) => match at.load(Ordering::Relaxed) {
                0 => false,
                proof => self.started.elapsed() < Duration::from_micros(proof - 1) + SERVE_LEASE,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_runs_from_the_proof_and_a_late_proof_never_moves_it_back() {
        let lease = ServeLease::clustered();
        assert!(!lease.valid(), "valid before any proof");
        tokio::time::advance(Duration::from_secs(1)).await;
        // a proof 300 ms old: the lease ends 1.7 s from now
        lease.renew_since(Duration::from_millis(300));
        assert!(lease.valid());
        tokio::time::advance(Duration::from_millis(1_650)).await;
        assert!(lease.valid());
        // an older proof arriving now changes nothing
        lease.renew_since(Duration::from_millis(1_900));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(!lease.valid(), "the lease outlived its proof");
        // a fresh proof renews it
        lease.renew_at(Instant::now());
        assert!(lease.valid());
        tokio::time::advance(SERVE_LEASE).await;
        assert!(!lease.valid());
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_node_always_serves() {
        let lease = ServeLease::single();
        assert!(lease.valid() && !lease.is_clustered());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(lease.valid());
    }
}
