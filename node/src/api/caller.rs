//! Who calls the API (§2.1): a header token, else the login cookie subject to XSRF and
//! the JSON content-type rule (never `?token=`); the activity each call notes; and the
//! scope check every handler makes.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use galilean_actors::policy::scopes::{list_filter_kinds, Access, Target, Visible};
use galilean_proto::time::now_micros;

use crate::app::AppState;
use crate::auth::{self, Identity};
use crate::error::{ApiResult, HttpError};

/// An authenticated API caller (§2.1): a header token, else the login cookie subject to
/// XSRF and the JSON content-type rule. Never `?token=`.
pub struct Caller(pub Identity);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> ApiResult<Caller> {
        match identify(parts, app) {
            Some(id) => Ok(Caller(id)),
            None => Err(HttpError::forbidden("Missing or invalid credentials.")),
        }
    }
}

impl OptionalFromRequestParts<Arc<AppState>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> ApiResult<Option<Caller>> {
        Ok(identify(parts, app).map(Caller))
    }
}

fn identify(parts: &Parts, app: &AppState) -> Option<Identity> {
    if let Some(secret) = auth::header_token(&parts.headers) {
        if let Some(id) = app.tokens.identify(secret) {
            note_activity(app, &id);
            return Some(id);
        }
    }
    let id = auth::identify_cookie(app, &parts.headers)?;
    if parts.method == Method::POST {
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.starts_with("application/json") {
                return None;
            }
        }
    }
    let xsrf = auth::query_xsrf(parts.uri.query());
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if !auth::xsrf_ok(app, &parts.method, &parts.headers, xsrf.as_deref(), peer) {
        return None;
    }
    note_activity(app, &id);
    Some(id)
}

/// What a single-user server's own token is noted as (JupyterHub's mark of it).
const SERVER_TOKEN_NOTE: &str = "Server at ";

/// Records token and user activity in memory; flushed in batches. As in JupyterHub, the
/// use of a token whose note starts `Server at ` (a server's own token) is the token's
/// activity but not its user's: a server calling the hub does not make its user active.
fn note_activity(app: &AppState, id: &Identity) {
    let now = now_micros();
    let mut of_user = true;
    if let Some(h) = &id.token_hash {
        if let Ok(mut m) = app.token_activity.lock() {
            crate::set_entry(&mut m, h, now);
        }
        of_user = !app.replica.read(|s| {
            s.tokens
                .get(h)
                .is_some_and(|t| t.note.starts_with(SERVER_TOKEN_NOTE))
        });
    }
    if let Some(u) = id.user_name().filter(|_| of_user) {
        if let Ok(mut m) = app.user_activity.lock() {
            crate::set_entry(&mut m, u, now);
        }
    }
}

/// Requires any of `scopes` for `target`: 403 when none is held, 404 when held but
/// filtered out (JupyterHub hides existence). `!group=` filters are matched against the
/// replica's memberships.
pub fn require(
    app: &AppState,
    id: &Identity,
    scopes: &[&str],
    target: Target<'_>,
) -> ApiResult<()> {
    let access = app
        .replica
        .read(|s| id.scopes.check_any_in(scopes, target, s));
    match access {
        Access::Allowed => Ok(()),
        Access::FilteredOut => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "No access to resources or resources not found",
        )),
        Access::Denied => Err(HttpError::forbidden(format!(
            "Action is not authorized with current scopes; requires any of [{}]",
            scopes.join(", ")
        ))),
    }
}

/// What a list endpoint guarded by `base` may show the caller (§4.2, JupyterHub's
/// post-filter): everything, or what the filters name. 403 when `base` is not held, or
/// is held with a filter the endpoint does not take (`list:users!server=a/b`).
pub fn list_scope(id: &Identity, base: &str) -> ApiResult<Visible> {
    let visible = id.scopes.visible(base);
    let refuse = || {
        HttpError::forbidden(format!(
            "Action is not authorized with current scopes; requires any of [{base}]"
        ))
    };
    match &visible {
        Visible::None => Err(refuse()),
        Visible::All => Ok(visible),
        Visible::Some { .. } => match list_filter_kinds(base) {
            Some(kinds) if !visible.only(kinds) => Err(refuse()),
            _ => Ok(visible),
        },
    }
}
