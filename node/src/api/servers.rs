//! Starting, stopping and following servers (§2.6, §5.6).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::servers::{
    display_name, requested_server, within_named_limit, ServerRefusal,
};
use galilean_actors::policy::text::clip;
use galilean_proto::names::ServerName;
use galilean_proto::wire::StartOutcome;
use serde_json::Value;

use crate::api::caller::{require, Caller};
use crate::api::request::{json_body, path_user};
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// How long a start request waits before answering 202 (JupyterHub's
/// `slow_spawn_timeout`), and a stop before 202 (`slow_stop_timeout`).
const SLOW_SPAWN: Duration = Duration::from_secs(10);
const SLOW_STOP: Duration = Duration::from_secs(10);

fn empty(status: StatusCode) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
}

fn server_name(app: &AppState, name: &str) -> ApiResult<ServerName> {
    requested_server(name, app.config.hub.allow_named_servers).map_err(refused)
}

/// A start the server rules refuse: 400, with JupyterHub's message.
fn refused(e: ServerRefusal) -> HttpError {
    HttpError::bad_request(e.to_string())
}

/// Splits a ServerRequest body (§2.6) into (`user_options` JSON text, `display_name`).
pub(crate) fn server_request(body: &[u8]) -> ApiResult<(Option<String>, Option<String>)> {
    let Some(v) = json_body::<Value>(body)? else {
        return Ok((None, None));
    };
    let Value::Object(obj) = v else {
        return Err(HttpError::bad_request("body must be a JSON object"));
    };
    if !obj.contains_key("display_name") && !obj.contains_key("user_options") {
        return Ok((Some(Value::Object(obj).to_string()), None));
    }
    let display_name = match obj.get("display_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(display_name(s).map_err(refused)?),
        Some(_) => return Err(HttpError::bad_request("display_name must be a string")),
    };
    let options = match obj.get("user_options") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(_) => {
            return Err(HttpError::bad_request(
                "user_options must be an object or null",
            ))
        }
    };
    Ok((options, display_name))
}

async fn start(
    app: &Arc<AppState>,
    id: &Caller,
    name: &str,
    server: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let user = path_user(name)?;
    let server = server_name(app, server)?;
    require(
        app,
        &id.0,
        &["start:servers", "servers"],
        Target::Server {
            user: user.as_str(),
            server: server.as_str(),
        },
    )?;
    let (user_options, display_name) = server_request(body)?;
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    let limit = app.config.hub.named_server_limit_per_user;
    app.replica
        .read(|s| within_named_limit(s, &user, &server, limit.into()))
        .map_err(refused)?;
    let outcome = app
        .router
        .start_server(&user, &server, user_options, display_name, SLOW_SPAWN)
        .await?;
    match outcome {
        StartOutcome::Ready => Ok(empty(StatusCode::CREATED)),
        // the contract: a failed start is not a 500; report it with the reason
        StartOutcome::Failed(message) => Err(HttpError::bad_request(message)),
        StartOutcome::Pending => Ok(empty(StatusCode::ACCEPTED)),
    }
}

pub async fn start_default(
    State(app): App,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    start(&app, &caller, &name, "", &body).await
}

pub async fn start_named(
    State(app): App,
    caller: Caller,
    Path((name, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    start(&app, &caller, &name, &server, &body).await
}

async fn stop(
    app: &Arc<AppState>,
    id: &Caller,
    name: &str,
    server: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let user = path_user(name)?;
    let server = if server.is_empty() {
        ServerName::default()
    } else {
        if !app.config.hub.allow_named_servers {
            return Err(HttpError::bad_request("Named servers are not enabled."));
        }
        // existing records may predate today's name rule: look them up as they are
        ServerName::parse(server).map_err(|_| {
            HttpError::not_found(format!("{user} has no server named '{}'", clip(server)))
        })?
    };
    require(
        app,
        &id.0,
        &["delete:servers", "servers"],
        Target::Server {
            user: user.as_str(),
            server: server.as_str(),
        },
    )?;
    let remove = match json_body::<Value>(body)? {
        Some(Value::Object(o)) => match o.get("remove") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(HttpError::bad_request("remove must be a boolean")),
        },
        Some(_) => return Err(HttpError::bad_request("body must be a JSON object")),
        None => false,
    };
    if remove && server.is_default() {
        return Err(HttpError::bad_request("Cannot delete the default server"));
    }
    let (user_exists, server_exists) = app.replica.read(|s| {
        (
            s.users.contains_key(user.as_str()),
            s.servers
                .contains_key(&(user.as_str().to_owned(), server.as_str().to_owned())),
        )
    });
    if !user_exists {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    if !server.is_default() && !server_exists {
        return Err(HttpError::not_found(format!(
            "{user} has no server named '{server}'"
        )));
    }
    let stopped = app
        .router
        .stop_server(&user, &server, remove, SLOW_STOP)
        .await?;
    Ok(empty(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    }))
}

pub async fn stop_default(
    State(app): App,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    stop(&app, &caller, &name, "", &body).await
}

pub async fn stop_named(
    State(app): App,
    caller: Caller,
    Path((name, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    stop(&app, &caller, &name, &server, &body).await
}
