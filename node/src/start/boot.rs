//! Starting a node: `run` (listen, start, wait for a signal or the API's stop request,
//! stop), and the start on a listener with the store its config names, or with a store
//! handed in (tests).

use std::sync::Arc;

use anyhow::Context;
use galilean_storage::raft::net::Document;
use galilean_storage::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::start::build::build_at;
use crate::start::listen::{listen, wait_for_signal, Door};
use crate::start::node::Node;
use crate::start::peers::follow_membership;
use crate::start::stores::{node_tls, open_fdb, open_store, start_raft, ClusterStore};

/// How a node starts, beyond its config.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Make this node's settings the cluster's recorded ones (`--update-cluster-settings`).
    pub update_cluster_settings: bool,
}

/// Runs a hub until SIGTERM or SIGINT, or until `POST /hub/api/shutdown` asks it to stop.
pub async fn run(config: Config, options: StartOptions) -> anyhow::Result<()> {
    let authority = config.hub.bind_url.authority();
    let listener = listen(&authority)
        .await
        .with_context(|| format!("cannot listen on {authority} (hub.bind_url)"))?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("listening on http://{addr}/ (503 until the store is ready)");
    }
    let node = start_with_options(config, listener, options).await?;
    let url = format!("http://{}{}hub/", node.addr, node.app.base_url);
    tracing::info!("Galilean is running at {url}");
    tokio::select! {
        () = wait_for_signal() => tracing::info!("shutting down"),
        asked = node.app.control.stopping() => tracing::info!(
            servers = ?asked.cleanup_servers,
            "shutting down, as asked through the API"
        ),
    }
    node.shutdown().await;
    Ok(())
}

/// Starts a node on `listener` with the store its config names: the embedded redb store;
/// with `[cluster]`, the raft store replicated across the peers (formed by itself: every
/// node initializes the same membership, which openraft allows); or FoundationDB, shared
/// by the nodes, which then elect a leader with a lease kept in it.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Node> {
    start_with_options(config, listener, StartOptions::default()).await
}

/// As [`start`], with options.
pub async fn start_with_options(
    config: Config,
    listener: TcpListener,
    options: StartOptions,
) -> anyhow::Result<Node> {
    let began = std::time::Instant::now();
    // answer (503) while the store comes up
    let door = Door::open(listener)?;
    let tls = node_tls(&config)?;
    let fdb = config.storage.backend == crate::config::StorageBackendKind::Fdb;
    let mut extra = Vec::new();
    let (store, cluster): (Arc<dyn Store>, _) = match &config.cluster {
        None if fdb => (open_fdb(&config).await?, None),
        None => (open_store(&config.hub.data_dir)?, None),
        Some(cluster) if fdb => {
            let store = open_fdb(&config).await?;
            let (lease, task) = galilean_storage::lease::StoreLease::run(
                store.clone(),
                galilean_actors::keys::leader_lease(),
                cluster.node_id,
                galilean_storage::lease::LeaseTiming::HUB,
            );
            let status = galilean_storage::raft::net::StatusSource::default();
            let port = TcpListener::bind(&cluster.bind)
                .await
                .with_context(|| format!("cannot listen on {} (cluster.bind)", cluster.bind))?;
            extra.push(task);
            extra.push(tokio::spawn(galilean_storage::raft::net::serve(
                port,
                galilean_storage::raft::net::Served::Shared(store.clone()),
                cluster.secret.expose().into(),
                status.clone(),
                tls.as_ref()
                    .map(galilean_storage::raft::tls::NodeTls::acceptor),
            )));
            (store, Some(ClusterStore::Shared { lease, status }))
        }
        Some(cluster) => {
            let (store, server) = start_raft(&config, cluster, tls.as_ref()).await?;
            extra.push(server);
            (store.clone(), Some(ClusterStore::Raft(store)))
        }
    };
    if config.cluster.is_some() {
        crate::settings::agree(
            store.as_ref(),
            &crate::settings::agreed(&config),
            options.update_cluster_settings,
        )
        .await?;
    }
    let leadership = cluster.as_ref().map(ClusterStore::leadership);
    let mut node = build_at(config, store.clone(), tls, leadership, door, began).await?;
    node.tasks.extend(extra);
    let Some(cluster) = cluster else {
        return Ok(node);
    };
    // a drain ends when the node starts again
    let mark = galilean_actors::keys::meta(&galilean_actors::keys::draining_key(
        node.app.router.node_id().get(),
    ));
    let ((), v) = galilean_actors::in_txn!(store.as_ref(), |tx| {
        if tx.get(&mark).await?.is_some() {
            tx.clear(&mark);
        }
    })?;
    node.app.replica.wait_for(v).await;
    let app = node.app.clone();
    match cluster {
        ClusterStore::Raft(raft) => {
            node.tasks.push(tokio::spawn(follow_membership(
                raft.clone(),
                node.app.router.clone(),
            )));
            let source = raft.status_source().clone();
            let _ = source.set(Box::new(move |document| match document {
                Document::Status => crate::admin::status::status_json(&app, &raft),
                Document::State => crate::admin::status::state_json(&app),
            }));
        }
        ClusterStore::Shared { lease, status } => {
            let _ = status.set(Box::new(move |document| match document {
                Document::Status => crate::admin::status::shared_status_json(&app, &lease),
                Document::State => crate::admin::status::state_json(&app),
            }));
        }
    }
    Ok(node)
}

/// Starts a node on `listener` with a given store.
pub async fn start_with_store(
    config: Config,
    listener: TcpListener,
    store: Arc<dyn Store>,
) -> anyhow::Result<Node> {
    let began = std::time::Instant::now();
    let door = Door::open(listener)?;
    let tls = node_tls(&config)?;
    build_at(config, store, tls, None, door, began).await
}
