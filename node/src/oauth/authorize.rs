//! The authorize endpoint (§3.2): a logged-in browser's request checked against the
//! client (redirect URI, scopes it may grant), a code issued at once for the user's own
//! server, and a consent page for anyone else's client.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::secrets::random_alnum;
use galilean_actors::store::oauth;
use galilean_proto::records::{OAuthClientRecord, OAuthCodeRecord, FORMAT};
use galilean_proto::time::now_micros;
use serde_json::json;

use crate::app::AppState;
use crate::auth;
use crate::http::respond::{login_redirect, set_cookie, urlencode};

type App = State<Arc<AppState>>;

/// Codes are valid this long (§3.2).
pub const CODE_LIFETIME_SECS: i64 = 300;
/// Length of an authorization code.
const CODE_LEN: usize = 30;
/// The identify scopes every grant carries.
const IDENTIFY: &[&str] = &["read:users:name!user", "read:users:groups!user"];

/// A parsed authorize request.
struct AuthorizeRequest {
    client: Arc<OAuthClientRecord>,
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn page_error(app: &AppState, status: StatusCode, message: &str) -> Response {
    crate::pages::error_page(app, status, Some(message))
}

fn redirect(location: &str) -> Response {
    crate::http::respond::redirect(StatusCode::FOUND, location)
}

/// `redirect_uri` with `params` added to its query.
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&urlencode(v));
        sep = '&';
    }
    out
}

/// Validates the request; fatal problems (unknown client, redirect mismatch) render a
/// 400 page, redirectable ones go back to the client.
#[allow(clippy::result_large_err)]
fn parse_authorize(app: &AppState, query: Option<&str>) -> Result<AuthorizeRequest, Response> {
    let pairs: Vec<(String, String)> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let arg = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(client_id) = arg("client_id").filter(|c| !c.is_empty()) else {
        return Err(page_error(
            app,
            StatusCode::BAD_REQUEST,
            "Missing client_id",
        ));
    };
    let client = app
        .replica
        .read(|s| s.clients.get(&client_id).cloned())
        .filter(|c| !c.secret_hash.is_empty());
    let Some(client) = client else {
        return Err(page_error(
            app,
            StatusCode::BAD_REQUEST,
            "Invalid client_id: no such OAuth client",
        ));
    };
    let redirect_uri = match arg("redirect_uri") {
        Some(r) if r != client.redirect_uri => {
            return Err(page_error(
                app,
                StatusCode::BAD_REQUEST,
                "Mismatching redirect URI.",
            ))
        }
        _ => client.redirect_uri.clone(),
    };
    let state = arg("state");
    let back = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            params.push(("state", s));
        }
        redirect(&with_params(&redirect_uri, &params))
    };
    match arg("response_type").as_deref() {
        Some("code") => {}
        None => return Err(back("invalid_request", "Missing response_type parameter.")),
        Some(_) => return Err(back("unsupported_response_type", "")),
    }
    let code_challenge = arg("code_challenge").filter(|c| !c.is_empty());
    let code_challenge_method = match (&code_challenge, arg("code_challenge_method")) {
        (None, _) => None,
        (Some(_), None) => Some("plain".to_owned()),
        (Some(_), Some(m)) if m == "S256" || m == "plain" => Some(m),
        (Some(_), Some(_)) => {
            return Err(back(
                "invalid_request",
                "Transform algorithm not supported.",
            ))
        }
    };
    if let Some(c) = &code_challenge {
        // RFC 7636: 43-128 characters of [A-Za-z0-9-._~]
        if c.len() < 43
            || c.len() > 128
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(back("invalid_request", "Invalid code_challenge."));
        }
    }
    // the grant: the client's allowed scopes plus identify; a `scope` argument can only
    // narrow it
    let mut allowed: Vec<String> = client.allowed_scopes.clone();
    for s in IDENTIFY {
        if !allowed.iter().any(|a| a == s) {
            allowed.push((*s).to_owned());
        }
    }
    let scopes = match arg("scope").filter(|s| !s.trim().is_empty()) {
        None => allowed,
        Some(requested) => {
            let mut granted = Vec::new();
            for s in requested.split_whitespace() {
                if s == "identify" {
                    continue;
                }
                if !allowed.iter().any(|a| a == s) {
                    return Err(back(
                        "invalid_scope",
                        &format!("Not allowed to request scope {s}"),
                    ));
                }
                granted.push(s.to_owned());
            }
            for s in IDENTIFY {
                if !granted.iter().any(|g| g == s) {
                    granted.push((*s).to_owned());
                }
            }
            granted
        }
    };
    Ok(AuthorizeRequest {
        client,
        redirect_uri,
        state,
        scopes,
        code_challenge,
        code_challenge_method,
    })
}

/// The user's permission for the client's target (§3.2 step 3).
fn may_access(app: &AppState, id: &auth::Identity, client: &OAuthClientRecord) -> bool {
    let (base, target) = if let Some((u, s)) = &client.server {
        ("access:servers", Target::Server { user: u, server: s })
    } else if let Some(name) = &client.service {
        ("access:services", Target::Service(name))
    } else {
        return false;
    };
    app.replica
        .read(|s| id.scopes.check_in(base, target, s) == Access::Allowed)
}

/// A valid request from a user who may use the client (§3.2 steps 2-3), and the user.
#[allow(clippy::result_large_err)]
fn checked_request(
    app: &AppState,
    id: &auth::Identity,
    query: Option<&str>,
) -> Result<(AuthorizeRequest, String), Response> {
    let req = parse_authorize(app, query)?;
    let Some(user) = id.user_name().map(str::to_owned) else {
        return Err(page_error(
            app,
            StatusCode::FORBIDDEN,
            "Only users can authorize clients",
        ));
    };
    if !may_access(app, id, &req.client) {
        tracing::info!(user = %user, client = %req.client.client_id, "authorize refused");
        return Err(page_error(
            app,
            StatusCode::FORBIDDEN,
            &format!(
                "You do not have permission to access {}",
                req.client.description
            ),
        ));
    }
    Ok((req, user))
}

/// Whether consent is skipped: the client is one of the user's own servers.
fn own_server(user: &str, client: &OAuthClientRecord) -> bool {
    client.server.as_ref().is_some_and(|(u, _)| u == user)
}

async fn issue_code(
    app: &AppState,
    headers: &HeaderMap,
    user: &str,
    req: &AuthorizeRequest,
    scopes: Vec<String>,
) -> Response {
    let (session_id, new_cookie) = auth::browser_session(app, headers);
    let code = random_alnum(CODE_LEN);
    let rec = OAuthCodeRecord {
        v: FORMAT,
        client_id: req.client.client_id.clone(),
        user: user.to_owned(),
        scopes,
        redirect_uri: req.redirect_uri.clone(),
        session_id: Some(session_id),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        expires_at: now_micros() + CODE_LIFETIME_SECS * 1_000_000,
    };
    if let Err(e) = oauth::insert_code(app.store.as_ref(), &code, &rec).await {
        let e = crate::error::HttpError::from(e);
        return page_error(app, e.status, e.message.as_deref().unwrap_or("error"));
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    let mut r = redirect(&with_params(&req.redirect_uri, &params));
    if let Some(c) = new_cookie {
        set_cookie(&mut r, &c);
    }
    r
}

/// `GET H/api/oauth2/authorize`.
pub async fn authorize(
    State(app): App,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(id) = auth::identify_cookie(&app, &headers) else {
        return login_redirect(&app, &uri);
    };
    let (req, user) = match checked_request(&app, &id, q.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if own_server(&user, &req.client) {
        let scopes = req.scopes.clone();
        return issue_code(&app, &headers, &user, &req, scopes).await;
    }
    // anyone else's client: ask first
    let ctx = json!({
        "base_url": app.base_url,
        "hub_prefix": app.hub_prefix,
        "user": user,
        "admin": id.admin,
        "xsrf": auth::xsrf_token(&app, &headers, Some(peer.ip())),
        "version": galilean_proto::GALILEAN_VERSION,
        "jupyterhub_version": galilean_proto::JUPYTERHUB_VERSION,
        "client_description": req.client.description,
        "scopes": req.scopes,
    });
    match app
        .templates
        .render("oauth.html", minijinja::Value::from_serialize(&ctx))
    {
        Ok(html) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("cannot render oauth.html: {e}");
            page_error(&app, StatusCode::INTERNAL_SERVER_ERROR, "template error")
        }
    }
}

/// `POST H/api/oauth2/authorize`: the consent form.
pub async fn authorize_post(
    State(app): App,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let Some(id) = auth::identify_cookie(&app, &headers) else {
        return login_redirect(&app, &uri);
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let xsrf = form
        .iter()
        .find(|(k, _)| k == "_xsrf")
        .map(|(_, v)| v.clone());
    if !auth::xsrf_ok(
        &app,
        &Method::POST,
        &headers,
        xsrf.as_deref(),
        Some(peer.ip()),
    ) {
        return page_error(
            &app,
            StatusCode::FORBIDDEN,
            "The form is invalid or expired (XSRF check failed).",
        );
    }
    let (req, user) = match checked_request(&app, &id, q.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // only what the GET offered can be granted
    let mut scopes: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "scopes")
        .map(|(_, v)| v.clone())
        .filter(|s| req.scopes.contains(s))
        .collect();
    for s in IDENTIFY {
        if !scopes.iter().any(|g| g == s) {
            scopes.push((*s).to_owned());
        }
    }
    issue_code(&app, &headers, &user, &req, scopes).await
}
