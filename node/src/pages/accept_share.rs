//! The accept-share page (§2.12): a logged-in user shown a share code's offer, and the
//! form that exchanges the code for a share of their own, then goes on to `next` (checked
//! like every `next`) or the shared server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::shares;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use galilean_proto::time::now_micros;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth;
use crate::http::respond::redirect;
use crate::pages::render::{
    common, error_page_for, logged_in, merge, op_error_page, peer_ip, render, server_url,
    valid_next,
};

type App = State<Arc<AppState>>;

/// The longest form accepted.
const MAX_FORM: usize = 8 * 1024;

#[derive(Deserialize, Default)]
pub(crate) struct Offer {
    code: Option<String>,
    next: Option<String>,
}

/// Where the browser goes once the code is accepted: `next` if it is one of ours, else
/// the shared server.
fn destination(
    app: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    owner: &str,
    server: &str,
) -> String {
    if let Some(n) = valid_next(app, headers, next) {
        return n;
    }
    match (UserName::parse(owner), ServerName::parse(server)) {
        (Ok(u), Ok(s)) => server_url(app, &u, &s),
        _ => format!("{}home", app.hub_prefix),
    }
}

/// `GET H/accept-share?code=...`: what the code offers, and the form to accept it.
pub(crate) async fn offer(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Offer>,
) -> Response {
    let user = match logged_in(&app, &headers, &uri) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return error_page_for(
            &app,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("No share code given"),
        );
    };
    let now = now_micros();
    let offered = app.replica.read(|s| {
        let c = s
            .shares
            .code(&sha256_hex(&code))
            .filter(|c| c.expires_at > now)?;
        let ready = s
            .servers
            .get(&(c.owner.clone(), c.server.clone()))
            .is_some_and(|r| r.phase == ServerPhase::Running);
        Some((c.owner.clone(), c.server.clone(), c.scopes.clone(), ready))
    });
    let Some((owner, server, scopes, ready)) = offered else {
        return error_page_for(
            &app,
            &headers,
            StatusCode::NOT_FOUND,
            Some("Share not found or expired"),
        );
    };
    if owner == user.as_str() {
        return error_page_for(
            &app,
            &headers,
            StatusCode::FORBIDDEN,
            Some("You can't share with yourself!"),
        );
    }
    let next = valid_next(&app, &headers, q.next.as_deref());
    let ctx = merge(
        common(&app, &headers, peer_ip(&ci)),
        json!({
            "owner": owner,
            "server_name": server,
            "ready": ready,
            "scopes": scopes,
            "code": code,
            "next": next,
        }),
    );
    render(&app, "accept_share.html", StatusCode::OK, ctx)
}

/// `POST H/accept-share`: exchanges the code (XSRF-checked) and goes on.
pub(crate) async fn accept(
    State(app): App,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let user = match logged_in(&app, &headers, &uri) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if body.len() > MAX_FORM {
        return error_page_for(
            &app,
            &headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("The form is too large."),
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !auth::xsrf_ok(
        &app,
        &Method::POST,
        &headers,
        field("_xsrf"),
        Some(peer.ip()),
    ) {
        return error_page_for(
            &app,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form is invalid or expired (XSRF check failed)."),
        );
    }
    let Some(code) = field("code").filter(|c| !c.is_empty()) else {
        return error_page_for(
            &app,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("No share code given"),
        );
    };
    match shares::exchange_code(app.store.as_ref(), &sha256_hex(code), user.as_str()).await {
        Ok((share, v)) => {
            app.replica.wait_for(v).await;
            tracing::info!(
                user = %user,
                owner = %share.owner,
                server = %share.server,
                "share code accepted"
            );
            let to = destination(&app, &headers, field("next"), &share.owner, &share.server);
            redirect(StatusCode::FOUND, &to)
        }
        Err(e) => op_error_page(&app, &headers, e),
    }
}
