//! `[cluster]`: [`ClusterConfig`], [`ClusterTls`] and [`Peer`], and reading the section:
//! the peer entries and their overlap check, the loopback-or-TLS rule, the shared secret.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use toml::Value;

use super::errors::ConfigError;
use super::reader::Reader;
use super::values::Secret;

/// Replaces `cluster.secret`.
pub const ENV_CLUSTER_SECRET: &str = "GALILEAN_CLUSTER_SECRET";

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `cluster.node_id` (required, ≥ 1): this node's id; it must appear in `peers`.
    pub node_id: u64,
    /// `cluster.bind` (required): `host:port` for node-to-node traffic, separate from the
    /// public listener.
    pub bind: String,
    /// `cluster.peers` (required): every member, this node included, as
    /// `"<id>@<host>:<port>"`, e.g. `["1@10.0.0.1:7100", "2@10.0.0.2:7100"]`. Each node
    /// takes its port and the next one, so nodes sharing a host need ports two apart.
    /// Nodes started with the same list form the cluster by themselves.
    pub peers: Vec<Peer>,
    /// `cluster.secret` (required, at least 16 characters): shared by every member; a
    /// node with another secret is refused. A secret: prefer `GALILEAN_CLUSTER_SECRET`.
    pub secret: Secret,
    /// `cluster.insecure`: allow node-to-node traffic in clear on a `bind` that is not a
    /// loopback address, without `[cluster.tls]`. Default `false`.
    pub insecure: bool,
    /// `[cluster.tls]`: node-to-node mutual TLS. Required off loopback unless `insecure`.
    pub tls: Option<ClusterTls>,
}

/// `[cluster.tls]`: PEM files (`galilean cluster certs` writes a set). Every member's
/// certificate is signed by `ca` and names the host of its `peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// `cluster.tls.cert`: this node's certificate (chain).
    pub cert: PathBuf,
    /// `cluster.tls.key`: its private key.
    pub key: PathBuf,
    /// `cluster.tls.ca`: the certificate authority of the cluster.
    pub ca: PathBuf,
}

/// One `cluster.peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// `host:port` of its `cluster.bind`.
    pub addr: String,
}

pub(super) fn read_cluster(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> Option<ClusterConfig> {
    value?;
    let mut r = Reader::open(
        errors,
        "cluster".into(),
        value,
        &["node_id", "bind", "peers", "secret", "insecure", "tls"],
    );
    r.table?;
    let insecure = r.boolean("insecure").unwrap_or(false);
    let tls_value = r.get("tls");
    let node_id = r.integer("node_id", 1, i64::MAX).map(|n| n as u64);
    let bind = r.parsed("bind", parse_host_port);
    let peers = r.list("peers", parse_peer);
    let mut secret = r.parsed("secret", parse_cluster_secret);
    if let Some(s) = r.env_override(env, ENV_CLUSTER_SECRET, "secret", parse_cluster_secret) {
        secret = Some(s);
    }
    for key in ["node_id", "bind", "peers"] {
        if r.get(key).is_none() {
            r.error(
                key,
                "missing: every [cluster] needs node_id, bind, peers and secret",
            );
        }
    }
    if secret.is_none() && r.get("secret").is_none() {
        r.error(
            "secret",
            format!("missing: set it here or in {ENV_CLUSTER_SECRET}"),
        );
    }
    if let Some(peers) = &peers {
        let mut seen = BTreeSet::new();
        for p in peers {
            if !seen.insert(p.id) {
                r.error("peers", format!("node id {} appears twice", p.id));
            }
        }
        if let Some(id) = node_id {
            if !seen.contains(&id) {
                r.error("peers", format!("must include this node (node_id = {id})"));
            }
        }
        for message in overlapping_peers(peers) {
            r.error("peers", message);
        }
    }
    if let Some(bind) = &bind {
        let host = bind
            .rsplit_once(':')
            .map_or("", |(h, _)| h)
            .trim_matches(['[', ']']);
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !insecure && tls_value.is_none() {
            r.error(
                "bind",
                format!(
                    "{bind} is not a loopback address: configure [cluster.tls] (see `galilean \
                     cluster certs`), or set cluster.insecure = true to send node-to-node \
                     traffic in clear on a trusted network"
                ),
            );
        }
    }
    let tls = tls_value.map(|v| read_cluster_tls(r.errors, v));
    Some(ClusterConfig {
        node_id: node_id?,
        bind: bind?,
        peers: peers?,
        secret: secret?,
        insecure,
        tls: match tls {
            Some(t) => Some(t?),
            None => None,
        },
    })
}

fn read_cluster_tls(errors: &mut Vec<ConfigError>, value: &Value) -> Option<ClusterTls> {
    let mut r = Reader::open(
        errors,
        "cluster.tls".into(),
        Some(value),
        &["cert", "key", "ca"],
    );
    r.table?;
    let path = |r: &mut Reader, key: &str| {
        let p = r.parsed(key, |s| {
            if s.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(PathBuf::from(s))
            }
        });
        if r.get(key).is_none() {
            r.error(
                key,
                "missing: [cluster.tls] needs cert, key and ca (PEM files)",
            );
        }
        p
    };
    let cert = path(&mut r, "cert");
    let key = path(&mut r, "key");
    let ca = path(&mut r, "ca");
    Some(ClusterTls {
        cert: cert?,
        key: key?,
        ca: ca?,
    })
}

fn parse_host_port(text: &str) -> Result<String, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "must be host:port, e.g. \"127.0.0.1:7101\"; found {text:?}"
        ));
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(format!("must be host:port with a host; found {text:?}"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("the port must be a number up to 65535; found {text:?}"))?;
    Ok(text.to_owned())
}

fn parse_peer(text: &str) -> Result<Peer, String> {
    let Some((id, addr)) = text.split_once('@') else {
        return Err(format!("must be \"<id>@<host>:<port>\"; found {text:?}"));
    };
    let id: u64 = id
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("the node id must be a number ≥ 1; found {text:?}"))?;
    Ok(Peer {
        id,
        addr: parse_host_port(addr)?,
    })
}

/// The `cluster.peers` entries whose ports collide: each node takes its port (raft) and
/// the next one (actor messages), so two entries on one host must be two ports apart.
/// Hosts are compared as written; names that resolve alike are caught when a node
/// answers raft requests meant for another.
fn overlapping_peers(peers: &[Peer]) -> Vec<String> {
    let split = |p: &Peer| -> Option<(String, u16)> {
        let (host, port) = p.addr.rsplit_once(':')?;
        Some((
            host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port.parse().ok()?,
        ))
    };
    let mut messages = Vec::new();
    for (i, a) in peers.iter().enumerate() {
        let Some((host_a, port_a)) = split(a) else {
            continue;
        };
        if port_a == u16::MAX {
            messages.push(format!(
                "node {} uses port {port_a}: the next port carries actor messages, so the \
                 highest is 65534",
                a.id
            ));
        }
        for b in &peers[i + 1..] {
            let Some((host_b, port_b)) = split(b) else {
                continue;
            };
            if host_a == host_b && port_a.abs_diff(port_b) <= 1 {
                messages.push(format!(
                    "nodes {} ({}) and {} ({}) overlap: each node uses its port and the next \
                     one, so nodes on one host need ports at least two apart",
                    a.id, a.addr, b.id, b.addr
                ));
            }
        }
    }
    messages
}

fn parse_cluster_secret(text: &str) -> Result<Secret, String> {
    if text.chars().count() < 16 {
        return Err("must be at least 16 characters".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".into());
    }
    Ok(Secret::new(text))
}
