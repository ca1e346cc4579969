//! The hub's browser pages (§8): login, logout, home, spawn, spawn-pending, the "not
//! running" handler for servers without a route (§8.6), `user-redirect`, and error pages.
//! Every page is rendered from a template; user-supplied text is escaped by the template
//! engine (auto-escaping is on for `.html`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cookie::{Cookie, SameSite};
use galilean_actors::policy::scopes::{Access, Target};
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use galilean_proto::time::iso;
use galilean_proto::wire::StartOutcome;
use serde_json::{json, Value};

use crate::api::users::clip;
use crate::app::AppState;
use crate::auth::{self, LOGIN_COOKIE, SESSION_COOKIE, XSRF_COOKIE};
use crate::next_url;

pub mod templates;

type App = State<Arc<AppState>>;

/// Longest login form accepted.
const LOGIN_BODY_LIMIT: usize = 64 * 1024;
/// How long the spawn page waits for a start to fail at once before going to the
/// pending page.
const SPAWN_FAST_FAIL: Duration = Duration::from_secs(1);
/// Redirects back to the proxy before giving up on a route that does not appear.
const USER_REDIRECT_LIMIT: u32 = 4;

/// The hub's whole router: API, OAuth and pages, under `hub.base_url`.
pub fn router(app: Arc<AppState>) -> axum::Router {
    let p = app.base_url.clone();
    let h = app.hub_prefix.clone();
    let api = format!("{h}api");
    let hub = |path: &str| format!("{h}{path}");
    let mut r: Router<Arc<AppState>> = crate::api::routes(&api)
        .route(&hub("health"), get(crate::api::misc::health))
        .route(&format!("{api}/health"), get(crate::api::misc::health))
        .route(&hub("login"), get(login_get).post(login_post))
        .route(&hub("logout"), get(logout))
        .route(&hub("home"), get(home))
        .route(&hub("token"), get(token_page))
        .route(&hub("spawn"), get(spawn_self).post(spawn_self))
        .route(&hub("spawn/{user}"), get(spawn_user).post(spawn_user))
        .route(
            &hub("spawn/{user}/{server}"),
            get(spawn_named).post(spawn_named),
        )
        .route(&hub("spawn-pending/{user}"), get(pending_user))
        .route(&hub("spawn-pending/{user}/{server}"), get(pending_named))
        .route(&hub("user/{user}"), axum::routing::any(hub_user_url))
        .route(
            &hub("user/{user}/{*rest}"),
            axum::routing::any(hub_user_url),
        )
        .route(&hub("user-redirect/{*rest}"), get(user_redirect))
        .route(&format!("{p}user/{{user}}"), axum::routing::any(user_url))
        .route(
            &format!("{p}user/{{user}}/{{*rest}}"),
            axum::routing::any(user_url),
        )
        .route(&format!("{p}user-redirect/{{*rest}}"), get(prefix_redirect))
        .route(&h, get(hub_root))
        .route(h.trim_end_matches('/'), get(hub_root));
    if p != "/" {
        r = r.route(p.trim_end_matches('/'), get(root));
    }
    r = r.route(&p, get(root));
    r.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            applied_everywhere,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::front::MAX_HUB_BODY,
        ))
        .with_state(app)
}

/// In a cluster, a request that wrote answers only once every live node has applied
/// what this one has (or has surely stopped serving: see `Router::await_everywhere`), so
/// that whatever the answer reports is what every node answers next: a user created
/// through one node is read through any other as soon as the 201 arrives, and an OAuth
/// code issued by one node is redeemed at another. Reads never wait.
async fn applied_everywhere(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    // GETs that write: issuing an OAuth code, and the spawn pages
    let may_write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path.ends_with("/oauth2/authorize")
        || path
            .strip_prefix(app.hub_prefix.as_str())
            .is_some_and(|rest| rest.starts_with("spawn"));
    let before = app.replica.version();
    let response = next.run(req).await;
    if may_write && app.replica.version() > before {
        galilean_actors::membership::await_everywhere(&app.router).await;
    }
    response
}

// ---------------------------------------------------------------------------------------
// rendering

/// The page context every template gets.
fn common(app: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Value {
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

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
    base
}

/// Renders `name` with `ctx`; a broken (overriding) template gives a plain page rather
/// than a panic.
fn render(app: &AppState, name: &str, status: StatusCode, ctx: Value) -> Response {
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

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            *r.status_mut() = StatusCode::BAD_REQUEST;
        }
    }
    r
}

pub(crate) fn set_cookie(r: &mut Response, c: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn clear_cookie(r: &mut Response, name: &'static str, path: String) {
    let mut c = Cookie::new(name, "");
    c.set_path(path);
    c.make_removal();
    set_cookie(r, &c);
}

/// `P + "hub/login?next=<uri>"`.
pub(crate) fn login_redirect(app: &AppState, uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let location = format!("{}login?next={}", app.hub_prefix, urlencode(next));
    redirect(StatusCode::FOUND, &location)
}

pub(crate) fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Query parameters as pairs (malformed ones are ignored).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

fn query_arg(q: Option<&str>, name: &str) -> Option<String> {
    query_pairs(q)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
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
fn valid_next(app: &AppState, headers: &HeaderMap, next: Option<&str>) -> Option<String> {
    next_url::validate(next?, &own_origins(app, headers))
}

/// Where a logged-in user goes by default (§8.3): their server when it runs, else the
/// spawn page.
fn default_destination(app: &AppState, name: &str) -> String {
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

fn server_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    galilean_proto::names::server_prefix(&app.base_url, user, server)
}

/// The logged-in user of a page request: (name, admin).
fn page_user(app: &AppState, headers: &HeaderMap) -> Option<(String, bool)> {
    let jar = auth::jar(headers);
    let user = auth::cookie_user(app, &jar)?;
    if let Ok(mut m) = app.user_activity.lock() {
        m.insert(user.0.clone(), galilean_proto::time::now_micros());
    }
    Some(user)
}

/// The logged-in user of a page, or the response that sends the browser to log in.
#[allow(clippy::result_large_err)]
fn logged_in(app: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<UserName, Response> {
    let Some((name, _)) = page_user(app, headers) else {
        return Err(login_redirect(app, uri));
    };
    UserName::parse(&name)
        .map_err(|_| error_page_for(app, headers, StatusCode::BAD_REQUEST, Some("Invalid user")))
}

fn peer_ip(ci: &ConnectInfo<SocketAddr>) -> Option<SocketAddr> {
    Some(ci.0)
}

// ---------------------------------------------------------------------------------------
// root, login, logout

async fn root(State(app): App) -> Response {
    redirect(StatusCode::FOUND, &app.hub_prefix)
}

async fn hub_root(State(app): App, headers: HeaderMap) -> Response {
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

async fn login_get(
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

async fn login_post(
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
    let (session, _) = auth::browser_session(&app, &headers);
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

async fn logout(State(app): App, headers: HeaderMap) -> Response {
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

// ---------------------------------------------------------------------------------------
// home and token pages

async fn home(
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

async fn token_page(
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

// ---------------------------------------------------------------------------------------
// spawn and spawn-pending

/// Resolves the (user, server) a spawn-like page is about and checks that the logged-in
/// user may act on it with `scope`.
#[allow(clippy::result_large_err)]
fn page_target(
    app: &AppState,
    headers: &HeaderMap,
    me: &(String, bool),
    user: Option<&str>,
    server: Option<&str>,
    scope: &str,
) -> Result<(UserName, ServerName), Response> {
    let user_s = user.unwrap_or(&me.0);
    let user = UserName::parse(user_s).map_err(|_| {
        error_page_for(
            app,
            headers,
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {}", clip(user_s))),
        )
    })?;
    let server = match server {
        None | Some("") => ServerName::default(),
        Some(s) => {
            if !app.config.hub.allow_named_servers {
                return Err(error_page_for(
                    app,
                    headers,
                    StatusCode::BAD_REQUEST,
                    Some("Named servers are not enabled."),
                ));
            }
            ServerName::parse(s).map_err(|e| {
                error_page_for(
                    app,
                    headers,
                    StatusCode::BAD_REQUEST,
                    Some(&format!("Invalid server name {:?}: {e}", clip(s))),
                )
            })?
        }
    };
    let scopes = galilean_actors::policy::scopes::user_scopes(&me.0, me.1);
    let target = Target::Server {
        user: user.as_str(),
        server: server.as_str(),
    };
    match scopes.check(scope, target) {
        Access::Allowed => {}
        _ => {
            return Err(error_page_for(
                app,
                headers,
                StatusCode::FORBIDDEN,
                Some(&format!(
                    "You do not have permission to act on the server of {}",
                    clip(user.as_str())
                )),
            ))
        }
    }
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(error_page_for(
            app,
            headers,
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {}", clip(user.as_str()))),
        ));
    }
    Ok((user, server))
}

/// `<esc user>[/<esc server>]`, as the spawn and pending pages name a server.
fn server_suffix(user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        user.escaped()
    } else {
        format!("{}/{}", user.escaped(), server.escaped())
    }
}

fn pending_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    format!(
        "{}spawn-pending/{}",
        app.hub_prefix,
        server_suffix(user, server)
    )
}

fn spawn_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    format!("{}spawn/{}", app.hub_prefix, server_suffix(user, server))
}

/// The §5.6 progress stream of a server.
fn progress_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        format!(
            "{}api/users/{}/server/progress",
            app.hub_prefix,
            user.escaped()
        )
    } else {
        format!(
            "{}api/users/{}/servers/{}/progress",
            app.hub_prefix,
            user.escaped(),
            server.escaped()
        )
    }
}

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

async fn spawn_self(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    spawn(&app, ci, method, &headers, &uri, None, None, &body).await
}

async fn spawn_user(
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

async fn spawn_named(
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
    let display_name = query_arg(q, "display_name")
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty() && d.chars().count() <= 255 && !d.chars().any(char::is_control));
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

fn with_next(url: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => format!("{url}?next={}", urlencode(n)),
        None => url.to_owned(),
    }
}

fn op_error_page(app: &AppState, headers: &HeaderMap, e: galilean_actors::OpError) -> Response {
    let e = crate::error::HttpError::from(e);
    error_page_for(app, headers, e.status, e.message.as_deref())
}

async fn pending_user(
    State(app): App,
    ci: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
) -> Response {
    spawn_pending(&app, ci, &headers, &uri, &user, None).await
}

async fn pending_named(
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
fn not_running_page(
    app: &AppState,
    headers: &HeaderMap,
    me: &(String, bool),
    user: &UserName,
    server: &ServerName,
    spawn_url: &str,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let scopes = galilean_actors::policy::scopes::user_scopes(&me.0, me.1);
    let may_spawn = scopes.check(
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

// ---------------------------------------------------------------------------------------
// /user/... without a route (§8.6), user-redirect

/// `P/user/...` reached the hub: the proxy has no route for it. GETs are sent to
/// `H/user/...` (where the login cookie is sent); other methods are answered here.
async fn user_url(
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

async fn hub_user_url(
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

fn json_error(status: StatusCode, message: &str) -> Response {
    crate::error::HttpError::new(status, message).into_response()
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
        .and_then(|t| auth::identify_token(app, t))
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
        if get && id.scopes.check("access:servers", target) != Access::Allowed {
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
async fn prefix_redirect(State(app): App, uri: Uri) -> Response {
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
async fn user_redirect(State(app): App, headers: HeaderMap, uri: Uri) -> Response {
    let user = match logged_in(&app, &headers, &uri) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let prefix = format!("{}user-redirect/", app.hub_prefix);
    let raw = uri.path().strip_prefix(&prefix).unwrap_or("");
    // keep it a path below the user's prefix: no '..' tricks, no leading slashes
    let rest = raw.trim_start_matches('/');
    if rest
        .split('/')
        .any(|seg| seg == ".." || seg == "%2e%2e" || seg == "%2E%2E")
        || rest.contains('\\')
    {
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

async fn not_found(State(app): App, headers: HeaderMap, uri: Uri) -> Response {
    if uri.path().starts_with(&app.api_prefix())
        || uri.path() == app.api_prefix().trim_end_matches('/')
    {
        return json_error(StatusCode::NOT_FOUND, "Not Found");
    }
    error_page_for(&app, &headers, StatusCode::NOT_FOUND, None)
}
