//! The REST API under `/hub/api/` (§2), one file per resource.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_proto::time::now_micros;

use crate::app::AppState;
use crate::auth::{self, Identity};
use crate::error::{ApiResult, HttpError};

pub mod misc;
pub mod models;
pub mod servers;
pub mod tokens;
pub mod users;

/// The API routes; `api` is the API prefix without its trailing slash (`/hub/api`).
pub fn routes(api: &str) -> Router<Arc<AppState>> {
    let r = |path: &str| format!("{api}{path}");
    Router::new()
        .route(api, get(misc::root))
        .route(&r("/"), get(misc::root))
        .route(&r("/info"), get(misc::info))
        .route(&r("/user"), get(users::whoami))
        .route(&r("/users"), get(users::list).post(users::create_many))
        .route(
            &r("/users/{name}"),
            get(users::get_one)
                .post(users::create_one)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route(
            &r("/users/{name}/server"),
            post(servers::start_default).delete(servers::stop_default),
        )
        .route(
            &r("/users/{name}/server/progress"),
            get(servers::progress_default),
        )
        .route(
            &r("/users/{name}/servers/{server}"),
            post(servers::start_named).delete(servers::stop_named),
        )
        .route(
            &r("/users/{name}/servers/{server}/progress"),
            get(servers::progress_named),
        )
        .route(&r("/users/{name}/activity"), post(users::activity))
        .route(
            &r("/users/{name}/tokens"),
            get(tokens::list).post(tokens::create),
        )
        .route(
            &r("/users/{name}/tokens/{token_id}"),
            get(tokens::get_one).delete(tokens::delete),
        )
        .route(&r("/proxy"), get(misc::proxy))
        .route(&r("/metrics"), get(misc::metrics))
        .route(&r("/oauth2/token"), post(crate::oauth::token))
        .route(
            &r("/oauth2/authorize"),
            get(crate::oauth::authorize).post(crate::oauth::authorize_post),
        )
}

/// An authenticated API caller (§2.1): a header token, else the login cookie subject to
/// XSRF and the JSON content-type rule. Never `?token=`.
pub struct Caller(pub Identity);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> ApiResult<Caller> {
        match identify(parts, app) {
            Some(id) => Ok(Caller(id)),
            None => Err(HttpError::forbidden("Missing or invalid credentials.")),
        }
    }
}

impl OptionalFromRequestParts<Arc<AppState>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> ApiResult<Option<Caller>> {
        Ok(identify(parts, app).map(Caller))
    }
}

fn identify(parts: &Parts, app: &AppState) -> Option<Identity> {
    if let Some(secret) = auth::header_token(&parts.headers) {
        if let Some(id) = auth::identify_token(app, secret) {
            note_activity(app, &id);
            return Some(id);
        }
    }
    let id = auth::identify_cookie(app, &parts.headers)?;
    if parts.method == Method::POST {
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.starts_with("application/json") {
                return None;
            }
        }
    }
    let xsrf = auth::query_xsrf(parts.uri.query());
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if !auth::xsrf_ok(app, &parts.method, &parts.headers, xsrf.as_deref(), peer) {
        return None;
    }
    note_activity(app, &id);
    Some(id)
}

/// Records token and user activity in memory; flushed in batches.
fn note_activity(app: &AppState, id: &Identity) {
    let now = now_micros();
    if let Some(h) = &id.token_hash {
        if let Ok(mut m) = app.token_activity.lock() {
            crate::set_entry(&mut m, h, now);
        }
    }
    if let Some(u) = id.user_name() {
        if let Ok(mut m) = app.user_activity.lock() {
            crate::set_entry(&mut m, u, now);
        }
    }
}

/// Requires any of `scopes` for `target`: 403 when none is held, 404 when held but
/// filtered out (JupyterHub hides existence).
pub fn require(id: &Identity, scopes: &[&str], target: Target<'_>) -> ApiResult<()> {
    match id.scopes.check_any(scopes, target) {
        Access::Allowed => Ok(()),
        Access::FilteredOut => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "No access to resources or resources not found",
        )),
        Access::Denied => Err(HttpError::forbidden(format!(
            "Action is not authorized with current scopes; requires any of [{}]",
            scopes.join(", ")
        ))),
    }
}

/// Parses an optional JSON body: empty means none; bad JSON is a 400.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|_| HttpError::bad_request("Invalid JSON in body of request"))
        .and_then(|v| {
            serde_json::from_value(v)
                .map(Some)
                .map_err(|e| HttpError::bad_request(format!("Invalid JSON data: {e}")))
        })
}
