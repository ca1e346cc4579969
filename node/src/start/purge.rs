//! The purge of what has expired, JupyterHub's `purge_expired_tokens`: token records
//! past their `expires_at`, and OAuth codes never redeemed, deleted from the store in
//! short batches every `hub.purge_expired_interval`, so that what the store and every
//! replica hold is bounded by the tokens that still count. An expired token is refused
//! from the moment it expires (`auth::tokens`); the purge only frees what it held.
//!
//! # Who purges what
//!
//! Every node runs the same loop, and the work is split by placement, the rule the
//! router places users by (`policy::placement`), over the replica's live set:
//!
//! * a token is purged by the node that owns its owner's name: a user's tokens by the
//!   node that runs that user's actors, a service's by the node its name is placed on.
//!   Each node finds its expired tokens in its replica's expiry index, reading nothing
//!   from the store to find them.
//! * OAuth codes are not in the replica, so finding them means walking their key range
//!   in the store; one node does, the one [`CODES_KEY`] is placed on.
//!
//! Placement rather than the cluster's leader: every node knows placement from its
//! replica (leadership is known to the liveness loop alone, by raft or by the shared
//! store's lease), and token deletions spread over the nodes. While the live set changes
//! two nodes may both take the same share for a round: each deletion reads the record
//! again in its transaction, so nothing is deleted twice, and nothing that has not
//! expired is deleted at all. A node that may not serve (its lease ran out) purges
//! nothing.

use std::sync::Arc;

use galilean_actors::policy::placement::owner;
use galilean_actors::store::{oauth, tokens};
use galilean_actors::OpError;
use galilean_proto::records::Owner;
use galilean_proto::time::now_micros;
use tokio::sync::watch;

use crate::app::AppState;

/// The most tokens one transaction deletes, and the most codes it reads.
pub const PURGE_BATCH: usize = 256;

/// The placement key of the node that walks the OAuth codes (a key like a user's name,
/// placed by the same rule).
pub const CODES_KEY: &[u8] = b"purge: oauth codes";

/// What one round of the purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub tokens: usize,
    pub codes: usize,
}

/// Purges every `hub.purge_expired_interval`, the first time at once, until the node
/// stops.
pub(crate) async fn purge_expired_forever(app: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.hub.purge_expired_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if !app.router.lease_valid() {
            continue;
        }
        let round = tokio::select! {
            round = purge_expired(&app) => round,
            _ = shutdown.changed() => return,
        };
        match round {
            Ok(p) if p != Purged::default() => {
                tracing::info!(
                    tokens = p.tokens,
                    codes = p.codes,
                    "purged expired tokens and oauth codes"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge of expired tokens failed"),
        }
    }
}

/// One round: this node's share of the expired tokens, and the unredeemed expired OAuth
/// codes when they are its share, each in batches of [`PURGE_BATCH`].
pub async fn purge_expired(app: &AppState) -> Result<Purged, OpError> {
    let now = now_micros();
    let me = app.router.node_id();
    let live = app.router.live_members();
    let mine = |key: &[u8]| owner(key, &live) == Some(me);
    // copied out under the replica's lock, placed after it
    let expired: Vec<(String, Owner)> = app.replica.read(|s| {
        s.expired_tokens(now)
            .map(|(h, t)| (h.clone(), t.owner.clone()))
            .collect()
    });
    let doomed: Vec<String> = expired
        .into_iter()
        .filter(|(_, o)| match o {
            Owner::User(name) | Owner::Service(name) => mine(name.as_bytes()),
        })
        .map(|(h, _)| h)
        .collect();
    let store = app.store.as_ref();
    let mut purged = Purged::default();
    for batch in doomed.chunks(PURGE_BATCH) {
        let (deleted, _) = tokens::purge_expired_tokens(store, batch, now).await?;
        purged.tokens += deleted;
    }
    if mine(CODES_KEY) {
        let (mut from, mut unreadable) = (None, 0);
        loop {
            let batch =
                oauth::purge_expired_codes(store, from.as_deref(), PURGE_BATCH, now).await?;
            purged.codes += batch.deleted;
            unreadable += batch.unreadable;
            match batch.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "oauth codes that do not decode were left in the store"
            );
        }
    }
    Ok(purged)
}
