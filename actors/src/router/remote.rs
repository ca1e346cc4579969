//! A call sent to the node that owns its user, over ractor_cluster: the owner's node
//! router actor is found (waiting a moment for a peer that is reconnecting), the call
//! given up as soon as the owner is no longer the owner, and the answer awaited until
//! this node's replica has what the owner had when it answered (read-your-writes).

use std::time::Duration;

use galilean_proto::node::NodeId;
use galilean_proto::wire::{Answer, Call, Reply, Routed};

use crate::error::OpError;
use crate::router::registry::Router;
use crate::router::wire::{router_actor, RouterMsg};

/// Extra time a remote call may take beyond the wait it asks for.
const REMOTE_SLACK: Duration = Duration::from_secs(10);
/// How long a call waits for its owner's node to be connected.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

impl Router {
    /// Sends `call` to `owner`, which owns `user` by the live set of `epoch`.
    pub(crate) async fn call_remote(
        &self,
        owner: NodeId,
        epoch: u64,
        user: &str,
        call: Call,
    ) -> Result<Reply, OpError> {
        // a peer that is (re)connecting gets a moment before the call fails
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        let actor = loop {
            if let Some(actor) = router_actor(owner.get()) {
                break actor;
            }
            if self.owner_of(user).ok() != Some(owner) {
                return Err(OpError::Moved(format!(
                    "node {owner} is not connected and no longer owns {user}"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Unavailable(format!(
                    "node {owner}, which owns {user}, is not connected"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let timeout = Duration::from_millis(call.wait_ms()) + REMOTE_SLACK;
        let bytes = Routed::encode(&call, epoch).map_err(|e| OpError::Corrupt(e.to_string()))?;
        // a hung owner never answers: give up as soon as it is no longer the owner
        let moved = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.owner_of(user).ok() != Some(owner) {
                    return;
                }
            }
        };
        let answer = tokio::select! {
            a = actor.call(|port| RouterMsg::Call(bytes, port), Some(timeout)) => a,
            // the old owner refuses the call if it ever gets it (it checks ownership on
            // arrival, and its writes are fenced): safe to go to the new owner
            () = moved => {
                return Err(OpError::Moved(format!(
                    "node {owner} stopped answering and no longer owns {user}"
                )))
            }
        }
        .map_err(|e| OpError::Unavailable(format!("node {owner}: {e}")))?;
        let ractor::rpc::CallResult::Success(bytes) = answer else {
            return Err(OpError::Unavailable(format!(
                "node {owner} did not answer in time"
            )));
        };
        let (reply, version): Answer =
            galilean_proto::codec::decode(&bytes).map_err(|e| OpError::Corrupt(e.to_string()))?;
        // read-your-writes here too: wait until this node's replica has what the owner
        // had when it answered
        let caught_up =
            tokio::time::timeout(REMOTE_SLACK, self.ctx().replica.wait_for(version)).await;
        if caught_up.is_err() {
            return Err(OpError::Unavailable(format!(
                "this node's replica did not reach version {version}"
            )));
        }
        reply.map_err(OpError::from)
    }
}
