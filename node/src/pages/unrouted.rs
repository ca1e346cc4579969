//! Requests the proxy had no route for (§8.6): `P/user/...` sent to the hub's prefix,
//! answered with the server's state (back to the proxy while it is just behind, the
//! pending page, or "not running"), `user-redirect`, and the hub's 404.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::text::clip;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;

use crate::app::AppState;
use crate::auth;
use crate::http::respond::{json_error, login_redirect, query_arg, redirect};
use crate::pages::pending::not_running_page;
use crate::pages::render::{error_page_for, logged_in, server_url, with_next};
use crate::pages::urls::{pending_url, spawn_url};

type App = State<Arc<AppState>>;

/// Redirects back to the proxy before giving up on a route that does not appear.
const USER_REDIRECT_LIMIT: u32 = 4;

/// `P/user/...` reached the hub: the proxy has no route for it. GETs are sent to
/// `H/user/...` (where the login cookie is sent); other methods are answered here.
pub(crate) async fn user_url(
    State(app): App,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(params): Path<Vec<(String, String)>>,
) -> Response {
    if method == Method::GET || method == Method::HEAD {
        return to_hub(&app, &uri);
    }
    not_routed(&app, method, &headers, &uri, params).await
}

pub(crate) async fn hub_user_url(
    State(app): App,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(params): Path<Vec<(String, String)>>,
) -> Response {
    not_routed(&app, method, &headers, &uri, params).await
}

/// Whether a request wants JSON rather than a page (§8.6).
fn wants_json(headers: &HeaderMap, path: &str) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_first = accept
        .split(',')
        .next()
        .is_some_and(|a| a.trim().starts_with("application/json"));
    json_first || path.split('/').any(|seg| seg == "api")
}

async fn not_routed(
    app: &Arc<AppState>,
    method: Method,
    headers: &HeaderMap,
    uri: &Uri,
    params: Vec<(String, String)>,
) -> Response {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (user_s, rest) = (param("user"), param("rest"));
    let get = method == Method::GET || method == Method::HEAD;
    // who is asking: the login cookie (pages) or a token
    let id = auth::header_token(headers)
        .and_then(|t| app.tokens.identify(t))
        .or_else(|| auth::identify_cookie(app, headers));
    if get && id.is_none() {
        return login_redirect(app, uri);
    }
    let Ok(user) = UserName::parse(&user_s) else {
        return if get {
            error_page_for(app, headers, StatusCode::NOT_FOUND, Some("No such user"))
        } else {
            json_error(StatusCode::NOT_FOUND, "No such user")
        };
    };
    // the server: a named one when the first segment names one of the user's servers
    let first = rest.split('/').next().unwrap_or("");
    let server = if app.config.hub.allow_named_servers && !first.is_empty() {
        let named = app.replica.read(|s| {
            s.servers
                .contains_key(&(user.as_str().to_owned(), first.to_owned()))
        });
        if named {
            ServerName::parse(first).unwrap_or_default()
        } else {
            ServerName::default()
        }
    } else {
        ServerName::default()
    };
    if let Some(id) = &id {
        let target = Target::Server {
            user: user.as_str(),
            server: server.as_str(),
        };
        let allowed = app
            .replica
            .read(|s| id.scopes.check_in("access:servers", target, s) == Access::Allowed);
        if get && !allowed {
            return error_page_for(
                app,
                headers,
                StatusCode::NOT_FOUND,
                Some("No access to resources or resources not found"),
            );
        }
    }
    // the owning actor knows better than this node's route table
    let exists = app.replica.read(|s| s.users.contains_key(user.as_str()));
    let status = if exists {
        match app.router.server_status(&user, &server).await {
            Ok(status) => Some(status),
            Err(e) => {
                let e = crate::error::HttpError::from(e);
                return if get {
                    error_page_for(app, headers, e.status, e.message.as_deref())
                } else {
                    e.into_response()
                };
            }
        }
    } else if get {
        return error_page_for(
            app,
            headers,
            StatusCode::NOT_FOUND,
            Some(&format!("No such user {}", clip(user.as_str()))),
        );
    } else {
        None
    };
    let phase = status
        .as_ref()
        .map(|s| s.phase)
        .unwrap_or(ServerPhase::Stopped);
    let failed = status.as_ref().is_some_and(|s| s.last_failure.is_some());
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // P/user/<name>/<rest>, whether we were asked at P/user or H/user
    let user_path = match pq.strip_prefix(&format!("{}user/", app.hub_prefix)) {
        Some(after) => format!("{}user/{after}", app.base_url),
        None => pq.to_owned(),
    };
    let server_prefix = server_url(app, &user, &server);
    if phase == ServerPhase::Running {
        // the proxy is just behind the actor: send the client back to it, a few times
        let redirects: u32 = query_arg(uri.query(), "redirects")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        if redirects >= USER_REDIRECT_LIMIT {
            let m = "Redirect loop detected: the route to this server did not appear.";
            return if get {
                error_page_for(app, headers, StatusCode::SERVICE_UNAVAILABLE, Some(m))
            } else {
                json_error(StatusCode::SERVICE_UNAVAILABLE, m)
            };
        }
        if redirects > 0 {
            tokio::time::sleep(Duration::from_millis(100 << redirects.min(4))).await;
        }
        let target = with_redirects(&user_path, redirects + 1);
        // 307 keeps the method and body of API calls
        let code = if get {
            StatusCode::FOUND
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        return redirect(code, &target);
    }
    if !get || wants_json(headers, &rest) {
        let m = format!(
            "JupyterHub server no longer running at {server_prefix}. Restart the server at {}",
            spawn_url(app, &user, &server)
        );
        return json_error(StatusCode::FAILED_DEPENDENCY, &m);
    }
    let next_target = strip_redirects(&user_path);
    if phase == ServerPhase::Starting || failed {
        let to = with_next(&pending_url(app, &user, &server), Some(&next_target));
        return redirect(StatusCode::SEE_OTHER, &to);
    }
    let Some(id) = id else {
        return login_redirect(app, uri);
    };
    let me = (id.owner.name().to_owned(), id.admin);
    let spawn = with_next(&spawn_url(app, &user, &server), Some(&next_target));
    not_running_page(
        app,
        headers,
        &me,
        &user,
        &server,
        &spawn,
        StatusCode::FAILED_DEPENDENCY,
        None,
    )
}

fn with_redirects(path_and_query: &str, n: u32) -> String {
    let stripped = strip_redirects(path_and_query);
    if stripped.contains('?') {
        format!("{stripped}&redirects={n}")
    } else {
        format!("{stripped}?redirects={n}")
    }
}

fn strip_redirects(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with("redirects=") && !kv.is_empty())
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// `P/user-redirect/...` → `H/user-redirect/...`, where the login cookie is sent.
pub(crate) async fn prefix_redirect(State(app): App, uri: Uri) -> Response {
    to_hub(&app, &uri)
}

/// `P/<rest>` → `H/<rest>`, query included: under the hub's prefix, where its login
/// cookie is sent.
fn to_hub(app: &AppState, uri: &Uri) -> Response {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let rest = pq.strip_prefix(app.base_url.as_str()).unwrap_or(pq);
    redirect(StatusCode::FOUND, &format!("{}{rest}", app.hub_prefix))
}

/// `H/user-redirect/<path>` → `P/user/<me>/<path>`.
pub(crate) async fn user_redirect(State(app): App, headers: HeaderMap, uri: Uri) -> Response {
    let user = match logged_in(&app, &headers, &uri) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let prefix = format!("{}user-redirect/", app.hub_prefix);
    let raw = uri.path().strip_prefix(&prefix).unwrap_or("");
    // keep it a path below the user's prefix: no leading slashes, no dot segments
    let rest = raw.trim_start_matches('/');
    if !stays_below(rest) {
        return error_page_for(
            &app,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("Invalid path"),
        );
    }
    let mut to = format!("{}{rest}", server_url(&app, &user, &ServerName::default()));
    if let Some(q) = uri.query() {
        to.push('?');
        to.push_str(q);
    }
    redirect(StatusCode::FOUND, &to)
}

/// Whether `path`, appended to a prefix, stays below it: no segment is `.` or `..`
/// once percent-decoded (`%2e%2E`, `.%2e`, `%2E.` included), and none hides a slash or a
/// backslash (`%2f`, `%5c`) that a later hop would read as one.
fn stays_below(path: &str) -> bool {
    !path.contains('\\')
        && path.split('/').all(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
            decoded != "." && decoded != ".." && !decoded.contains(['/', '\\'])
        })
}

pub(crate) async fn not_found(State(app): App, headers: HeaderMap, uri: Uri) -> Response {
    if uri.path().starts_with(&app.api_prefix())
        || uri.path() == app.api_prefix().trim_end_matches('/')
    {
        return json_error(StatusCode::NOT_FOUND, "Not Found");
    }
    error_page_for(&app, &headers, StatusCode::NOT_FOUND, None)
}

#[cfg(test)]
mod tests {
    use super::stays_below;

    #[test]
    fn dot_segments_are_refused_however_they_are_written() {
        for bad in [
            "..",
            "a/../b",
            "%2e%2e",
            "%2E%2e/x",
            ".%2e",
            "%2e.",
            ".%2E/tree",
            "%2E.",
            ".",
            "a/%2e",
            "a%2fb/../c",
            "%2f",
            "..%2f",
            "a\\b",
            "%5c",
            "%2e%2e%5c",
        ] {
            assert!(!stays_below(bad), "{bad}");
        }
        for good in [
            "",
            "lab",
            "lab/tree/a.ipynb",
            "a..b",
            "...",
            "%2e%2e%2e",
            "x/.hidden",
        ] {
            assert!(stays_below(good), "{good}");
        }
    }
}
