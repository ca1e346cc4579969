//! `SpawnSettings`: what shapes every spawned server (from the node's `[spawner]` and
//! `[hub]` config), handed to the actors once at start-up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
