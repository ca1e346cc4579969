//! Galilean's configuration: one TOML file plus a few environment variables, parsed once
//! at start into the plain structs below. Their doc comments are the reference
//! documentation for every key.
//!
//! ```toml
//! [hub]
//! bind_url = "http://0.0.0.0:8000/"
//! base_url = "/jupyter/"
//! data_dir = "/var/lib/galilean"
//!
//! [authenticator]
//! class = "dummy"
//! admin_users = ["ada"]
//!
//! [spawner]
//! cmd = ["jupyterhub-singleuser"]
//! start_timeout = 120
//!
//! [[services]]
//! name = "idle-culler"
//! admin = true
//! ```
//!
//! # Environment
//!
//! These variables replace the file's value (the environment wins). The file's value, if
//! any, is still checked, so `galilean config check` reports a broken file either way.
//!
//! | variable | replaces |
//! | --- | --- |
//! | `GALILEAN_HUB_BIND_URL` | `hub.bind_url` |
//! | `GALILEAN_HUB_DATA_DIR` | `hub.data_dir` |
//! | `GALILEAN_AUTHENTICATOR_PASSWORD` | `authenticator.password` |
//! | `GALILEAN_SERVICE_<NAME>_API_TOKEN` | `api_token` of the `[[services]]` entry named NAME, upper-cased, `-` written `_` (see [`service_token_env_var`]) |
//!
//! Keeping secrets in the environment keeps them out of a file that is often world-readable
//! or checked in.
//!
//! # Relative paths
//!
//! Paths (`hub.data_dir`, `hub.template_paths`, `spawner.home_dir_template`) are kept as
//! written. A relative path is relative to the working directory of the `galilean` process,
//! as in JupyterHub, not to the directory holding the config file.
//!
//! # Errors
//!
//! Parsing reports every problem at once, each with its dotted key: unknown keys at any
//! level, wrong types, invalid and missing values. A TOML syntax error is the exception: it
//! is reported alone, with its line and column, as nothing after it can be read.
//!
//! Parsing does no I/O: it does not create `hub.data_dir`, so checking a config has no side
//! effects. Secrets never appear in error messages or in `Debug` output.
//!
//! This module is not the place for behaviour: the node decides what each value means.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use toml::{Table, Value};

/// Replaces `hub.bind_url`.
pub const ENV_HUB_BIND_URL: &str = "GALILEAN_HUB_BIND_URL";
/// Replaces `hub.data_dir`.
pub const ENV_HUB_DATA_DIR: &str = "GALILEAN_HUB_DATA_DIR";
/// Replaces `authenticator.password`.
pub const ENV_AUTHENTICATOR_PASSWORD: &str = "GALILEAN_AUTHENTICATOR_PASSWORD";
/// Replaces `cluster.secret`.
pub const ENV_CLUSTER_SECRET: &str = "GALILEAN_CLUSTER_SECRET";

/// The variable that replaces the `api_token` of the service named `service_name`:
/// `GALILEAN_SERVICE_<NAME>_API_TOKEN`, NAME upper-cased with `-` written `_`
/// (`idle-culler` → `GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN`).
pub fn service_token_env_var(service_name: &str) -> String {
    let name = service_name.to_uppercase().replace('-', "_");
    format!("GALILEAN_SERVICE_{name}_API_TOKEN")
}

const DEFAULT_DATA_DIR: &str = "galilean-data";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[hub]`: the hub's own HTTP surface, storage and policies.
    pub hub: HubConfig,
    /// `[authenticator]`: who may log in, and who is an admin.
    pub authenticator: AuthenticatorConfig,
    /// `[spawner]`: how single-user servers are started and stopped.
    pub spawner: SpawnerConfig,
    /// `[[services]]`: external programs that talk to the hub API with their own token.
    pub services: Vec<ServiceConfig>,
    /// `[cluster]`: this node's place in a multi-node hub; `None` for a single node.
    pub cluster: Option<ClusterConfig>,
    /// `[storage]`: where state is kept.
    pub storage: StorageConfig,
    /// The file this was read from; empty for [`Config::default_for_tests`].
    pub source: PathBuf,
}

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
}

/// `[authenticator]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorConfig {
    /// `authenticator.class`: which authenticator checks logins. Only `"dummy"` for now,
    /// which accepts any user name (subject to `allowed_users` / `allow_all`) with
    /// `password`. Default `"dummy"`.
    pub class: AuthenticatorClass,
    /// `authenticator.password`: the one password the dummy authenticator accepts; when
    /// absent any password is accepted. Must not be empty. A secret: prefer
    /// `GALILEAN_AUTHENTICATOR_PASSWORD`, which overrides it. Default: none.
    pub password: Option<Secret>,
    /// `authenticator.admin_users`: user names that are admins. They may always log in.
    /// Default `[]`.
    pub admin_users: BTreeSet<String>,
    /// `authenticator.allowed_users`: user names allowed to log in (besides admins).
    /// Default `[]`.
    pub allowed_users: BTreeSet<String>,
    /// `authenticator.allow_all`: let every user who authenticates log in, ignoring
    /// `allowed_users`. Default `false`.
    pub allow_all: bool,
}

/// `[spawner]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpawnerConfig {
    /// `spawner.class`: how servers are run. Only `"local-process"` for now: a child
    /// process of the hub, as the hub's own OS user. Default `"local-process"`.
    pub class: SpawnerClass,
    /// `spawner.cmd`: the program and its first arguments; must not be empty.
    /// Default `["jupyterhub-singleuser"]`.
    pub cmd: Vec<String>,
    /// `spawner.args`: more arguments, after `cmd`. Default `[]`.
    pub args: Vec<String>,
    /// `spawner.environment`: extra environment variables for the server. They are set
    /// last, so they override both the few variables kept from the hub's environment and
    /// those the hub sets (`JUPYTERHUB_*`, `HOME`, `USER`, ...). Default `{}`.
    pub environment: BTreeMap<String, String>,
    /// `spawner.home_dir_template`: the server's working directory and `HOME`, created
    /// if missing; `{username}` must appear and is replaced by the user's name,
    /// percent-escaped so that it is one safe path segment. Default
    /// `"<hub.data_dir>/home/{username}"`, following `hub.data_dir` and its override.
    pub home_dir_template: String,
    /// `spawner.start_timeout` (seconds, > 0): how long a start may take in all, from
    /// launching the process to its answering HTTP, before it fails. Default `60`.
    pub start_timeout: Duration,
    /// `spawner.http_timeout` (seconds, > 0): how long a launched process may take to
    /// answer HTTP at its URL (within `start_timeout`). Default `30`.
    pub http_timeout: Duration,
    /// `spawner.stop_grace` (seconds, > 0): time between SIGTERM and SIGKILL when
    /// stopping a server. Default `10`.
    pub stop_grace: Duration,
    /// `spawner.concurrent_spawn_limit` (≥ 1): the most servers starting at once on this
    /// node; further starts wait their turn, in arrival order. Default `100`.
    pub concurrent_spawn_limit: usize,
    /// `spawner.default_url`: the URL path a server opens at, e.g. `"/lab"`, passed to it
    /// as `JUPYTERHUB_DEFAULT_URL`. Default: none (the server's own default).
    pub default_url: Option<String>,
    /// `spawner.ip`: the address servers listen on, and the hub (every node of a cluster)
    /// reaches them at, as JupyterHub's `Spawner.ip`. Default `127.0.0.1`; a cluster whose
    /// nodes are on several hosts needs the host's own address here.
    pub ip: std::net::IpAddr,
}

/// One `[[services]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `name` (required): the service's name, unique among services; it appears in URLs
    /// (`/services/<name>/`), so it must not be empty, contain `/` or `%`, consist only of
    /// dots, or start or end with whitespace.
    pub name: String,
    /// `api_token`: the token the service uses for the hub API, 8 to 64 characters without
    /// whitespace. A secret: prefer `GALILEAN_SERVICE_<NAME>_API_TOKEN`, which overrides it.
    /// Default: none (the service has no token).
    pub api_token: Option<Secret>,
    /// `admin`: give the service the admin role. Default `false`.
    pub admin: bool,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `cluster.node_id` (required, ≥ 1): this node's id; it must appear in `peers`.
    pub node_id: u64,
    /// `cluster.bind` (required): `host:port` for node-to-node traffic, separate from the
    /// public listener.
    pub bind: String,
    /// `cluster.peers` (required): every member, this node included, as
    /// `"<id>@<host>:<port>"`, e.g. `["1@10.0.0.1:7100", "2@10.0.0.2:7100"]`. Each node
    /// takes its port and the next one, so nodes sharing a host need ports two apart.
    /// Nodes started with the same list form the cluster by themselves.
    pub peers: Vec<Peer>,
    /// `cluster.secret` (required, at least 16 characters): shared by every member; a
    /// node with another secret is refused. A secret: prefer `GALILEAN_CLUSTER_SECRET`.
    pub secret: Secret,
    /// `cluster.insecure`: allow node-to-node traffic in clear on a `bind` that is not a
    /// loopback address, without `[cluster.tls]`. Default `false`.
    pub insecure: bool,
    /// `[cluster.tls]`: node-to-node mutual TLS. Required off loopback unless `insecure`.
    pub tls: Option<ClusterTls>,
}

/// `[cluster.tls]`: PEM files (`galilean cluster certs` writes a set). Every member's
/// certificate is signed by `ca` and names the host of its `peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// `cluster.tls.cert`: this node's certificate (chain).
    pub cert: PathBuf,
    /// `cluster.tls.key`: its private key.
    pub key: PathBuf,
    /// `cluster.tls.ca`: the certificate authority of the cluster.
    pub ca: PathBuf,
}

/// One `cluster.peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// `host:port` of its `cluster.bind`.
    pub addr: String,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `storage.backend`: `"redb"` (one node, the embedded default), `"raft"` (replicated
    /// across `[cluster]`, its default) or `"fdb"` (a FoundationDB cluster the nodes share;
    /// only in a `galilean` built with the `fdb` feature).
    pub backend: StorageBackendKind,
    /// `storage.fdb_cluster_file`: FoundationDB's cluster file (its default location when
    /// unset).
    pub fdb_cluster_file: Option<PathBuf>,
    /// `storage.fdb_root`: the key prefix the hub's data lives under, so that several hubs
    /// can share one FoundationDB (default `"galilean"`).
    pub fdb_root: String,
}

/// `storage.fdb_root`'s default.
pub const DEFAULT_FDB_ROOT: &str = "galilean";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackendKind {
    Redb,
    Raft,
    Fdb,
}

impl StorageBackendKind {
    const ALL: &'static [(&'static str, StorageBackendKind)] = &[
        ("redb", StorageBackendKind::Redb),
        ("raft", StorageBackendKind::Raft),
        ("fdb", StorageBackendKind::Fdb),
    ];
}

/// Where to listen: an `http` host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindUrl {
    /// A name or IP address; an IPv6 address without its brackets.
    pub host: String,
    /// May be 0 to let the OS choose.
    pub port: u16,
}

impl BindUrl {
    /// `host:port`, with brackets around an IPv6 address; suitable for `TcpListener::bind`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn parse(text: &str) -> Result<BindUrl, String> {
        let url = UrlParts::split(text)?;
        match url.scheme.as_str() {
            "http" => {}
            "https" => return Err("https is not supported yet; use http".into()),
            other => return Err(format!("scheme must be http, not {other:?}")),
        }
        if url.query_or_fragment {
            return Err("must not have a query or fragment".into());
        }
        let Some(port) = url.port else {
            return Err(format!("must have a port, e.g. http://{}:8000/", url.host));
        };
        if !(url.path.is_empty() || url.path == "/") {
            return Err(format!(
                "path must be \"/\", not {:?}: put a path prefix in hub.base_url",
                url.path
            ));
        }
        Ok(BindUrl {
            host: url.host,
            port,
        })
    }
}

/// `http://host:port/`.
impl fmt::Display for BindUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}/", self.authority())
    }
}

/// `hub.log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    const ALL: &[(&str, LogLevel)] = &[
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];

    /// The name as written in the config, which is also a `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("info", |(s, _)| s)
    }
}

/// `authenticator.class`; serializes as its config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticatorClass {
    /// `"dummy"`: any user name, one shared password (or none).
    Dummy,
}

impl AuthenticatorClass {
    const ALL: &[(&str, AuthenticatorClass)] = &[("dummy", AuthenticatorClass::Dummy)];
}

/// `spawner.class`; serializes as its config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpawnerClass {
    /// `"local-process"`: a child process of the hub.
    LocalProcess,
}

impl SpawnerClass {
    const ALL: &[(&str, SpawnerClass)] = &[("local-process", SpawnerClass::LocalProcess)];
}

/// A secret string: `Debug` prints `"***"`, there is no `Display`, and the value is read
/// with [`Secret::expose`] where it is really needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Every problem found in one config file. `Display` gives one line per problem:
/// `<file>: <key>: <message>` (or `<file>: <message>` for the file as a whole).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", render(.file, .errors))]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `spawner.start_timeout` or `services[1].name`; empty for the
    /// file as a whole (unreadable, TOML syntax).
    pub key: String,
    pub message: String,
}

/// `<key>: <message>`, or `<message>` for the file as a whole.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key.as_str() {
            "" => f.write_str(&self.message),
            key => write!(f, "{key}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn render(file: &Path, errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {e}", file.display()))
        .collect();
    lines.join("\n")
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
        }
    }
}

impl Default for AuthenticatorConfig {
    fn default() -> AuthenticatorConfig {
        AuthenticatorConfig {
            class: AuthenticatorClass::Dummy,
            password: None,
            admin_users: BTreeSet::new(),
            allowed_users: BTreeSet::new(),
            allow_all: false,
        }
    }
}

impl Default for SpawnerConfig {
    fn default() -> SpawnerConfig {
        SpawnerConfig {
            class: SpawnerClass::LocalProcess,
            cmd: vec!["jupyterhub-singleuser".into()],
            args: Vec::new(),
            environment: BTreeMap::new(),
            home_dir_template: default_home_dir_template(Path::new(DEFAULT_DATA_DIR)),
            start_timeout: Duration::from_secs(60),
            http_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
            concurrent_spawn_limit: 100,
            default_url: None,
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        }
    }
}

fn default_home_dir_template(data_dir: &Path) -> String {
    data_dir
        .join("home")
        .join("{username}")
        .to_string_lossy()
        .into_owned()
}

impl Config {
    /// Parses config text. `path` names the file in messages and becomes `source`; nothing
    /// is read from it. `env` supplies the overrides listed in the module docs. Returns
    /// every problem found, not just the first.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            file: path.to_path_buf(),
            errors,
        };
        let root: Table = text
            .parse()
            .map_err(|e| fail(vec![syntax_error(text, &e)]))?;
        let mut errors = Vec::new();
        let root_value = Value::Table(root);
        let top = Reader::open(
            &mut errors,
            String::new(),
            Some(&root_value),
            &[
                "hub",
                "authenticator",
                "spawner",
                "services",
                "cluster",
                "storage",
            ],
        );
        let root = top.table.expect("the root is a table");
        let hub = read_hub(&mut errors, root.get("hub"), env);
        let authenticator = read_authenticator(&mut errors, root.get("authenticator"), env);
        let spawner = read_spawner(&mut errors, root.get("spawner"), &hub.data_dir);
        let services = read_services(&mut errors, root.get("services"), env);
        let cluster = read_cluster(&mut errors, root.get("cluster"), env);
        let storage = read_storage(
            &mut errors,
            root.get("storage"),
            root.get("cluster").is_some(),
        );
        if !errors.is_empty() {
            return Err(fail(errors));
        }
        Ok(Config {
            hub,
            authenticator,
            spawner,
            services,
            cluster,
            storage,
            source: path.to_path_buf(),
        })
    }

    /// Reads and parses the file at `path`; an unreadable file is an error naming it.
    pub fn load(path: &Path, env: &BTreeMap<String, String>) -> Result<Config, ConfigErrors> {
        let whole_file = |message: String| ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![ConfigError {
                key: String::new(),
                message,
            }],
        };
        let bytes = std::fs::read(path)
            .map_err(|e| whole_file(format!("cannot read the config file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| whole_file(format!("the config file is not UTF-8: {e}")))?;
        Config::parse(&text, path, env)
    }

    /// Every default, with `hub.data_dir` (and so the default home directory template) set
    /// to `data_dir`, and an empty `source`.
    pub fn default_for_tests(data_dir: &Path) -> Config {
        let hub = HubConfig {
            data_dir: data_dir.to_path_buf(),
            ..HubConfig::default()
        };
        let spawner = SpawnerConfig {
            home_dir_template: default_home_dir_template(data_dir),
            ..SpawnerConfig::default()
        };
        Config {
            hub,
            authenticator: AuthenticatorConfig::default(),
            spawner,
            services: Vec::new(),
            cluster: None,
            storage: StorageConfig {
                backend: StorageBackendKind::Redb,
                fdb_cluster_file: None,
                fdb_root: DEFAULT_FDB_ROOT.to_owned(),
            },
            source: PathBuf::new(),
        }
    }
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim().replace('\n', "; ");
    let message = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError {
        key: String::new(),
        message,
    }
}

fn read_hub(
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
    }
}

fn read_authenticator(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> AuthenticatorConfig {
    const KEYS: &[&str] = &[
        "class",
        "password",
        "admin_users",
        "allowed_users",
        "allow_all",
    ];
    let d = AuthenticatorConfig::default();
    let mut r = Reader::open(errors, "authenticator".into(), value, KEYS);
    let mut password = r.parsed("password", parse_password);
    if let Some(p) = r.env_override(env, ENV_AUTHENTICATOR_PASSWORD, "password", parse_password) {
        password = Some(p);
    }
    let user_name = |s: &str| {
        if s.is_empty() {
            Err("user names must not be empty".to_owned())
        } else {
            Ok(s.to_owned())
        }
    };
    AuthenticatorConfig {
        class: r
            .parsed("class", |s| choice(s, AuthenticatorClass::ALL))
            .unwrap_or(d.class),
        password,
        admin_users: r
            .list("admin_users", user_name)
            .map_or(d.admin_users, |v| v.into_iter().collect()),
        allowed_users: r
            .list("allowed_users", user_name)
            .map_or(d.allowed_users, |v| v.into_iter().collect()),
        allow_all: r.boolean("allow_all").unwrap_or(d.allow_all),
    }
}

fn read_spawner(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    data_dir: &Path,
) -> SpawnerConfig {
    const KEYS: &[&str] = &[
        "class",
        "cmd",
        "args",
        "environment",
        "home_dir_template",
        "start_timeout",
        "http_timeout",
        "stop_grace",
        "concurrent_spawn_limit",
        "default_url",
        "ip",
    ];
    let d = SpawnerConfig::default();
    let mut r = Reader::open(errors, "spawner".into(), value, KEYS);
    let mut cmd = r.list("cmd", parse_argument);
    if cmd.as_ref().is_some_and(|c| c.is_empty()) {
        r.error("cmd", "must not be empty: give at least the program to run");
        cmd = None;
    }
    let limit = r.integer(
        "concurrent_spawn_limit",
        1,
        i64::try_from(usize::MAX).unwrap_or(i64::MAX),
    );
    SpawnerConfig {
        class: r
            .parsed("class", |s| choice(s, SpawnerClass::ALL))
            .unwrap_or(d.class),
        cmd: cmd.unwrap_or(d.cmd),
        args: r.list("args", parse_argument).unwrap_or(d.args),
        environment: r.environment("environment").unwrap_or(d.environment),
        home_dir_template: r
            .parsed("home_dir_template", parse_home_dir_template)
            .unwrap_or_else(|| default_home_dir_template(data_dir)),
        start_timeout: r.duration("start_timeout", 1.0).unwrap_or(d.start_timeout),
        http_timeout: r.duration("http_timeout", 1.0).unwrap_or(d.http_timeout),
        stop_grace: r.duration("stop_grace", 1.0).unwrap_or(d.stop_grace),
        concurrent_spawn_limit: limit.map_or(d.concurrent_spawn_limit, |n| n as usize),
        default_url: r
            .parsed("default_url", |s| Ok(s.to_owned()))
            .or(d.default_url),
        ip: r
            .parsed("ip", |s| match s.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_unspecified() => Err(format!(
                    "{s} is every address, not one the hub can reach a server at"
                )),
                Ok(ip) if ip.is_multicast() => Err(format!("{s} is a multicast address")),
                Ok(ip) => Ok(ip),
                Err(_) => Err(format!("{s:?} is not an IP address")),
            })
            .unwrap_or(d.ip),
    }
}

fn read_cluster(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> Option<ClusterConfig> {
    value?;
    let mut r = Reader::open(
        errors,
        "cluster".into(),
        value,
        &["node_id", "bind", "peers", "secret", "insecure", "tls"],
    );
    r.table?;
    let insecure = r.boolean("insecure").unwrap_or(false);
    let tls_value = r.get("tls");
    let node_id = r.integer("node_id", 1, i64::MAX).map(|n| n as u64);
    let bind = r.parsed("bind", parse_host_port);
    let peers = r.list("peers", parse_peer);
    let mut secret = r.parsed("secret", parse_cluster_secret);
    if let Some(s) = r.env_override(env, ENV_CLUSTER_SECRET, "secret", parse_cluster_secret) {
        secret = Some(s);
    }
    for key in ["node_id", "bind", "peers"] {
        if r.get(key).is_none() {
            r.error(
                key,
                "missing: every [cluster] needs node_id, bind, peers and secret",
            );
        }
    }
    if secret.is_none() && r.get("secret").is_none() {
        r.error(
            "secret",
            format!("missing: set it here or in {ENV_CLUSTER_SECRET}"),
        );
    }
    if let Some(peers) = &peers {
        let mut seen = BTreeSet::new();
        for p in peers {
            if !seen.insert(p.id) {
                r.error("peers", format!("node id {} appears twice", p.id));
            }
        }
        if let Some(id) = node_id {
            if !seen.contains(&id) {
                r.error("peers", format!("must include this node (node_id = {id})"));
            }
        }
        for message in overlapping_peers(peers) {
            r.error("peers", message);
        }
    }
    if let Some(bind) = &bind {
        let host = bind
            .rsplit_once(':')
            .map_or("", |(h, _)| h)
            .trim_matches(['[', ']']);
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !insecure && tls_value.is_none() {
            r.error(
                "bind",
                format!(
                    "{bind} is not a loopback address: configure [cluster.tls] (see `galilean \
                     cluster certs`), or set cluster.insecure = true to send node-to-node \
                     traffic in clear on a trusted network"
                ),
            );
        }
    }
    let tls = tls_value.map(|v| read_cluster_tls(r.errors, v));
    Some(ClusterConfig {
        node_id: node_id?,
        bind: bind?,
        peers: peers?,
        secret: secret?,
        insecure,
        tls: match tls {
            Some(t) => Some(t?),
            None => None,
        },
    })
}

fn read_cluster_tls(errors: &mut Vec<ConfigError>, value: &Value) -> Option<ClusterTls> {
    let mut r = Reader::open(
        errors,
        "cluster.tls".into(),
        Some(value),
        &["cert", "key", "ca"],
    );
    r.table?;
    let path = |r: &mut Reader, key: &str| {
        let p = r.parsed(key, |s| {
            if s.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(PathBuf::from(s))
            }
        });
        if r.get(key).is_none() {
            r.error(
                key,
                "missing: [cluster.tls] needs cert, key and ca (PEM files)",
            );
        }
        p
    };
    let cert = path(&mut r, "cert");
    let key = path(&mut r, "key");
    let ca = path(&mut r, "ca");
    Some(ClusterTls {
        cert: cert?,
        key: key?,
        ca: ca?,
    })
}

fn read_storage(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    clustered: bool,
) -> StorageConfig {
    let mut r = Reader::open(
        errors,
        "storage".into(),
        value,
        &["backend", "fdb_cluster_file", "fdb_root"],
    );
    let default = if clustered {
        StorageBackendKind::Raft
    } else {
        StorageBackendKind::Redb
    };
    let backend = r
        .parsed("backend", |s| choice(s, StorageBackendKind::ALL))
        .unwrap_or(default);
    match (backend, clustered) {
        (StorageBackendKind::Redb, true) => r.error(
            "backend",
            "\"redb\" keeps state on one node; a [cluster] needs \"raft\" or \"fdb\"",
        ),
        (StorageBackendKind::Raft, false) => r.error(
            "backend",
            "\"raft\" replicates across a [cluster]; add one, or use \"redb\"",
        ),
        (StorageBackendKind::Fdb, _) if !cfg!(feature = "fdb") => r.error(
            "backend",
            "this galilean was built without FoundationDB support (build it with \
             `cargo build --release -p galilean-node --features fdb`, which needs \
             libfdb_c), or use \"raft\"",
        ),
        _ => {}
    }
    let fdb_cluster_file = r.parsed("fdb_cluster_file", |s| {
        if s.is_empty() {
            Err("must not be empty (leave it out for FoundationDB's default)".to_owned())
        } else {
            Ok(PathBuf::from(s))
        }
    });
    let fdb_root = r
        .parsed("fdb_root", |s| {
            if s.is_empty() {
                Err("must not be empty".to_owned())
            } else if s.len() > 100 {
                Err("must be at most 100 bytes".to_owned())
            } else if s.starts_with('\u{ff}') || s.chars().any(char::is_control) {
                Err("must be printable text".to_owned())
            } else {
                Ok(s.to_owned())
            }
        })
        .unwrap_or_else(|| DEFAULT_FDB_ROOT.to_owned());
    if backend != StorageBackendKind::Fdb {
        for key in ["fdb_cluster_file", "fdb_root"] {
            if r.get(key).is_some() {
                r.error(key, "only used with backend = \"fdb\"");
            }
        }
    }
    StorageConfig {
        backend,
        fdb_cluster_file,
        fdb_root,
    }
}

fn parse_host_port(text: &str) -> Result<String, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "must be host:port, e.g. \"127.0.0.1:7101\"; found {text:?}"
        ));
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(format!("must be host:port with a host; found {text:?}"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("the port must be a number up to 65535; found {text:?}"))?;
    Ok(text.to_owned())
}

fn parse_peer(text: &str) -> Result<Peer, String> {
    let Some((id, addr)) = text.split_once('@') else {
        return Err(format!("must be \"<id>@<host>:<port>\"; found {text:?}"));
    };
    let id: u64 = id
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("the node id must be a number ≥ 1; found {text:?}"))?;
    Ok(Peer {
        id,
        addr: parse_host_port(addr)?,
    })
}

/// The `cluster.peers` entries whose ports collide: each node takes its port (raft) and
/// the next one (actor messages), so two entries on one host must be two ports apart.
/// Hosts are compared as written; names that resolve alike are caught when a node
/// answers raft requests meant for another.
fn overlapping_peers(peers: &[Peer]) -> Vec<String> {
    let split = |p: &Peer| -> Option<(String, u16)> {
        let (host, port) = p.addr.rsplit_once(':')?;
        Some((
            host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port.parse().ok()?,
        ))
    };
    let mut messages = Vec::new();
    for (i, a) in peers.iter().enumerate() {
        let Some((host_a, port_a)) = split(a) else {
            continue;
        };
        if port_a == u16::MAX {
            messages.push(format!(
                "node {} uses port {port_a}: the next port carries actor messages, so the \
                 highest is 65534",
                a.id
            ));
        }
        for b in &peers[i + 1..] {
            let Some((host_b, port_b)) = split(b) else {
                continue;
            };
            if host_a == host_b && port_a.abs_diff(port_b) <= 1 {
                messages.push(format!(
                    "nodes {} ({}) and {} ({}) overlap: each node uses its port and the next \
                     one, so nodes on one host need ports at least two apart",
                    a.id, a.addr, b.id, b.addr
                ));
            }
        }
    }
    messages
}

fn parse_cluster_secret(text: &str) -> Result<Secret, String> {
    if text.chars().count() < 16 {
        return Err("must be at least 16 characters".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".into());
    }
    Ok(Secret::new(text))
}

fn read_services(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> Vec<ServiceConfig> {
    let items = match value {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            let message = format!(
                "expected an array of tables ([[services]]), found {}",
                found(other)
            );
            errors.push(ConfigError {
                key: "services".into(),
                message,
            });
            return Vec::new();
        }
    };
    let mut services = Vec::new();
    // service name → index, and token variable → index, to report clashes.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut token_vars: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let mut r = Reader::open(
            errors,
            format!("services[{i}]"),
            Some(item),
            &["name", "api_token", "admin"],
        );
        if r.table.is_none() {
            continue;
        }
        let name = r.parsed("name", parse_service_name);
        if r.get("name").is_none() {
            r.error("name", "missing: every service needs a name");
        }
        let mut token = r.parsed("api_token", parse_api_token);
        let admin = r.boolean("admin").unwrap_or(false);
        if let Some(name) = &name {
            let var = service_token_env_var(name);
            if let Some(first) = names.insert(name.clone(), i) {
                r.error(
                    "name",
                    format!("duplicate service name {name:?} (also services[{first}])"),
                );
            } else if let Some(first) = token_vars.insert(var.clone(), i) {
                if env.contains_key(&var) {
                    let message = format!(
                        "{var} would set the api_token of both services[{first}] and this one"
                    );
                    r.error("name", message);
                }
            } else if let Some(from_env) = r.env_override(env, &var, "api_token", parse_api_token) {
                token = Some(from_env);
            }
        }
        services.push(ServiceConfig {
            name: name.unwrap_or_default(),
            api_token: token,
            admin,
        });
    }
    for (j, service) in services.iter().enumerate() {
        let Some(token) = &service.api_token else {
            continue;
        };
        if let Some(i) = services[..j]
            .iter()
            .position(|s| s.api_token.as_ref() == Some(token))
        {
            let message = format!("the same token as services[{i}]; each service needs its own");
            errors.push(ConfigError {
                key: format!("services[{j}].api_token"),
                message,
            });
        }
    }
    services
}

/// Reads one table of the config, pushing a problem for every unknown key on opening and
/// for every wrong type or invalid value as values are read. Getters return `None` when
/// the key is absent or its value is wrong, so the caller falls back to the default.
struct Reader<'t, 'e> {
    /// Dotted key of this table, `""` for the root.
    prefix: String,
    /// `None` when the table is absent or not a table.
    table: Option<&'t Table>,
    errors: &'e mut Vec<ConfigError>,
}

impl<'t, 'e> Reader<'t, 'e> {
    fn open(
        errors: &'e mut Vec<ConfigError>,
        prefix: String,
        value: Option<&'t Value>,
        known: &[&str],
    ) -> Reader<'t, 'e> {
        let mut reader = Reader {
            prefix,
            table: None,
            errors,
        };
        match value {
            None => {}
            Some(Value::Table(table)) => {
                reader.table = Some(table);
                for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
                    reader.error(
                        key,
                        format!("unknown key (expected one of: {})", known.join(", ")),
                    );
                }
            }
            Some(other) => {
                let message = format!("expected a table, found {}", found(other));
                reader.errors.push(ConfigError {
                    key: reader.prefix.clone(),
                    message,
                });
            }
        }
        reader
    }

    fn key(&self, name: &str) -> String {
        let name = key_segment(name);
        if self.prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn error(&mut self, name: &str, message: impl Into<String>) {
        let key = self.key(name);
        self.errors.push(ConfigError {
            key,
            message: message.into(),
        });
    }

    fn get(&self, name: &str) -> Option<&'t Value> {
        self.table.and_then(|t| t.get(name))
    }

    fn wrong_type(&mut self, name: &str, expected: &str, value: &Value) {
        self.error(name, format!("expected {expected}, found {}", found(value)));
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(name, "a boolean", other);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.get(name)? {
            Value::Integer(n) if *n < min => self.invalid(name, format!("must be {min} or more")),
            Value::Integer(n) if *n > max => self.invalid(name, format!("must be at most {max}")),
            Value::Integer(n) => Some(*n),
            other => {
                self.wrong_type(name, "an integer", other);
                None
            }
        }
    }

    /// A positive number of `unit` seconds, integer or float.
    fn duration(&mut self, name: &str, unit: f64) -> Option<Duration> {
        let n = match self.get(name)? {
            Value::Integer(n) => *n as f64,
            Value::Float(f) => *f,
            other => {
                self.wrong_type(name, "a number", other);
                return None;
            }
        };
        if n.is_nan() || n <= 0.0 {
            return self.invalid(name, "must be greater than 0".into());
        }
        match Duration::try_from_secs_f64(n * unit) {
            Ok(d) => Some(d),
            Err(_) => self.invalid(name, "is too large".into()),
        }
    }

    fn invalid<T>(&mut self, name: &str, message: String) -> Option<T> {
        self.error(name, message);
        None
    }

    /// A string, checked and converted by `parse`, whose `Err` is the message.
    fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.get(name)? {
            Value::String(s) => match parse(s) {
                Ok(v) => Some(v),
                Err(message) => self.invalid(name, message),
            },
            other => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    /// An array of strings, each checked by `parse`; a problem with any item is reported
    /// with the item's index, and makes the whole list `None`.
    fn list<T>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Option<Vec<T>> {
        let items = match self.get(name)? {
            Value::Array(items) => items,
            other => {
                self.wrong_type(name, "an array of strings", other);
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let result = match item {
                Value::String(s) => parse(s),
                other => Err(format!("expected a string, found {}", found(other))),
            };
            match result {
                Ok(v) => out.push(v),
                Err(message) => {
                    let key = format!("{}[{i}]", self.key(name));
                    self.errors.push(ConfigError { key, message });
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A table of environment variable names to string values.
    fn environment(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let table = match self.get(name)? {
            Value::Table(t) => t,
            other => {
                self.wrong_type(name, "a table of strings", other);
                return None;
            }
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (var, value) in table {
            let problem = match value {
                Value::String(_) if var.is_empty() || var.contains(['=', '\0']) => {
                    Some("not a valid environment variable name".to_owned())
                }
                Value::String(s) if s.contains('\0') => {
                    Some("must not contain a NUL character".to_owned())
                }
                Value::String(s) => {
                    out.insert(var.clone(), s.clone());
                    None
                }
                other => Some(format!("expected a string, found {}", found(other))),
            };
            if let Some(message) = problem {
                let key = format!("{}.{}", self.key(name), key_segment(var));
                self.errors.push(ConfigError { key, message });
                ok = false;
            }
        }
        ok.then_some(out)
    }

    /// The value of environment variable `var`, if set, checked by `parse`; a problem is
    /// reported under `name` and names the variable. Never echoes the value.
    fn env_override<T>(
        &mut self,
        env: &BTreeMap<String, String>,
        var: &str,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(env.get(var)?) {
            Ok(v) => Some(v),
            Err(message) => self.invalid(name, format!("from {var}: {message}")),
        }
    }
}

/// A key as written in a dotted path: bare if TOML allows, quoted otherwise.
fn key_segment(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{key:?}"))
    }
}

fn found(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn choice<T: Copy>(text: &str, options: &[(&str, T)]) -> Result<T, String> {
    match options.iter().find(|(name, _)| *name == text) {
        Some((_, v)) => Ok(*v),
        None => {
            let names: Vec<String> = options
                .iter()
                .map(|(name, _)| format!("{name:?}"))
                .collect();
            Err(format!(
                "{text:?} is not one of the accepted values: {}",
                names.join(", ")
            ))
        }
    }
}

fn parse_path(text: &str) -> Result<PathBuf, String> {
    match text {
        "" => Err("must not be empty".into()),
        _ if text.contains('\0') => Err("must not contain a NUL character".into()),
        _ => Ok(PathBuf::from(text)),
    }
}

fn parse_argument(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    Ok(text.to_owned())
}

fn parse_base_url(text: &str) -> Result<String, String> {
    if text.contains("://") {
        return Err(format!(
            "must be a path such as \"/jupyter/\", not a URL: {text:?}"
        ));
    }
    if text.contains(['?', '#']) || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "must be a plain path such as \"/jupyter/\", without ?, # or spaces: {text:?}"
        ));
    }
    let inner = text.trim_matches('/');
    if !inner.is_empty()
        && inner
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "must not contain empty, \".\" or \"..\" segments: {text:?}"
        ));
    }
    Ok(if inner.is_empty() {
        "/".into()
    } else {
        format!("/{inner}/")
    })
}

fn parse_public_url(text: &str) -> Result<String, String> {
    let url = UrlParts::split(text)?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!(
            "scheme must be http or https, not {:?}",
            url.scheme
        ));
    }
    if url.query_or_fragment {
        return Err("must not have a query or fragment".into());
    }
    Ok(text.to_owned())
}

fn parse_home_dir_template(text: &str) -> Result<String, String> {
    if !text.contains("{username}") {
        return Err(format!(
            "must contain {{username}}, e.g. \"/home/{{username}}\"; found {text:?}"
        ));
    }
    parse_path(text)?;
    Ok(text.to_owned())
}

fn parse_password(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("must not be empty; leave it out to accept any password".into());
    }
    Ok(Secret::new(text))
}

fn parse_service_name(name: &str) -> Result<String, String> {
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.trim() != name {
        "must not start or end with whitespace"
    } else if name.contains('/') {
        "must not contain '/'"
    } else if name.contains('%') {
        "must not contain '%'"
    } else if name.chars().all(|c| c == '.') {
        "must not consist only of dots"
    } else {
        return Ok(name.to_owned());
    };
    Err(format!("{problem}: {name:?}"))
}

/// Never echoes the token.
fn parse_api_token(token: &str) -> Result<Secret, String> {
    let len = token.chars().count();
    if !(8..=64).contains(&len) {
        return Err(format!("must be 8 to 64 characters long, found {len}"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    Ok(Secret::new(token))
}

/// The parts of `scheme://host[:port][/path][?query][#fragment]` this module checks.
struct UrlParts {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query_or_fragment: bool,
}

impl UrlParts {
    fn split(text: &str) -> Result<UrlParts, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "not a URL (expected scheme://host:port/): {text:?}"
            ));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
        if authority.contains('@') {
            return Err("must not contain a user name or password".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("unclosed '[' in {text:?}"))?;
                host.parse::<Ipv6Addr>()
                    .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
                match after {
                    "" => (host, None),
                    _ => (
                        host,
                        Some(
                            after
                                .strip_prefix(':')
                                .ok_or_else(|| format!("unexpected {after:?} after ']'"))?,
                        ),
                    ),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(format!("must have a host: {text:?}"));
        }
        let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !authority.starts_with('[') && !host.chars().all(valid_name) {
            return Err(format!("{host:?} is not a valid host name"));
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{p:?} is not a valid port (0 to 65535)"))?,
            ),
        };
        Ok(UrlParts {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_owned(),
            port,
            path: rest[..path_end].to_owned(),
            query_or_fragment: path_end < rest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PathBuf {
        PathBuf::from("/etc/galilean/galilean.toml")
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, &file(), &BTreeMap::new())
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(text, &file(), &env)
    }

    fn errors(text: &str) -> Vec<(String, String)> {
        let e = parse(text).expect_err("config should be rejected");
        e.errors.into_iter().map(|e| (e.key, e.message)).collect()
    }

    /// The one error for `key`, panicking if there is not exactly one.
    fn error_for(errs: &[(String, String)], key: &str) -> String {
        let found: Vec<_> = errs.iter().filter(|(k, _)| k == key).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one error for {key}, got {errs:#?}"
        );
        found[0].1.clone()
    }

    #[test]
    fn an_empty_file_gives_every_default() {
        let config = parse("").unwrap();
        assert_eq!(config.source, file());
        assert_eq!(config.hub.bind_url.to_string(), "http://127.0.0.1:8000/");
        assert_eq!(config.hub.bind_url.authority(), "127.0.0.1:8000");
        assert_eq!(config.hub.base_url, "/");
        assert_eq!(config.hub.data_dir, Path::new("galilean-data"));
        assert!(!config.hub.cleanup_servers);
        assert!(!config.hub.allow_named_servers);
        assert_eq!(config.hub.named_server_limit_per_user, 0);
        assert!(config.hub.template_paths.is_empty());
        assert_eq!(
            config.hub.cookie_max_age,
            Duration::from_secs(14 * 24 * 3600)
        );
        assert_eq!(config.hub.public_url, None);
        assert_eq!(config.hub.log_level, LogLevel::Info);
        assert_eq!(config.authenticator.class, AuthenticatorClass::Dummy);
        assert_eq!(config.authenticator.password, None);
        assert!(
            config.authenticator.admin_users.is_empty()
                && config.authenticator.allowed_users.is_empty()
        );
        assert!(!config.authenticator.allow_all);
        assert_eq!(config.spawner.class, SpawnerClass::LocalProcess);
        assert_eq!(config.spawner.cmd, ["jupyterhub-singleuser"]);
        assert!(config.spawner.args.is_empty() && config.spawner.environment.is_empty());
        assert_eq!(
            config.spawner.home_dir_template,
            "galilean-data/home/{username}"
        );
        assert_eq!(config.spawner.start_timeout, Duration::from_secs(60));
        assert_eq!(config.spawner.http_timeout, Duration::from_secs(30));
        assert_eq!(config.spawner.stop_grace, Duration::from_secs(10));
        assert_eq!(config.spawner.concurrent_spawn_limit, 100);
        assert_eq!(config.spawner.default_url, None);
        assert!(config.services.is_empty());
        let defaults = Config::default_for_tests(Path::new("galilean-data"));
        assert_eq!(
            Config {
                source: PathBuf::new(),
                ..config
            },
            defaults
        );
    }

    #[test]
    fn default_for_tests_puts_homes_under_the_data_dir() {
        let config = Config::default_for_tests(Path::new("/tmp/t1"));
        assert_eq!(config.hub.data_dir, Path::new("/tmp/t1"));
        assert_eq!(config.spawner.home_dir_template, "/tmp/t1/home/{username}");
    }

    #[test]
    fn every_key_takes_a_non_default_value() {
        let text = r#"
            [hub]
            bind_url = "http://[::1]:9000"
            base_url = "jupyter"
            data_dir = "/var/lib/galilean"
            cleanup_servers = true
            allow_named_servers = true
            named_server_limit_per_user = 3
            template_paths = ["/etc/galilean/templates", "more"]
            cookie_max_age_days = 0.5
            public_url = "https://hub.example.org/jupyter/"
            log_level = "debug"

            [authenticator]
            class = "dummy"
            password = "hunter2-correct-horse"
            admin_users = ["ada"]
            allowed_users = ["bob", "cy"]
            allow_all = true

            [spawner]
            class = "local-process"
            cmd = ["python3", "-m", "jupyterhub.singleuser"]
            args = ["--debug"]
            environment = { LANG = "C.UTF-8", "MY VAR" = "x" }
            home_dir_template = "/home/{username}/work"
            start_timeout = 120
            http_timeout = 2.5
            stop_grace = 3
            concurrent_spawn_limit = 7
            default_url = "/lab"

            [[services]]
            name = "idle-culler"
            api_token = "0123456789abcdef"
            admin = true

            [[services]]
            name = "announcements"
        "#;
        let c = parse(text).unwrap();
        assert_eq!(
            c.hub.bind_url,
            BindUrl {
                host: "::1".into(),
                port: 9000
            }
        );
        assert_eq!(c.hub.bind_url.to_string(), "http://[::1]:9000/");
        assert_eq!(c.hub.base_url, "/jupyter/");
        assert_eq!(c.hub.data_dir, Path::new("/var/lib/galilean"));
        assert!(c.hub.cleanup_servers && c.hub.allow_named_servers);
        assert_eq!(c.hub.named_server_limit_per_user, 3);
        assert_eq!(
            c.hub.template_paths,
            [
                PathBuf::from("/etc/galilean/templates"),
                PathBuf::from("more")
            ]
        );
        assert_eq!(c.hub.cookie_max_age, Duration::from_secs(12 * 3600));
        assert_eq!(
            c.hub.public_url.as_deref(),
            Some("https://hub.example.org/jupyter/")
        );
        assert_eq!(c.hub.log_level, LogLevel::Debug);
        assert_eq!(c.hub.log_level.as_str(), "debug");
        assert_eq!(c.authenticator.class, AuthenticatorClass::Dummy);
        assert_eq!(
            c.authenticator.password.as_ref().map(Secret::expose),
            Some("hunter2-correct-horse")
        );
        assert_eq!(
            c.authenticator.admin_users,
            BTreeSet::from(["ada".to_owned()])
        );
        assert_eq!(
            c.authenticator.allowed_users,
            BTreeSet::from(["bob".to_owned(), "cy".to_owned()])
        );
        assert!(c.authenticator.allow_all);
        assert_eq!(c.spawner.class, SpawnerClass::LocalProcess);
        assert_eq!(c.spawner.cmd, ["python3", "-m", "jupyterhub.singleuser"]);
        assert_eq!(c.spawner.args, ["--debug"]);
        assert_eq!(c.spawner.environment["LANG"], "C.UTF-8");
        assert_eq!(c.spawner.environment["MY VAR"], "x");
        assert_eq!(c.spawner.home_dir_template, "/home/{username}/work");
        assert_eq!(c.spawner.start_timeout, Duration::from_secs(120));
        assert_eq!(c.spawner.http_timeout, Duration::from_millis(2500));
        assert_eq!(c.spawner.stop_grace, Duration::from_secs(3));
        assert_eq!(c.spawner.concurrent_spawn_limit, 7);
        assert_eq!(c.spawner.default_url.as_deref(), Some("/lab"));
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].name, "idle-culler");
        assert_eq!(
            c.services[0].api_token.as_ref().map(Secret::expose),
            Some("0123456789abcdef")
        );
        assert!(c.services[0].admin);
        assert_eq!(
            c.services[1],
            ServiceConfig {
                name: "announcements".into(),
                api_token: None,
                admin: false
            }
        );
    }

    #[test]
    fn the_class_names_serialize_as_written_in_the_config() {
        let value = |v| toml::Value::try_from(v).unwrap();
        assert_eq!(value(AuthenticatorClass::Dummy), toml::Value::from("dummy"));
        assert_eq!(
            toml::Value::try_from(SpawnerClass::LocalProcess).unwrap(),
            toml::Value::from("local-process")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key_and_the_file() {
        let text = r#"
            colour = "blue"

            [hub]
            bind_url = "http://127.0.0.1:8000/hub/"
            base_url = "http://example.org/hub/"
            cleanup_servers = "yes"
            named_server_limit_per_user = -1
            log_level = "verbose"
            cookie_max_age_days = 0
            listen = 1

            [authenticator]
            class = "pam"
            admin_users = "ada"

            [spawner]
            cmd = []
            home_dir_template = "/home/user"
            start_timeout = "60"
            stop_grace = -1
            concurrent_spawn_limit = 0
            environment = { LANG = 1 }

            [[services]]
            name = "a"
            api_token = "short"
            port = 8080

            [[services]]
            name = "a"

            [[services]]
            admin = "no"
        "#;
        let err = parse(text).unwrap_err();
        assert_eq!(err.file, file());
        let errs: Vec<(String, String)> = err
            .errors
            .iter()
            .map(|e| (e.key.clone(), e.message.clone()))
            .collect();
        assert!(error_for(&errs, "colour").starts_with("unknown key"));
        assert!(
            error_for(&errs, "hub.listen").starts_with("unknown key (expected one of: bind_url,")
        );
        assert!(error_for(&errs, "services[0].port").starts_with("unknown key"));
        assert_eq!(
            error_for(&errs, "hub.cleanup_servers"),
            "expected a boolean, found a string"
        );
        assert_eq!(
            error_for(&errs, "spawner.start_timeout"),
            "expected a number, found a string"
        );
        assert_eq!(
            error_for(&errs, "authenticator.admin_users"),
            "expected an array of strings, found a string"
        );
        assert_eq!(
            error_for(&errs, "services[2].admin"),
            "expected a boolean, found a string"
        );
        assert_eq!(
            error_for(&errs, "spawner.environment.LANG"),
            "expected a string, found an integer"
        );
        assert!(error_for(&errs, "spawner.cmd").starts_with("must not be empty"));
        assert!(
            error_for(&errs, "spawner.home_dir_template").starts_with("must contain {username}")
        );
        assert!(error_for(&errs, "hub.base_url").contains("not a URL"));
        assert!(error_for(&errs, "hub.bind_url").contains("hub.base_url"));
        assert_eq!(
            error_for(&errs, "hub.named_server_limit_per_user"),
            "must be 0 or more"
        );
        assert!(error_for(&errs, "hub.log_level")
            .contains("\"error\", \"warn\", \"info\", \"debug\", \"trace\""));
        assert_eq!(
            error_for(&errs, "hub.cookie_max_age_days"),
            "must be greater than 0"
        );
        assert_eq!(
            error_for(&errs, "authenticator.class"),
            "\"pam\" is not one of the accepted values: \"dummy\""
        );
        assert_eq!(
            error_for(&errs, "spawner.stop_grace"),
            "must be greater than 0"
        );
        assert_eq!(
            error_for(&errs, "spawner.concurrent_spawn_limit"),
            "must be 1 or more"
        );
        assert_eq!(
            error_for(&errs, "services[0].api_token"),
            "must be 8 to 64 characters long, found 5"
        );
        assert_eq!(
            error_for(&errs, "services[1].name"),
            "duplicate service name \"a\" (also services[0])"
        );
        assert_eq!(
            error_for(&errs, "services[2].name"),
            "missing: every service needs a name"
        );
        assert_eq!(errs.len(), 21, "{errs:#?}");

        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 21);
        assert!(
            shown
                .lines()
                .all(|l| l.starts_with("/etc/galilean/galilean.toml: ")),
            "{shown}"
        );
        let line =
            "/etc/galilean/galilean.toml: spawner.start_timeout: expected a number, found a string";
        assert!(shown.lines().any(|l| l == line), "{shown}");
        assert!(!shown.contains("short"), "the token must not be echoed");
    }

    #[test]
    fn tables_and_services_of_the_wrong_shape_are_reported() {
        let errs = errors("hub = 1\nspawner = []\nservices = { name = \"x\" }\n");
        assert_eq!(
            error_for(&errs, "hub"),
            "expected a table, found an integer"
        );
        assert_eq!(
            error_for(&errs, "spawner"),
            "expected a table, found an array"
        );
        assert!(error_for(&errs, "services").starts_with("expected an array of tables"));
        let errs = errors("services = [\"x\"]\n");
        assert_eq!(
            error_for(&errs, "services[0]"),
            "expected a table, found a string"
        );
        let errs = errors("[hub]\ntemplate_paths = [\"ok\", 3, \"\"]\n\"odd.key\" = 1\n");
        assert_eq!(
            error_for(&errs, "hub.template_paths[1]"),
            "expected a string, found an integer"
        );
        assert_eq!(
            error_for(&errs, "hub.template_paths[2]"),
            "must not be empty"
        );
        assert!(error_for(&errs, "hub.\"odd.key\"").starts_with("unknown key"));
    }

    #[test]
    fn bind_url_must_be_http_with_host_and_port_and_no_path() {
        let ok = |s: &str| BindUrl::parse(s).map(|u| u.to_string());
        assert_eq!(ok("http://0.0.0.0:8000").unwrap(), "http://0.0.0.0:8000/");
        assert_eq!(ok("http://localhost:0/").unwrap(), "http://localhost:0/");
        assert_eq!(ok("http://[::]:80/").unwrap(), "http://[::]:80/");
        for bad in [
            "https://127.0.0.1:8000/",
            "127.0.0.1:8000",
            "http://127.0.0.1/",
            "http://:8000/",
            "http://127.0.0.1:8000/hub/",
            "http://127.0.0.1:99999/",
            "http://user:pw@127.0.0.1:8000/",
            "http://127.0.0.1:8000/?x=1",
            "http://[zz]:80/",
            "http://a b:80/",
        ] {
            assert!(BindUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn base_url_gains_its_missing_slashes() {
        assert_eq!(parse_base_url("").unwrap(), "/");
        assert_eq!(parse_base_url("/").unwrap(), "/");
        assert_eq!(parse_base_url("hub").unwrap(), "/hub/");
        assert_eq!(parse_base_url("/a/b").unwrap(), "/a/b/");
        assert_eq!(parse_base_url("a/b/").unwrap(), "/a/b/");
        for bad in ["/a//b/", "/a/../b/", "/a b/", "/a?x/", "https://x/"] {
            assert!(parse_base_url(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn service_names_that_cannot_be_in_a_url_are_rejected() {
        for good in ["a", "idle-culler", "my.service", "a_b"] {
            assert!(parse_service_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", ".", "..", " a", "a ", "50%"] {
            assert!(
                parse_service_name(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let text = r#"
            [hub]
            bind_url = "http://127.0.0.1:8000/"
            data_dir = "from-file"
            [authenticator]
            password = "file-password"
            [[services]]
            name = "idle-culler"
            api_token = "file-token-123"
            [[services]]
            name = "other"
            api_token = "other-token-123"
        "#;
        let c = parse_env(
            text,
            &[
                ("GALILEAN_HUB_BIND_URL", "http://0.0.0.0:9999"),
                ("GALILEAN_HUB_DATA_DIR", "/srv/galilean"),
                ("GALILEAN_AUTHENTICATOR_PASSWORD", "env-password"),
                ("GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN", "env-token-4567"),
            ],
        )
        .unwrap();
        assert_eq!(c.hub.bind_url.authority(), "0.0.0.0:9999");
        assert_eq!(c.hub.data_dir, Path::new("/srv/galilean"));
        assert_eq!(c.spawner.home_dir_template, "/srv/galilean/home/{username}");
        assert_eq!(c.authenticator.password.unwrap().expose(), "env-password");
        assert_eq!(
            c.services[0].api_token.as_ref().unwrap().expose(),
            "env-token-4567"
        );
        assert_eq!(
            c.services[1].api_token.as_ref().unwrap().expose(),
            "other-token-123"
        );

        // The environment alone is enough.
        let c = parse_env(
            "[[services]]\nname = \"x\"\n",
            &[("GALILEAN_SERVICE_X_API_TOKEN", "abcdefgh")],
        )
        .unwrap();
        assert_eq!(
            c.services[0].api_token.as_ref().unwrap().expose(),
            "abcdefgh"
        );
        assert_eq!(
            service_token_env_var("idle-culler"),
            "GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN"
        );
    }

    #[test]
    fn a_bad_environment_value_is_reported_with_its_variable() {
        let text = "[[services]]\nname = \"a-b\"\n[[services]]\nname = \"a_b\"\n";
        let env = [
            ("GALILEAN_HUB_BIND_URL", "https://0.0.0.0:1/"),
            ("GALILEAN_HUB_DATA_DIR", ""),
            ("GALILEAN_AUTHENTICATOR_PASSWORD", ""),
            ("GALILEAN_SERVICE_A_B_API_TOKEN", "tiny"),
        ];
        let err = parse_env(text, &env).unwrap_err();
        let errs: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.key.clone(), e.message.clone()))
            .collect();
        assert!(error_for(&errs, "hub.bind_url").starts_with("from GALILEAN_HUB_BIND_URL: https"));
        assert_eq!(
            error_for(&errs, "hub.data_dir"),
            "from GALILEAN_HUB_DATA_DIR: must not be empty"
        );
        assert!(error_for(&errs, "authenticator.password")
            .starts_with("from GALILEAN_AUTHENTICATOR_PASSWORD:"));
        assert_eq!(
            error_for(&errs, "services[0].api_token"),
            "from GALILEAN_SERVICE_A_B_API_TOKEN: must be 8 to 64 characters long, found 4"
        );
        assert!(error_for(&errs, "services[1].name").contains("both services[0] and this one"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = r#"
            [authenticator]
            password = "file-password-secret"
            [[services]]
            name = "a"
            api_token = "token-aaaa-secret"
            [[services]]
            name = "b"
        "#;
        let c = parse_env(
            text,
            &[("GALILEAN_SERVICE_B_API_TOKEN", "token-bbbb-secret")],
        )
        .unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("\"***\""));
        assert_eq!(
            c.services[1].api_token.as_ref().unwrap().expose(),
            "token-bbbb-secret"
        );
    }

    #[test]
    fn services_may_not_share_a_token() {
        let text = r#"
            [[services]]
            name = "a"
            api_token = "same-token"
            [[services]]
            name = "b"
            api_token = "same-token"
        "#;
        let errs = errors(text);
        assert_eq!(
            error_for(&errs, "services[1].api_token"),
            "the same token as services[0]; each service needs its own"
        );
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let err = parse("[hub]\nbase_url = \"/\"\nbind_url = \n").unwrap_err();
        assert_eq!(err.errors.len(), 1);
        let shown = err.to_string();
        assert!(
            shown.starts_with("/etc/galilean/galilean.toml: TOML syntax error at line 3, column"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 1);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let path = Path::new("/nonexistent/galilean.toml");
        let err = Config::load(path, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.file, path);
        let shown = err.to_string();
        assert!(
            shown.starts_with("/nonexistent/galilean.toml: cannot read the config file:"),
            "{shown}"
        );
    }

    #[test]
    fn load_reads_the_file() {
        let dir = std::env::temp_dir().join(format!("galilean-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("galilean.toml");
        std::fs::write(&path, "[hub]\nallow_named_servers = true\n").unwrap();
        let c = Config::load(&path, &BTreeMap::new()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(c.hub.allow_named_servers);
        assert_eq!(c.source, path);
    }

    const CLUSTER: &str = r#"
[cluster]
node_id = 2
bind = "127.0.0.1:7103"
peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]
secret = "a-cluster-secret-of-some-length"
"#;

    #[test]
    fn a_cluster_section_defaults_storage_to_raft() {
        let c = parse(CLUSTER).unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.node_id, 2);
        assert_eq!(cluster.bind, "127.0.0.1:7103");
        assert_eq!(cluster.peers.len(), 3);
        assert_eq!(
            cluster.peers[2],
            Peer {
                id: 3,
                addr: "127.0.0.1:7105".into()
            }
        );
        assert_eq!(c.storage.backend, StorageBackendKind::Raft);
        // without [cluster], the embedded store
        assert_eq!(parse("").unwrap().storage.backend, StorageBackendKind::Redb);
        assert!(parse("").unwrap().cluster.is_none());
    }

    #[test]
    fn cluster_mistakes_are_each_reported() {
        let errs = errors(
            r#"
[cluster]
node_id = 0
bind = "nowhere"
peers = ["1@127.0.0.1:7101", "x@y", "1@127.0.0.1:7109"]
secret = "short"
[storage]
backend = "redb"
"#,
        );
        assert!(error_for(&errs, "cluster.node_id").contains("1"));
        assert!(error_for(&errs, "cluster.bind").contains("host:port"));
        assert!(error_for(&errs, "cluster.secret").contains("16"));
        assert!(
            errs.iter()
                .any(|(k, m)| k.starts_with("cluster.peers") && m.contains("x@y")),
            "{errs:#?}"
        );
        assert!(error_for(&errs, "storage.backend").contains("raft"));
        let errs = errors("[cluster]\nnode_id = 4\n");
        for key in ["cluster.bind", "cluster.peers", "cluster.secret"] {
            assert!(errs.iter().any(|(k, _)| k == key), "{key}: {errs:#?}");
        }
        let errs = errors(&CLUSTER.replace("node_id = 2", "node_id = 9"));
        assert!(error_for(&errs, "cluster.peers").contains("node_id = 9"));
        // two nodes on one port, or on adjacent ones (each takes its port and the next)
        for (two, three) in [
            ("127.0.0.1:7102", "127.0.0.1:7102"),
            ("127.0.0.1:7102", "127.0.0.1:7103"),
        ] {
            let text = CLUSTER.replace(
                r#"peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]"#,
                &format!(r#"peers = ["1@127.0.0.1:7110", "2@{two}", "3@{three}"]"#),
            );
            let errs = errors(&text);
            let message = error_for(&errs, "cluster.peers");
            assert!(
                message.contains("nodes 2") && message.contains("and 3"),
                "{message}"
            );
        }
        let errs = errors(&CLUSTER.replace("3@127.0.0.1:7105", "3@127.0.0.1:65535"));
        assert!(error_for(&errs, "cluster.peers").contains("65534"));
        // the same port on other hosts is how clusters are usually laid out
        let spread = CLUSTER.replace(
            r#"peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]"#,
            r#"peers = ["1@10.0.0.1:7103", "2@127.0.0.1:7103", "3@10.0.0.3:7103"]"#,
        );
        assert!(parse(&spread).is_ok());
        let errs = errors("[storage]\nbackend = \"raft\"\n");
        assert!(error_for(&errs, "storage.backend").contains("[cluster]"));
    }

    #[test]
    fn spawner_ip_is_one_reachable_address() {
        assert_eq!(
            parse("").unwrap().spawner.ip,
            std::net::IpAddr::from([127, 0, 0, 1])
        );
        let c = parse("[spawner]\nip = \"10.0.0.7\"\n").unwrap();
        assert_eq!(c.spawner.ip, std::net::IpAddr::from([10, 0, 0, 7]));
        for (bad, says) in [
            ("0.0.0.0", "every address"),
            ("ff02::1", "multicast"),
            ("hub.local", "not an IP address"),
        ] {
            let errs = errors(&format!("[spawner]\nip = \"{bad}\"\n"));
            assert!(error_for(&errs, "spawner.ip").contains(says), "{errs:?}");
        }
    }

    #[test]
    fn the_fdb_backend_and_its_keys() {
        let fdb = format!(
            "{CLUSTER}\n[storage]\nbackend = \"fdb\"\nfdb_cluster_file = \"/etc/fdb/hub.cluster\"\n"
        );
        if cfg!(feature = "fdb") {
            let c = parse(&fdb).unwrap();
            assert_eq!(c.storage.backend, StorageBackendKind::Fdb);
            assert_eq!(
                c.storage.fdb_cluster_file.as_deref(),
                Some(std::path::Path::new("/etc/fdb/hub.cluster"))
            );
            assert_eq!(c.storage.fdb_root, DEFAULT_FDB_ROOT);
            // one node on FoundationDB, without [cluster], is allowed
            let single = parse("[storage]\nbackend = \"fdb\"\nfdb_root = \"hub-a\"\n").unwrap();
            assert_eq!(single.storage.fdb_root, "hub-a");
        } else {
            let errs = errors(&fdb);
            assert!(error_for(&errs, "storage.backend").contains("--features fdb"));
        }
        let errs = errors("[storage]\nbackend = \"fdb\"\nfdb_root = \"\"\nfdb_cluster_file = 3\n");
        assert!(error_for(&errs, "storage.fdb_root").contains("empty"));
        assert!(error_for(&errs, "storage.fdb_cluster_file").contains("string"));
        let errs = errors("[storage]\nfdb_root = \"x\"\n");
        assert!(error_for(&errs, "storage.fdb_root").contains("only used with backend"));
    }

    #[test]
    fn a_cluster_off_loopback_needs_tls_or_insecure() {
        let lan = CLUSTER.replace("bind = \"127.0.0.1:7103\"", "bind = \"10.0.0.2:7103\"");
        let errs = errors(&lan);
        let message = error_for(&errs, "cluster.bind");
        assert!(message.contains("cluster.insecure") && message.contains("[cluster.tls]"));
        let ok = lan.replace("[cluster]\n", "[cluster]\ninsecure = true\n");
        assert!(parse(&ok).unwrap().cluster.unwrap().insecure);
        let tls = format!(
            "{lan}\n[cluster.tls]\ncert = \"n2.pem\"\nkey = \"n2-key.pem\"\nca = \"ca.pem\"\n"
        );
        let c = parse(&tls).unwrap().cluster.unwrap();
        assert!(!c.insecure);
        assert_eq!(
            c.tls,
            Some(ClusterTls {
                cert: "n2.pem".into(),
                key: "n2-key.pem".into(),
                ca: "ca.pem".into(),
            })
        );
    }

    #[test]
    fn cluster_tls_needs_all_three_files_and_no_other_key() {
        let bad = format!("{CLUSTER}\n[cluster.tls]\ncert = \"n.pem\"\nca = 5\nkeys = \"x\"\n");
        let errs = errors(&bad);
        assert!(error_for(&errs, "cluster.tls.key").contains("missing"));
        assert!(error_for(&errs, "cluster.tls.ca").contains("a string"));
        assert!(error_for(&errs, "cluster.tls.keys").contains("unknown key"));
    }

    #[test]
    fn the_cluster_secret_can_come_from_the_environment() {
        let text = CLUSTER.replace("secret = \"a-cluster-secret-of-some-length\"\n", "");
        let env = BTreeMap::from([(
            ENV_CLUSTER_SECRET.to_owned(),
            "from-the-environment-123".to_owned(),
        )]);
        let c = Config::parse(&text, Path::new("hub.toml"), &env).unwrap();
        assert_eq!(
            c.cluster.unwrap().secret.expose(),
            "from-the-environment-123"
        );
    }
}
