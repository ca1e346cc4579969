//! The clock of membership: how often the leader pings, how long a ping may take, how
//! long a serving lease lasts, and how long a member may go unheard before it is not
//! live. The leases' safety rests on the order of these numbers (see each).

use std::time::Duration;

/// How often the leader pings the members.
pub const PING_EVERY: Duration = Duration::from_millis(400);
/// How long a node answers after it last proved it was caught up with the leader. A
/// revocation is acknowledged once every live node applied it, or after this (plus a
/// ping) for a node that did not: by then that node has stopped answering.
/// It outlasts a raft election (an election timeout of at most 0.8 s, a vote, and the
/// new leader's first ping, which it sends at once), so that replacing a leader stops
/// no node from serving; and it is short, because a dead owner's users move only after
/// [`LIVE_DEADLINE`], which must be longer.
pub const SERVE_LEASE: Duration = Duration::from_millis(2000);
/// How long one ping may take; a ping older than this proves nothing.
pub const PING_TIMEOUT: Duration = Duration::from_millis(800);
/// Longer than a serving lease: a member is declared not live only once the lease its
/// last answered ping gave it has surely run out, so a revocation need not wait for it.
pub const LIVE_DEADLINE: Duration = Duration::from_millis(2500);
/// How much of the handover (raft's vote lease) a new leader does not count on (clock
/// and scheduling slack).
pub const VOTE_LEASE_MARGIN: Duration = Duration::from_millis(300);
/// How often a node that does not lead checks whether it has become the leader, so
/// that a new leader renews the members' leases at once.
pub const LEADERSHIP_CHECK: Duration = Duration::from_millis(50);

/// Milliseconds since the Unix epoch (pings carry their send time; members' clocks are
/// assumed to agree within a fraction of [`PING_TIMEOUT`], as NTP keeps them).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
