//! `GET /hub/api/` and `/hub/api/info` (§2.2): versions, and the hub's classes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use serde_json::json;

use crate::api::caller::{require, Caller};
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
    require(&app, &id, &["read:hub"], Target::Global)?;
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
