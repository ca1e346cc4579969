//! The home page (§8.3: the user's servers, with start, stop and progress links) and the
//! token page.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use galilean_proto::time::iso;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::http::respond::login_redirect;
use crate::pages::render::{common, logged_in, merge, page_user, peer_ip, render, server_url};
use crate::pages::urls::{progress_url, server_suffix};

type App = State<Arc<AppState>>;

pub(crate) async fn home(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let user = match logged_in(&app, &headers, &uri) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let name = user.as_str();
    let mut servers: Vec<Value> = app.replica.read(|s| {
        s.servers_of(name)
            .map(|r| {
                let server = ServerName::parse(&r.name).unwrap_or_default();
                server_json(&app, &user, &server, Some(r))
            })
            .collect()
    });
    if !servers.iter().any(|s| s["name"] == "") {
        servers.insert(0, server_json(&app, &user, &ServerName::default(), None));
    }
    let ctx = merge(
        common(&app, &headers, peer_ip(&ci)),
        json!({
            "servers": servers,
            "allow_named_servers": app.config.hub.allow_named_servers,
            "named_server_limit": app.config.hub.named_server_limit_per_user,
        }),
    );
    render(&app, "home.html", StatusCode::OK, ctx)
}

fn server_json(
    app: &AppState,
    user: &UserName,
    server: &ServerName,
    rec: Option<&std::sync::Arc<galilean_proto::records::ServerRecord>>,
) -> Value {
    let phase = rec.map(|r| r.phase).unwrap_or(ServerPhase::Stopped);
    let pending = match phase {
        ServerPhase::Starting => Some("spawn"),
        ServerPhase::Stopping => Some("stop"),
        _ => None,
    };
    let suffix = server_suffix(user, server);
    let progress = progress_url(app, user, server);
    json!({
        "name": server.as_str(),
        "display_name": rec.map(|r| r.display_name.clone()).filter(|d| !d.is_empty()),
        "url": server_url(app, user, server),
        "ready": phase == ServerPhase::Running,
        "pending": pending,
        "last_activity": rec.and_then(|r| r.last_activity).map(iso),
        "spawn_url": format!("{}spawn/{suffix}", app.hub_prefix),
        "progress_url": progress,
    })
}

pub(crate) async fn token_page(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if page_user(&app, &headers).is_none() {
        return login_redirect(&app, &uri);
    }
    let ctx = common(&app, &headers, peer_ip(&ci));
    render(&app, "token.html", StatusCode::OK, ctx)
}
