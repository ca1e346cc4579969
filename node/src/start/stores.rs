//! The store a node runs on: the embedded redb store, the raft store replicated across
//! the peers (formed by the nodes themselves), or FoundationDB shared with a lease; and
//! how a node of a cluster learns whether it leads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use galilean_storage::{RedbStore, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;

/// The store file under `hub.data_dir`.
pub const STORE_FILE: &str = "galilean.redb";

/// The raft store file under `hub.data_dir` (a node of a cluster).
pub const RAFT_FILE: &str = "raft.redb";

/// Opens the embedded store under `data_dir` (created if missing).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create hub.data_dir {}", data_dir.display()))?;
    let path = data_dir.join(STORE_FILE);
    let store = RedbStore::open(&path)
        .with_context(|| format!("cannot open the store at {}", path.display()))?;
    Ok(Arc::new(store))
}

/// How a node of a cluster learns whether it leads, for the router's liveness loop.
pub(crate) struct Leadership {
    /// How old this node's proof of leading is, while it leads.
    pub(crate) proof: Box<dyn Fn() -> Option<Duration> + Send + Sync>,
    /// How old a predecessor's last proof is, at least, when this node starts to lead.
    pub(crate) handover: Duration,
}

/// What a node of a cluster runs besides the hub, by its store.
pub(crate) enum ClusterStore {
    Raft(Arc<galilean_storage::raft::RaftStore>),
    Shared {
        lease: galilean_storage::lease::StoreLease,
        status: galilean_storage::raft::net::StatusSource,
    },
}

impl ClusterStore {
    /// How this node learns whether it leads: raft's quorum acknowledgements, or the
    /// lease kept in the shared store.
    pub(crate) fn leadership(&self) -> Leadership {
        match self {
            ClusterStore::Raft(raft) => {
                let raft = raft.clone();
                Leadership {
                    proof: Box::new(move || raft.leadership()),
                    handover: galilean_storage::raft::VOTE_LEASE,
                }
            }
            ClusterStore::Shared { lease, .. } => {
                let held = lease.clone();
                Leadership {
                    proof: Box::new(move || held.leadership()),
                    handover: lease.handover(),
                }
            }
        }
    }
}

/// Opens the FoundationDB store that `[storage]` names.
#[cfg(feature = "fdb")]
pub(crate) async fn open_fdb(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let file = match &config.storage.fdb_cluster_file {
        None => None,
        Some(p) => Some(p.to_str().ok_or_else(|| {
            anyhow::anyhow!("storage.fdb_cluster_file {} is not UTF-8", p.display())
        })?),
    };
    let store = galilean_storage::fdb::FdbStore::open(file, config.storage.fdb_root.as_bytes())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the FoundationDB store (storage.fdb_cluster_file {}, \
                 storage.fdb_root {:?}): {e}",
                file.unwrap_or("(FoundationDB's default)"),
                config.storage.fdb_root
            )
        })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "fdb"))]
pub(crate) async fn open_fdb(_config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    // the config refuses "fdb" in such a build; this covers configs built in code
    anyhow::bail!("storage.backend = \"fdb\": this galilean was built without the fdb feature")
}

/// A peer (other than this node) that reports a raft membership, if any answers.
async fn initialized_peer(
    cluster: &crate::config::ClusterConfig,
    tls: Option<&galilean_storage::raft::tls::NodeTls>,
) -> Option<u64> {
    let net = galilean_storage::raft::net::HttpNetwork::new(cluster.secret.expose(), tls);
    let (_, docs) = crate::cluster::ops::statuses(&net, cluster).await;
    docs.into_iter()
        .find(|(id, (_, doc))| {
            *id != cluster.node_id && doc["voters"].as_array().is_some_and(|v| !v.is_empty())
        })
        .map(|(id, _)| id)
}

/// Opens the raft store, serves raft traffic on `cluster.bind`, joins the configured
/// membership, and waits until a leader is known.
pub(crate) async fn start_raft(
    config: &Config,
    cluster: &crate::config::ClusterConfig,
    tls: Option<&galilean_storage::raft::tls::NodeTls>,
) -> anyhow::Result<(Arc<galilean_storage::raft::RaftStore>, JoinHandle<()>)> {
    std::fs::create_dir_all(&config.hub.data_dir).with_context(|| {
        format!(
            "cannot create hub.data_dir {}",
            config.hub.data_dir.display()
        )
    })?;
    let raft_listener = TcpListener::bind(&cluster.bind)
        .await
        .with_context(|| format!("cannot listen on {} (cluster.bind)", cluster.bind))?;
    let path = config.hub.data_dir.join(RAFT_FILE);
    let (store, server) = galilean_storage::raft::start_node(
        cluster.node_id,
        &path,
        raft_listener,
        cluster.secret.expose(),
        tls,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the raft store at {}: {e}", path.display()))?;
    let members: std::collections::BTreeMap<u64, openraft::BasicNode> = cluster
        .peers
        .iter()
        .map(|p| {
            (
                p.id,
                openraft::BasicNode {
                    addr: p.addr.clone(),
                },
            )
        })
        .collect();
    if store.has_membership() {
        tracing::debug!("the membership is already initialized");
    } else if let Some(peer) = initialized_peer(cluster, tls).await {
        // the cluster exists: this node joins when a member adds it (`galilean cluster
        // add`), or, when the membership already names it, when the leader reaches it
        tracing::info!(
            peer,
            "the cluster exists; waiting for the leader to add this node (galilean cluster add)"
        );
    } else {
        match store.raft().initialize(members).await {
            Ok(()) => tracing::info!("initialized the cluster membership"),
            // already initialized, by an earlier run of this node
            Err(e) => tracing::debug!("membership already initialized: {e}"),
        }
    }
    let mut waited = std::time::Instant::now();
    while !store.ready() {
        if waited.elapsed() > Duration::from_secs(5) {
            tracing::info!(
                peers = cluster.peers.len(),
                "waiting for the cluster to elect a leader"
            );
            waited = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = store.raft().metrics().borrow().current_leader;
    tracing::info!(node = cluster.node_id, ?leader, "joined the cluster");
    Ok((Arc::new(store), server))
}

/// The node's `[cluster.tls]` files, read once per start.
pub(crate) fn node_tls(
    config: &Config,
) -> anyhow::Result<Option<galilean_storage::raft::tls::NodeTls>> {
    Ok(match &config.cluster {
        Some(c) => crate::cluster::load_tls(c)?,
        None => None,
    })
}
