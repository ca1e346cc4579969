//! How a page is made: the context every template gets (the logged-in user, the XSRF
//! token, versions), rendering with escaping, error pages, the logged-in user of a page,
//! and where a browser goes next (a validated `next`, or the user's default place).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth;
use crate::http::next_url;
use crate::http::respond::{login_redirect, urlencode};

/// The page context every template gets.
pub(crate) fn common(app: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Value {
    let jar = auth::jar(headers);
    let user = auth::cookie_user(app, &jar);
    json!({
        "base_url": app.base_url,
        "hub_prefix": app.hub_prefix,
        "user": user.as_ref().map(|u| u.0.clone()),
        "admin": user.as_ref().is_some_and(|u| u.1),
        "xsrf": auth::xsrf_token(app, headers, peer.map(|p| p.ip())),
        "version": galilean_proto::GALILEAN_VERSION,
        "jupyterhub_version": galilean_proto::JUPYTERHUB_VERSION,
        "api_base": app.api_prefix(),
    })
}

pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
    base
}

/// Renders `name` with `ctx`; a broken (overriding) template gives a plain page rather
/// than a panic.
pub(crate) fn render(app: &AppState, name: &str, status: StatusCode, ctx: Value) -> Response {
    let html = match app
        .templates
        .render(name, minijinja::Value::from_serialize(&ctx))
    {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(template = name, "cannot render page: {e}");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page template could not be rendered; the hub log says why.",
            )
                .into_response();
        }
    };
    let mut r = (status, html).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An HTML error page, outside a request's context.
pub fn error_page(app: &AppState, status: StatusCode, message: Option<&str>) -> Response<Body> {
    error_page_for(app, &HeaderMap::new(), status, message)
}

/// An HTML error page for a request (its login state shows in the page header).
pub(crate) fn error_page_for(
    app: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let ctx = merge(
        common(app, headers, None),
        json!({
            "status_code": status.as_u16(),
            "status_message": status.canonical_reason().unwrap_or("Error"),
            "message": message,
        }),
    );
    render(app, "error.html", status, ctx)
}

pub(crate) fn op_error_page(
    app: &AppState,
    headers: &HeaderMap,
    e: galilean_actors::OpError,
) -> Response {
    let e = crate::error::HttpError::from(e);
    error_page_for(app, headers, e.status, e.message.as_deref())
}

/// The logged-in user of a page request: (name, admin).
pub(crate) fn page_user(app: &AppState, headers: &HeaderMap) -> Option<(String, bool)> {
    let jar = auth::jar(headers);
    let user = auth::cookie_user(app, &jar)?;
    if let Ok(mut m) = app.user_activity.lock() {
        m.insert(user.0.clone(), galilean_proto::time::now_micros());
    }
    Some(user)
}

/// The logged-in user of a page, or the response that sends the browser to log in.
#[allow(clippy::result_large_err)]
pub(crate) fn logged_in(
    app: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<UserName, Response> {
    let Some((name, _)) = page_user(app, headers) else {
        return Err(login_redirect(app, uri));
    };
    UserName::parse(&name)
        .map_err(|_| error_page_for(app, headers, StatusCode::BAD_REQUEST, Some("Invalid user")))
}

pub(crate) fn peer_ip(ci: &ConnectInfo<SocketAddr>) -> Option<SocketAddr> {
    Some(ci.0)
}

/// The request's own origin(s) plus `public_url`, for `next` validation.
fn own_origins(app: &AppState, headers: &HeaderMap) -> Vec<String> {
    let mut out = app.own_origins.clone();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        if !host.is_empty() && !host.contains(['/', '\\', '@']) {
            out.push(format!("http://{host}"));
            out.push(format!("https://{host}"));
            out.push(format!("//{host}"));
        }
    }
    out
}

/// The validated `next`, or None.
pub(crate) fn valid_next(
    app: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
) -> Option<String> {
    next_url::validate(next?, &own_origins(app, headers))
}

pub(crate) fn with_next(url: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => format!("{url}?next={}", urlencode(n)),
        None => url.to_owned(),
    }
}

/// Where a logged-in user goes by default (§8.3): their server when it runs, else the
/// spawn page.
pub(crate) fn default_destination(app: &AppState, name: &str) -> String {
    let running = app.replica.read(|s| {
        s.servers
            .get(&(name.to_owned(), String::new()))
            .is_some_and(|r| r.phase == ServerPhase::Running)
    });
    match UserName::parse(name) {
        Ok(u) if running => {
            galilean_proto::names::server_prefix(&app.base_url, &u, &ServerName::default())
        }
        _ => format!("{}spawn", app.hub_prefix),
    }
}

pub(crate) fn server_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    galilean_proto::names::server_prefix(&app.base_url, user, server)
}
