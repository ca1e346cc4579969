//! `[hub]`: [`HubConfig`] (the hub's own HTTP surface, storage and policies), its defaults,
//! the variables that override it, and reading the section.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::errors::ConfigError;
use super::reader::Reader;
use super::values::{choice, parse_base_url, parse_path, parse_public_url, BindUrl, LogLevel};

/// Replaces `hub.bind_url`.
pub const ENV_HUB_BIND_URL: &str = "GALILEAN_HUB_BIND_URL";
/// Replaces `hub.data_dir`.
pub const ENV_HUB_DATA_DIR: &str = "GALILEAN_HUB_DATA_DIR";

/// For tests only: a number of seconds (> 0) that replaces the default
/// [`HubConfig::purge_expired_interval`], which is no key of the file.
pub const ENV_TEST_PURGE_EXPIRED_INTERVAL: &str = "GALILEAN_TEST_PURGE_EXPIRED_INTERVAL";

/// [`HubConfig::purge_expired_interval`]'s default.
pub const DEFAULT_PURGE_EXPIRED_INTERVAL: Duration = Duration::from_secs(60);

/// `hub.data_dir`'s default.
pub(super) const DEFAULT_DATA_DIR: &str = "galilean-data";

/// `[hub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// `hub.bind_url`: where the hub listens, e.g. `"http://0.0.0.0:8000/"`. Only `http` for
    /// now; the host and port are required, and the path must be `/` or empty (a path
    /// prefix goes in `base_url`). Overridden by `GALILEAN_HUB_BIND_URL`.
    /// Default `"http://127.0.0.1:8000/"`.
    pub bind_url: BindUrl,
    /// `hub.base_url`: the path prefix of every URL the hub serves, e.g. `"/jupyter/"`, so
    /// the hub itself is at `<base_url>hub/`. Always starts and ends with `/`; missing
    /// slashes are added. Default `"/"`.
    pub base_url: String,
    /// `hub.data_dir`: where the hub keeps its state. Created by the node at start if
    /// missing (not by parsing). Overridden by `GALILEAN_HUB_DATA_DIR`.
    /// Default `"galilean-data"`.
    pub data_dir: PathBuf,
    /// `hub.cleanup_servers`: stop every single-user server when the hub shuts down. When
    /// false they are left running, for the hub to find again at its next start.
    /// Default `false`.
    pub cleanup_servers: bool,
    /// `hub.allow_named_servers`: let users run servers other than their default one
    /// (`""`). Default `false`.
    pub allow_named_servers: bool,
    /// `hub.named_server_limit_per_user`: the most named servers (not counting the default
    /// one) a user may have running or starting at once; 0 means no limit. Default `0`.
    pub named_server_limit_per_user: u32,
    /// `hub.template_paths`: directories searched for page templates before the built-in
    /// ones, first match wins. Default `[]`.
    pub template_paths: Vec<PathBuf>,
    /// `hub.cookie_max_age_days` (a number of days, may be fractional, > 0): how long the
    /// login cookie stays valid. Default `14`.
    pub cookie_max_age: Duration,
    /// `hub.public_url`: the URL users reach the hub at, when it differs from `bind_url`
    /// (behind a reverse proxy), e.g. `"https://hub.example.org/"`; `http` or `https` with
    /// a host. Its origin counts as the hub's own when checking `next` redirect targets and
    /// is given to servers as `JUPYTERHUB_HOST`. Default: none.
    pub public_url: Option<String>,
    /// `hub.connect_url`: how spawned servers reach this node's hub API, e.g.
    /// `"http://10.0.0.5:8000/"`. Default: none (the node's own listening address, with
    /// loopback for an unspecified host).
    pub connect_url: Option<String>,
    /// `hub.log_level`: one of `"error"`, `"warn"`, `"info"`, `"debug"`, `"trace"`.
    /// Default `"info"`.
    pub log_level: LogLevel,
    /// `hub.token_expires_in_max_seconds` (JupyterHub's `token_expires_in_max_seconds`):
    /// the longest expiry, in seconds, of a token made through the API
    /// (`POST /hub/api/users/{name}/tokens`), and the expiry of one made there without
    /// `expires_in`; 0 means no maximum, and such tokens never expire unless asked to.
    /// Tokens of servers and of OAuth, and tokens made before it was set, are left as
    /// they are. Default `0`.
    pub token_expires_in_max_seconds: u64,
    /// How often the hub deletes expired tokens and OAuth codes never redeemed. Not a key
    /// of the file: JupyterHub's `purge_expired_tokens_interval` (an hour there) is not
    /// configurable either. Only tests change it, through
    /// `GALILEAN_TEST_PURGE_EXPIRED_INTERVAL`. Default one minute.
    pub purge_expired_interval: Duration,
    /// `hub.authenticate_prometheus` (JupyterHub's `authenticate_prometheus`): whether
    /// `GET /hub/metrics` asks for the `read:metrics` scope. When false, anyone who can
    /// reach the node reads its metrics (user, server and request counts, no names).
    /// Default `true`.
    pub authenticate_prometheus: bool,
    /// `hub.admin_access` (JupyterHub's `admin_access`, deprecated there since 2.0): its
    /// only effect left is that the legacy `POST /hub/api/users/{name}/admin-access`
    /// answers 200 (doing nothing) instead of 403. Admins reach users' servers through
    /// their scopes (`access:servers`), whatever this says. Default `false`.
    pub admin_access: bool,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            bind_url: BindUrl {
                host: "127.0.0.1".into(),
                port: 8000,
            },
            base_url: "/".into(),
            data_dir: DEFAULT_DATA_DIR.into(),
            cleanup_servers: false,
            allow_named_servers: false,
            named_server_limit_per_user: 0,
            template_paths: Vec::new(),
            cookie_max_age: Duration::from_secs(14 * 86_400),
            public_url: None,
            connect_url: None,
            log_level: LogLevel::Info,
            token_expires_in_max_seconds: 0,
            purge_expired_interval: DEFAULT_PURGE_EXPIRED_INTERVAL,
            authenticate_prometheus: true,
            admin_access: false,
        }
    }
}

pub(super) fn read_hub(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> HubConfig {
    const KEYS: &[&str] = &[
        "bind_url",
        "base_url",
        "data_dir",
        "cleanup_servers",
        "allow_named_servers",
        "named_server_limit_per_user",
        "template_paths",
        "cookie_max_age_days",
        "public_url",
        "connect_url",
        "log_level",
        "token_expires_in_max_seconds",
        "authenticate_prometheus",
        "admin_access",
    ];
    let d = HubConfig::default();
    let mut r = Reader::open(errors, "hub".into(), value, KEYS);
    let mut bind_url = r.parsed("bind_url", BindUrl::parse).unwrap_or(d.bind_url);
    if let Some(url) = r.env_override(env, ENV_HUB_BIND_URL, "bind_url", BindUrl::parse) {
        bind_url = url;
    }
    let mut data_dir = r.parsed("data_dir", parse_path).unwrap_or(d.data_dir);
    if let Some(dir) = r.env_override(env, ENV_HUB_DATA_DIR, "data_dir", parse_path) {
        data_dir = dir;
    }
    let limit = r.integer("named_server_limit_per_user", 0, u32::MAX.into());
    let expires_max = r.integer("token_expires_in_max_seconds", 0, i64::MAX);
    let purge = r.env_override(
        env,
        ENV_TEST_PURGE_EXPIRED_INTERVAL,
        "purge_expired_interval",
        parse_seconds,
    );
    HubConfig {
        bind_url,
        base_url: r.parsed("base_url", parse_base_url).unwrap_or(d.base_url),
        data_dir,
        cleanup_servers: r.boolean("cleanup_servers").unwrap_or(d.cleanup_servers),
        allow_named_servers: r
            .boolean("allow_named_servers")
            .unwrap_or(d.allow_named_servers),
        named_server_limit_per_user: limit.map_or(d.named_server_limit_per_user, |n| n as u32),
        template_paths: r
            .list("template_paths", parse_path)
            .unwrap_or(d.template_paths),
        cookie_max_age: r
            .duration("cookie_max_age_days", 86_400.0)
            .unwrap_or(d.cookie_max_age),
        public_url: r.parsed("public_url", parse_public_url).or(d.public_url),
        connect_url: r.parsed("connect_url", parse_public_url).or(d.connect_url),
        log_level: r
            .parsed("log_level", |s| choice(s, LogLevel::ALL))
            .unwrap_or(d.log_level),
        token_expires_in_max_seconds: expires_max
            .map_or(d.token_expires_in_max_seconds, |n| n.unsigned_abs()),
        purge_expired_interval: purge.unwrap_or(d.purge_expired_interval),
        authenticate_prometheus: r
            .boolean("authenticate_prometheus")
            .unwrap_or(d.authenticate_prometheus),
        admin_access: r.boolean("admin_access").unwrap_or(d.admin_access),
    }
}

/// A positive number of seconds, as text.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds".to_owned())?;
    if n.is_nan() || n <= 0.0 {
        return Err("must be greater than 0".into());
    }
    Duration::try_from_secs_f64(n).map_err(|_| "is too large".into())
}
