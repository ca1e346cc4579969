//! `/groups` (§2.9): listing, creating, reading and deleting groups, changing their
//! members and their properties. Group writes are store transactions made where the
//! request arrives; the front door answers once every live node has applied them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{Access, ScopeSet, Target};
use galilean_actors::policy::text::clip;
use galilean_actors::replica::State as Replicated;
use galilean_actors::store::groups;
use galilean_proto::names::UserName;
use galilean_proto::records::GroupRecord;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::caller::{list_scope, require, Caller};
use crate::api::paging::Page;
use crate::api::request::json_body;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The longest group name accepted.
const MAX_NAME: usize = 255;

/// A group name from a body: 1 to 255 characters, none a control character or `/` (it
/// could never be named in a URL path).
fn group_name(raw: &str) -> ApiResult<String> {
    let ok = !raw.is_empty()
        && raw.chars().count() <= MAX_NAME
        && !raw.chars().any(|c| c.is_control() || c == '/');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(HttpError::bad_request(format!(
            "Invalid group name: {:?}",
            clip(raw)
        )))
    }
}

/// User names from a body, normalised as user creation normalises them.
fn user_names(raw: &[String]) -> ApiResult<Vec<String>> {
    let mut names = Vec::with_capacity(raw.len());
    for r in raw {
        let n = UserName::normalize(r)
            .map_err(|_| HttpError::bad_request(format!("No such user: {}", clip(r))))?;
        names.push(n.as_str().to_owned());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The group model with the keys the requester may see (§2.13).
pub fn group_model(
    app: &AppState,
    state: &Replicated,
    g: &GroupRecord,
    scopes: &ScopeSet,
) -> Value {
    let t = Target::Group(&g.name);
    let has = |s: &str| scopes.check_in(s, t, state) == Access::Allowed;
    let mut m = Map::new();
    m.insert("kind".into(), "group".into());
    m.insert("name".into(), g.name.clone().into());
    if has("read:groups") {
        let users: Vec<Value> = state
            .members_of(&g.name)
            .iter()
            .map(|u| Value::from(u.as_str()))
            .collect();
        m.insert("users".into(), Value::Array(users));
        m.insert(
            "properties".into(),
            serde_json::from_str(&g.properties).unwrap_or_else(|_| Value::Object(Map::new())),
        );
    }
    if has("read:roles:groups") {
        let roles = app.tokens.grants().rbac().group_roles(&g.name);
        m.insert(
            "roles".into(),
            Value::Array(roles.into_iter().map(Value::from).collect()),
        );
    }
    Value::Object(m)
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    offset: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(app): App,
    Caller(id): Caller,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let visible = list_scope(&id, "list:groups")?;
    let page = Page::of(q.offset.as_deref(), q.limit.as_deref(), &headers, false)?;
    let (items, total) = app.replica.read(|s| {
        let mut shown: Vec<&Arc<GroupRecord>> = s
            .groups
            .values()
            .filter(|g| visible.group(&g.name))
            .collect();
        shown.sort_by_key(|g| g.id);
        let total = shown.len();
        let items = page
            .slice(shown.into_iter())
            .map(|g| group_model(&app, s, g, &id.scopes))
            .collect();
        (items, total)
    });
    Ok(page.respond(items, total, &headers, &uri))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMany {
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
}

pub async fn create_many(State(app): App, Caller(id): Caller, body: Bytes) -> ApiResult<Response> {
    require(&app, &id, &["admin:groups"], Target::Global)?;
    let req: CreateMany = json_body(&body)?
        .ok_or_else(|| HttpError::bad_request("Must specify at least one group to create"))?;
    if req.groups.is_empty() {
        return Err(HttpError::bad_request(
            "Must specify at least one group to create",
        ));
    }
    let mut names = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        names.push(group_name(g)?);
    }
    names.sort();
    names.dedup();
    let users = user_names(&req.users)?;
    let (created, v) = groups::create_groups(app.store.as_ref(), &names, &users, "{}").await?;
    app.replica.wait_for(v).await;
    let models: Vec<Value> = app.replica.read(|s| {
        created
            .iter()
            .map(|g| group_model(&app, s, g, &id.scopes))
            .collect()
    });
    Ok((StatusCode::CREATED, Json(Value::Array(models))).into_response())
}

/// The group `name` names in the path; 404 when there is none.
fn existing(app: &AppState, name: &str) -> ApiResult<Arc<GroupRecord>> {
    app.replica
        .read(|s| s.groups.get(name).cloned())
        .ok_or_else(|| HttpError::not_found(format!("No such group: {}", clip(name))))
}

/// The group's model as the requester sees it now.
fn answer(
    app: &AppState,
    id: &crate::auth::Identity,
    name: &str,
    status: StatusCode,
) -> ApiResult<Response> {
    let model = app.replica.read(|s| {
        s.groups
            .get(name)
            .map(|g| group_model(app, s, g, &id.scopes))
    });
    let model =
        model.ok_or_else(|| HttpError::not_found(format!("No such group: {}", clip(name))))?;
    Ok((status, Json(model)).into_response())
}

pub async fn get_one(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(
        &app,
        &id,
        &["read:groups", "read:groups:name", "read:roles:groups"],
        Target::Group(&name),
    )?;
    existing(&app, &name)?;
    answer(&app, &id, &name, StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Members {
    #[serde(default)]
    users: Option<Vec<String>>,
}

pub async fn create_one(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&app, &id, &["admin:groups"], Target::Group(&name))?;
    let name = group_name(&name)?;
    let req: Members = json_body(&body)?.unwrap_or_default();
    let users = user_names(&req.users.unwrap_or_default())?;
    let (_, v) = groups::create_groups(
        app.store.as_ref(),
        std::slice::from_ref(&name),
        &users,
        "{}",
    )
    .await?;
    app.replica.wait_for(v).await;
    answer(&app, &id, &name, StatusCode::CREATED)
}

pub async fn delete(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(&app, &id, &["delete:groups"], Target::Group(&name))?;
    existing(&app, &name)?;
    let v = groups::delete_group(app.store.as_ref(), &name).await?;
    app.replica.wait_for(v).await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::CONTENT_TYPE, "text/plain")],
        "",
    )
        .into_response())
}

/// The `users` a membership change names; 400 when absent.
fn members_of_body(body: &[u8]) -> ApiResult<Vec<String>> {
    let req: Members = json_body(body)?.unwrap_or_default();
    let users = req
        .users
        .ok_or_else(|| HttpError::bad_request("Must specify users to add or remove"))?;
    user_names(&users)
}

pub async fn add_users(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&app, &id, &["groups"], Target::Group(&name))?;
    existing(&app, &name)?;
    let users = members_of_body(&body)?;
    let (_, v) = groups::add_members(app.store.as_ref(), &name, &users).await?;
    app.replica.wait_for(v).await;
    answer(&app, &id, &name, StatusCode::OK)
}

pub async fn remove_users(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&app, &id, &["groups"], Target::Group(&name))?;
    existing(&app, &name)?;
    let users = members_of_body(&body)?;
    let (_, v) = groups::remove_members(app.store.as_ref(), &name, &users).await?;
    app.replica.wait_for(v).await;
    answer(&app, &id, &name, StatusCode::OK)
}

/// The largest `properties` object accepted, as JSON text.
const MAX_PROPERTIES: usize = 64 * 1024;

pub async fn set_properties(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&app, &id, &["groups"], Target::Group(&name))?;
    existing(&app, &name)?;
    let props: Value = json_body(&body)?
        .ok_or_else(|| HttpError::bad_request("properties must be a JSON object"))?;
    if !props.is_object() {
        return Err(HttpError::bad_request("properties must be a JSON object"));
    }
    let text = props.to_string();
    if text.len() > MAX_PROPERTIES {
        return Err(HttpError::bad_request(format!(
            "properties are too large (at most {MAX_PROPERTIES} bytes of JSON)"
        )));
    }
    let (_, v) = groups::set_properties(app.store.as_ref(), &name, &text).await?;
    app.replica.wait_for(v).await;
    answer(&app, &id, &name, StatusCode::OK)
}
