//! JupyterHub 6's `GET`, `PUT` and `PATCH /users/{name}/servers/{server}` (§2.6): one
//! server's model (stopped ones too), a named server made without starting it, and a
//! stopped server's display name, options or name changed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::servers::{display_name, requested_server, within_named_limit};
use galilean_actors::policy::text::clip;
use galilean_actors::store::server_edits::{self, Edit};
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerRecord;
use serde_json::Value;

use crate::api::caller::{require, Caller};
use crate::api::models::server_model;
use crate::api::request::{json_body, path_user};
use crate::api::servers::server_request;
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

fn bad(e: impl std::fmt::Display) -> HttpError {
    HttpError::bad_request(e.to_string())
}

/// The model of `rec` as `id` may see it: `state` only with `admin:server_state`.
fn model_of(app: &AppState, id: &Identity, rec: &ServerRecord) -> Value {
    let target = Target::Server {
        user: &rec.user,
        server: &rec.name,
    };
    let with_state = app
        .replica
        .read(|s| id.scopes.check_in("admin:server_state", target, s) == Access::Allowed);
    serde_json::to_value(server_model(app, rec, with_state)).unwrap_or(Value::Null)
}

/// A server that exists already, named as it was (older names may break today's rule).
fn existing_name(user: &UserName, raw: &str) -> ApiResult<ServerName> {
    if raw.is_empty() {
        return Ok(ServerName::default());
    }
    ServerName::parse(raw)
        .map_err(|_| HttpError::not_found(format!("{user} has no server named '{}'", clip(raw))))
}

pub async fn get_named(
    State(app): App,
    Caller(id): Caller,
    Path((name, server)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    let server = existing_name(&user, &server)?;
    let target = Target::Server {
        user: user.as_str(),
        server: server.as_str(),
    };
    require(&app, &id, &["read:servers"], target)?;
    let rec = app.replica.read(|s| {
        s.servers
            .get(&(user.as_str().to_owned(), server.as_str().to_owned()))
            .cloned()
    });
    let rec =
        rec.ok_or_else(|| HttpError::not_found(format!("{user} has no server named '{server}'")))?;
    Ok(Json(model_of(&app, &id, &rec)).into_response())
}

pub async fn get_default(app: App, id: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    get_named(app, id, Path((name, String::new()))).await
}

/// `PUT`: a new named server, not started (201 with its model).
pub async fn put_named(
    State(app): App,
    Caller(id): Caller,
    Path((name, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    let target = Target::Server {
        user: user.as_str(),
        server: &server,
    };
    require(&app, &id, &["start:servers", "servers"], target)?;
    if server.is_empty() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("User {user} already has a default server"),
        ));
    }
    let server =
        requested_server(&server, app.config.hub.allow_named_servers).map_err(|e| match e {
            galilean_actors::policy::servers::ServerRefusal::InvalidName(n) => {
                HttpError::bad_request(format!("Invalid server_name: '{}'", clip(&n)))
            }
            e => bad(e),
        })?;
    let (options, display) = server_request(&body)?;
    let limit = app.config.hub.named_server_limit_per_user;
    app.replica
        .read(|s| within_named_limit(s, &user, &server, limit.into()))
        .map_err(bad)?;
    let (rec, v) = server_edits::create_stopped(
        app.store.as_ref(),
        user.as_str(),
        server.as_str(),
        display,
        options,
    )
    .await?;
    app.replica.wait_for(v).await;
    Ok((StatusCode::CREATED, Json(model_of(&app, &id, &rec))).into_response())
}

pub async fn put_default(
    app: App,
    id: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    put_named(app, id, Path((name, String::new())), body).await
}

/// A `PATCH` body: any of `name`, `display_name`, `user_options`, nothing else.
fn edit_of(body: &[u8], allow_named: bool) -> ApiResult<Edit> {
    let Some(v) = json_body::<Value>(body)? else {
        return Err(HttpError::bad_request(
            "Specify at least one of name, display_name, user_options",
        ));
    };
    let Value::Object(obj) = v else {
        return Err(HttpError::bad_request("body must be a JSON object"));
    };
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !["name", "display_name", "user_options"].contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(HttpError::bad_request(format!(
            "Invalid JSON keys: {}",
            unknown
                .iter()
                .map(|k| clip(k))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if obj.is_empty() {
        return Err(HttpError::bad_request(
            "Specify at least one of name, display_name, user_options",
        ));
    }
    let mut edit = Edit::default();
    match obj.get("name") {
        None => {}
        Some(Value::String(n)) => {
            let new = requested_server(n, allow_named).map_err(bad)?;
            if new.is_default() {
                return Err(HttpError::bad_request(
                    "A server cannot be renamed to the default server",
                ));
            }
            edit.name = Some(new.as_str().to_owned());
        }
        Some(_) => return Err(HttpError::bad_request("name must be a string")),
    }
    match obj.get("display_name") {
        None => {}
        Some(Value::String(d)) => edit.display_name = Some(display_name(d).map_err(bad)?),
        Some(_) => return Err(HttpError::bad_request("display_name must be a string")),
    }
    match obj.get("user_options") {
        None => {}
        Some(v @ Value::Object(_)) => edit.user_options = Some(v.to_string()),
        Some(_) => return Err(HttpError::bad_request("user_options must be an object")),
    }
    Ok(edit)
}

/// `PATCH`: a stopped server's name, display name or options (200 with its model).
pub async fn patch_named(
    State(app): App,
    Caller(id): Caller,
    Path((name, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    let server = existing_name(&user, &server)?;
    let target = Target::Server {
        user: user.as_str(),
        server: server.as_str(),
    };
    require(&app, &id, &["start:servers", "servers"], target)?;
    if !server.is_default() && !app.config.hub.allow_named_servers {
        return Err(HttpError::bad_request("Named servers are not enabled."));
    }
    let edit = edit_of(&body, app.config.hub.allow_named_servers)?;
    if server.is_default() && edit.name.is_some() {
        return Err(HttpError::bad_request("Cannot rename the default server"));
    }
    let (rec, v) =
        server_edits::edit_stopped(app.store.as_ref(), user.as_str(), server.as_str(), &edit)
            .await?;
    app.replica.wait_for(v).await;
    Ok(Json(model_of(&app, &id, &rec)).into_response())
}

pub async fn patch_default(
    app: App,
    id: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    patch_named(app, id, Path((name, String::new())), body).await
}
