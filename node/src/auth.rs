//! Who is asking: API tokens (`Authorization: token|bearer`), the hub login cookie, the
//! session-id cookie, and XSRF (§2.1, §3.6, §8.7). Token checks read only the local
//! replica.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, Method};
use base64::Engine;
use cookie::{Cookie, CookieJar, Key, SameSite};
use galilean_actors::policy::scopes::{self, Filter, ScopeOwner, ScopeSet};
use galilean_actors::secrets::sha256_hex;
use galilean_proto::records::Owner;
use galilean_proto::time::now_micros;
use galilean_storage::Version;
use sha2::{Digest, Sha256};

use crate::app::AppState;

pub const LOGIN_COOKIE: &str = "jupyterhub-hub-login";
pub const SESSION_COOKIE: &str = "jupyterhub-session-id";
pub const XSRF_COOKIE: &str = "_xsrf";

/// An authenticated requester.
#[derive(Debug, Clone)]
pub struct Identity {
    pub owner: Owner,
    pub admin: bool,
    /// Shared: a token's identity is resolved once per replica version ([`TokenCache`]).
    pub scopes: Arc<ScopeSet>,
    /// The token used (`None` for cookie authentication).
    pub token_id: Option<u64>,
    pub token_hash: Option<String>,
    pub session_id: Option<String>,
    pub via_cookie: bool,
}

impl Identity {
    pub fn user_name(&self) -> Option<&str> {
        match &self.owner {
            Owner::User(u) => Some(u),
            Owner::Service(_) => None,
        }
    }
}

/// The token of an `Authorization: token X` or `Bearer X` header.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
    if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// Tokens resolved against the replica, by hash, each for the replica version it was
/// resolved at: expanding a token's scopes (its owner's roles, the token's own list, the
/// issuing client's filter) allocates a set per scope, too much to repeat on every request.
/// Any applied change to the replica makes every entry stale, so an answer is never older
/// than the replica it would have been computed from. Keyed by hash: no secret is kept.
#[derive(Default)]
pub struct TokenCache {
    resolved: std::sync::RwLock<HashMap<String, Cached>>,
}

struct Cached {
    version: Version,
    expires_at: Option<i64>,
    identity: Arc<Identity>,
}

impl TokenCache {
    /// More entries than this and the cache starts over (stale entries are only
    /// overwritten otherwise).
    const MAX_ENTRIES: usize = 100_000;

    fn get(&self, hash: &str, version: Version, now: i64) -> Option<Option<Identity>> {
        let map = self.resolved.read().unwrap_or_else(|e| e.into_inner());
        let c = map.get(hash).filter(|c| c.version == version)?;
        if c.expires_at.is_some_and(|e| e <= now) {
            return Some(None);
        }
        Some(Some((*c.identity).clone()))
    }

    fn put(&self, hash: &str, version: Version, expires_at: Option<i64>, identity: Arc<Identity>) {
        let mut map = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES && !map.contains_key(hash) {
            map.clear();
        }
        let cached = Cached {
            version,
            expires_at,
            identity,
        };
        crate::set_entry(&mut map, hash, cached);
    }
}

/// Resolves a token secret: owner, expiry, effective scopes. Reads the local replica
/// only (through [`TokenCache`]).
pub fn identify_token(app: &AppState, secret: &str) -> Option<Identity> {
    let hash = sha256_hex(secret);
    let now = now_micros();
    let version = app.replica.read(|s| s.version);
    if let Some(hit) = app.token_cache.get(&hash, version, now) {
        return hit;
    }
    let (version, expires_at, identity) = app.replica.read(|s| {
        let tok = s.tokens.get(&hash)?;
        let issuer = s.clients.get(&tok.client_id).and_then(|c| {
            if let Some((u, srv)) = &c.server {
                Some(Filter::Server(format!("{u}/{srv}")))
            } else {
                c.service.as_ref().map(|n| Filter::Service(n.clone()))
            }
        });
        let (owner_scopes, admin, owner) = match &tok.owner {
            Owner::User(u) => {
                let user = s.users.get(u)?;
                (
                    scopes::user_scopes(u, user.admin),
                    user.admin,
                    ScopeOwner::User(u.clone()),
                )
            }
            Owner::Service(n) => {
                let svc = app.services.get(n)?;
                (
                    scopes::service_scopes(n, svc.admin),
                    svc.admin,
                    ScopeOwner::Service(n.clone()),
                )
            }
        };
        let scopes = scopes::token_scopes(&tok.scopes, &owner, &owner_scopes, issuer.as_ref());
        let identity = Identity {
            owner: tok.owner.clone(),
            admin,
            scopes: Arc::new(scopes),
            token_id: Some(tok.id),
            token_hash: Some(hash.clone()),
            session_id: tok.session_id.clone(),
            via_cookie: false,
        };
        Some((s.version, tok.expires_at, Arc::new(identity)))
    })?;
    app.token_cache
        .put(&hash, version, expires_at, identity.clone());
    if expires_at.is_some_and(|e| e <= now) {
        return None;
    }
    Some((*identity).clone())
}

/// The parsed request cookies with the hub's key.
pub fn jar(headers: &HeaderMap) -> CookieJar {
    let mut jar = CookieJar::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for c in Cookie::split_parse(s).flatten() {
            jar.add_original(c.into_owned());
        }
    }
    jar
}

/// The login cookie's content: user name, the user's cookie id, issue time.
fn login_payload(name: &str, cookie_id: &str) -> String {
    serde_json::json!({"u": name, "c": cookie_id, "t": now_micros() / 1_000_000}).to_string()
}

/// A `Set-Cookie` for the encrypted login cookie.
pub fn login_cookie(app: &AppState, key: &Key, name: &str, cookie_id: &str) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    let mut c = Cookie::new(LOGIN_COOKIE, login_payload(name, cookie_id));
    c.set_path(app.hub_prefix.clone());
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_max_age(cookie::time::Duration::seconds(app.cookie_max_age_secs));
    jar.private_mut(key).add(c);
    jar.get(LOGIN_COOKIE)
        .cloned()
        .unwrap_or_else(|| Cookie::new(LOGIN_COOKIE, ""))
}

/// The user named by a valid login cookie.
pub fn cookie_user(app: &AppState, jar: &CookieJar) -> Option<(String, bool)> {
    let c = jar.private(&app.cookie_key).get(LOGIN_COOKIE)?;
    let v: serde_json::Value = serde_json::from_str(c.value()).ok()?;
    let name = v.get("u")?.as_str()?;
    let cookie_id = v.get("c")?.as_str()?;
    let issued = v.get("t")?.as_i64()?;
    if now_micros() / 1_000_000 - issued > app.cookie_max_age_secs {
        return None;
    }
    app.replica.read(|s| {
        let u = s.users.get(name)?;
        (u.cookie_id == cookie_id).then(|| (name.to_owned(), u.admin))
    })
}

/// Identity from the login cookie.
pub fn identify_cookie(app: &AppState, headers: &HeaderMap) -> Option<Identity> {
    let jar = jar(headers);
    let (name, admin) = cookie_user(app, &jar)?;
    Some(Identity {
        scopes: Arc::new(scopes::user_scopes(&name, admin)),
        owner: Owner::User(name),
        admin,
        token_id: None,
        token_hash: None,
        session_id: jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()),
        via_cookie: true,
    })
}

/// The browser session id (`jupyterhub-session-id`, §3.6): the request's when it has a
/// well-formed one, else a new one with the cookie that sets it.
pub fn browser_session(app: &AppState, headers: &HeaderMap) -> (String, Option<Cookie<'static>>) {
    let existing = jar(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    match existing {
        Some(id) => (id, None),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let cookie = session_cookie(app, &id);
            (id, Some(cookie))
        }
    }
}

/// The `jupyterhub-session-id` cookie: path `P`, so servers and services receive it.
pub fn session_cookie(app: &AppState, id: &str) -> Cookie<'static> {
    let mut c = Cookie::new(SESSION_COOKIE, id.to_owned());
    c.set_path(app.base_url.clone());
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c
}

/// The XSRF token for the current login state (§8.7): bound to the session and user when
/// logged in, to an anonymous id (client address and `User-Agent`) otherwise.
pub fn xsrf_token(app: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
    let jar = jar(headers);
    match cookie_user(app, &jar) {
        Some((name, _)) => xsrf_for(
            app,
            jar.get(SESSION_COOKIE).map(|c| c.value()).unwrap_or(""),
            &name,
        ),
        None => {
            let ua = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ip = peer.map(|p| p.to_string()).unwrap_or_default();
            xsrf_digest(app, &format!(":anon:{ip}:{ua}"))
        }
    }
}

/// The XSRF token of a logged-in state.
pub fn xsrf_for(app: &AppState, session_id: &str, user: &str) -> String {
    xsrf_digest(app, &format!("{session_id}:{user}"))
}

fn xsrf_digest(app: &AppState, state: &str) -> String {
    let mut h = Sha256::new();
    h.update(app.xsrf_secret.as_slice());
    h.update(state.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h.finalize()[..24])
}

/// Whether a cookie-authenticated request passes XSRF (§2.1): navigation-style GETs
/// need nothing; everything else must carry the token as `_xsrf` (query or form) or
/// `X-XSRFToken` / `X-CSRFToken`.
pub fn xsrf_ok(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query_or_form_xsrf: Option<&str>,
    peer: Option<IpAddr>,
) -> bool {
    if matches!(*method, Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if *method == Method::GET {
        let mode = headers
            .get("sec-fetch-mode")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if mode.is_empty() || mode == "navigate" || mode == "websocket" {
            return true;
        }
    }
    let given = query_or_form_xsrf.or_else(|| {
        headers
            .get("x-xsrftoken")
            .or_else(|| headers.get("x-csrftoken"))
            .and_then(|v| v.to_str().ok())
    });
    let Some(given) = given else { return false };
    let expected = xsrf_token(app, headers, peer);
    subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()
}

/// The `_xsrf` argument from a query string.
pub fn query_xsrf(query: Option<&str>) -> Option<String> {
    let q = query?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "_xsrf")
        .map(|(_, v)| v)
}

pub type Shared = Arc<AppState>;
