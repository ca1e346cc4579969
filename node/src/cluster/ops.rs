//! The `galilean cluster` operations: each node's status gathered and printed as a
//! table, membership changes through the leader, and drains.

use std::collections::BTreeMap;

use galilean_storage::raft::net::HttpNetwork;
use serde_json::Value;

use crate::cluster::tls::load_tls;
use crate::config::{ClusterConfig, Config};

/// Asks every peer of `config` for its status and prints a table; returns whether a
/// majority answered.
pub async fn print_status(config: &Config) -> anyhow::Result<bool> {
    let (cluster, net) = cluster_network(config)?;
    let (addrs, docs) = statuses(&net, cluster).await;
    // the voters by the leader's word, else by any member's, else by the config
    let leader_doc = docs
        .values()
        .find(|(_, d)| d["leader"].is_u64() && d["leader"] == d["node_id"]);
    let voters: Vec<u64> = leader_doc
        .into_iter()
        .chain(docs.values())
        .find_map(|(_, d)| d["voters"].as_array().filter(|v| !v.is_empty()).cloned())
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_else(|| cluster.peers.iter().map(|p| p.id).collect());
    let mut reachable = 0;
    let mut leaders = Vec::new();
    for (id, addr) in &addrs {
        let Some((_, doc)) = docs.get(id) else {
            println!("{id:<5} {addr:<22} {:<10}", "no");
            continue;
        };
        if voters.contains(id) {
            reachable += 1;
        }
        let leader = doc["leader"].as_u64();
        if let Some(l) = leader {
            leaders.push(l);
        }
        let owned = doc["owned_users"][id.to_string()].as_u64().unwrap_or(0);
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
            id,
            addr,
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
    let majority = voters.len() / 2 + 1;
    println!(
        "members: {}, reachable: {reachable}, leader: {}",
        voters.len(),
        match leaders.as_slice() {
            [one] => one.to_string(),
            [] => "none".into(),
            many => format!("disputed {many:?}"),
        }
    );
    Ok(reachable >= majority)
}

/// Every node the config or a member names (id → raft address), and the status
/// document of each that answers.
pub(crate) type Statuses = (BTreeMap<u64, String>, BTreeMap<u64, (String, Value)>);

pub(crate) async fn statuses(net: &HttpNetwork, cluster: &ClusterConfig) -> Statuses {
    let mut addrs: BTreeMap<u64, String> = cluster
        .peers
        .iter()
        .map(|p| (p.id, p.addr.clone()))
        .collect();
    let mut docs = BTreeMap::new();
    // two rounds: the second reaches members added since the config was written
    for _ in 0..2 {
        let asks = addrs
            .iter()
            .filter(|(id, _)| !docs.contains_key(*id))
            .map(|(id, addr)| async move { (*id, addr.clone(), net.status(addr).await) });
        for (id, addr, answer) in futures::future::join_all(asks).await {
            let doc: Option<Value> = answer.ok().and_then(|t| serde_json::from_str(&t).ok());
            if let Some(doc) = doc.filter(|d| d.get("node_id").is_some()) {
                docs.insert(id, (addr, doc));
            }
        }
        for (_, doc) in docs.values() {
            if let Some(members) = doc["members"].as_object() {
                for (id, addr) in members {
                    if let (Ok(id), Some(addr)) = (id.parse::<u64>(), addr.as_str()) {
                        addrs.entry(id).or_insert_with(|| addr.to_owned());
                    }
                }
            }
        }
    }
    (addrs, docs)
}

/// The leader's id and raft address, as the reachable members report it; waits up to
/// 10 s through an election.
async fn find_leader(net: &HttpNetwork, cluster: &ClusterConfig) -> anyhow::Result<(u64, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, docs) = statuses(net, cluster).await;
        let found = docs.values().find_map(|(_, d)| {
            let leader = d["leader"].as_u64()?;
            let addr = docs
                .values()
                .find_map(|(_, d)| d["members"][leader.to_string()].as_str())?;
            Some((leader, addr.to_owned()))
        });
        match found {
            Some(found) => return Ok(found),
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            None => anyhow::bail!("no reachable member knows the leader and its address"),
        }
    }
}

/// The `[cluster]` of a CLI command's config, and a client for its members' raft ports
/// (with its TLS files).
fn cluster_network(config: &Config) -> anyhow::Result<(&ClusterConfig, HttpNetwork)> {
    let cluster = config.cluster.as_ref().ok_or_else(|| {
        anyhow::anyhow!("{}: there is no [cluster] section", config.source.display())
    })?;
    let tls = load_tls(cluster)?;
    Ok((
        cluster,
        HttpNetwork::new(cluster.secret.expose(), tls.as_ref()),
    ))
}

/// `galilean cluster add|remove`: asks the leader for `change`; prints the new members.
pub async fn change_members(
    config: &Config,
    change: galilean_storage::raft::membership::MembershipChange,
) -> anyhow::Result<()> {
    use galilean_storage::raft::membership::MembershipError;
    let (cluster, net) = cluster_network(config)?;
    let mut attempts = 0;
    let members = loop {
        let (_, addr) = find_leader(&net, cluster).await?;
        match net.change_members(&addr, &change).await {
            Ok(members) => break members,
            // the leader changed meanwhile
            Err(MembershipError::NotLeader(_)) if attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("{e}"),
        }
    };
    println!("members:");
    for (id, addr) in members {
        println!("  {id}@{addr}");
    }
    Ok(())
}

/// `galilean cluster drain`: marks node `id` as draining and waits until it owns no
/// users and runs no actors. (Raft leadership is not handed over: openraft 0.9 has no
/// leadership transfer, and forcing an election while the leader is healthy is refused
/// by the followers' leader lease and only lengthens the gap. A stopped leader is
/// replaced within an election timeout; writes wait for the new one.)
/// With `cancel`, clears the mark instead.
pub async fn drain(config: &Config, id: u64, cancel: bool) -> anyhow::Result<()> {
    use galilean_storage::raft::Command;
    use galilean_storage::Mutation;
    let (cluster, net) = cluster_network(config)?;
    let (_, docs) = statuses(&net, cluster).await;
    let known = docs
        .values()
        .any(|(_, d)| d["members"].get(id.to_string()).is_some());
    if !known {
        anyhow::bail!("node {id} is not a member of the cluster");
    }
    let key = galilean_actors::keys::meta(&galilean_actors::keys::draining_key(id));
    let mutation = if cancel {
        Mutation::Clear { key }
    } else {
        Mutation::Set {
            key,
            value: b"1".to_vec(),
        }
    };
    let command = Command::Commit(galilean_storage::raft::Commit {
        read_version: 0,
        reads: vec![],
        mutations: vec![mutation],
        request: galilean_storage::raft::new_request_id(),
    });
    let (_, leader_addr) = find_leader(&net, cluster).await?;
    net.forward_write(&leader_addr, &command)
        .await
        .map_err(|e| anyhow::anyhow!("cannot record the drain: {e}"))?;
    if cancel {
        println!("node {id} is no longer draining");
        return Ok(());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "node {id} did not drain within 60 s (does it answer on its cluster port?)"
        );
        let (_, docs) = statuses(&net, cluster).await;
        if let Some((_, doc)) = docs.get(&id) {
            let live: Vec<u64> = doc["live"]["members"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let idle = doc["actors"]["users"] == 0 && doc["actors"]["servers"] == 0;
            if !live.contains(&id) && idle {
                println!("node {id} drained: it owns no users; stop it now");
                return Ok(());
            }
        } else {
            // it may be busy: the deadline decides
            tracing::debug!(node = id, "no status from the draining node");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
