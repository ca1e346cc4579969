//! `/hub/api/proxy` (§2.11): the routing table (`GET`, paged as an object keyed by
//! routespec), a re-sync of the built-in proxy's table from the replica (`POST`), and
//! `PATCH`, which JupyterHub uses to point the hub at a new external proxy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_actors::replica::State as Replicated;
use galilean_proto::names::quote;
use galilean_proto::records::ServerPhase;
use galilean_proto::time::iso;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::caller::{require, Caller};
use crate::api::paging::Page;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The longest a re-sync waits for the route feed to publish the rebuilt table (it is a
/// local task: normally microseconds).
const RESYNC_WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize, Default)]
pub struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Every route, keyed by routespec (sorted): the hub's own at `P` (`{"hub": true}`),
/// each service with a URL at `P/services/<name>/`, and each running server at its
/// prefix, with its last activity.
pub fn routing_table(app: &AppState, s: &Replicated) -> BTreeMap<String, Value> {
    let mut routes = BTreeMap::new();
    let mut add = |spec: String, target: &str, data: Value| {
        routes.insert(
            spec.clone(),
            json!({"routespec": spec, "target": target, "data": data}),
        );
    };
    // the hub route's target: where servers reach this node's hub
    let hub = origin(&app.ctx.settings.hub_api_url);
    add(app.base_url.clone(), hub, json!({"hub": true}));
    for service in app.services.values() {
        if let Some(url) = &service.url {
            let spec = format!("{}services/{}/", app.base_url, quote(&service.name, b"@~"));
            add(spec, url, json!({"service": service.name}));
        }
    }
    for r in s.servers.values() {
        if r.phase != ServerPhase::Running {
            continue;
        }
        let Some(target) = &r.target else { continue };
        let spec = super::models::server_model(app, r, false).url;
        let data = json!({"user": r.user, "server_name": r.name,
                          "last_activity": r.last_activity.map(iso)});
        add(spec, target, data);
    }
    routes
}

/// `GET /hub/api/proxy`: the routing table; a page of it as an object when `offset` or
/// `limit` cut it, in the envelope when asked for.
pub async fn get(
    State(app): App,
    Caller(id): Caller,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    require(&app, &id, &["proxy"], Target::Global)?;
    let page = Page::of(q.offset.as_deref(), q.limit.as_deref(), &headers, false)?;
    let all = app.replica.read(|s| routing_table(&app, s));
    let total = all.len();
    let routes: Map<String, Value> = page.slice(all.into_iter()).collect();
    let body = if page.envelope {
        page.envelope(Value::Object(routes), total, &headers, &uri)
    } else {
        Value::Object(routes)
    };
    Ok(Json(body).into_response())
}

/// Rebuilds the built-in proxy's table from the replica; 503 if the route feed did not
/// publish it in time.
async fn resync(app: &AppState) -> ApiResult<Response> {
    if !app.control.resync_routes(RESYNC_WAIT).await {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The proxy's routes were not rebuilt in time; try again.",
        ));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "",
    )
        .into_response())
}

/// `POST /hub/api/proxy`: JupyterHub's `check_routes` now, as a re-sync of the built-in
/// proxy's table from the replica; 200 once the rebuilt table serves.
pub async fn post(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&app, &id, &["proxy"], Target::Global)?;
    resync(&app).await
}

/// `PATCH /hub/api/proxy`: in JupyterHub, points the hub at a new external proxy
/// (`api_url`, `auth_token`) and re-syncs its routes.
///
/// Deliberate deviation: Galilean's proxy is built into every node, so there is nothing
/// to re-point. The body is checked as JupyterHub checks it (a JSON object; and here,
/// `api_url` and `auth_token` strings when present, where JupyterHub fails with a 500),
/// the values are ignored (the token never logged), the routes re-synced, and 200
/// answered, so that a client written for JupyterHub carries on.
pub async fn patch(State(app): App, Caller(id): Caller, body: Bytes) -> ApiResult<Response> {
    require(&app, &id, &["proxy"], Target::Global)?;
    if body.is_empty() {
        return Err(HttpError::bad_request("need JSON body"));
    }
    let model: Value = serde_json::from_slice(&body)
        .map_err(|_| HttpError::bad_request("Request body must be JSON dict"))?;
    let Value::Object(model) = model else {
        return Err(HttpError::bad_request("Request body must be JSON dict"));
    };
    for key in ["api_url", "auth_token"] {
        if model.get(key).is_some_and(|v| !v.is_string()) {
            return Err(HttpError::bad_request(format!("{key} must be a string")));
        }
    }
    // the values are not logged: a URL may carry credentials too
    tracing::info!(
        api_url_given = model.contains_key("api_url"),
        auth_token_given = model.contains_key("auth_token"),
        "the built-in proxy has nothing to re-point; its routes are re-synced"
    );
    resync(&app).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hub_origin_is_the_api_url_without_its_path() {
        assert_eq!(
            super::origin("http://127.0.0.1:8000/jupyter/hub/api"),
            "http://127.0.0.1:8000"
        );
        assert_eq!(super::origin("http://[::1]:80"), "http://[::1]:80");
    }
}
