//! `/shares/...` (§2.12): granting a user or a group access to one server, narrowing and
//! revoking it, what a server shares, and the share model. A share may grant only scopes
//! its granter holds on that server (GHSA-c4gm-pwx9-9w8j).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::shares::share_scopes;
use galilean_actors::policy::text::clip;
use galilean_actors::replica::State as Replicated;
use galilean_actors::store::shares;
use galilean_proto::records::{ShareRecord, ShareWith};
use galilean_proto::time::iso;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::caller::{require, Caller};
use crate::api::models::server_model;
use crate::api::paging::Page;
use crate::api::request::{json_body, path_user};
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The server part of share and share-code models: its owner's name, and the server's
/// name, URL and readiness.
pub fn server_stub(app: &AppState, state: &Replicated, owner: &str, server: &str) -> Value {
    let rec = state.servers.get(&(owner.to_owned(), server.to_owned()));
    let (url, ready) = match rec {
        Some(r) => {
            let m = server_model(app, r, false);
            (m.url, m.ready)
        }
        None => {
            let user = galilean_proto::names::quote(owner, b"@~");
            let name = galilean_proto::names::quote(server, b"@~");
            let url = if server.is_empty() {
                format!("{}user/{user}/", app.base_url)
            } else {
                format!("{}user/{user}/{name}/", app.base_url)
            };
            (url, false)
        }
    };
    json!({"user": {"name": owner}, "name": server, "url": url, "full_url": null, "ready": ready})
}

/// The share model (§2.13).
pub fn share_model(app: &AppState, state: &Replicated, share: &ShareRecord) -> Value {
    let (user, group) = match &share.with {
        ShareWith::User(n) => (json!({"name": n}), Value::Null),
        ShareWith::Group(n) => (Value::Null, json!({"name": n})),
    };
    json!({
        "server": server_stub(app, state, &share.owner, &share.server),
        "scopes": share.scopes,
        "user": user,
        "group": group,
        "kind": share.with.kind(),
        "created_at": iso(share.created),
    })
}

/// Whether `owner`'s `server` exists: a named server has a record, the default server a
/// user.
pub fn server_exists(state: &Replicated, owner: &str, server: &str) -> bool {
    if server.is_empty() {
        state.users.contains_key(owner)
    } else {
        state
            .servers
            .contains_key(&(owner.to_owned(), server.to_owned()))
    }
}

pub fn no_server(owner: &str, server: &str) -> HttpError {
    HttpError::not_found(format!("No such server: {}/{}", clip(owner), clip(server)))
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
}

impl PageQuery {
    pub fn offset(&self) -> Option<&str> {
        self.offset.as_deref()
    }

    pub fn limit(&self) -> Option<&str> {
        self.limit.as_deref()
    }
}

/// A list of shares as the envelope every sharing list answers with.
pub fn share_list(
    app: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    q: &PageQuery,
    pick: impl FnOnce(&Replicated) -> ApiResult<Vec<Arc<ShareRecord>>>,
) -> ApiResult<Response> {
    let page = Page::of(q.offset(), q.limit(), headers, true)?;
    let (items, total) = app.replica.read(|s| {
        let mut list = pick(s)?;
        list.sort_by(|a, b| {
            (a.created, &a.owner, &a.server).cmp(&(b.created, &b.owner, &b.server))
        });
        let total = list.len();
        let items: Vec<Value> = page
            .slice(list.iter())
            .map(|sh| share_model(app, s, sh))
            .collect();
        Ok::<_, HttpError>((items, total))
    })?;
    Ok(page.respond(items, total, headers, uri))
}

/// `GET /shares/{owner}`: every share of the owner's servers.
pub async fn list_owner(
    State(app): App,
    Caller(id): Caller,
    Path(owner): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let owner = path_user(&owner)?;
    require(&app, &id, &["read:shares"], Target::User(owner.as_str()))?;
    share_list(&app, &headers, &uri, &q, |s| {
        if !s.users.contains_key(owner.as_str()) {
            return Err(HttpError::not_found(format!("No such user: {owner}")));
        }
        Ok(s.shares.of_owner(owner.as_str()).cloned().collect())
    })
}

/// `GET /shares/{owner}/{server}`.
pub async fn list_server(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["read:shares"], target)?;
    share_list(&app, &headers, &uri, &q, |s| {
        if !server_exists(s, &owner, &server) {
            return Err(no_server(&owner, &server));
        }
        Ok(s.shares.of_server(&owner, &server).cloned().collect())
    })
}

/// `GET /shares/{owner}/` (the default server).
pub async fn list_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    q: Query<PageQuery>,
) -> ApiResult<Response> {
    list_server(app, id, Path((owner, String::new())), headers, uri, q).await
}

/// A grant or revocation: one recipient, and the scopes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    user: Option<String>,
    group: Option<String>,
    scopes: Option<Vec<String>>,
}

impl ShareRequest {
    fn parse(body: &[u8]) -> ApiResult<ShareRequest> {
        let req: ShareRequest = json_body(body)?
            .ok_or_else(|| HttpError::bad_request("Specify exactly one of `user` or `group`"))?;
        match (&req.user, &req.group) {
            (Some(_), Some(_)) => Err(HttpError::bad_request(
                "Expected exactly one of `user` or `group`, not both.",
            )),
            (None, None) => Err(HttpError::bad_request(
                "Specify exactly one of `user` or `group`",
            )),
            _ => Ok(req),
        }
    }

    fn with(&self) -> ShareWith {
        match (&self.user, &self.group) {
            (Some(u), _) => ShareWith::User(u.clone()),
            (_, Some(g)) => ShareWith::Group(g.clone()),
            // parse() refused a request naming neither
            (None, None) => ShareWith::User(String::new()),
        }
    }
}

/// Every one of `scopes` must be a scope the caller holds on the server: a share never
/// grants more than its granter has.
pub fn may_grant(
    app: &AppState,
    id: &Identity,
    owner: &str,
    server: &str,
    scopes: &[String],
) -> ApiResult<()> {
    app.tokens
        .grants()
        .rbac()
        .catalog()
        .validate(scopes)
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let target = Target::Server {
        user: owner,
        server,
    };
    for scope in scopes {
        let base = scope.split_once('!').map_or(scope.as_str(), |(b, _)| b);
        let held = app
            .replica
            .read(|s| id.scopes.check_in(base, target, s) == Access::Allowed);
        if !held {
            return Err(HttpError::forbidden(format!(
                "Do not have permission to grant share with scope {}",
                clip(scope)
            )));
        }
    }
    Ok(())
}

/// `POST /shares/{owner}/{server}`: grants access to a user or a group.
pub async fn grant(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["shares"], target)?;
    let req = ShareRequest::parse(&body)?;
    let scopes =
        share_scopes(req.scopes.as_deref(), &owner, &server).map_err(HttpError::bad_request)?;
    if !app.replica.read(|s| server_exists(s, &owner, &server)) {
        return Err(no_server(&owner, &server));
    }
    may_grant(&app, &id, &owner, &server, &scopes)?;
    let with = req.with();
    let (needed, by_name) = match &with {
        ShareWith::User(n) => ("read:users:name", Target::User(n)),
        ShareWith::Group(n) => ("read:groups:name", Target::Group(n)),
    };
    let named = app
        .replica
        .read(|s| id.scopes.check_in(needed, by_name, s) == Access::Allowed);
    if !named {
        return Err(HttpError::forbidden(format!(
            "Need scope '{needed}' to share with {}s by name",
            with.kind()
        )));
    }
    let (share, v) = shares::grant(app.store.as_ref(), &owner, &server, &with, &scopes).await?;
    app.replica.wait_for(v).await;
    let model = app.replica.read(|s| share_model(&app, s, &share));
    Ok(Json(model).into_response())
}

/// `PATCH /shares/{owner}/{server}`: revokes scopes (all when none are named) from one
/// recipient; the share left, or `{}` when none is.
pub async fn revoke(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["shares"], target)?;
    let req = ShareRequest::parse(&body)?;
    if !app.replica.read(|s| server_exists(s, &owner, &server)) {
        return Err(no_server(&owner, &server));
    }
    let with = req.with();
    let exists = app.replica.read(|s| match &with {
        ShareWith::User(n) => s.users.contains_key(n),
        ShareWith::Group(n) => s.groups.contains_key(n),
    });
    if !exists {
        // revoking from no one revokes nothing (JupyterHub answers `{}`)
        return Ok(Json(json!({})).into_response());
    }
    let (left, v) = shares::revoke(
        app.store.as_ref(),
        &owner,
        &server,
        &with,
        req.scopes.as_deref(),
    )
    .await?;
    app.replica.wait_for(v).await;
    let model = match left {
        Some(share) => app.replica.read(|s| share_model(&app, s, &share)),
        None => json!({}),
    };
    Ok(Json(model).into_response())
}

/// `DELETE /shares/{owner}/{server}`: revokes every share of the server.
pub async fn revoke_all(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["shares"], target)?;
    let v = shares::delete_server_shares(app.store.as_ref(), &owner, &server).await?;
    app.replica.wait_for(v).await;
    Ok(no_content())
}

pub fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "text/plain")],
        "",
    )
        .into_response()
}

/// The default server's forms of the three writes.
pub async fn grant_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    grant(app, id, Path((owner, String::new())), body).await
}

pub async fn revoke_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    revoke(app, id, Path((owner, String::new())), body).await
}

pub async fn revoke_all_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
) -> ApiResult<Response> {
    revoke_all(app, id, Path((owner, String::new()))).await
}

/// `POST`, `PATCH`, `DELETE /shares/{owner}` name no server: 405, as JupyterHub.
pub async fn owner_method_not_allowed() -> ApiResult<Response> {
    Err(HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Shares are changed for one server: /shares/{owner}/{server}",
    ))
}
