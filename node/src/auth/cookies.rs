//! The hub's cookies (§3.6): the encrypted login cookie and the user it names, the
//! identity it gives, and the browser session id.

use axum::http::{header, HeaderMap};
use cookie::{Cookie, CookieJar, Key, SameSite};
use galilean_proto::records::Owner;
use galilean_proto::time::now_micros;

use crate::app::AppState;
use crate::auth::identity::Identity;

pub const LOGIN_COOKIE: &str = "jupyterhub-hub-login";

pub const SESSION_COOKIE: &str = "jupyterhub-session-id";

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

/// The user named by a valid login cookie, and whether an administrator.
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
    let (name, _) = cookie_user(app, &jar)?;
    let owner = Owner::User(name);
    let held = app.replica.read(|s| app.tokens.grants().held(s, &owner))?;
    Some(Identity {
        scopes: held.scopes,
        owner,
        admin: held.admin,
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
            let id = new_session_id();
            let cookie = session_cookie(app, &id);
            (id, Some(cookie))
        }
    }
}

/// A new browser session id: 32 random hex digits, as JupyterHub's `uuid4().hex`.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `jupyterhub-session-id` cookie: path `P`, so servers and services receive it.
pub fn session_cookie(app: &AppState, id: &str) -> Cookie<'static> {
    let mut c = Cookie::new(SESSION_COOKIE, id.to_owned());
    c.set_path(app.base_url.clone());
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c
}
