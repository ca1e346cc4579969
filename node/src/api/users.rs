//! `/users` and `/users/{name}` (§2.4, §2.5): listing with pagination and state filters,
//! creating (one or many), reading, changing `admin` and deleting users.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::text::clip;
use galilean_actors::store::users;
use galilean_proto::names::UserName;
use galilean_proto::records::ServerPhase;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::caller::{require, Caller};
use crate::api::models::user_model;
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

fn wants_envelope(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().unwrap_or("").split(',').any(|item| {
            item.trim()
                .eq_ignore_ascii_case("application/jupyterhub-pagination+json")
        })
    })
}

fn int_arg(v: &Option<String>) -> ApiResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => s.trim().parse::<i64>().map(|n| Some(n.abs())).map_err(|_| {
            HttpError::bad_request("Invalid argument type, offset and limit must be integers")
        }),
    }
}

type App = State<Arc<AppState>>;

pub async fn list(
    State(app): App,
    Caller(id): Caller,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let every_user = match require(&id, &["list:users"], Target::Global) {
        Ok(()) => true,
        // a filtered list:users still lists, restricted to what the filter covers
        Err(_) if id.scopes.has_any("list:users") => false,
        Err(e) => return Err(e),
    };
    let envelope = wants_envelope(&headers);
    const MAX: i64 = 200;
    let offset = int_arg(&q.offset)?.unwrap_or(0) as usize;
    let limit = int_arg(&q.limit)?
        .unwrap_or(if envelope { 50 } else { MAX })
        .clamp(1, MAX) as usize;
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
                users
                    .skip(offset)
                    .take(limit)
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
        let mut users: Vec<_> = s
            .users
            .values()
            .filter(|u| {
                id.scopes.check("list:users", Target::User(&u.name))
                    == galilean_actors::policy::scopes::Access::Allowed
            })
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
        let items: Vec<Value> = users
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|u| user_model(&app, s, u, &id.scopes, include_stopped))
            .collect();
        (items, total)
    });
    if !envelope {
        return Ok(Json(Value::Array(items)).into_response());
    }
    let next = (offset + limit < total).then(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        let mut pairs: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        pairs.retain(|(k, _)| k != "offset" && k != "limit");
        pairs.push(("limit".into(), limit.to_string()));
        pairs.push(("offset".into(), (offset + limit).to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        json!({"offset": offset + limit, "limit": limit,
               "url": format!("{proto}://{host}{}?{query}", uri.path())})
    });
    Ok(Json(json!({
        "items": items,
        "_pagination": {"offset": offset, "limit": limit, "total": total, "next": next},
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMany {
    usernames: Vec<String>,
    #[serde(default)]
    admin: Option<bool>,
}

pub async fn create_many(State(app): App, Caller(id): Caller, body: Bytes) -> ApiResult<Response> {
    require(&id, &["admin:users"], Target::Global)?;
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
        s.users
            .get(user.as_str())
            .map(|u| user_model(&app, s, u, &id.scopes, include_stopped))
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
    require(&id, &["admin:users"], Target::Global)?;
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
    require(&id, &["admin:users"], Target::User(user.as_str()))?;
    let req: Map<String, Value> =
        json_body(&body)?.ok_or_else(|| HttpError::bad_request("Body must be a JSON object"))?;
    let unknown: Vec<&String> = req
        .keys()
        .filter(|k| !matches!(k.as_str(), "name" | "admin"))
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
    if let Some(new_name) = req.get("name") {
        let Some(new_name) = new_name.as_str() else {
            return Err(HttpError::bad_request("name must be a string"));
        };
        if new_name != user.as_str() {
            return Err(HttpError::bad_request("Renaming users is not supported"));
        }
    }
    if let Some(admin) = req.get("admin") {
        let Some(admin) = admin.as_bool() else {
            return Err(HttpError::bad_request("admin must be a boolean"));
        };
        if admin && !id.admin {
            return Err(HttpError::forbidden(
                "Only admins can grant admin permissions",
            ));
        }
        app.router.set_admin(&user, admin).await?;
    }
    let model = app.replica.read(|s| {
        s.users.get(user.as_str()).map(|u| {
            let mut m = user_model(&app, s, u, &id.scopes, false);
            if let Value::Object(o) = &mut m {
                o.entry("auth_state").or_insert(Value::Null);
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
    require(&id, &["delete:users"], Target::User(user.as_str()))?;
    if id.user_name() == Some(user.as_str()) {
        return Err(HttpError::bad_request("Cannot delete yourself!"));
    }
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    app.router.delete_user(&user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
