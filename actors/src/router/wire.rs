//! The message a node router actor takes over ractor_cluster, and where to find each
//! node's router actor. The call inside is bytes (a `galilean_proto::wire::Routed`), so
//! a bad payload is an error value, never a panic in the transport.

use ractor::RpcReplyPort;

/// The node router actor's message: a `Routed` call in, an `Answer` out, both as
/// rmp-serde bytes.
#[derive(ractor_cluster::RactorClusterMessage)]
pub enum RouterMsg {
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// The process group of node `id`'s router actor.
pub fn router_group(id: u64) -> String {
    format!("galilean-router-{id}")
}

/// Node `id`'s router actor, when this node has a session to it.
pub fn router_actor(id: u64) -> Option<ractor::ActorRef<RouterMsg>> {
    ractor::pg::get_members(&router_group(id))
        .into_iter()
        .next()
        .map(Into::into)
}
