//! The spawn page (§8.4): starts the server the URL names with the options of the query,
//! by the same rules as the API (named servers, their limit, the display name), and
//! sends the browser to the server or to its pending page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use galilean_actors::policy::servers::{display_name, within_named_limit, ServerRefusal};
use galilean_proto::records::ServerPhase;
use galilean_proto::wire::StartOutcome;
use serde_json::Value;

use crate::app::AppState;
use crate::auth;
use crate::http::respond::{login_redirect, query_arg, query_pairs, redirect};
use crate::pages::render::{
    error_page_for, op_error_page, page_user, peer_ip, server_url, valid_next, with_next,
};
use crate::pages::target::page_target;
use crate::pages::urls::pending_url;

type App = State<Arc<AppState>>;

/// How long the spawn page waits for a start to fail at once before going to the
/// pending page.
const SPAWN_FAST_FAIL: Duration = Duration::from_secs(1);

/// Spawn options from the query (§8.4): `opt-` arguments when any is given, else all
/// non-reserved ones, as lists of strings.
fn query_options(q: Option<&str>) -> Result<Option<String>, String> {
    let pairs: Vec<(String, String)> = query_pairs(q)
        .into_iter()
        .filter(|(k, _)| k != "next" && k != "_xsrf" && k != "display_name")
        .collect();
    if pairs.is_empty() {
        return Ok(None);
    }
    let prefixed = pairs.iter().any(|(k, _)| k.starts_with("opt-"));
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        let key = if prefixed {
            match k.strip_prefix("opt-") {
                Some("") => return Err("Empty option name 'opt-'".into()),
                Some(rest) => rest.to_owned(),
                None => continue,
            }
        } else {
            k
        };
        let entry = map.entry(key).or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = entry {
            a.push(Value::String(v));
        }
    }
    Ok(Some(Value::Object(map).to_string()))
}

pub(crate) async fn spawn_self(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    spawn(&app, ci, method, &headers, &uri, None, None, &body).await
}

pub(crate) async fn spawn_user(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    spawn(&app, ci, method, &headers, &uri, Some(&user), None, &body).await
}

pub(crate) async fn spawn_named(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path((user, server)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    spawn(
        &app,
        ci,
        method,
        &headers,
        &uri,
        Some(&user),
        Some(&server),
        &body,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn spawn(
    app: &Arc<AppState>,
    ci: ConnectInfo<SocketAddr>,
    method: Method,
    headers: &HeaderMap,
    uri: &Uri,
    user: Option<&str>,
    server: Option<&str>,
    body: &[u8],
) -> Response {
    let Some(me) = page_user(app, headers) else {
        return login_redirect(app, uri);
    };
    if method == Method::POST {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let given = form
            .into_iter()
            .find(|(k, _)| k == "_xsrf")
            .map(|(_, v)| v)
            .or_else(|| query_arg(uri.query(), "_xsrf"));
        if !auth::xsrf_ok(
            app,
            &method,
            headers,
            given.as_deref(),
            peer_ip(&ci).map(|p| p.ip()),
        ) {
            return error_page_for(
                app,
                headers,
                StatusCode::FORBIDDEN,
                Some("The form is invalid or expired (XSRF check failed). Reload the page and try again."),
            );
        }
    }
    let (user, server) = match page_target(app, headers, &me, user, server, "servers") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let q = uri.query();
    let next = valid_next(app, headers, query_arg(q, "next").as_deref());
    let status = match app.router.server_status(&user, &server).await {
        Ok(s) => s,
        Err(e) => return op_error_page(app, headers, e),
    };
    let pending = with_next(&pending_url(app, &user, &server), next.as_deref());
    match status.phase {
        ServerPhase::Running => {
            let to = next.unwrap_or_else(|| server_url(app, &user, &server));
            return redirect(StatusCode::FOUND, &to);
        }
        ServerPhase::Starting => return redirect(StatusCode::FOUND, &pending),
        ServerPhase::Stopping => {
            return error_page_for(
                app,
                headers,
                StatusCode::BAD_REQUEST,
                Some("The server is stopping; try again in a moment."),
            )
        }
        ServerPhase::Stopped => {}
    }
    let user_options = match query_options(q) {
        Ok(o) => o,
        Err(m) => return error_page_for(app, headers, StatusCode::UNPROCESSABLE_ENTITY, Some(&m)),
    };
    // the same rules as the API's: a display name given must be valid, and a named
    // server may not be one more than the user's limit
    let display_name = match query_arg(q, "display_name").map(|d| display_name(&d)) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return refused(app, headers, e),
    };
    let limit = app.config.hub.named_server_limit_per_user;
    if let Err(e) = app
        .replica
        .read(|s| within_named_limit(s, &user, &server, limit.into()))
    {
        return refused(app, headers, e);
    }
    // an immediate success is shown without a detour; anything else goes to the
    // pending page, which also shows a failure
    match app
        .router
        .start_server(&user, &server, user_options, display_name, SPAWN_FAST_FAIL)
        .await
    {
        Ok(StartOutcome::Ready) => {
            let to = next.unwrap_or_else(|| server_url(app, &user, &server));
            return redirect(StatusCode::FOUND, &to);
        }
        Ok(_) => {}
        Err(e) => return op_error_page(app, headers, e),
    }
    redirect(StatusCode::FOUND, &pending)
}

/// The page for a start the server rules refuse (400, the API's message).
fn refused(app: &AppState, headers: &HeaderMap, e: ServerRefusal) -> Response {
    error_page_for(app, headers, StatusCode::BAD_REQUEST, Some(&e.to_string()))
}
