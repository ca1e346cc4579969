//! `GET /hub/api/proxy` (§2.11): the proxy's routing table, one route per running
//! server.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_proto::records::ServerPhase;
use galilean_proto::time::iso;
use serde_json::{json, Map, Value};

use crate::api::caller::{require, Caller};
use crate::app::AppState;
use crate::error::ApiResult;

type App = State<Arc<AppState>>;

pub async fn proxy(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&app, &id, &["proxy"], Target::Global)?;
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
