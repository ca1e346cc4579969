//! `/users` and `/users/{name}` (§2.4, §2.5): listing with pagination and state filters,
//! creating (one or many), reading, changing `admin` and deleting users.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{Target, Visible};
use galilean_actors::policy::text::clip;
use galilean_actors::store::users;
use galilean_proto::names::UserName;
use galilean_proto::records::{Owner, ServerPhase, UserRecord};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::caller::{list_scope, require, Caller};
use crate::api::models::user_model;
use crate::api::paging::Page;
use crate::api::request::{json_body, path_user};
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
    name_filter: Option<String>,
    sort: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
    include_stopped_servers: Option<String>,
}

type App = State<Arc<AppState>>;

pub async fn list(
    State(app): App,
    Caller(id): Caller,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let visible = list_scope(&id, "list:users")?;
    let every_user = visible == Visible::All;
    let page = Page::of(q.offset.as_deref(), q.limit.as_deref(), &headers, false)?;
    let state_filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s @ ("active" | "ready" | "inactive")) => Some(s.to_owned()),
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "Unrecognized state filter: '{}'",
                super::users::clip(other)
            )))
        }
    };
    let (sort_key, descending) = match q.sort.as_deref().unwrap_or("id") {
        s @ ("id" | "name" | "last_activity") => (s.to_owned(), false),
        s @ ("-id" | "-name" | "-last_activity") => (s[1..].to_owned(), true),
        other => {
            return Err(HttpError::bad_request(format!(
                "sort must be 'id', 'name', or 'last_activity', not '{}'",
                clip(other)
            )))
        }
    };
    let include_stopped = q
        .include_stopped_servers
        .as_deref()
        .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let name_filter = q.name_filter.as_deref().map(str::to_lowercase);
    let (items, total) = app.replica.read(|s| {
        if every_user && state_filter.is_none() && name_filter.is_none() && sort_key == "id" {
            // the default order, unfiltered: a page straight from the id index
            let page = |users: &mut dyn Iterator<
                Item = &Arc<galilean_proto::records::UserRecord>,
            >|
             -> Vec<Value> {
                page.slice(users)
                    .map(|u| user_model(&app, s, u, &id.scopes, include_stopped))
                    .collect()
            };
            let items = if descending {
                page(&mut s.users_by_id.values().rev())
            } else {
                page(&mut s.users_by_id.values())
            };
            return (items, s.users.len());
        }
        let candidates: Box<dyn Iterator<Item = &Arc<UserRecord>>> = match &visible {
            // only the users the filters name, and the members of the groups they name
            Visible::Some { users, groups, .. } => {
                let mut names: std::collections::BTreeSet<&String> = users.iter().collect();
                for g in groups {
                    names.extend(s.members_of(g));
                }
                Box::new(names.into_iter().filter_map(|n| s.users.get(n)))
            }
            _ => Box::new(s.users.values()),
        };
        let mut users: Vec<_> = candidates
            .filter(|u| {
                name_filter
                    .as_ref()
                    .is_none_or(|f| u.name.to_lowercase().contains(f))
            })
            .filter(|u| {
                let mut servers = s.servers_of(&u.name);
                match state_filter.as_deref() {
                    Some("active") => servers.any(|r| r.phase != ServerPhase::Stopped),
                    Some("ready") => servers.any(|r| r.phase == ServerPhase::Running),
                    Some("inactive") => servers.all(|r| r.phase == ServerPhase::Stopped),
                    _ => true,
                }
            })
            .collect();
        match sort_key.as_str() {
            "name" => {} // already by name
            "last_activity" => users.sort_by_key(|u| u.last_activity),
            _ => users.sort_by_key(|u| u.id),
        }
        if descending {
            users.reverse();
        }
        let total = users.len();
        let items: Vec<Value> = page
            .slice(users.into_iter())
            .map(|u| user_model(&app, s, u, &id.scopes, include_stopped))
            .collect();
        (items, total)
    });
    Ok(page.respond(items, total, &headers, &uri))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMany {
    usernames: Vec<String>,
    #[serde(default)]
    admin: Option<bool>,
}

pub async fn create_many(State(app): App, Caller(id): Caller, body: Bytes) -> ApiResult<Response> {
    require(&app, &id, &["admin:users"], Target::Global)?;
    let req: CreateMany = json_body(&body)?
        .ok_or_else(|| HttpError::bad_request("Must specify at least one user to create"))?;
    if req.usernames.is_empty() {
        return Err(HttpError::bad_request(
            "Must specify at least one user to create",
        ));
    }
    let admin = req.admin.unwrap_or(false);
    if admin && !id.admin {
        return Err(HttpError::forbidden(
            "Only admins can grant admin permissions",
        ));
    }
    let mut names = Vec::with_capacity(req.usernames.len());
    for raw in &req.usernames {
        let n = UserName::normalize(raw).map_err(|e| {
            HttpError::bad_request(format!("Invalid username: {} ({e})", clip(raw)))
        })?;
        names.push(n.as_str().to_owned());
    }
    names.sort();
    names.dedup();
    let (created, v) = users::create_users(app.store.as_ref(), &names, admin, None).await?;
    app.replica.wait_for(v).await;
    if created.is_empty() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("All {} users already exist", names.len()),
        ));
    }
    let models: Vec<Value> = app.replica.read(|s| {
        created
            .iter()
            .filter_map(|c| s.users.get(&c.name))
            .map(|u| user_model(&app, s, u, &id.scopes, false))
            .collect()
    });
    Ok((StatusCode::CREATED, Json(Value::Array(models))).into_response())
}

#[derive(Deserialize, Default)]
pub struct IncludeStopped {
    include_stopped_servers: Option<String>,
}

pub async fn get_one(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    Query(q): Query<IncludeStopped>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(
        &app,
        &id,
        &[
            "read:users",
            "read:users:name",
            "read:servers",
            "read:users:groups",
            "read:users:activity",
            "read:roles:users",
        ],
        Target::User(user.as_str()),
    )?;
    let include_stopped = q
        .include_stopped_servers
        .as_deref()
        .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let model = app.replica.read(|s| {
        s.users.get(user.as_str()).map(|u| {
            let mut m = user_model(&app, s, u, &id.scopes, include_stopped);
            // filled on this endpoint only, for those who may read it (§2.13)
            if let Value::Object(o) = &mut m {
                if o.contains_key("auth_state") {
                    let state = crate::api::auth_state::opened(&app, s, u.name.as_str());
                    o.insert("auth_state".into(), state);
                }
            }
            m
        })
    });
    model
        .map(|m| Json(m).into_response())
        .ok_or_else(|| HttpError::not_found(format!("No such user: {user}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateOne {
    #[serde(default)]
    admin: Option<bool>,
}

pub async fn create_one(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&app, &id, &["admin:users"], Target::Global)?;
    let user = UserName::normalize(&name)
        .map_err(|e| HttpError::bad_request(format!("Invalid username: {} ({e})", clip(&name))))?;
    let req: CreateOne = json_body(&body)?.unwrap_or_default();
    let admin = req.admin.unwrap_or(false);
    if admin && !id.admin {
        return Err(HttpError::forbidden(
            "Only admins can grant admin permissions",
        ));
    }
    app.router.create_user(&user, admin).await?;
    let model = app.replica.read(|s| {
        s.users
            .get(user.as_str())
            .map(|u| user_model(&app, s, u, &id.scopes, false))
    });
    Ok((StatusCode::CREATED, Json(model.unwrap_or(Value::Null))).into_response())
}

pub async fn patch(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["admin:users"], Target::User(user.as_str()))?;
    let req: Map<String, Value> =
        json_body(&body)?.ok_or_else(|| HttpError::bad_request("Body must be a JSON object"))?;
    let unknown: Vec<&String> = req
        .keys()
        .filter(|k| !matches!(k.as_str(), "name" | "admin" | "auth_state"))
        .collect();
    if !unknown.is_empty() {
        let keys: Vec<String> = unknown.iter().map(|k| clip(k)).collect();
        return Err(HttpError::bad_request(format!(
            "Invalid JSON keys: {}",
            keys.join(", ")
        )));
    }
    let exists = app
        .replica
        .read(|s| s.users.get(user.as_str()).map(|u| u.admin));
    let Some(currently_admin) = exists else {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    };
    if currently_admin && !id.admin {
        return Err(HttpError::forbidden("Only admins can modify admin users"));
    }
    let rename = match req.get("name") {
        None => None,
        Some(Value::String(raw)) if raw == user.as_str() => None,
        Some(Value::String(raw)) => {
            let new = UserName::normalize(raw)
                .map_err(|_| HttpError::bad_request(format!("Invalid username: {}", clip(raw))))?;
            (new.as_str() != user.as_str()).then_some(new)
        }
        Some(_) => return Err(HttpError::bad_request("name must be a string")),
    };
    let admin = match req.get("admin") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(HttpError::bad_request("admin must be a boolean")),
    };
    if admin == Some(true) && !id.admin {
        return Err(HttpError::forbidden(
            "Only admins can grant admin permissions",
        ));
    }
    // checked whole before anything is written
    let auth_state = match req.get("auth_state") {
        None => None,
        Some(state) => Some(crate::api::auth_state::sealed(&app, state)?),
    };
    // the rename first: it refuses a taken name or an active server before anything is
    // written, and the other changes then go to the user under its new name
    let user = match rename {
        None => user,
        Some(new) => {
            let owner = Owner::User(user.as_str().to_owned());
            let tokens_at = |version| {
                let (app, owner) = (app.clone(), owner.clone());
                async move {
                    app.replica.wait_for(version).await;
                    app.replica
                        .read(|s| s.tokens_of(&owner).map(|(h, _)| h.clone()).collect())
                }
            };
            let (_, v) = galilean_actors::store::rename::rename_user(
                app.store.as_ref(),
                user.as_str(),
                new.as_str(),
                tokens_at,
            )
            .await?;
            app.replica.wait_for(v).await;
            tracing::info!(from = %user, to = %new, "user renamed");
            new
        }
    };
    if let Some(admin) = admin {
        app.router.set_admin(&user, admin).await?;
    }
    if let Some(sealed) = auth_state {
        let v = galilean_actors::store::users::set_auth_state(
            app.store.as_ref(),
            user.as_str(),
            sealed.as_deref(),
        )
        .await?;
        app.replica.wait_for(v).await;
    }
    let model = app.replica.read(|s| {
        s.users.get(user.as_str()).map(|u| {
            let mut m = user_model(&app, s, u, &id.scopes, false);
            if let Value::Object(o) = &mut m {
                let state = crate::api::auth_state::opened(&app, s, u.name.as_str());
                o.insert("auth_state".into(), state);
            }
            m
        })
    });
    Ok(Json(model.unwrap_or(Value::Null)).into_response())
}

pub async fn delete(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["delete:users"], Target::User(user.as_str()))?;
    if id.user_name() == Some(user.as_str()) {
        return Err(HttpError::bad_request("Cannot delete yourself!"));
    }
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    app.router.delete_user(&user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
