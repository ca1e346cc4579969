//! Root, info, proxy routes, health and metrics (§2.3, §2.11).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_proto::records::ServerPhase;
use galilean_proto::time::iso;
use serde_json::{json, Map, Value};

use super::{require, Caller};
use crate::app::AppState;
use crate::error::ApiResult;

type App = State<Arc<AppState>>;

pub async fn root() -> Response {
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Json(json!({ "version": galilean_proto::JUPYTERHUB_VERSION })),
    )
        .into_response()
}

pub async fn info(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&id, &["read:hub"], Target::Global)?;
    Ok(Json(json!({
        "version": galilean_proto::JUPYTERHUB_VERSION,
        "galilean_version": galilean_proto::GALILEAN_VERSION,
        "python": "",
        "sys_executable": "",
        "spawner": {"class": app.config.spawner.class, "version": galilean_proto::GALILEAN_VERSION},
        "authenticator": {"class": app.config.authenticator.class, "version": galilean_proto::GALILEAN_VERSION},
        "store": app.store.backend_name(),
    }))
    .into_response())
}

pub async fn proxy(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&id, &["proxy"], Target::Global)?;
    let routes = app.replica.read(|s| {
        let mut m = Map::new();
        for r in s.servers.values() {
            if r.phase != ServerPhase::Running {
                continue;
            }
            let Some(target) = &r.target else { continue };
            let model = super::models::server_model(&app, r, false);
            m.insert(
                model.url.clone(),
                json!({"routespec": model.url, "target": target,
                       "data": {"user": r.user, "server_name": r.name,
                                "last_activity": r.last_activity.map(iso)}}),
            );
        }
        m
    });
    Ok(Json(Value::Object(routes)).into_response())
}

/// 200 when this node can serve reads and writes — its store is ready and it reaches a
/// majority of the members for actor messages — else 503.
pub async fn health(State(app): App) -> Response {
    let members = app.router.members().len();
    let majority = members / 2 + 1;
    if galilean_actors::membership::draining(&app.replica).contains(&app.router.node_id()) {
        // still answers what it is sent, but a load balancer should send it nothing new
        crate::error::HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is draining (galilean cluster drain): its users have moved to the other nodes.",
        )
        .into_response()
    } else if app.store.ready()
        && app.router.lease_valid()
        && app.router.reachable_members() >= majority
    {
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "").into_response()
    } else {
        crate::error::HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node cannot serve now: no store leader, or too few members reachable.",
        )
        .into_response()
    }
}

/// Prometheus-style counters; the store counters let tests assert on reads and writes.
pub async fn metrics(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&id, &["read:metrics"], Target::Global)?;
    let c = app.store.counters().snapshot();
    let (users, running) = app.replica.read(|s| {
        (
            s.users.len(),
            s.servers
                .values()
                .filter(|r| r.phase == ServerPhase::Running)
                .count(),
        )
    });
    let peak = app
        .ctx
        .spawning_peak
        .load(std::sync::atomic::Ordering::SeqCst);
    let body = format!(
        "# TYPE galilean_store_reads_total counter\ngalilean_store_reads_total {}\n\
         # TYPE galilean_store_write_commits_total counter\ngalilean_store_write_commits_total {}\n\
         # TYPE galilean_store_mutations_total counter\ngalilean_store_mutations_total {}\n\
         # TYPE galilean_store_conflicts_total counter\ngalilean_store_conflicts_total {}\n\
         # TYPE galilean_users gauge\ngalilean_users {users}\n\
         # TYPE galilean_running_servers gauge\ngalilean_running_servers {running}\n\
         # TYPE galilean_spawns_concurrent_peak gauge\ngalilean_spawns_concurrent_peak {peak}\n",
        c.reads, c.write_commits, c.mutations, c.conflicts
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
