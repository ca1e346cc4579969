//! What a node runs beside its requests: the proxy's route table fed from the replica
//! (and rebuilt when a request asks), batched activity flushed to the store, and, when it
//! stops with `cleanup_servers`, the stop of every server it runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use galilean_actors::store::activity;
use galilean_actors::Replica;
use galilean_proto::records::ServerPhase;
use tokio::sync::watch;

use crate::admin::measures::HubMeasures;
use crate::app::AppState;
use crate::http::front::PublishedRoutes;
use crate::proxy::{Route, RouteKey, RouteTable};
use crate::start::control::ResyncRequests;

/// How often batched activity (proxy, tokens, users) is written to the store.
pub const ACTIVITY_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps the proxy's route table equal to the running servers in the replica, stamped
/// with the servers generation it was built at; rebuilds it also when a request asks
/// (`POST /hub/api/proxy`), answering once the rebuilt table is published. Each rebuild's
/// time is JupyterHub's `check_routes_duration_seconds`.
pub(crate) async fn feed_routes(
    replica: Arc<Replica>,
    base_url: String,
    tx: watch::Sender<PublishedRoutes>,
    mut resyncs: ResyncRequests,
    measures: Arc<HubMeasures>,
) {
    let mut changes = replica.watch();
    let mut generation = u64::MAX;
    let mut asked: Option<u64> = None;
    let mut requests_open = true;
    loop {
        let began = std::time::Instant::now();
        let next = replica.read(|s| {
            if s.servers_generation == generation && asked.is_none() {
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
            measures.check_routes.observe(began.elapsed());
        }
        if let Some(n) = asked.take() {
            tracing::info!(
                servers_generation = generation,
                "the proxy's routes were rebuilt from the replica, as asked"
            );
            resyncs.answer(n);
        }
        let request = async {
            if requests_open {
                resyncs.next().await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            n = request => match n {
                Some(n) => asked = Some(n),
                None => requests_open = false,
            },
        }
    }
}

/// How long a stopping node waits for its last flush of activity.
pub(crate) const LAST_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) async fn flush_activity_forever(
    app: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
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
pub(crate) async fn stop_all_servers(app: &Arc<AppState>) {
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
