//! `GET /hub/api/user` (§2.3): the caller's own model, with its token, session and
//! scopes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_proto::records::Owner;
use serde_json::{json, Value};

use crate::api::caller::Caller;
use crate::api::models::user_model;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

pub async fn whoami(State(app): App, caller: Option<Caller>) -> ApiResult<Response> {
    let Some(Caller(id)) = caller else {
        return Err(HttpError::bare(StatusCode::FORBIDDEN));
    };
    let mut model = match &id.owner {
        Owner::User(name) => app.replica.read(|s| {
            let u = s.users.get(name)?;
            // this request may always read its own identity fields
            let mut scopes = (*id.scopes).clone();
            scopes.union(
                &galilean_actors::policy::scopes::ScopeSet::expand(
                    &["read:users:name!user", "read:users:groups!user"],
                    &galilean_actors::policy::scopes::ScopeOwner::User(name.clone()),
                    None,
                )
                .unwrap_or_default(),
            );
            Some(user_model(&app, s, u, &scopes, false))
        }),
        Owner::Service(name) => Some(json!({
            "kind": "service", "name": name,
            "admin": app.services.get(name).is_some_and(|s| s.admin),
            "info": {}, "command": [], "display": true, "pid": 0, "prefix": "", "url": "",
        })),
    }
    .ok_or_else(|| HttpError::bare(StatusCode::FORBIDDEN))?;
    if let Value::Object(m) = &mut model {
        m.insert(
            "token_id".into(),
            id.token_id.map_or(Value::Null, |i| format!("a{i}").into()),
        );
        m.insert(
            "session_id".into(),
            id.session_id.clone().map_or(Value::Null, Value::from),
        );
        m.insert("scopes".into(), id.scopes.to_strings().into());
    }
    Ok(Json(model).into_response())
}
