//! The node's shared application state, handed to every HTTP handler.

use std::collections::HashMap;
use std::sync::Arc;

use cookie::Key;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::{HubCtx, Replica, Router};
use galilean_storage::Store;

use crate::admin::measures::HubMeasures;
use crate::config::Config;
use crate::pages::templates::Templates;
use crate::proxy::ActivityRecorder;
use crate::start::control::NodeControl;

/// A service from config: a named holder of an API token for now.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub name: String,
    pub admin: bool,
    /// Where the service serves HTTP (JupyterHub's `url`), routed at
    /// `P + "services/<name>/"`; `None` for a service that serves nothing (every service
    /// from today's config).
    pub url: Option<String>,
}

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub replica: Arc<Replica>,
    pub router: Arc<Router>,
    pub ctx: Arc<HubCtx>,
    pub templates: Templates,
    pub cookie_key: Key,
    pub xsrf_secret: Vec<u8>,
    pub services: HashMap<String, ServiceInfo>,
    /// `P`, e.g. `/`.
    pub base_url: String,
    /// `P + "hub/"`.
    pub hub_prefix: String,
    pub cookie_max_age_secs: i64,
    /// The hub's own origins, for `next` validation.
    pub own_origins: Vec<String>,
    /// Token and cookie use, flushed in batches.
    pub activity: ActivityRecorder,
    /// Token hash → last use (microseconds).
    pub token_activity: std::sync::Mutex<HashMap<String, i64>>,
    /// User name → last cookie or token use.
    pub user_activity: std::sync::Mutex<HashMap<String, i64>>,
    /// Token checks (resolved against the replica, cached per replica version).
    pub tokens: crate::auth::Tokens,
    /// What the node measures for its metrics page (beside `ctx.timings`).
    pub measures: Arc<HubMeasures>,
    /// What requests may ask of the running node: a route re-sync, its stop.
    pub control: NodeControl,
}

impl AppState {
    pub fn api_prefix(&self) -> String {
        format!("{}api/", self.hub_prefix)
    }

    /// Whether user `name` holds `base` for `target` now, through its roles and groups
    /// (`!group=` filters matched against the replica's memberships).
    pub fn user_may(&self, name: &str, base: &str, target: Target<'_>) -> Access {
        let owner = galilean_proto::records::Owner::User(name.to_owned());
        self.replica
            .read(|s| match self.tokens.grants().held(s, &owner) {
                Some(held) => held.scopes.check_in(base, target, s),
                None => Access::Denied,
            })
    }
}
