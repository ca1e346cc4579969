//! Who is live and who may serve: the leader's liveness loop, the book it keeps of its
//! members' answers and leases, each node's serving lease, the live set as the replica
//! shows it, and the wait until every live member has applied a write. Decisions are
//! made by pure code (`book`, and the live-set rules in `policy::placement`); the loop
//! is a thin shell around them.

pub mod book;
pub mod lease;
pub mod live_set;
pub mod liveness;
pub mod members;
pub mod timing;

pub use live_set::{draining, read_live_set};
pub use liveness::run_liveness;
pub use members::await_everywhere;
