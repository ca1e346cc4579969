//! `POST /hub/api/users/{name}/activity` (§2.7): activity reported by servers and
//! services, moving stored times only forward.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::text::clip;
use galilean_actors::store::activity;
use galilean_proto::time::{self, now_micros};
use serde_json::Value;

use crate::api::caller::{require, Caller};
use crate::api::request::{json_body, path_user};
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// `POST /users/{name}/activity` (§2.7).
pub async fn activity(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(&app, &id, &["users:activity"], Target::User(user.as_str()))?;
    let body: Value =
        json_body(&body)?.ok_or_else(|| HttpError::bad_request("body must be a JSON object"))?;
    let Value::Object(obj) = body else {
        return Err(HttpError::bad_request("body must be a JSON object"));
    };
    if !obj.contains_key("last_activity") && !obj.contains_key("servers") {
        return Err(HttpError::bad_request("body has no activity to record"));
    }
    let now = now_micros();
    let parse_ts = |v: &Value| -> ApiResult<i64> {
        let s = v
            .as_str()
            .ok_or_else(|| HttpError::bad_request("last_activity must be a timestamp string"))?;
        let t = time::parse(s)
            .ok_or_else(|| HttpError::bad_request(format!("Invalid timestamp: {}", clip(s))))?;
        if t > now + 59 * 60 * 1_000_000 {
            return Err(HttpError::bad_request(format!(
                "Rejecting activity from more than an hour in the future: {}",
                clip(s)
            )));
        }
        Ok(t)
    };
    let user_ts = obj.get("last_activity").map(parse_ts).transpose()?;
    let mut servers = Vec::new();
    if let Some(sv) = obj.get("servers") {
        let Value::Object(sm) = sv else {
            return Err(HttpError::bad_request("servers must be an object"));
        };
        for (sname, entry) in sm {
            let ts = entry.get("last_activity").ok_or_else(|| {
                HttpError::bad_request(format!("servers.{} needs last_activity", clip(sname)))
            })?;
            let t = parse_ts(ts)?;
            let exists = app.replica.read(|s| {
                s.servers
                    .contains_key(&(user.as_str().to_owned(), sname.clone()))
            });
            if !exists {
                return Err(HttpError::bad_request(format!(
                    "No such server '{}' for user {user}",
                    clip(sname)
                )));
            }
            servers.push(((user.as_str().to_owned(), sname.clone()), t));
        }
    }
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(HttpError::not_found(format!("No such user: {user}")));
    }
    let users: Vec<(String, i64)> = user_ts
        .map(|t| (user.as_str().to_owned(), t))
        .into_iter()
        .collect();
    let v = activity::record_activity(app.store.as_ref(), &users, &servers, &[]).await?;
    // read-your-writes: the answer comes once this node shows the activity (and, through
    // the write middleware, once every live node does)
    app.replica.wait_for(v).await;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "",
    )
        .into_response())
}
