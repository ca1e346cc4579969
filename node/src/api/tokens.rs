//! `/users/{name}/tokens` (§2.8).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{self, token_excess, token_scopes_in, ScopeOwner, Target};
use galilean_actors::policy::text::clip;
use galilean_proto::records::{Owner, TokenRecord};
use galilean_proto::time::now_micros;
use galilean_proto::wire::NewToken;
use serde_json::{json, Value};

use crate::api::caller::{require, Caller};
use crate::api::models::token_model;
use crate::api::request::{json_body, path_user};
use crate::api::token_request::parse_token_request;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

fn parse_id(token_id: &str, user: &str) -> ApiResult<u64> {
    token_id
        .strip_prefix('a')
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| {
            HttpError::not_found(format!("No such token {} for user {user}", clip(token_id)))
        })
}

/// The model of `t`, listed with exactly the scopes its checks hold it to (its grant).
fn model_of(
    app: &AppState,
    state: &galilean_actors::replica::State,
    t: &TokenRecord,
) -> galilean_proto::models::TokenModel {
    let expanded = app
        .tokens
        .grant(state, t)
        .map(|grant| grant.scopes.to_strings())
        .unwrap_or_default();
    let client = state.clients.get(&t.client_id);
    let description = client.map_or_else(|| "JupyterHub".to_owned(), |c| c.description.clone());
    token_model(t, expanded, description)
}

pub async fn list(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["read:tokens"], Target::User(user.as_str()))?;
    let now = now_micros();
    let tokens = app.replica.read(|s| {
        if !s.users.contains_key(user.as_str()) {
            return None;
        }
        let owner = Owner::User(user.as_str().to_owned());
        let mut list: Vec<&Arc<TokenRecord>> = s
            .tokens_of(&owner)
            .map(|(_, t)| t)
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .collect();
        // JupyterHub's order: the least recently used (or made, if never used) first
        list.sort_by_key(|t| (t.last_activity.unwrap_or(t.created), t.id));
        Some(
            list.into_iter()
                .map(|t| model_of(&app, s, t))
                .collect::<Vec<_>>(),
        )
    });
    let tokens = tokens.ok_or_else(|| HttpError::not_found(format!("No such user: {user}")))?;
    Ok(Json(json!({ "api_tokens": tokens })).into_response())
}

pub async fn create(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    let may = app.replica.read(|s| {
        id.scopes.check_in("tokens", Target::User(user.as_str()), s) == scopes::Access::Allowed
    });
    if !may {
        return Err(HttpError::forbidden(format!(
            "User {user} not found or no permissions to generate tokens"
        )));
    }
    // the body's shape and the expiry's bounds first: nothing is created on a bad body
    let body: Value = json_body(&body)?.unwrap_or(Value::Null);
    let req = parse_token_request(&body, app.config.hub.token_expires_in_max_seconds)
        .map_err(HttpError::bad_request)?;
    let raw = match (req.scopes, req.roles) {
        (Some(s), _) => s,
        (None, Some(roles)) => {
            let rbac = app.tokens.grants().rbac();
            let mut raw = Vec::new();
            for r in roles {
                match rbac.role_scopes(&r) {
                    Some(scopes) => raw.extend(scopes.iter().cloned()),
                    None => {
                        return Err(HttpError::bad_request(format!(
                            "Role {} does not exist",
                            clip(&r)
                        )))
                    }
                }
            }
            raw
        }
        (None, None) => vec!["inherit".to_owned()],
    };
    let catalog = app.tokens.grants().rbac().catalog();
    catalog
        .validate(&raw)
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let owner = Owner::User(user.as_str().to_owned());
    let Some(held) = app.replica.read(|s| app.tokens.grants().held(s, &owner)) else {
        return Err(HttpError::forbidden(format!(
            "User {user} not found or no permissions to generate tokens"
        )));
    };
    let scope_owner = ScopeOwner::User(user.as_str().to_owned());
    let (beyond_owner, beyond_requester) = app
        .replica
        .read(|s| {
            let beyond_owner = token_excess(catalog, &raw, &scope_owner, None, &held.scopes, s)?;
            // what the token would hold (`inherit`: all the owner holds) must be held by
            // whoever asks for it too: a caller may hand on only what it has
            let would = token_scopes_in(catalog, &raw, &scope_owner, &held.scopes, None, s);
            let kept: std::collections::BTreeSet<String> = would
                .intersect_in(&id.scopes, s)
                .to_strings()
                .into_iter()
                .collect();
            let beyond_requester: Vec<String> = would
                .to_strings()
                .into_iter()
                .filter(|x| !kept.contains(x))
                .collect();
            Ok::<_, scopes::ScopeError>((beyond_owner, beyond_requester))
        })
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let listed = |scopes: &[String]| {
        scopes
            .iter()
            .map(|s| clip(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !beyond_owner.is_empty() {
        return Err(HttpError::bad_request(format!(
            "Not assigning requested scopes {} not held by User {user}",
            listed(&beyond_owner)
        )));
    }
    if !beyond_requester.is_empty() {
        let requester = match &id.owner {
            Owner::User(u) => format!("User {u}"),
            Owner::Service(s) => format!("Service {s}"),
        };
        return Err(HttpError::forbidden(format!(
            "Not assigning requested scopes {} not held by {requester}",
            listed(&beyond_requester)
        )));
    }
    let expires_in = req.expires_in;
    let mut note = req.note.unwrap_or_else(|| "Requested via api".to_owned());
    if note.chars().count() > 1024 {
        return Err(HttpError::bad_request(
            "note is too long (at most 1024 characters)",
        ));
    }
    if id.user_name() != Some(user.as_str()) {
        match &id.owner {
            Owner::User(u) => note.push_str(&format!(" by user {u}")),
            Owner::Service(s) => note.push_str(&format!(" by service {s}")),
        }
    }
    let spec = NewToken {
        owner: Owner::User(user.as_str().to_owned()),
        scopes: raw,
        note,
        expires_in,
        session_id: None,
        client_id: "jupyterhub".to_owned(),
    };
    let (rec, secret) = app.router.create_token(&user, spec).await?;
    let mut model = app.replica.read(|s| model_of(&app, s, &rec));
    model.token = Some(secret);
    Ok((StatusCode::CREATED, Json(model)).into_response())
}

pub async fn get_one(
    State(app): App,
    Caller(id): Caller,
    Path((name, token_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["read:tokens"], Target::User(user.as_str()))?;
    let tid = parse_id(&token_id, user.as_str())?;
    let model = app.replica.read(|s| {
        let hash = s.token_ids.get(&tid)?;
        let t = s.tokens.get(hash)?;
        (t.owner == Owner::User(user.as_str().to_owned())).then(|| model_of(&app, s, t))
    });
    model.map(|m| Json(m).into_response()).ok_or_else(|| {
        HttpError::not_found(format!("No such token {} for user {user}", clip(&token_id)))
    })
}

pub async fn delete(
    State(app): App,
    Caller(id): Caller,
    Path((name, token_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["tokens"], Target::User(user.as_str()))?;
    let tid = parse_id(&token_id, user.as_str())?;
    app.router.delete_token(&user, tid).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "text/plain")],
        "",
    )
        .into_response())
}
