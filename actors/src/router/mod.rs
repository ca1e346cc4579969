//! Finding and reaching the actors of a user: the registry of this node's actors and
//! where users are placed, the dispatch of calls here or to their owner over
//! ractor_cluster, the node router actor that takes calls from other nodes, and the
//! sessions to the other nodes.

mod adopt;
mod ask;
mod calls;
mod dial;
mod node_actor;
mod registry;
mod remote;
mod wire;

pub use ask::ask;
pub use dial::ClusterLink;
pub use node_actor::NodeRouterActor;
pub use registry::Router;
pub use wire::{router_actor, RouterMsg};
