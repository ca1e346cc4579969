//! The node router actor: the only remotable actor, one per node (in the process group
//! `galilean-router-<id>`). It runs calls from other nodes on this node's actors, each
//! in its own task, after refusing a call this node does not own the user of, or that
//! was routed by a live set after which the user may have had another owner.

use std::sync::Weak;

use galilean_proto::wire::{Answer, Routed, WireError};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::router::registry::Router;
use crate::router::wire::RouterMsg;

/// Runs calls from other nodes on this node's actors.
pub struct NodeRouterActor;

impl Actor for NodeRouterActor {
    type Msg = RouterMsg;
    type State = Weak<Router>;
    type Arguments = Weak<Router>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        router: Weak<Router>,
    ) -> Result<Weak<Router>, ActorProcessingErr> {
        Ok(router)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        router: &mut Weak<Router>,
    ) -> Result<(), ActorProcessingErr> {
        let RouterMsg::Call(bytes, port) = msg;
        let router = router.clone();
        // every call runs in its own task: a slow start never holds up the others
        tokio::spawn(async move {
            let answer = answer(&router, &bytes).await;
            match galilean_proto::codec::encode(&answer) {
                Ok(b) => {
                    let _ = port.send(b);
                }
                Err(e) => tracing::error!("cannot encode a reply: {e}"),
            }
        });
        Ok(())
    }
}

/// The answer to the routed call in `bytes`, with the replica's version after it (for
/// the caller's read-your-writes).
async fn answer(router: &Weak<Router>, bytes: &[u8]) -> Answer {
    let version = router.upgrade().map_or(0, |r| r.ctx().replica.version());
    let reply = match (
        router.upgrade(),
        galilean_proto::codec::decode::<Routed>(bytes),
    ) {
        (None, _) => Err(WireError::Unavailable("this node is shutting down".into())),
        (_, Err(e)) => Err(WireError::BadRequest(format!("undecodable call: {e}"))),
        (Some(router), Ok(Routed { call, epoch })) => {
            // only the owner runs a user's call: a stale view of the membership is
            // refused
            let owner = call.user().map(|u| (u.to_owned(), router.owner_of(u)));
            match owner {
                Some((user, Ok(owner))) if owner != router.node_id() => {
                    Err(WireError::Moved(format!("{user} is owned by node {owner}")))
                }
                Some((_, Err(e))) => Err(e.into()),
                // a call that arrives late (held up in a partition, or by a hung node)
                // may have been sent again, to the owner of the time, and done there:
                // not done again once the user may have had another owner since the
                // caller routed it
                Some((user, Ok(_))) if router.lapsed_since(epoch) => {
                    Err(WireError::Moved(format!(
                        "{user} may have had another owner since the call was routed (live \
                         set epoch {epoch})"
                    )))
                }
                _ => router.call_local(call).await.map_err(WireError::from),
            }
        }
    };
    let version = router
        .upgrade()
        .map_or(version, |r| r.ctx().replica.version());
    (reply, version)
}
