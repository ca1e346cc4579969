//! Joining the cluster for actor messages: this node's ractor_cluster server and router
//! actor, and a session kept to every peer with a lower id (peers with higher ids dial
//! this node), redialed when lost.

use std::sync::Arc;
use std::time::Duration;

use galilean_proto::node::NodeId;
use ractor::Actor;

use crate::error::OpError;
use crate::router::node_actor::NodeRouterActor;
use crate::router::registry::Router;
use crate::router::wire::{router_actor, router_group};

/// Where this node meets the others for actor messages.
#[derive(Debug, Clone)]
pub struct ClusterLink {
    pub node_id: u64,
    /// The address and port this node's ractor_cluster server listens on.
    pub listen: std::net::IpAddr,
    pub port: u16,
    /// The shared cookie (the cluster secret).
    pub cookie: String,
    /// Mutual TLS for every session; `None` sends actor messages in clear.
    pub tls: Option<galilean_storage::raft::tls::NodeTls>,
}

/// Node names in ractor_cluster (it adds `@<hostname>`).
fn node_name(id: NodeId) -> String {
    format!("galilean-{id}")
}

/// The host part ractor_cluster puts in a node's name and connection string. Not the
/// machine's host name: ractor_cluster takes a peer whose connection string (host and
/// port) equals its own for itself and drops the session, and nodes on several machines
/// commonly share both the port and, in containers, the host name.
fn host_label(id: NodeId) -> String {
    format!("node{id}")
}

impl Router {
    /// Joins the cluster for actor messages: starts this node's ractor_cluster server and
    /// router actor, and keeps a session to every peer with a lower id, redialing lost
    /// ones. Returns the task that redials.
    pub async fn join_cluster(
        self: &Arc<Self>,
        link: ClusterLink,
    ) -> Result<tokio::task::JoinHandle<()>, OpError> {
        let me = NodeId(link.node_id);
        let server = ractor_cluster::NodeServer::new(
            link.port,
            link.cookie.clone(),
            node_name(me),
            host_label(me),
            link.tls
                .as_ref()
                .map(|t| ractor_cluster::IncomingEncryptionMode::Tls(t.acceptor())),
            None,
        )
        .with_listen_addr(link.listen);
        let (node, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| OpError::Unavailable(format!("cannot start the cluster server: {e}")))?;
        let (router_actor, _) = Actor::spawn(None, NodeRouterActor, Arc::downgrade(self))
            .await
            .map_err(|e| OpError::Unavailable(format!("cannot start the router actor: {e}")))?;
        ractor::pg::join(router_group(link.node_id), vec![router_actor.get_cell()]);
        let router = Arc::downgrade(self);
        let dial = tokio::spawn(async move {
            let _keep = router_actor;
            loop {
                // the members as they are now: membership changes at runtime
                let Some(peers) = router.upgrade().map(|r| r.member_addrs()) else {
                    return;
                };
                let sessions = match node
                    .call(
                        ractor_cluster::NodeServerMessage::GetSessions,
                        Some(Duration::from_secs(5)),
                    )
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(s)) => s,
                    _ => Default::default(),
                };
                let connected: std::collections::HashSet<String> = sessions
                    .values()
                    .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
                    .collect();
                for (id, addr) in peers.iter() {
                    let name = format!("{}@{}", node_name(*id), host_label(*id));
                    if *id >= me || connected.contains(&name) {
                        continue;
                    }
                    let dialed = match &link.tls {
                        None => ractor_cluster::client_connect(&node, addr.as_str())
                            .await
                            .map_err(|e| e.to_string()),
                        Some(tls) => match galilean_storage::raft::tls::server_name(addr) {
                            Ok(name) => ractor_cluster::client_connect_enc(
                                &node,
                                addr.as_str(),
                                tls.connector(),
                                name,
                            )
                            .await
                            .map_err(|e| e.to_string()),
                            Err(e) => Err(e),
                        },
                    };
                    if let Err(e) = dialed {
                        tracing::debug!(peer = %id, %addr, "cannot reach the peer's actor port: {e}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok(dial)
    }

    /// How many members this node can reach for actor messages, itself included.
    pub fn reachable_members(&self) -> usize {
        self.members()
            .iter()
            .filter(|id| **id == self.node_id() || router_actor(id.get()).is_some())
            .count()
    }
}
