//! `GET /services` and `GET /services/{name}` (§2.10): the services of the config, each
//! with the keys the requester may see. Services made at runtime, managed services and
//! their routes are the services issue's; until then every service is external, with no
//! URL, command or process.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::text::clip;
use galilean_actors::replica::State as Replicated;
use serde_json::{json, Map, Value};

use crate::api::caller::{list_scope, require, Caller};
use crate::app::{AppState, ServiceInfo};
use crate::auth::Identity;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The service model (§2.13): `kind`, `name`, `admin` with `read:services:name`; the
/// rest with `read:services`; `roles` with `read:roles:services`.
fn service_model(app: &AppState, state: &Replicated, id: &Identity, svc: &ServiceInfo) -> Value {
    let t = Target::Service(&svc.name);
    let has = |s: &str| id.scopes.check_in(s, t, state) == Access::Allowed;
    let mut m = Map::new();
    m.insert("kind".into(), "service".into());
    m.insert("name".into(), svc.name.clone().into());
    m.insert("admin".into(), svc.admin.into());
    if has("read:services") {
        for (k, v) in [
            ("url", json!("")),
            ("prefix", json!("")),
            ("command", json!([])),
            ("pid", json!(0)),
            ("info", json!({})),
            ("display", json!(true)),
        ] {
            m.insert(k.into(), v);
        }
    }
    if has("read:roles:services") {
        let roles = app
            .tokens
            .grants()
            .rbac()
            .service_roles(&svc.name)
            .unwrap_or_default();
        m.insert("roles".into(), json!(roles));
    }
    Value::Object(m)
}

/// `GET /services`: an object keyed by name, of the services `list:services` shows.
pub async fn list(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    let visible = list_scope(&id, "list:services")?;
    let mut names: Vec<&String> = app.services.keys().collect();
    names.sort();
    let out = app.replica.read(|s| {
        let mut out = Map::new();
        for name in names {
            if visible.service(name) {
                out.insert(
                    name.clone(),
                    service_model(&app, s, &id, &app.services[name]),
                );
            }
        }
        out
    });
    Ok(Json(Value::Object(out)).into_response())
}

/// `GET /services/{name}`.
pub async fn get_one(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(
        &app,
        &id,
        &["read:services", "read:services:name", "read:roles:services"],
        Target::Service(&name),
    )?;
    let svc = app
        .services
        .get(&name)
        .ok_or_else(|| HttpError::not_found(format!("No such service: {}", clip(&name))))?;
    let model = app.replica.read(|s| service_model(&app, s, &id, svc));
    Ok(Json(model).into_response())
}
