//! Everything above the store: the replica, the actors and the router (and liveness in
//! a cluster), the secrets, the state config owns, the app state, and the front door.

use std::sync::Arc;

use anyhow::Context;
use galilean_actors::membership::run_liveness;
use galilean_actors::policy::rbac::RoleSpec;
use galilean_actors::spawner::backends::{self, Backend};
use galilean_actors::spawner::readiness::probe_client;
use galilean_actors::store::meta;
use galilean_actors::{HubCtx, Replica, Router, SpawnSettings};
use galilean_proto::names::UserName;
use galilean_storage::Store;
use tokio::sync::watch;

use crate::admin::measures::{measure_event_loop, HubMeasures};
use crate::app::AppState;
use crate::auth::{Grants, Tokens};
use crate::config::Config;
use crate::http::front::{Front, PublishedRoutes};
use crate::pages::templates::Templates;
use crate::proxy::ActivityRecorder;
use crate::start::background::{feed_routes, flush_activity_forever};
use crate::start::control::NodeControl;
use crate::start::listen::Door;
use crate::start::node::Node;
use crate::start::peers::{actor_addr, actor_link};
use crate::start::purge::purge_expired_forever;
use crate::start::reconcile::{reconcile_admins, reconcile_services, reconcile_users_and_groups};
use crate::start::stores::Leadership;

/// Everything above the store: replica, actors, reconciled config state, the hub.
pub(crate) async fn build_at(
    config: Config,
    store: Arc<dyn Store>,
    tls: Option<galilean_storage::raft::tls::NodeTls>,
    leadership: Option<Leadership>,
    door: Door,
    began: std::time::Instant,
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
        timings: Default::default(),
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
    let catalog = galilean_actors::policy::scopes::Catalog::with_custom(&config.custom_scopes)
        .map_err(|e| anyhow::anyhow!("custom_scopes: {e}"))?;
    let roles: Vec<RoleSpec> = config
        .roles
        .iter()
        .map(|r| RoleSpec {
            name: r.name.clone(),
            description: r.description.clone(),
            scopes: r.scopes.clone(),
            users: r
                .users
                .iter()
                .filter_map(|n| UserName::normalize(n).ok())
                .map(|n| n.as_str().to_owned())
                .collect(),
            groups: r.groups.clone(),
            services: r.services.clone(),
        })
        .collect();
    let rbac = galilean_actors::policy::rbac::Rbac::new(
        catalog,
        &roles,
        services
            .values()
            .map(|s| (s.name.clone(), s.admin))
            .collect(),
    );
    let tokens = Tokens::new(replica.clone(), Arc::new(Grants::new(Arc::new(rbac))));
    reconcile_admins(&config, store.as_ref(), &replica).await?;
    reconcile_users_and_groups(&config, store.as_ref(), &replica).await?;

    let templates =
        Templates::new(&config.hub.template_paths).context("cannot load page templates")?;

    let mut own_origins = vec![];
    if !public_host.is_empty() {
        own_origins.push(public_host);
    }
    let activity = ActivityRecorder::new();
    let (routes_tx, routes_rx) = watch::channel(PublishedRoutes::default());
    let (control, resyncs) = NodeControl::new();
    let measures = Arc::new(HubMeasures::default());
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
        tokens,
        measures: measures.clone(),
        control,
    });

    let mut tasks = vec![
        tokio::spawn(feed_routes(
            replica.clone(),
            base_url.clone(),
            routes_tx,
            resyncs,
            measures.clone(),
        )),
        tokio::spawn(flush_activity_forever(app.clone(), shutdown_rx.clone())),
        tokio::spawn(purge_expired_forever(app.clone(), shutdown_rx.clone())),
        tokio::spawn(measure_event_loop(measures.clone())),
    ];
    tasks.extend(cluster_tasks);

    // servers a previous run left running: re-adopted if their process runs, else stopped
    let adopting = std::time::Instant::now();
    app.router.adopt_servers().await;
    measures.init_spawners.observe(adopting.elapsed());

    let front = Arc::new(Front::new(app.clone(), routes_rx, activity));
    front_tx.send_replace(Some(front));
    measures.hub_startup.observe(began.elapsed());
    Ok(Node {
        addr,
        app,
        shutdown,
        serving,
        tasks,
    })
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}
