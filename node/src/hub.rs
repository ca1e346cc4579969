//! Bootstrapping a node: open the store, start the replica and the router, reconcile
//! config-owned state (admin users, service tokens), re-adopt servers left running,
//! then serve HTTP until asked to stop.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use galilean_actors::membership::run_liveness;
use galilean_actors::spawner::backends::{self, Backend};
use galilean_actors::spawner::readiness::probe_client;
use galilean_actors::store::{activity, meta, tokens, users};
use galilean_actors::{HubCtx, Replica, Router, SpawnSettings};
use galilean_proto::names::UserName;
use galilean_proto::records::{Owner, ServerPhase};
use galilean_storage::raft::net::Document;
use galilean_storage::{RedbStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{AppState, ServiceInfo};
use crate::config::Config;
use crate::front::{Front, PublishedRoutes};
use crate::pages::templates::Templates;
use crate::proxy::{ActivityRecorder, Route, RouteKey, RouteTable};

/// How often batched activity (proxy, tokens, users) is written to the store.
pub const ACTIVITY_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// The store file under `hub.data_dir`.
pub const STORE_FILE: &str = "galilean.redb";
/// The raft store file under `hub.data_dir` (a node of a cluster).
pub const RAFT_FILE: &str = "raft.redb";

/// Sets up logging to stderr; `RUST_LOG` wins over the configured level.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A running node.
pub struct Node {
    pub addr: SocketAddr,
    pub app: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// How a node starts, beyond its config.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Make this node's settings the cluster's recorded ones (`--update-cluster-settings`).
    pub update_cluster_settings: bool,
}

/// Runs a hub until SIGTERM or SIGINT.
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
    wait_for_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

/// Connections the kernel completes and queues for the hub before it accepts them (the
/// kernel caps this at `net.core.somaxconn`). std's and tokio's 128 is less than a class
/// connecting at once: a connection past it has its handshake dropped and retried a
/// second later (a storm of 200 starts finished in 1.1 s instead of 0.5 s). nginx and
/// Node (CHP) use 511.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `authority` (`host:port`; a name is resolved and each address tried in
/// turn), with [`LISTEN_BACKLOG`].
pub async fn listen(authority: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(authority).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let listening = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(LISTEN_BACKLOG)
        });
        match listening {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{authority} resolves to no address"),
        )
    }))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // without signal handlers, only ctrl-c can stop us
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Opens the embedded store under `data_dir` (created if missing).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create hub.data_dir {}", data_dir.display()))?;
    let path = data_dir.join(STORE_FILE);
    let store = RedbStore::open(&path)
        .with_context(|| format!("cannot open the store at {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Starts a node on `listener` with the store its config names: the embedded redb store;
/// with `[cluster]`, the raft store replicated across the peers (formed by itself: every
/// node initializes the same membership, which openraft allows); or FoundationDB, shared
/// by the nodes, which then elect a leader with a lease kept in it.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Node> {
    start_with_options(config, listener, StartOptions::default()).await
}

/// How a node of a cluster learns whether it leads, for the router's liveness loop.
struct Leadership {
    /// How old this node's proof of leading is, while it leads.
    proof: Box<dyn Fn() -> Option<Duration> + Send + Sync>,
    /// How old a predecessor's last proof is, at least, when this node starts to lead.
    handover: Duration,
}

/// What a node of a cluster runs besides the hub, by its store.
enum ClusterStore {
    Raft(Arc<galilean_storage::raft::RaftStore>),
    Shared {
        lease: galilean_storage::lease::StoreLease,
        status: galilean_storage::raft::net::StatusSource,
    },
}

impl ClusterStore {
    /// How this node learns whether it leads: raft's quorum acknowledgements, or the
    /// lease kept in the shared store.
    fn leadership(&self) -> Leadership {
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

/// As [`start`], with options.
pub async fn start_with_options(
    config: Config,
    listener: TcpListener,
    options: StartOptions,
) -> anyhow::Result<Node> {
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
    let mut node = build_at(config, store.clone(), tls, leadership, door).await?;
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
                Document::Status => crate::cluster::status_json(&app, &raft),
                Document::State => crate::cluster::state_json(&app),
            }));
        }
        ClusterStore::Shared { lease, status } => {
            let _ = status.set(Box::new(move |document| match document {
                Document::Status => crate::cluster::shared_status_json(&app, &lease),
                Document::State => crate::cluster::state_json(&app),
            }));
        }
    }
    Ok(node)
}

/// Opens the FoundationDB store that `[storage]` names.
#[cfg(feature = "fdb")]
async fn open_fdb(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
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
async fn open_fdb(_config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    // the config refuses "fdb" in such a build; this covers configs built in code
    anyhow::bail!("storage.backend = \"fdb\": this galilean was built without the fdb feature")
}

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

fn actor_link(
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
async fn follow_membership(raft: Arc<galilean_storage::raft::RaftStore>, router: Arc<Router>) {
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

/// A peer (other than this node) that reports a raft membership, if any answers.
async fn initialized_peer(
    cluster: &crate::config::ClusterConfig,
    tls: Option<&galilean_storage::raft::tls::NodeTls>,
) -> Option<u64> {
    let net = galilean_storage::raft::net::HttpNetwork::new(cluster.secret.expose(), tls);
    let (_, docs) = crate::cluster::statuses(&net, cluster).await;
    docs.into_iter()
        .find(|(id, (_, doc))| {
            *id != cluster.node_id && doc["voters"].as_array().is_some_and(|v| !v.is_empty())
        })
        .map(|(id, _)| id)
}

/// Opens the raft store, serves raft traffic on `cluster.bind`, joins the configured
/// membership, and waits until a leader is known.
async fn start_raft(
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
fn node_tls(config: &Config) -> anyhow::Result<Option<galilean_storage::raft::tls::NodeTls>> {
    Ok(match &config.cluster {
        Some(c) => crate::cluster::load_tls(c)?,
        None => None,
    })
}

/// Starts a node on `listener` with a given store.
pub async fn start_with_store(
    config: Config,
    listener: TcpListener,
    store: Arc<dyn Store>,
) -> anyhow::Result<Node> {
    let door = Door::open(listener)?;
    let tls = node_tls(&config)?;
    build_at(config, store, tls, None, door).await
}

/// The public listener, answering 503 until the hub is built, and the shutdown signal.
struct Door {
    addr: SocketAddr,
    front_tx: watch::Sender<Option<Arc<Front>>>,
    shutdown: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
    serving: JoinHandle<()>,
}

impl Door {
    fn open(listener: TcpListener) -> std::io::Result<Door> {
        let (front_tx, front_rx) = watch::channel(None);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let addr = listener.local_addr()?;
        let serving = tokio::spawn(crate::front::serve(listener, front_rx, shutdown_rx.clone()));
        Ok(Door {
            addr,
            front_tx,
            shutdown,
            shutdown_rx,
            serving,
        })
    }
}

/// Everything above the store: replica, actors, reconciled config state, the hub.
async fn build_at(
    config: Config,
    store: Arc<dyn Store>,
    tls: Option<galilean_storage::raft::tls::NodeTls>,
    leadership: Option<Leadership>,
    door: Door,
) -> anyhow::Result<Node> {
    let Door {
        addr,
        front_tx,
        shutdown,
        shutdown_rx,
        serving,
    } = door;
    let data_dir = config.hub.data_dir.clone();
    let replica = Replica::start(store.clone())
        .await
        .context("cannot load state from the store")?;

    let base_url = config.hub.base_url.clone();
    let hub_prefix = format!("{base_url}hub/");
    // spawned servers reach the hub on loopback when it listens on every address
    let connect_host = match addr.ip() {
        ip if ip.is_unspecified() => {
            if ip.is_ipv4() {
                "127.0.0.1".to_owned()
            } else {
                "[::1]".to_owned()
            }
        }
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let hub_api_url = match &config.hub.connect_url {
        Some(url) => format!("{}{hub_prefix}api", origin_of(url)),
        None => format!("http://{connect_host}:{}{hub_prefix}api", addr.port()),
    };
    let node_id = config.cluster.as_ref().map_or(1, |c| c.node_id);
    let public_host = config
        .hub
        .public_url
        .as_deref()
        .map(origin_of)
        .unwrap_or_default();
    let settings = SpawnSettings {
        base_url: base_url.clone(),
        hub_api_url,
        public_host: public_host.clone(),
        cmd: config.spawner.cmd.clone(),
        args: config.spawner.args.clone(),
        environment: config.spawner.environment.clone(),
        home_dir_template: config.spawner.home_dir_template.clone(),
        start_timeout: config.spawner.start_timeout,
        http_timeout: config.spawner.http_timeout,
        stop_grace: config.spawner.stop_grace,
        default_url: config.spawner.default_url.clone(),
        log_dir: data_dir.join("logs"),
        node_id,
        hub_env: std::env::vars().collect(),
    };
    std::fs::create_dir_all(&settings.log_dir)
        .with_context(|| format!("cannot create {}", settings.log_dir.display()))?;
    let ctx = Arc::new(HubCtx {
        store: store.clone(),
        replica: replica.clone(),
        spawner: backends::build(Backend::LocalProcess {
            ip: config.spawner.ip,
        }),
        settings,
        spawn_slots: Arc::new(tokio::sync::Semaphore::new(
            config.spawner.concurrent_spawn_limit,
        )),
        spawning_now: Default::default(),
        spawning_peak: Default::default(),
        probe: probe_client(),
    });
    let router = match &config.cluster {
        Some(c) => {
            let mut members = Vec::new();
            for p in &c.peers {
                members.push((p.id, actor_addr(&p.addr)?));
            }
            Router::with_members(ctx.clone(), members)
        }
        None => Router::new(ctx.clone()),
    };
    let mut cluster_tasks = Vec::new();
    if let Some(c) = &config.cluster {
        cluster_tasks.push(router.join_cluster(actor_link(c, tls)?).await?);
        let leadership = leadership
            .ok_or_else(|| anyhow::anyhow!("a node of a cluster needs a way to elect a leader"))?;
        cluster_tasks.push(tokio::spawn(
            // a leader counts only while its proof is fresh: one that resumes from a
            // pause must not renew its own serving lease
            run_liveness(router.clone(), leadership.proof, leadership.handover),
        ));
    }

    let cookie_secret = meta::secret(store.as_ref(), "cookie_secret", 64).await?;
    let xsrf_secret = meta::secret(store.as_ref(), "xsrf_secret", 32).await?;
    let cookie_key = cookie::Key::try_from(cookie_secret.as_slice())
        .map_err(|e| anyhow::anyhow!("bad cookie secret in the store: {e}"))?;

    let services = reconcile_services(&config, store.as_ref(), &replica).await?;
    reconcile_admins(&config, store.as_ref(), &replica).await?;

    let templates =
        Templates::new(&config.hub.template_paths).context("cannot load page templates")?;

    let mut own_origins = vec![];
    if !public_host.is_empty() {
        own_origins.push(public_host);
    }
    let activity = ActivityRecorder::new();
    let (routes_tx, routes_rx) = watch::channel(PublishedRoutes::default());
    let app = Arc::new(AppState {
        cookie_max_age_secs: config.hub.cookie_max_age.as_secs().max(1) as i64,
        config,
        store: store.clone(),
        replica: replica.clone(),
        router: router.clone(),
        ctx,
        templates,
        cookie_key,
        xsrf_secret,
        services,
        base_url: base_url.clone(),
        hub_prefix,
        own_origins,
        activity: activity.clone(),
        token_activity: Default::default(),
        user_activity: Default::default(),
        token_cache: Default::default(),
    });

    let mut tasks = vec![
        serving,
        tokio::spawn(feed_routes(replica.clone(), base_url.clone(), routes_tx)),
        tokio::spawn(flush_activity_forever(app.clone(), shutdown_rx.clone())),
    ];
    tasks.extend(cluster_tasks);

    // servers a previous run left running: re-adopted if their process runs, else stopped
    app.router.adopt_servers().await;

    let front = Arc::new(Front::new(app.clone(), routes_rx, activity));
    front_tx.send_replace(Some(front));
    Ok(Node {
        addr,
        app,
        shutdown,
        tasks,
    })
}

impl Node {
    /// Stops serving, flushes activity, and stops servers when `cleanup_servers` says so.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if self.app.config.hub.cleanup_servers {
            stop_all_servers(&self.app).await;
        }
        // bounded: a node whose whole cluster stops with it may have no majority left to
        // commit to, and would otherwise wait out the store's commit deadline
        match tokio::time::timeout(LAST_FLUSH_TIMEOUT, flush_activity(&self.app)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("last activity flush failed: {e}"),
            Err(_) => tracing::warn!(
                "last activity flush gave up after {LAST_FLUSH_TIMEOUT:?}: the store did not commit it"
            ),
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// Service tokens from config: stored (hashed) as the config says, and tokens of
/// services that are no longer configured removed.
async fn reconcile_services(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<HashMap<String, ServiceInfo>> {
    let mut services = HashMap::new();
    for svc in &config.services {
        services.insert(
            svc.name.clone(),
            ServiceInfo {
                name: svc.name.clone(),
                admin: svc.admin,
            },
        );
        let existing: Vec<String> = replica.read(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.owner == Owner::Service(svc.name.clone()))
                .map(|(h, _)| h.clone())
                .collect()
        });
        match &svc.api_token {
            Some(secret) => {
                let v = tokens::upsert_config_token(
                    store,
                    secret.expose(),
                    Owner::Service(svc.name.clone()),
                    existing,
                )
                .await?;
                replica.wait_for(v).await;
            }
            None if !existing.is_empty() => {
                let v = tokens::delete_tokens(store, &existing, None).await?;
                replica.wait_for(v).await;
            }
            None => {}
        }
    }
    let orphans: Vec<String> = replica.read(|s| {
        s.tokens
            .iter()
            .filter(|(_, t)| matches!(&t.owner, Owner::Service(n) if !services.contains_key(n)))
            .map(|(h, _)| h.clone())
            .collect()
    });
    if !orphans.is_empty() {
        tracing::info!(
            count = orphans.len(),
            "removing tokens of services no longer in the config"
        );
        let v = tokens::delete_tokens(store, &orphans, None).await?;
        replica.wait_for(v).await;
    }
    Ok(services)
}

/// `authenticator.admin_users` exist and are admins (as JupyterHub does at start-up).
async fn reconcile_admins(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<()> {
    for name in &config.authenticator.admin_users {
        let Ok(user) = UserName::normalize(name) else {
            tracing::warn!("authenticator.admin_users: {name:?} is not a valid user name; skipped");
            continue;
        };
        let (_, v) = users::ensure_user(store, user.as_str(), Some(true)).await?;
        replica.wait_for(v).await;
    }
    Ok(())
}

/// Keeps the proxy's route table equal to the running servers in the replica, stamped
/// with the servers generation it was built at.
async fn feed_routes(replica: Arc<Replica>, base_url: String, tx: watch::Sender<PublishedRoutes>) {
    let mut changes = replica.watch();
    let mut generation = u64::MAX;
    loop {
        let next = replica.read(|s| {
            if s.servers_generation == generation {
                return None;
            }
            let routes: Vec<Route> = s
                .servers
                .values()
                .filter(|r| r.phase == ServerPhase::Running)
                .filter_map(|r| {
                    let target = r.target.as_ref()?;
                    let key = RouteKey::new(r.user.clone(), r.name.clone());
                    Some(Route::new(key.prefix(&base_url), target.clone(), key))
                })
                .collect();
            Some(PublishedRoutes {
                table: Arc::new(RouteTable::from_routes(routes)),
                servers_generation: s.servers_generation,
            })
        });
        if let Some(published) = next {
            generation = published.servers_generation;
            tx.send_replace(published);
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// How long a stopping node waits for its last flush of activity.
const LAST_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

async fn flush_activity_forever(app: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ACTIVITY_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = flush_activity(&app).await {
            tracing::warn!("activity flush failed: {e}");
        }
    }
}

/// Writes what proxied traffic and authenticated requests recorded since the last flush,
/// in one transaction; nothing when nothing happened.
pub async fn flush_activity(app: &AppState) -> anyhow::Result<()> {
    let proxied = app.activity.take();
    let tokens: Vec<(String, i64)> =
        std::mem::take(&mut *app.token_activity.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect();
    let mut users: BTreeMap<String, i64> =
        std::mem::take(&mut *app.user_activity.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect();
    let mut servers = Vec::with_capacity(proxied.len());
    for (key, t) in proxied {
        let e = users.entry(key.user.clone()).or_insert(t);
        *e = (*e).max(t);
        servers.push(((key.user, key.server), t));
    }
    if users.is_empty() && servers.is_empty() && tokens.is_empty() {
        return Ok(());
    }
    let users: Vec<(String, i64)> = users.into_iter().collect();
    activity::record_activity(app.store.as_ref(), &users, &servers, &tokens).await?;
    Ok(())
}

/// Stops every server this node runs (`hub.cleanup_servers`).
///
/// Each stops through its actor, which records it stopping and stopped. When that fails,
/// or this node loses its majority meanwhile (the store cannot commit: the whole cluster
/// is stopping and the others left first), the process this node launched is stopped
/// anyway, from the replica's record: the hub must not leave servers behind. Its record
/// then still says running; whichever node owns it next finds the process gone and
/// records it stopped.
async fn stop_all_servers(app: &Arc<AppState>) {
    let ctx = app.router.ctx().clone();
    let wait = ctx.settings.stop_grace + Duration::from_secs(5);
    let stops = app
        .router
        .unstopped_local_servers()
        .into_iter()
        .map(|(user, server)| {
            let router = app.router.clone();
            let ctx = ctx.clone();
            async move {
                // a node cut off from its majority cannot commit: no waiting for the
                // store's deadline (the whole cluster may be stopping around it)
                let cut_off = async {
                    while router.lease_valid() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                let e = tokio::select! {
                    stopped = router.stop_server(&user, &server, false, wait) => match stopped {
                        Ok(_) => return,
                        Err(e) => e.to_string(),
                    },
                    () = cut_off => "this node cannot reach its cluster's majority".to_owned(),
                };
                let key = (user.as_str().to_owned(), server.as_str().to_owned());
                let state = ctx.replica.read(|s| {
                    s.servers
                        .get(&key)
                        .map(|r| r.spawner.clone())
                        .filter(|st| st.pid.is_some() && st.node == ctx.settings.node_id)
                });
                let Some(state) = state else {
                    tracing::warn!(%user, %server, "cannot stop: {e}");
                    return;
                };
                tracing::warn!(%user, %server, pid = ?state.pid, "cannot record the stop ({e}); stopping the process anyway");
                if let Err(e) = ctx.spawner.stop(&state, ctx.settings.stop_grace).await {
                    tracing::warn!(%user, %server, "cannot stop the process: {e}");
                }
            }
        });
    futures::future::join_all(stops).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A burst of connections the hub has not accepted yet all complete their handshake
    /// at once; with a backlog of 128, those past it waited a second for a resent SYN.
    #[tokio::test]
    async fn a_burst_of_connections_is_queued_not_dropped() {
        // the kernel queues no more than net.core.somaxconn (4096 on Debian 12)
        let n = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(4096)
            .min(400);
        let listener = super::listen("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..n).map(|_| {
            tokio::spawn(tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            ))
        });
        let mut open = Vec::new();
        for c in connects.collect::<Vec<_>>() {
            if let Ok(Ok(stream)) = c.await.unwrap() {
                open.push(stream);
            }
        }
        assert_eq!(open.len(), n, "connections completed before any accept");
        drop(listener);
    }

    #[tokio::test]
    async fn a_name_is_resolved_and_a_bad_address_named() {
        let listener = super::listen("localhost:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        assert!(super::listen("127.0.0.1:99999").await.is_err());
    }
}
