//! Logging in and out (§8.1, §8.2): the root redirects, the login form and its post
//! with the dummy authenticator, and logout, which ends the browser session's tokens;
//! both timed for the metrics page.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use galilean_actors::policy::text::clip;
use galilean_proto::names::UserName;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{self, LOGIN_COOKIE, SESSION_COOKIE, XSRF_COOKIE};
use crate::http::respond::{clear_cookie, query_arg, redirect, set_cookie};
use crate::pages::render::{
    common, default_destination, error_page_for, merge, page_user, peer_ip, render, valid_next,
};

type App = State<Arc<AppState>>;

/// Longest login form accepted.
const LOGIN_BODY_LIMIT: usize = 64 * 1024;

pub(crate) async fn root(State(app): App) -> Response {
    redirect(StatusCode::FOUND, &app.hub_prefix)
}

pub(crate) async fn hub_root(State(app): App, headers: HeaderMap) -> Response {
    match page_user(&app, &headers) {
        Some((name, _)) => redirect(StatusCode::FOUND, &default_destination(&app, &name)),
        None => redirect(StatusCode::FOUND, &format!("{}login", app.hub_prefix)),
    }
}

fn login_form(
    app: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    status: StatusCode,
    next: Option<&str>,
    username: Option<&str>,
    error: Option<&str>,
) -> Response {
    let ctx = merge(
        common(app, headers, peer),
        json!({
            "next": next.unwrap_or(""),
            "username": username,
            "login_error": error,
            "login_message": null,
        }),
    );
    let xsrf = ctx["xsrf"].as_str().unwrap_or("").to_owned();
    let mut r = render(app, "login.html", status, ctx);
    let navigate = headers
        .get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|m| m == "navigate");
    if navigate {
        let mut c = Cookie::new(XSRF_COOKIE, xsrf);
        c.set_path(app.hub_prefix.clone());
        c.set_max_age(cookie::time::Duration::seconds(3600));
        c.set_same_site(SameSite::Lax);
        set_cookie(&mut r, &c);
    }
    r
}

pub(crate) async fn login_get(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let next = query_arg(q.as_deref(), "next");
    if let Some((name, _)) = page_user(&app, &headers) {
        let to = valid_next(&app, &headers, next.as_deref())
            .unwrap_or_else(|| default_destination(&app, &name));
        return redirect(StatusCode::FOUND, &to);
    }
    let next = valid_next(&app, &headers, next.as_deref());
    login_form(
        &app,
        &headers,
        peer_ip(&ci),
        StatusCode::OK,
        next.as_deref(),
        None,
        None,
    )
}

/// Whether the dummy authenticator lets `name` in with `password`, and as admin.
fn authenticate(app: &AppState, name: &UserName, password: &str) -> Option<bool> {
    let a = &app.config.authenticator;
    if let Some(expected) = &a.password {
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(expected.expose().as_bytes(), password.as_bytes()).into();
        if !ok {
            return None;
        }
    }
    let admin = a.admin_users.contains(name.as_str());
    let existing = app.replica.read(|s| s.users.contains_key(name.as_str()));
    // as JupyterHub 5+: nobody unless allowed; users added by an admin are allowed
    // when an allow list is in use (`allow_existing_users`)
    let allowed = admin
        || a.allow_all
        || a.allowed_users.contains(name.as_str())
        || (!a.allowed_users.is_empty() && existing);
    allowed.then_some(admin)
}

/// `POST H/login`, timed (JupyterHub's `login_duration_seconds`): a login that lets the
/// user in counts as a success, a refused one (403) as a failure.
pub(crate) async fn login_post(
    state: App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: RawQuery,
    body: Bytes,
) -> Response {
    let began = std::time::Instant::now();
    let app = state.0.clone();
    let r = login_attempt(state, ci, headers, query, body).await;
    match r.status() {
        StatusCode::FOUND => app.measures.login[0].observe(began.elapsed()),
        StatusCode::FORBIDDEN => app.measures.login[1].observe(began.elapsed()),
        _ => {}
    }
    r
}

async fn login_attempt(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let peer = peer_ip(&ci);
    let next_raw = query_arg(q.as_deref(), "next");
    let next = valid_next(&app, &headers, next_raw.as_deref());
    if body.len() > LOGIN_BODY_LIMIT {
        return error_page_for(
            &app,
            &headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("The login form is too large."),
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let xsrf_given = field("_xsrf")
        .map(str::to_owned)
        .or_else(|| query_arg(q.as_deref(), "_xsrf"));
    if !auth::xsrf_ok(
        &app,
        &Method::POST,
        &headers,
        xsrf_given.as_deref(),
        peer.map(|p| p.ip()),
    ) {
        return login_form(
            &app,
            &headers,
            peer,
            StatusCode::FORBIDDEN,
            next.as_deref(),
            field("username"),
            Some("Login form invalid or expired. Try again."),
        );
    }
    let raw_name = field("username").unwrap_or("");
    let password = field("password").unwrap_or("");
    let name = match UserName::normalize(raw_name) {
        Ok(n) => n,
        Err(e) => {
            tracing::info!(username = %clip(raw_name), "login refused: {e}");
            let shown = clip(raw_name.trim());
            return login_form(
                &app,
                &headers,
                peer,
                StatusCode::FORBIDDEN,
                next.as_deref(),
                Some(&shown),
                Some(&format!("Invalid username: {e}.")),
            );
        }
    };
    let Some(admin) = authenticate(&app, &name, password) else {
        tracing::info!(username = %clip(name.as_str()), "failed login");
        return login_form(
            &app,
            &headers,
            peer,
            StatusCode::FORBIDDEN,
            next.as_deref(),
            Some(name.as_str()),
            Some("Invalid username or password"),
        );
    };
    let rec = match galilean_actors::store::users::ensure_user(
        app.store.as_ref(),
        name.as_str(),
        admin.then_some(true),
    )
    .await
    {
        Ok((rec, v)) => {
            app.replica.wait_for(v).await;
            rec
        }
        Err(e) => {
            let e = crate::error::HttpError::from(e);
            return error_page_for(&app, &headers, e.status, e.message.as_deref());
        }
    };
    tracing::info!(user = %clip(name.as_str()), "logged in");
    let to = next.unwrap_or_else(|| default_destination(&app, name.as_str()));
    let mut r = redirect(StatusCode::FOUND, &to);
    // a new session at every login: an id planted before it (fixation) names nothing
    let session = auth::new_session_id();
    set_cookie(&mut r, &auth::session_cookie(&app, &session));
    let lc = auth::login_cookie(&app, &app.cookie_key, &rec.name, &rec.cookie_id);
    set_cookie(&mut r, &lc);
    // the XSRF token of the new login state
    let xsrf = auth::xsrf_for(&app, &session, &rec.name);
    let mut xc = Cookie::new(XSRF_COOKIE, xsrf);
    xc.set_path(app.hub_prefix.clone());
    xc.set_same_site(SameSite::Lax);
    set_cookie(&mut r, &xc);
    r
}

/// `GET H/logout`, timed (JupyterHub's `logout_duration_seconds`).
pub(crate) async fn logout(state: App, headers: HeaderMap) -> Response {
    let began = std::time::Instant::now();
    let app = state.0.clone();
    let r = logout_now(state, headers).await;
    app.measures.logout.observe(began.elapsed());
    r
}

async fn logout_now(State(app): App, headers: HeaderMap) -> Response {
    let jar = auth::jar(&headers);
    if let Some((name, _)) = auth::cookie_user(&app, &jar) {
        if let Some(session) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) {
            if let Ok(user) = UserName::parse(&name) {
                let ended = app.router.end_session(&user, &session).await;
                if let Err(e) = ended {
                    // the cookies are not cleared: logging out must not look done when
                    // the session's tokens still work
                    let e = crate::error::HttpError::from(e);
                    return error_page_for(&app, &headers, e.status, e.message.as_deref());
                }
            }
        }
        tracing::info!(user = %clip(&name), "logged out");
    }
    let mut r = redirect(StatusCode::FOUND, &format!("{}login", app.hub_prefix));
    clear_cookie(&mut r, SESSION_COOKIE, app.base_url.clone());
    clear_cookie(&mut r, LOGIN_COOKIE, app.hub_prefix.clone());
    clear_cookie(
        &mut r,
        "jupyterhub-services",
        format!("{}services", app.base_url),
    );
    clear_cookie(&mut r, XSRF_COOKIE, app.hub_prefix.clone());
    r
}
