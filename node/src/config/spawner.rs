//! `[spawner]`: [`SpawnerConfig`] (how single-user servers are started and stopped), the
//! [`SpawnerClass`] choices, its defaults, and reading the section.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use toml::Value;

use super::errors::ConfigError;
use super::hub::DEFAULT_DATA_DIR;
use super::reader::Reader;
use super::values::{choice, parse_path};

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

pub(super) fn default_home_dir_template(data_dir: &Path) -> String {
    data_dir
        .join("home")
        .join("{username}")
        .to_string_lossy()
        .into_owned()
}

pub(super) fn read_spawner(
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

fn parse_argument(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("must not contain a NUL character".into());
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
