//! What every actor of a node shares: the store, the local replica, the spawner, the
//! spawn queue and the settings that shape spawned servers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use galilean_proto::env;
use galilean_proto::names::{quote, server_client_id, server_prefix, ServerName, UserName};
use galilean_storage::Store;
use tokio::sync::Semaphore;

use crate::replica::Replica;
use crate::spawner::Spawner;

/// Settings of spawned servers (from `[spawner]` and `[hub]`).
#[derive(Debug, Clone)]
pub struct SpawnSettings {
    /// `hub.base_url` (`P`), starts and ends with `/`.
    pub base_url: String,
    /// The hub API URL given to servers, without trailing slash
    /// (`http://127.0.0.1:8000/hub/api`).
    pub hub_api_url: String,
    /// Public origin (`JUPYTERHUB_HOST`), empty unless `public_url` is set.
    pub public_host: String,
    pub cmd: Vec<String>,
    pub args: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Contains `{username}`.
    pub home_dir_template: String,
    pub start_timeout: Duration,
    pub http_timeout: Duration,
    pub stop_grace: Duration,
    pub default_url: Option<String>,
    /// Where per-server logs go.
    pub log_dir: PathBuf,
    pub node_id: u64,
    /// Environment of the hub process, for `env_keep` (passed in, not read here).
    pub hub_env: BTreeMap<String, String>,
}

/// Shared by the actors of one node.
pub struct HubCtx {
    pub store: Arc<dyn Store>,
    pub replica: Arc<Replica>,
    pub spawner: Arc<dyn Spawner>,
    pub settings: SpawnSettings,
    /// `spawner.concurrent_spawn_limit` permits, handed out in arrival order (tokio's
    /// semaphore is fair), so a spawn storm queues instead of being refused.
    pub spawn_slots: Arc<Semaphore>,
    /// How many spawns hold a slot now, and the most ever at once (for tests).
    pub spawning_now: std::sync::atomic::AtomicUsize,
    pub spawning_peak: std::sync::atomic::AtomicUsize,
    /// Client for readiness probes.
    pub probe: reqwest::Client,
}

impl HubCtx {
    pub fn prefix(&self, user: &UserName, server: &ServerName) -> String {
        server_prefix(&self.settings.base_url, user, server)
    }

    pub fn home_dir(&self, user: &UserName) -> PathBuf {
        PathBuf::from(
            self.settings
                .home_dir_template
                .replace("{username}", &quote(user.as_str(), b"@~")),
        )
    }

    /// The environment of a spawned server (§5.1), before `JUPYTERHUB_SERVICE_URL`.
    pub fn server_env(
        &self,
        user: &UserName,
        server: &ServerName,
        token: &str,
    ) -> BTreeMap<String, String> {
        let s = &self.settings;
        let prefix = self.prefix(user, server);
        let client_id = server_client_id(user, server);
        let access = serde_json::json!([
            format!(
                "access:servers!server={}/{}",
                user.as_str(),
                server.as_str()
            ),
            format!("access:servers!user={}", user.as_str()),
        ])
        .to_string();
        let mut out = BTreeMap::new();
        for k in env::ENV_KEEP {
            if let Some(v) = s.hub_env.get(*k) {
                out.insert((*k).to_owned(), v.clone());
            }
        }
        let mut set = |k: &str, v: String| {
            out.insert(k.to_owned(), v);
        };
        set(env::API_TOKEN, token.to_owned());
        set(env::JPY_API_TOKEN, token.to_owned());
        set(env::CLIENT_ID, client_id);
        set(env::API_URL, s.hub_api_url.clone());
        set(
            env::ACTIVITY_URL,
            format!("{}/users/{}/activity", s.hub_api_url, user.escaped()),
        );
        set(env::BASE_URL, s.base_url.clone());
        set(env::SERVICE_PREFIX, prefix.clone());
        set(env::OAUTH_CALLBACK_URL, format!("{prefix}oauth_callback"));
        set(env::OAUTH_ACCESS_SCOPES, access.clone());
        set(env::OAUTH_SCOPES, access);
        set(env::OAUTH_CLIENT_ALLOWED_SCOPES, "[]".to_owned());
        set(env::USER, user.as_str().to_owned());
        set(env::SERVER_NAME, server.as_str().to_owned());
        set(env::HOST, s.public_host.clone());
        set(env::PUBLIC_URL, String::new());
        set(env::PUBLIC_HUB_URL, String::new());
        set(env::COOKIE_HOST_PREFIX_ENABLED, "0".to_owned());
        if let Some(d) = &s.default_url {
            set("JUPYTERHUB_DEFAULT_URL", d.clone());
        }
        let home = self.home_dir(user);
        set("USER", user.as_str().to_owned());
        set("HOME", home.to_string_lossy().into_owned());
        set("SHELL", "/bin/bash".to_owned());
        for (k, v) in &s.environment {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}
