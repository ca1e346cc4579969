//! Starting, stopping and following servers (§2.6, §5.6).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use galilean_actors::policy::scopes::Target;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use galilean_proto::wire::{ServerSummary, StartOutcome};
use serde_json::Value;

use super::users::{clip, path_user};
use super::{json_body, require, Caller};
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
    if name.is_empty() {
        return Ok(ServerName::default());
    }
    if !app.config.hub.allow_named_servers {
        return Err(HttpError::bad_request("Named servers are not enabled."));
    }
    ServerName::parse(name)
        .map_err(|_| HttpError::bad_request(format!("Invalid server_name: '{}'", clip(name))))
}

/// Splits a ServerRequest body (§2.6) into (`user_options` JSON text, `display_name`).
fn server_request(body: &[u8]) -> ApiResult<(Option<String>, Option<String>)> {
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
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty()
                || s.chars().count() > 255
                || s.chars().any(char::is_control)
                || s.contains("  ")
            {
                return Err(HttpError::bad_request("Invalid display_name"));
            }
            Some(s.to_owned())
        }
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
    id: &super::Caller,
    name: &str,
    server: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let user = path_user(name)?;
    let server = server_name(app, server)?;
    require(
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
    if !server.is_default() && limit > 0 {
        let (count, exists) = app.replica.read(|s| {
            let count = s
                .servers_of(user.as_str())
                .filter(|r| !r.name.is_empty() && r.phase != ServerPhase::Stopped)
                .count();
            let exists = s
                .servers
                .get(&(user.as_str().to_owned(), server.as_str().to_owned()))
                .is_some_and(|r| r.phase != ServerPhase::Stopped);
            (count, exists)
        });
        if !exists && count >= limit as usize {
            return Err(HttpError::bad_request(format!(
                "User {user} already has the maximum of {limit} named servers.  One must be deleted before a new server can be created"
            )));
        }
    }
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

async fn progress(
    app: &Arc<AppState>,
    id: &Caller,
    name: &str,
    server: &str,
) -> ApiResult<Response> {
    let user = path_user(name)?;
    let server = if server.is_empty() {
        ServerName::default()
    } else {
        ServerName::parse(server)
            .map_err(|_| HttpError::not_found(format!("No such server: {}", clip(server))))?
    };
    require(
        &id.0,
        &["read:servers"],
        Target::Server {
            user: user.as_str(),
            server: server.as_str(),
        },
    )?;
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    let status = app.router.server_status(&user, &server).await?;
    let prefix = galilean_proto::names::server_prefix(&app.base_url, &user, &server);
    let first = match status.phase {
        ServerPhase::Starting => status,
        ServerPhase::Running => {
            let ev = galilean_proto::models::ProgressEvent {
                ready: Some(true),
                html_message: Some(format!("Server ready at <a href=\"{prefix}\">{prefix}</a>")),
                url: Some(prefix.clone()),
                ..galilean_proto::models::ProgressEvent::step(
                    100,
                    format!("Server ready at {prefix}"),
                )
            };
            ServerSummary {
                events: vec![ev],
                ..status
            }
        }
        ServerPhase::Stopped if status.last_failure.is_some() => status,
        _ => {
            let what = if server.is_default() {
                user.to_string()
            } else {
                format!("{user}:{server}")
            };
            return Err(HttpError::bad_request(format!("{what} is not starting...")));
        }
    };
    Ok(Sse::new(event_stream(app.clone(), user, server, first))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(8)).text(""))
        .into_response())
}

/// How often a progress stream asks the server's owner for news.
const PROGRESS_POLL: Duration = Duration::from_millis(200);

/// The progress events as SSE, asking the owner (wherever it runs) until a terminal
/// event.
fn event_stream(
    app: Arc<AppState>,
    user: UserName,
    server: ServerName,
    first: ServerSummary,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream(move |tx| async move {
        let mut sent = 0usize;
        let mut summary = first;
        loop {
            for ev in &summary.events[sent.min(summary.events.len())..] {
                let data = serde_json::to_string(ev).unwrap_or_default();
                if tx.send(Ok(Event::default().data(data))).await.is_err() {
                    return;
                }
            }
            sent = summary.events.len();
            if summary.finished() {
                return;
            }
            tokio::time::sleep(PROGRESS_POLL).await;
            summary = match app.router.server_status(&user, &server).await {
                Ok(s) => s,
                Err(_) => return,
            };
            // a new start began: its events start over
            if summary.events.len() < sent {
                sent = 0;
            }
        }
    })
}

/// A tiny stream builder over an mpsc channel (no extra dependency).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

pub async fn progress_default(
    State(app): App,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    progress(&app, &caller, &name, "").await
}

pub async fn progress_named(
    State(app): App,
    caller: Caller,
    Path((name, server)): Path<(String, String)>,
) -> ApiResult<Response> {
    progress(&app, &caller, &name, &server).await
}
