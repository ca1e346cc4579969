//! The other nodes for actor messages: each member's actor address (the port after its
//! `cluster.bind`), this node's link, and the router's members kept equal to raft's.

use std::sync::Arc;

use anyhow::Context;
use galilean_actors::Router;

/// `(host, port + 1)` of a `host:port`: actor messages between nodes use the port after
/// `cluster.bind`'s (raft uses that one).
fn split_actor_port(addr: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{addr} is not host:port"))?;
    let port: u16 = port.parse()?;
    let next = port
        .checked_add(1)
        .ok_or_else(|| anyhow::anyhow!("{addr}: the actor port would be past 65535"))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), next))
}

/// The actor address of the member whose `cluster.bind` is `addr`.
pub(crate) fn actor_addr(addr: &str) -> anyhow::Result<String> {
    let (h, port) = split_actor_port(addr)?;
    Ok(format!("{h}:{port}"))
}

pub(crate) fn actor_link(
    c: &crate::config::ClusterConfig,
    tls: Option<galilean_storage::raft::tls::NodeTls>,
) -> anyhow::Result<galilean_actors::router::ClusterLink> {
    let (host, port) = split_actor_port(&c.bind)?;
    let listen: std::net::IpAddr = host.parse().with_context(|| {
        format!(
            "cluster.bind must be an IP address and port, not {}",
            c.bind
        )
    })?;
    Ok(galilean_actors::router::ClusterLink {
        node_id: c.node_id,
        listen,
        port,
        cookie: c.secret.expose().to_owned(),
        tls,
    })
}

/// Keeps the router's members equal to raft's membership (which `galilean cluster
/// add|remove` changes at runtime).
pub(crate) async fn follow_membership(
    raft: Arc<galilean_storage::raft::RaftStore>,
    router: Arc<Router>,
) {
    let mut metrics = raft.raft().metrics();
    loop {
        let members: Vec<(u64, String)> = raft
            .members()
            .into_iter()
            .filter_map(|(id, addr)| match actor_addr(&addr) {
                Ok(a) => Some((id, a)),
                Err(e) => {
                    tracing::warn!(node = id, %addr, "a member with a bad address: {e}");
                    None
                }
            })
            .collect();
        if !members.is_empty() && router.set_members(members.clone()) {
            tracing::info!(members = ?members.iter().map(|m| m.0).collect::<Vec<_>>(), "members changed");
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
