//! `galilean cluster status`: what each node says about itself on its raft port (with the
//! cluster secret), gathered and printed as a table.

use std::collections::BTreeMap;

use galilean_actors::placement;
use galilean_actors::remote::LiveSet;
use galilean_storage::raft::net::HttpNetwork;
use galilean_storage::raft::RaftStore;
use galilean_storage::Store;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::config::Config;

/// This node's status document (served on `/raft/status`).
pub fn status_json(app: &AppState, raft: &RaftStore) -> String {
    let metrics = raft.raft().metrics();
    let m = metrics.borrow();
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let live = LiveSet::read(&app.replica);
    let live_ids = app.router.live_members();
    // who owns how many users, by the live set this node has applied
    let owned: BTreeMap<u64, usize> = app.replica.read(|s| {
        let mut owned = BTreeMap::new();
        for name in s.users.keys() {
            if let Some(owner) = placement::owner(name.as_bytes(), &live_ids) {
                *owned.entry(owner).or_insert(0) += 1;
            }
        }
        owned
    });
    let (user_actors, server_actors) = app.router.actor_counts();
    json!({
        "node_id": m.id,
        "state": format!("{:?}", m.state),
        "leader": m.current_leader,
        "term": m.current_term,
        "voters": voters,
        "last_applied": m.last_applied.map(|id| id.index),
        "live": live.map(|l| json!({"epoch": l.epoch, "members": l.live})),
        "serving": raft.ready() && app.router.lease_valid(),
        "owned_users": owned,
        "actors": {"users": user_actors, "servers": server_actors},
    })
    .to_string()
}

/// Asks every peer of `config` for its status and prints a table; returns whether a
/// majority answered.
pub async fn print_status(config: &Config) -> anyhow::Result<bool> {
    let Some(cluster) = &config.cluster else {
        anyhow::bail!("{}: there is no [cluster] section", config.source.display());
    };
    let net = HttpNetwork::new(cluster.secret.expose());
    let answers =
        futures::future::join_all(cluster.peers.iter().map(|p| net.status(&p.addr))).await;
    println!(
        "{:<5} {:<22} {:<10} {:<9} {:<7} {:<8} {:<8} {:<12} {:<8}",
        "node",
        "address",
        "reachable",
        "state",
        "leader",
        "applied",
        "serving",
        "owned users",
        "actors"
    );
    let mut reachable = 0;
    let mut leaders = Vec::new();
    for (peer, answer) in cluster.peers.iter().zip(answers) {
        let doc: Option<Value> = answer.ok().and_then(|t| serde_json::from_str(&t).ok());
        let Some(doc) = doc.filter(|d| d.get("node_id").is_some()) else {
            println!("{:<5} {:<22} {:<10}", peer.id, peer.addr, "no");
            continue;
        };
        reachable += 1;
        let leader = doc["leader"].as_u64();
        if let Some(l) = leader {
            leaders.push(l);
        }
        let owned = doc["owned_users"][peer.id.to_string()]
            .as_u64()
            .unwrap_or(0);
        let actors = format!(
            "{}u/{}s",
            doc["actors"]["users"]
                .as_u64()
                .map_or("?".into(), |n| n.to_string()),
            doc["actors"]["servers"]
                .as_u64()
                .map_or("?".into(), |n| n.to_string()),
        );
        println!(
            "{:<5} {:<22} {:<10} {:<9} {:<7} {:<8} {:<8} {:<12} {:<8}",
            peer.id,
            peer.addr,
            "yes",
            doc["state"].as_str().unwrap_or("?"),
            leader.map_or("-".into(), |l| l.to_string()),
            doc["last_applied"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string()),
            if doc["serving"] == true { "yes" } else { "no" },
            owned,
            actors,
        );
    }
    leaders.sort_unstable();
    leaders.dedup();
    let majority = cluster.peers.len() / 2 + 1;
    println!(
        "members: {}, reachable: {reachable}, leader: {}",
        cluster.peers.len(),
        match leaders.as_slice() {
            [one] => one.to_string(),
            [] => "none".into(),
            many => format!("disputed {many:?}"),
        }
    );
    Ok(reachable >= majority)
}
