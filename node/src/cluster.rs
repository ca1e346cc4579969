//! `galilean cluster status`: what each node says about itself on its cluster port (with
//! the cluster secret), gathered and printed as a table.

use std::collections::BTreeMap;

use galilean_actors::membership::read_live_set;
use galilean_actors::policy::placement;
use galilean_proto::node::NodeId;
use galilean_storage::raft::net::HttpNetwork;
use galilean_storage::raft::tls::{NodeTls, TlsInput};
use galilean_storage::raft::RaftStore;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::config::{ClusterConfig, Config};

/// A `[cluster.tls]` file that cannot be used, with its key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsConfigError {
    pub key: &'static str,
    pub message: String,
}

/// `galilean cluster certs`: a new CA and a certificate per `ID=host[,host...]` in `out`.
/// Refuses to overwrite. Private keys are written readable by their owner only.
pub fn write_certs(
    out: &std::path::Path,
    nodes: &[String],
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut plan: Vec<(String, String)> = Vec::new();
    let ca = galilean_storage::raft::tls::Authority::new("Galilean cluster CA")
        .map_err(|e| anyhow::anyhow!("cannot create the CA: {e}"))?;
    plan.push(("ca.pem".into(), ca.cert_pem()));
    plan.push(("ca-key.pem".into(), ca.key_pem()));
    for spec in nodes {
        let (id, hosts) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--node {spec}: expected ID=HOST[,HOST...]"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| anyhow::anyhow!("--node {spec}: {id} is not a node id"))?;
        let hosts: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if hosts.is_empty() {
            anyhow::bail!("--node {spec}: no host");
        }
        let issued = ca
            .issue(&format!("galilean node {id}"), &hosts)
            .map_err(|e| anyhow::anyhow!("--node {spec}: {e}"))?;
        plan.push((format!("node{id}.pem"), issued.cert_pem));
        plan.push((format!("node{id}-key.pem"), issued.key_pem));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, _) in &plan {
        let path = out.join(name);
        if path.exists() {
            anyhow::bail!("{} exists; not overwriting certificates", path.display());
        }
    }
    let mut written = Vec::new();
    for (name, pem) in plan {
        let path = out.join(&name);
        let mode = if name.ends_with("-key.pem") {
            0o600
        } else {
            0o644
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(pem.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads `[cluster.tls]`'s files; `None` without TLS.
pub fn load_tls(cluster: &ClusterConfig) -> Result<Option<NodeTls>, TlsConfigError> {
    let Some(t) = &cluster.tls else {
        return Ok(None);
    };
    NodeTls::load(&t.cert, &t.key, &t.ca)
        .map(Some)
        .map_err(|e| TlsConfigError {
            key: match e.input {
                TlsInput::Cert => "cluster.tls.cert",
                TlsInput::Key => "cluster.tls.key",
                TlsInput::Ca => "cluster.tls.ca",
            },
            message: e.message,
        })
}

/// This node's status document (served on `/raft/status`), on the raft store.
pub fn status_json(app: &AppState, raft: &RaftStore) -> String {
    // a copy: a borrow held while reading the replica would hold up raft's metrics
    // writer, and a second borrow (raft.members()) behind a waiting writer deadlocks
    let m = raft.raft().metrics().borrow().clone();
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let mut doc = hub_status(app);
    doc.extend([
        ("node_id".into(), json!(m.id)),
        ("state".into(), json!(format!("{:?}", m.state))),
        ("leader".into(), json!(m.current_leader)),
        ("term".into(), json!(m.current_term)),
        ("voters".into(), json!(voters)),
        (
            "last_applied".into(),
            json!(m.last_applied.map(|id| id.index)),
        ),
        ("members".into(), json!(raft.members())),
    ]);
    Value::Object(doc).to_string()
}

/// This node's status document on a store the nodes share (FoundationDB): the leader
/// is the holder of the lease, the members are the configured peers.
pub fn shared_status_json(app: &AppState, lease: &galilean_storage::lease::StoreLease) -> String {
    let me = app.router.node_id();
    let peers = app
        .config
        .cluster
        .as_ref()
        .map(|c| c.peers.clone())
        .unwrap_or_default();
    let holder = lease.holder();
    let state = match (holder, lease.leadership()) {
        (_, Some(_)) => "Leader",
        (Some(h), None) if me == h => "Lapsed",
        _ => "Follower",
    };
    let mut doc = hub_status(app);
    doc.extend([
        ("node_id".into(), json!(me)),
        ("state".into(), json!(state)),
        ("leader".into(), json!(holder)),
        ("term".into(), json!(lease.term())),
        (
            "voters".into(),
            json!(peers.iter().map(|p| p.id).collect::<Vec<_>>()),
        ),
        ("last_applied".into(), json!(app.replica.version())),
        (
            "members".into(),
            json!(peers
                .iter()
                .map(|p| (p.id.to_string(), p.addr.clone()))
                .collect::<BTreeMap<_, _>>()),
        ),
        ("store".into(), json!(app.store.backend_name())),
    ]);
    Value::Object(doc).to_string()
}

/// This node's own replica (served on `/raft/state`): the version applied, a digest of
/// everything, and each user's token ids and servers' phases. Read locally, never
/// through an owner, so that the chaos harness can compare the nodes' replicas.
pub fn state_json(app: &AppState) -> String {
    app.replica.read(|s| {
        let mut tokens: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for rec in s.tokens.values() {
            if let galilean_proto::records::Owner::User(name) = &rec.owner {
                tokens
                    .entry(name.as_str())
                    .or_default()
                    .push(format!("a{}", rec.id));
            }
        }
        let users: BTreeMap<&str, Value> = s
            .users
            .keys()
            .map(|name| {
                let mut ids = tokens.remove(name.as_str()).unwrap_or_default();
                ids.sort_unstable();
                let servers: BTreeMap<&str, String> = s
                    .servers_of(name)
                    .map(|r| (r.name.as_str(), format!("{:?}", r.phase).to_lowercase()))
                    .collect();
                (name.as_str(), json!({"tokens": ids, "servers": servers}))
            })
            .collect();
        json!({
            "node_id": app.router.node_id(),
            "version": s.version,
            "digest": s.digest(),
            "users": users,
        })
        .to_string()
    })
}

/// What every node reports whatever its store: the live set, drains, its serving lease,
/// and who owns how many users and actors.
fn hub_status(app: &AppState) -> serde_json::Map<String, Value> {
    let live = read_live_set(&app.replica);
    let live_ids = app.router.live_members();
    // who owns how many users, by the live set this node has applied
    let owned: BTreeMap<NodeId, usize> = app.replica.read(|s| {
        let mut owned = BTreeMap::new();
        for name in s.users.keys() {
            if let Some(owner) = placement::owner(name.as_bytes(), &live_ids) {
                *owned.entry(owner).or_insert(0) += 1;
            }
        }
        owned
    });
    let (user_actors, server_actors) = app.router.actor_counts();
    serde_json::Map::from_iter([
        (
            "live".into(),
            json!(live.map(|l| json!({"epoch": l.epoch, "members": l.live}))),
        ),
        (
            "draining".into(),
            json!(galilean_actors::membership::draining(&app.replica)),
        ),
        ("serving".into(), json!(app.router.lease_valid())),
        ("owned_users".into(), json!(owned)),
        (
            "actors".into(),
            json!({"users": user_actors, "servers": server_actors}),
        ),
    ])
}

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
