//! `galilean cluster status`: what each node says about itself on its raft port (with the
//! cluster secret), gathered and printed as a table.

use std::collections::BTreeMap;

use galilean_actors::placement;
use galilean_actors::remote::LiveSet;
use galilean_storage::raft::net::HttpNetwork;
use galilean_storage::raft::tls::{NodeTls, TlsInput};
use galilean_storage::raft::RaftStore;
use galilean_storage::Store;
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
    let tls = load_tls(cluster)?;
    let net = HttpNetwork::new(cluster.secret.expose(), tls.as_ref());
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
