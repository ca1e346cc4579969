//! The spawn-pending page (§8.5), which follows a start without ever starting one, and
//! the page for a server that is not running.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use serde_json::json;

use crate::app::AppState;
use crate::http::respond::{login_redirect, query_arg, redirect};
use crate::pages::render::{
    common, merge, op_error_page, page_user, peer_ip, render, server_url, valid_next, with_next,
};
use crate::pages::target::page_target;
use crate::pages::urls::{progress_url, spawn_url};

type App = State<Arc<AppState>>;

pub(crate) async fn pending_user(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
) -> Response {
    spawn_pending(&app, ci, &headers, &uri, &user, None).await
}

pub(crate) async fn pending_named(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Path((user, server)): Path<(String, String)>,
) -> Response {
    spawn_pending(&app, ci, &headers, &uri, &user, Some(&server)).await
}

async fn spawn_pending(
    app: &Arc<AppState>,
    ci: ConnectInfo<SocketAddr>,
    headers: &HeaderMap,
    uri: &Uri,
    user: &str,
    server: Option<&str>,
) -> Response {
    let Some(me) = page_user(app, headers) else {
        return login_redirect(app, uri);
    };
    let (user, server) = match page_target(app, headers, &me, Some(user), server, "servers") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let next = valid_next(app, headers, query_arg(uri.query(), "next").as_deref());
    let status = match app.router.server_status(&user, &server).await {
        Ok(s) => s,
        Err(e) => return op_error_page(app, headers, e),
    };
    let spawn = with_next(&spawn_url(app, &user, &server), next.as_deref());
    let progress_url = progress_url(app, &user, &server);
    let display_name = app.replica.read(|s| {
        s.servers
            .get(&(user.as_str().to_owned(), server.as_str().to_owned()))
            .map(|r| r.display_name.clone())
            .unwrap_or_default()
    });
    let page = |failed: Option<&str>| {
        let ctx = merge(
            common(app, headers, peer_ip(&ci)),
            json!({
                "server_name": server.as_str(),
                "display_name": display_name,
                "progress_url": progress_url,
                "next_url": next.clone().unwrap_or_default(),
                "failed_message": failed,
                "spawn_url": spawn,
            }),
        );
        render(app, "spawn_pending.html", StatusCode::OK, ctx)
    };
    match status.phase {
        ServerPhase::Running => {
            let to = next
                .clone()
                .unwrap_or_else(|| server_url(app, &user, &server));
            redirect(StatusCode::FOUND, &to)
        }
        ServerPhase::Starting => page(None),
        ServerPhase::Stopped if status.last_failure.is_some() => {
            page(status.last_failure.as_deref())
        }
        _ => not_running_page(
            app,
            headers,
            &me,
            &user,
            &server,
            &spawn,
            StatusCode::OK,
            None,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn not_running_page(
    app: &AppState,
    headers: &HeaderMap,
    me: &(String, bool),
    user: &UserName,
    server: &ServerName,
    spawn_url: &str,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let may_spawn = app.user_may(
        &me.0,
        "servers",
        Target::Server {
            user: user.as_str(),
            server: server.as_str(),
        },
    ) == Access::Allowed;
    let ctx = merge(
        common(app, headers, None),
        json!({
            "server_name": server.as_str(),
            "owner": user.as_str(),
            "spawn_url": if may_spawn { Some(spawn_url) } else { None },
            "message": message,
        }),
    );
    render(app, "not_running.html", status, ctx)
}
