//! Building JupyterHub's JSON models from records, filtered by the requester's scopes
//! (§2.13, "vertical filtering").

use galilean_actors::policy::scopes::{Access, ScopeSet, Target};
use galilean_actors::replica::State;
use galilean_proto::models::{ServerModel, TokenModel};
use galilean_proto::names::quote;
use galilean_proto::records::{Owner, ServerPhase, ServerRecord, TokenRecord, UserRecord};
use galilean_proto::time::iso;
use serde_json::{Map, Value};

use crate::app::AppState;

pub fn server_model(app: &AppState, rec: &ServerRecord, with_state: bool) -> ServerModel {
    let user = quote(&rec.user, b"@~");
    let server = quote(&rec.name, b"@~");
    let url = if rec.name.is_empty() {
        format!("{}user/{user}/", app.base_url)
    } else {
        format!("{}user/{user}/{server}/", app.base_url)
    };
    let pending = match rec.phase {
        ServerPhase::Starting => Some("spawn".to_owned()),
        ServerPhase::Stopping => Some("stop".to_owned()),
        _ => None,
    };
    let ready = rec.phase == ServerPhase::Running;
    let progress_url = if rec.name.is_empty() {
        format!("{}users/{user}/server/progress", app.api_prefix())
    } else {
        format!("{}users/{user}/servers/{server}/progress", app.api_prefix())
    };
    ServerModel {
        name: rec.name.clone(),
        display_name: rec.display_name.clone(),
        full_name: format!("{}/{}", rec.user, rec.name),
        last_activity: rec.last_activity.map(iso),
        started: rec.started.map(iso),
        stopped: !(ready || pending.is_some()),
        pending,
        ready,
        url,
        user_options: serde_json::from_str(&rec.user_options).unwrap_or(Value::Null),
        progress_url,
        full_url: None,
        full_progress_url: None,
        state: with_state.then(|| {
            if rec.phase == ServerPhase::Stopped {
                serde_json::json!({})
            } else {
                serde_json::json!({"pid": rec.spawner.pid})
            }
        }),
    }
}

/// The user model with the keys the requester may see.
pub fn user_model(
    app: &AppState,
    state: &State,
    user: &UserRecord,
    scopes: &ScopeSet,
    include_stopped: bool,
) -> Value {
    let t = Target::User(&user.name);
    let has = |s: &str| scopes.check_in(s, t, state) == Access::Allowed;
    let mut m = Map::new();
    m.insert("kind".into(), "user".into());
    m.insert("name".into(), user.name.clone().into());
    if has("read:users") || has("read:users:name") || has("read:roles:users") {
        m.insert("admin".into(), user.admin.into());
    }
    if has("read:users") || has("read:users:name") {
        m.insert("user_info".into(), Value::Null);
    }
    if has("read:users") || has("read:roles:users") {
        let roles = app
            .tokens
            .grants()
            .rbac()
            .user_roles(&user.name, user.admin);
        m.insert(
            "roles".into(),
            Value::Array(roles.into_iter().map(Value::from).collect()),
        );
    }
    if has("read:users") || has("read:users:groups") {
        let groups = state.groups_of(&user.name);
        m.insert(
            "groups".into(),
            Value::Array(groups.iter().map(|g| Value::from(g.as_str())).collect()),
        );
    }
    let default = state
        .servers
        .get(&(user.name.clone(), String::new()))
        .filter(|s| s.phase != ServerPhase::Stopped);
    if has("read:users") {
        m.insert(
            "server".into(),
            match default {
                Some(s) if s.phase == ServerPhase::Running => {
                    server_model(app, s, false).url.into()
                }
                _ => Value::Null,
            },
        );
        m.insert(
            "pending".into(),
            default
                .and_then(|s| server_model(app, s, false).pending)
                .map_or(Value::Null, Value::from),
        );
        m.insert("created".into(), iso(user.created).into());
    }
    if has("read:users") || has("read:users:activity") {
        m.insert(
            "last_activity".into(),
            user.last_activity.map(iso).map_or(Value::Null, Value::from),
        );
    }
    if scopes.has_any("read:servers") {
        let mut servers = Map::new();
        for s in state.servers_of(&user.name) {
            if s.phase == ServerPhase::Stopped && !include_stopped {
                continue;
            }
            let target = Target::Server {
                user: &user.name,
                server: &s.name,
            };
            if scopes.check_in("read:servers", target, state) != Access::Allowed {
                continue;
            }
            let with_state =
                scopes.check_in("admin:server_state", target, state) == Access::Allowed;
            let model = server_model(app, s, with_state);
            servers.insert(
                s.name.clone(),
                serde_json::to_value(model).unwrap_or(Value::Null),
            );
        }
        if has("read:servers") || !servers.is_empty() {
            m.insert("servers".into(), Value::Object(servers));
        }
    }
    if has("admin:auth_state") {
        m.insert("auth_state".into(), Value::Null);
    }
    Value::Object(m)
}

pub fn token_model(t: &TokenRecord, expanded: Vec<String>, oauth_client: String) -> TokenModel {
    let (user, service) = match &t.owner {
        Owner::User(u) => (Some(u.clone()), None),
        Owner::Service(s) => (None, Some(s.clone())),
    };
    TokenModel {
        user,
        service,
        id: format!("a{}", t.id),
        kind: "api_token".into(),
        roles: vec![],
        scopes: expanded,
        created: iso(t.created),
        last_activity: t.last_activity.map(iso),
        expires_at: t.expires_at.map(iso),
        note: t.note.clone(),
        session_id: t.session_id.clone(),
        oauth_client,
        token: None,
    }
}
