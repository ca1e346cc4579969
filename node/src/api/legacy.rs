//! The deprecated endpoints JupyterHub 6.1.1 still serves (§2.14): who owns a token
//! (`GET /authorizations/token/{token}`), the removed token request
//! (`POST /authorizations/token`), who a login cookie names
//! (`GET /authorizations/cookie/{name}[/{value}]`), and `POST /users/{name}/admin-access`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cookie::{Cookie, CookieJar};
use galilean_actors::policy::scopes::{Access, ScopeOwner, ScopeSet, Target};
use galilean_actors::policy::text::clip;
use galilean_actors::replica::State as Replicated;
use galilean_actors::secrets::sha256_hex;
use galilean_proto::records::Owner;
use galilean_proto::time::now_micros;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::caller::{require, Caller};
use crate::api::models::user_model;
use crate::app::AppState;
use crate::auth::{cookie_user, Identity};
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

#[derive(Deserialize, Default)]
pub struct ModelQuery {
    include_stopped_servers: Option<String>,
}

impl ModelQuery {
    fn include_stopped(&self) -> bool {
        self.include_stopped_servers
            .as_deref()
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
    }
}

/// JupyterHub's `token_authenticated`: the caller must come with a token in the
/// `Authorization` header; a login cookie does not do. 403, message null, otherwise.
fn token_caller(caller: Option<Caller>) -> ApiResult<Identity> {
    match caller {
        Some(Caller(id)) if !id.via_cookie => Ok(id),
        _ => Err(HttpError::bare(StatusCode::FORBIDDEN)),
    }
}

/// The user-model scopes (JupyterHub's access map): holding none of them for a user, a
/// requester sees `{}` of it.
const USER_MODEL_SCOPES: &[&str] = &[
    "read:users",
    "read:users:name",
    "read:users:groups",
    "read:users:activity",
    "read:servers",
    "read:roles:users",
    "admin:auth_state",
];

/// `user`'s model as `scopes` may see it; `{}` when they see nothing of it.
fn visible_user_model(
    app: &AppState,
    s: &Replicated,
    name: &str,
    scopes: &ScopeSet,
    include_stopped: bool,
) -> Option<Value> {
    let user = s.users.get(name)?;
    let sees = USER_MODEL_SCOPES
        .iter()
        .any(|base| scopes.check_in(base, Target::User(name), s) == Access::Allowed);
    Some(if sees {
        user_model(app, s, user, scopes, include_stopped)
    } else {
        Value::Object(Map::new())
    })
}

/// A service's model (§2.13) with the keys `scopes` grant: `kind`, `name`, `admin` with
/// `read:services:name`, the rest with `read:services`, `roles` with
/// `read:roles:services`.
fn service_model(app: &AppState, s: &Replicated, name: &str, scopes: &ScopeSet) -> Value {
    let t = Target::Service(name);
    let has = |base: &str| scopes.check_in(base, t, s) == Access::Allowed;
    let (all, names, roles) = (
        has("read:services"),
        has("read:services:name"),
        has("read:roles:services"),
    );
    let service = app.services.get(name);
    let mut m = Map::new();
    if all || names || roles {
        m.insert("kind".into(), "service".into());
        m.insert("name".into(), name.into());
        m.insert("admin".into(), service.is_some_and(|svc| svc.admin).into());
    }
    if all {
        let url = service.and_then(|svc| svc.url.clone());
        let prefix = match &url {
            Some(_) => format!("{}services/{name}/", app.base_url),
            None => String::new(),
        };
        m.extend([
            ("url".into(), url.unwrap_or_default().into()),
            ("prefix".into(), prefix.into()),
            ("command".into(), json!([])),
            ("pid".into(), 0.into()),
            ("info".into(), json!({})),
            ("display".into(), true.into()),
        ]);
    }
    if roles {
        let rbac = app.tokens.grants().rbac();
        m.insert(
            "roles".into(),
            json!(rbac.service_roles(name).unwrap_or_default()),
        );
    }
    Value::Object(m)
}

/// `GET /hub/api/authorizations/token/{token}`: the model of the token's owner, as the
/// caller sees it with the owner's identify scopes added (JupyterHub: having the token
/// means being able to identify its owner). Any token-authenticated caller; 404 for a
/// token that does not authenticate (unknown, expired, or its owner gone). Notes the
/// token's use, as JupyterHub does.
pub async fn token_owner(
    State(app): App,
    caller: Option<Caller>,
    Path(token): Path<String>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Response> {
    let id = token_caller(caller)?;
    // never the token itself
    tracing::warn!(
        "/authorizations/token/:token endpoint is deprecated in JupyterHub 2.0. Use /api/user"
    );
    let hash = sha256_hex(&token);
    let now = now_micros();
    let found = app.replica.read(|s| {
        let tok = s.tokens.get(&hash)?;
        if tok.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        let (identify, owner) = match &tok.owner {
            Owner::User(u) => (
                ScopeSet::expand(
                    &["read:users:name!user", "read:users:groups!user"],
                    &ScopeOwner::User(u.clone()),
                    None,
                ),
                u,
            ),
            Owner::Service(n) => (
                ScopeSet::expand(
                    &["read:services:name!service"],
                    &ScopeOwner::Service(n.clone()),
                    None,
                ),
                n,
            ),
        };
        let mut scopes = (*id.scopes).clone();
        scopes.union(&identify.unwrap_or_default());
        let model = match &tok.owner {
            Owner::User(_) => visible_user_model(&app, s, owner, &scopes, q.include_stopped())?,
            Owner::Service(_) => {
                if !app.services.contains_key(owner.as_str()) {
                    return None;
                }
                service_model(&app, s, owner, &scopes)
            }
        };
        Some((model, tok.owner.clone()))
    });
    let Some((model, owner)) = found else {
        return Err(HttpError::bare(StatusCode::NOT_FOUND));
    };
    if let Ok(mut m) = app.token_activity.lock() {
        crate::set_entry(&mut m, &hash, now);
    }
    if let Owner::User(u) = &owner {
        if let Ok(mut m) = app.user_activity.lock() {
            crate::set_entry(&mut m, u, now);
        }
    }
    Ok(Json(model).into_response())
}

/// `POST /hub/api/authorizations/token` (and with a token after it): removed in
/// JupyterHub 2.0, a 404 saying where tokens come from now.
pub async fn token_request() -> HttpError {
    HttpError::not_found(
        "Deprecated endpoint /hub/api/authorizations/token is removed in JupyterHub 2.0. \
         Use /hub/api/users/:user/tokens instead.",
    )
}

/// `GET /hub/api/authorizations/cookie/{cookie_name}/{cookie_value}`: the user a hub
/// login cookie value names, as the caller may see it; any token-authenticated caller;
/// 404 for a value that names nobody (or a cookie other than the login cookie).
pub async fn cookie_owner_in_path(
    State(app): App,
    caller: Option<Caller>,
    Path((name, value)): Path<(String, String)>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Response> {
    let id = token_caller(caller)?;
    cookie_owner(&app, &id, &name, &value, &q)
}

/// `GET /hub/api/authorizations/cookie/{cookie_name}`: as with the value in the path,
/// the value taken from the request's body, as JupyterHub does (not its `Cookie`
/// header); an empty body names nobody.
pub async fn cookie_owner_in_body(
    State(app): App,
    caller: Option<Caller>,
    Path(name): Path<String>,
    Query(q): Query<ModelQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = token_caller(caller)?;
    tracing::warn!("Cookie values in request body is deprecated, use `/cookie_name/cookie_value`");
    let value = String::from_utf8_lossy(&body);
    cookie_owner(&app, &id, &name, &value, &q)
}

fn cookie_owner(
    app: &AppState,
    id: &Identity,
    name: &str,
    value: &str,
    q: &ModelQuery,
) -> ApiResult<Response> {
    tracing::warn!(
        "/authorizations/cookie endpoint is deprecated in JupyterHub 2.0. Use /api/user with OAuth tokens."
    );
    let mut jar = CookieJar::new();
    if !value.is_empty() {
        jar.add_original(Cookie::new(name.to_owned(), value.to_owned()));
    }
    let Some((user, _)) = cookie_user(app, &jar) else {
        return Err(HttpError::bare(StatusCode::NOT_FOUND));
    };
    let model = app
        .replica
        .read(|s| visible_user_model(app, s, &user, &id.scopes, q.include_stopped()))
        .ok_or_else(|| HttpError::bare(StatusCode::NOT_FOUND))?;
    if let Ok(mut m) = app.user_activity.lock() {
        crate::set_entry(&mut m, &user, now_micros());
    }
    Ok(Json(model).into_response())
}

/// `POST /hub/api/users/{name}/admin-access` (scope `servers` on the user): deprecated
/// since JupyterHub 0.8 and a no-op. 403 unless `hub.admin_access` (off by default, as
/// in JupyterHub), then 404 for a user that does not exist, else 200, empty.
pub async fn admin_access(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(&app, &id, &["servers"], Target::User(&name))?;
    tracing::warn!(
        "Deprecated in JupyterHub 0.8. Admin access API is not needed now that we use OAuth."
    );
    tracing::warn!(
        by = ?id.owner,
        user = %clip(&name),
        "access to a user's server requested through the admin-access API"
    );
    if !app.config.hub.admin_access {
        return Err(HttpError::forbidden(
            "admin access to user servers disabled",
        ));
    }
    if !app.replica.read(|s| s.users.contains_key(&name)) {
        return Err(HttpError::bare(StatusCode::NOT_FOUND));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "",
    )
        .into_response())
}
