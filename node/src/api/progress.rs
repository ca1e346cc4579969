//! A spawn's progress as server-sent events (§5.6), asked of the server's owner
//! wherever it runs until the spawn ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::text::clip;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;
use galilean_proto::wire::ServerSummary;

use crate::api::caller::{require, Caller};
use crate::api::request::path_user;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

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
        app,
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
